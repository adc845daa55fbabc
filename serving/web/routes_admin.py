"""/app for supervisors and everyone's insights: the day's progress, reassigning, publishing, and the charts."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serving.api.logging import note
from serving.api.routes_work import get_clock, get_store
from serving.store.db import Store
from serving.store.work import WorkError, is_supervisor, reassign
from serving.web.charts import CHARTS, chart_svg
from serving.web.forms import FormError
from serving.web.routes import HEADERS, ItemId, Me, Session, error_page, notice, page, posted, router, see_other, web
from serving.web.views import supervisor_view

log = logging.getLogger("payrank.api")


def _supervisor_only(request: Request, sess: Session) -> Response | None:
    if is_supervisor(sess.me):
        return None
    return error_page(request, 403, "Only supervisors can open this page.", sess.me, sess.csrf)


def publish_blocker(request: Request) -> str | None:
    """Why the day cannot be published from here (None: it can)."""
    if getattr(request.app.state, "publisher", None) is not None:
        return None
    if web(request).book_source is None:
        return "No book is configured: set PAYRANK_WORKSPACE_BOOK (or run make demo), or publish with the CLI."
    holder = getattr(request.app.state, "holder", None)
    if holder is None or holder.current is None:
        return "No model is loaded."
    return None


@router.get("/supervisor")
def supervisor(request: Request, sess: Me, msg: str = "") -> Response:
    refused = _supervisor_only(request, sess)
    if refused is not None:
        return refused
    store: Store = get_store(request)
    with store.session() as s:
        view = supervisor_view(s, get_clock(request)())
    return page(request, "supervisor.html", me=sess.me, csrf=sess.csrf, view=view, msg=notice(msg),
                publish_blocked=publish_blocker(request))  # fmt: skip


@router.post("/items/{item_id}/reassign")
async def reassign_item(request: Request, item_id: ItemId, sess: Me) -> Response:
    try:
        form = await posted(request, sess)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    refused = _supervisor_only(request, sess)
    if refused is not None:
        return refused
    store: Store = get_store(request)
    to = form.get("to", "").strip().lower()[:64]

    def work() -> None:
        with store.session() as s:
            reassign(s, sess.me, item_id, to, get_clock(request)())

    try:
        await run_in_threadpool(work)
    except WorkError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    note(item_id=item_id)
    return see_other("/app/supervisor?msg=reassigned")


@router.post("/publish")
async def publish_day(request: Request, sess: Me) -> Response:
    """Score the configured book with the served model and publish the day (as `worklist --publish` does)."""
    try:
        form = await posted(request, sess)
    except FormError as exc:
        return error_page(request, exc.status, exc.msg, sess.me, sess.csrf)
    refused = _supervisor_only(request, sess)
    if refused is not None:
        return refused
    blocked = publish_blocker(request)
    if blocked is not None:
        return error_page(request, 409, blocked, sess.me, sess.csrf)
    try:
        calls = int(form.get("calls", "100"))
        as_of = date.fromisoformat(form["as_of"]) if form.get("as_of") else None
        if not 1 <= calls <= 100_000:
            raise ValueError
    except (ValueError, KeyError):
        return error_page(request, 422, "calls: a whole number from 1 to 100000; as of: a date", sess.me, sess.csrf)
    publisher = getattr(request.app.state, "publisher", None) or _publish_with_model
    try:
        text = await run_in_threadpool(publisher, request, as_of, calls)
    except ValueError as exc:
        return error_page(request, 422, str(exc).splitlines()[0][:300], sess.me, sess.csrf)
    except Exception as exc:  # a model or book that cannot publish: say so, keep serving
        log.warning("publishing from the workspace failed: %s", type(exc).__name__)
        return error_page(request, 503, f"Publishing failed ({type(exc).__name__}); use the CLI.", sess.me, sess.csrf)
    web(request).forget()
    log.info("published from the workspace: %s", text)
    return see_other("/app/supervisor?msg=published")


def _publish_with_model(request: Request, as_of: date | None, calls: int) -> str:
    from features.overlay import overlay_book
    from serving.exploration import Exploration
    from serving.scoring import score_book
    from serving.store.export import store_tables
    from serving.store.publish import prepare_publication, publish

    settings, policy = request.app.state.settings, request.app.state.policy
    served = request.app.state.holder.current
    store: Store = get_store(request)
    book = overlay_book(web(request).book(), store_tables(store))
    day = as_of or book.transactions["posted_date"].max().date()
    scored = score_book(book, day, served.loaded.scorer, policy, served.label, costs=settings.channel_costs,
                        num_threads=settings.num_threads)  # fmt: skip
    exploration = Exploration(settings.exploration_share, settings.exploration_call_band)
    pub, _ = prepare_publication(book, scored, calls, policy, exploration, served.label)
    report = publish(store, pub, get_clock(request)())
    return f"Published {report.published} calls for {report.day} ({report.kept} worked items kept)."


@router.get("/insights")
def insights(request: Request, sess: Me) -> Response:
    return page(request, "insights.html", me=sess.me, csrf=sess.csrf, charts=CHARTS,
                has_book=web(request).book_source is not None)  # fmt: skip


@router.get("/insights/{name}.svg")
def insight_chart(request: Request, name: str, sess: Me) -> Response:
    if name not in CHARTS:
        return error_page(request, 404, "There is no such chart.", sess.me, sess.csrf)
    state = web(request)
    store: Store = get_store(request)

    holder = getattr(request.app.state, "holder", None)
    served = holder.current if holder is not None else None
    scorer = getattr(served.loaded, "scorer", None) if served is not None else None

    book = state.book()

    def draw() -> Any:
        return chart_svg(name, book, store, scorer)

    svg = state.cached(f"chart:{name}", draw)
    return Response(svg, media_type="image/svg+xml", headers={**HEADERS, "Cache-Control": "private, max-age=300"})
