"""/app: sign in, my calls today, the account card and recording an outcome (server-rendered HTML forms).

Every page needs the signed session cookie (else a redirect to /app/login); every POST needs the form's CSRF
token (else 403, nothing done). A specialist opens only their own items: another's item by URL is a 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from serving.api.logging import note
from serving.api.routes_work import get_clock, get_store
from serving.store import auth
from serving.store.db import Store
from serving.store.models import Specialist, WorkItem
from serving.store.work import WorkError, is_supervisor, owns, record, take_next
from serving.web.forms import FormError, outcome_from_form, read_form
from serving.web.rules import tz_of
from serving.web.security import COOKIE_PATH, LOGIN_COOKIE, SESSION_COOKIE
from serving.web.state import WebState
from serving.web.views import calls_view, card_view

router = APIRouter(prefix="/app", include_in_schema=False)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInNeeded(Exception):
    """No live session: go to the sign-in page."""


def web(request: Request) -> WebState:
    return request.app.state.web


def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render a template with the signed-in person and the session's CSRF token."""
    html = web(request).env.get_template(name).render(request=request, **ctx)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(request: Request, status: int, msg: str, me: Specialist | None = None, csrf: str = "") -> HTMLResponse:
    note(error=f"web_{status}")
    return page(request, "error.html", status=status, me=me, csrf=csrf, status_code=status, problem=msg)


class Session:
    """The signed-in person, their login token and the CSRF token of their forms."""

    def __init__(self, me: Specialist, token: str, csrf: str) -> None:
        self.me, self.token, self.csrf = me, token, csrf


def signed_in(request: Request) -> Session:
    """The live session from the cookie, else SignInNeeded."""
    state = web(request)
    token = state.signer.unsign_session(request.cookies.get(SESSION_COOKIE))
    if token is None:
        raise SignInNeeded
    store: Store = get_store(request)
    with store.session() as s:
        me = auth.authenticate(s, token, get_clock(request)())
    if me is None:
        raise SignInNeeded
    note(specialist=me.id)
    return Session(me, token, state.signer.csrf_for(token))


Me = Annotated[Session, Depends(signed_in)]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def posted(request: Request, sess: Session) -> dict[str, str]:
    """The form, once its CSRF token matches the session's (FormError 403 otherwise)."""
    form = await read_form(request)
    if not web(request).signer.same(form.get("csrf"), sess.csrf):
        raise FormError(403, "This form is missing its security token or it has expired. Reload the page.")
    return form


def see_other(url: str) -> Response:
    """303 to `url` (after a POST, the browser GETs the next page)."""
    return RedirectResponse(url, status_code=303)


@router.get("")
@router.get("/")
def home(sess: Me) -> Response:
    return see_other("/app/supervisor" if is_supervisor(sess.me) else "/app/calls")


NOTICES = {  # what a redirect may ask a page to say (a code, never text from the URL)
    "signed-out": "Signed out.",
    "nothing": "Nothing more to call right now.",
    "recorded": "Recorded. Nothing more to call right now.",
    "reassigned": "Item reassigned.",
    "published": "The day is published.",
}


def notice(code: str) -> str:
    return NOTICES.get(code, "")


@router.get("/login")
def login_form(request: Request, msg: str = "") -> Response:
    nonce = secrets.token_urlsafe(18)
    resp = page(request, "login.html", me=None, csrf=web(request).signer.login_csrf(nonce), msg=notice(msg))
    resp.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")  # fmt: skip
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    state = web(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not state.signer.same(form.get("csrf"), state.signer.login_csrf(nonce)):
        return error_page(request, 403, "The sign-in form had expired. Open the sign-in page again.")
    username = form.get("username", "").strip().lower()[:64]
    address = request.client.host if request.client else "-"
    wait = max(state.user_limiter.wait_seconds([username]), state.addr_limiter.wait_seconds([address]))
    if wait:
        note(error="login_throttled")
        return page(request, "login.html", status=429, me=None, csrf=form.get("csrf", ""),
                    msg=f"Too many failed sign-ins. Try again in {max(1, round(wait / 60))} minute(s).")  # fmt: skip
    store: Store = get_store(request)
    hours = request.app.state.settings.token_hours

    def work() -> tuple[str, Specialist] | None:
        with store.session() as s:
            found = auth.login(s, username, form.get("password", "")[:256], get_clock(request)(), hours)
            return None if found is None else (found[0], s.get(Specialist, found[1].specialist_id))

    found = await run_in_threadpool(work)
    if found is None:
        state.user_limiter.fail([username])
        state.addr_limiter.fail([address])
        note(error="login_failed")
        return page(request, "login.html", status=401, me=None, csrf=form.get("csrf", ""),
                    msg="Wrong username or password.")  # fmt: skip
    token, me = found
    state.user_limiter.succeed(username)
    note(specialist=me.id)
    resp = see_other("/app/supervisor" if is_supervisor(me) else "/app/calls")
    resp.set_cookie(SESSION_COOKIE, state.signer.sign_session(token), max_age=int(hours * 3600), path=COOKIE_PATH,
                    httponly=True, samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    resp.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return resp


@router.post("/logout")
async def logout(request: Request, sess: Me) -> Response:
    try:
        await posted(request, sess)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    store: Store = get_store(request)
    with store.session() as s:
        auth.revoke(s, sess.token, get_clock(request)())
    resp = see_other("/app/login?msg=signed-out")
    resp.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return resp


def _calls_ctx(request: Request, sess: Session) -> dict[str, Any]:
    store: Store = get_store(request)
    with store.session() as s:
        view = calls_view(s, sess.me, request.app.state.policy, get_clock(request)())
    return {"me": sess.me, "csrf": sess.csrf, "view": view}


@router.get("/calls")
def calls(request: Request, sess: Me, msg: str = "") -> Response:
    return page(request, "calls.html", msg=notice(msg), **_calls_ctx(request, sess))


@router.get("/calls/live")
def calls_live(request: Request, sess: Me) -> Response:
    """The list alone, for the page's refresh every 30 s (withdrawn items leave with their reason)."""
    return page(request, "calls_list.html", **_calls_ctx(request, sess))


def _item_or_refusal(request: Request, sess: Session, item_id: int) -> WorkItem | Response:
    store: Store = get_store(request)
    with store.session() as s:
        item = s.get(WorkItem, item_id)
    if item is None:
        return error_page(request, 404, "There is no such item.", sess.me, sess.csrf)
    if not owns(sess.me, item):
        return error_page(request, 403, "This item belongs to another specialist.", sess.me, sess.csrf)
    return item


@router.get("/items/{item_id}")
def card(request: Request, item_id: ItemId, sess: Me, recorded: int | None = None) -> Response:
    found = _item_or_refusal(request, sess, item_id)
    if isinstance(found, Response):
        return found
    return _card(request, sess, found, recorded=recorded)


def _card(request: Request, sess: Session, item: WorkItem, status: int = 200, **extra: Any) -> Response:
    store: Store = get_store(request)
    book = web(request).book()
    with store.session() as s:
        item = s.get(WorkItem, item.id) or item
        view = card_view(s, item, request.app.state.policy, get_clock(request)(), book)
        done = s.get(WorkItem, extra["recorded"]) if extra.get("recorded") else None
    note(item_id=item.id)
    extra["recorded_item"] = done if done is not None and owns(sess.me, done) else None
    return page(request, "card.html", status=status, me=sess.me, csrf=sess.csrf, view=view,
                **{"error": None, "form": {}, **extra})  # fmt: skip


@router.post("/next")
async def next_item(request: Request, sess: Me) -> Response:
    """Take the next item to work now and open its card."""
    try:
        await posted(request, sess)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    return await run_in_threadpool(_go_next, request, sess, None)


def _go_next(request: Request, sess: Session, recorded: int | None) -> Response:
    store: Store = get_store(request)
    with store.session() as s:
        got = take_next(s, sess.me, get_clock(request)())
        got_id = None if got is None else got.id
    after = f"recorded={recorded}" if recorded else ""
    if got_id is None:
        return see_other(f"/app/calls?msg={'recorded' if recorded else 'nothing'}")
    return see_other(f"/app/items/{got_id}" + (f"?{after}" if after else ""))


@router.post("/items/{item_id}/outcome")
async def record_outcome(request: Request, item_id: ItemId, sess: Me) -> Response:
    """Record the attempt and its results; then the next item to work."""
    try:
        form = await posted(request, sess)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    found = _item_or_refusal(request, sess, item_id)
    if isinstance(found, Response):
        return found
    try:
        attempt = outcome_from_form(form, tz_of(found))
    except FormError as exc:
        return _card(request, sess, found, status=exc.status, error=exc.msg, form=form)
    store: Store = get_store(request)
    clock: Callable[[], datetime] = get_clock(request)
    note(item_id=item_id)

    def work() -> dict[str, Any]:
        with store.session() as s:
            return record(s, sess.me, item_id, attempt, clock(), request.app.state.policy)

    try:
        answer = await run_in_threadpool(work)
    except WorkError as exc:
        return _card(request, sess, found, status=exc.status, error=exc.msg, form=form)
    note(withdrawn=len(answer["withdrawn"]), holds=len(answer["holds"]))
    return await run_in_threadpool(_go_next, request, sess, item_id)
