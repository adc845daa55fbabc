"""/v1/work: the specialist's day over HTTP — log in, take the next item, record outcomes, reassign, release.

Authentication is per specialist: `POST /v1/work/login` with a username and password gives a bearer token
(`Authorization: Bearer …`); the service's X-API-Key is not used here. A specialist sees and changes only their
own items, a supervisor everyone's. Every POST that changes the store needs an `Idempotency-Key` header: the first
request with a key does the work and stores its answer in the same transaction; a retry with the same key and
body gets that answer again and records nothing twice; the same key with another body is a 422. Errors are 4xx
bodies naming the field (`{"detail": [{"loc", "msg", "type"}]}`) and never quote what was sent; notes are stored
and never logged.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from serving.api.logging import note
from serving.api.schemas import responses
from serving.api.schemas_work import LoginBody, OutcomeBody, ReassignBody
from serving.api.settings import ApiSettings
from serving.policy_config import PolicyConfig
from serving.store import auth
from serving.store.db import Store, open_store
from serving.store.models import IdempotencyKey, Outcome, Result, Specialist, WorkDay, WorkItem
from serving.store.work import (
    WorkError,
    get_item,
    is_supervisor,
    item_view,
    list_items,
    reassign,
    record,
    release,
    take_next,
)

router = APIRouter(prefix="/v1/work", tags=["work"], responses=responses(401, 403, 404, 409, 503))
bearer = HTTPBearer(auto_error=False, description="the token from POST /v1/work/login")
KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
_store_lock = threading.Lock()


def utc_now() -> datetime:
    """Now, naive UTC (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def get_clock(request: Request) -> Callable[[], datetime]:
    """The clock the routes read (tests may give the app another one)."""
    return getattr(request.app.state, "clock", utc_now)


def get_store(request: Request) -> Store:
    """The store, opened (and migrated) on first use, so the scoring API never needs it."""
    state = request.app.state
    if getattr(state, "store", None) is None:
        with _store_lock:
            if getattr(state, "store", None) is None:
                settings: ApiSettings = state.settings
                try:
                    state.store = open_store(settings=settings)
                except OperationalError:
                    raise HTTPException(503, "the operational store is unavailable") from None
    return state.store


StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def current_specialist(
    store: StoreDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Specialist:
    """The logged-in specialist; 401 without a live token."""
    person = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        with store.session() as session:
            person = auth.authenticate(session, credentials.credentials, clock())
    if person is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing, expired or invalid token (log in at POST /v1/work/login)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    note(specialist=person.id)
    return person


Me = Annotated[Specialist, Depends(current_specialist)]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the item's id")]
IdemKey = Annotated[str, Header(alias="Idempotency-Key", pattern=KEY_PATTERN, description="unique per request")]


def _digest(request: Request, body: Any) -> str:
    payload = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.url.path}\n{payload}".encode()).hexdigest()


def idempotent(
    store: Store, me: Specialist, key: str, digest: str, work: Callable[[Session], tuple[int, dict[str, Any]]]
) -> JSONResponse:
    """Run `work` once per (specialist, key): its answer is stored with the work in one transaction and replayed.

    The key is claimed first, so a concurrent twin waits on it and then replays the stored answer. A WorkError
    rolls everything back (nothing recorded, the key free again) and becomes a 4xx.
    """
    try:
        with store.session() as session:
            seen = session.get(IdempotencyKey, (me.id, key))
            if seen is None:
                claim = IdempotencyKey(
                    specialist_id=me.id,
                    key=key,
                    request_digest=digest,
                    status_code=0,
                    response={},
                    created_at=utc_now(),
                )
                session.add(claim)
                session.flush()
                code, body = work(session)
                claim.status_code, claim.response = code, body
                note(idempotent="first")
                return JSONResponse(body, status_code=code)
    except WorkError as exc:
        note(error=exc.kind, error_fields=[".".join(map(str, exc.loc))])
        return JSONResponse({"detail": exc.detail()}, status_code=exc.status)
    except IntegrityError:  # a concurrent request with the same key committed first
        with store.session() as session:
            seen = session.get(IdempotencyKey, (me.id, key))
        if seen is None:
            raise
    if seen.request_digest != digest:
        note(error="idempotency_key_reused")
        detail = [
            {"loc": ["header", "Idempotency-Key"], "msg": "already used for a different request", "type": "reused"}
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    note(idempotent="replayed")
    return JSONResponse(seen.response, status_code=seen.status_code, headers={"Idempotent-Replayed": "true"})


def _policy(request: Request) -> PolicyConfig:
    return request.app.state.policy


def _day_of(session: Session, item: WorkItem) -> date | None:
    return session.scalar(sa.select(WorkDay.day).where(WorkDay.id == item.day_id))


@router.post("/login")
def login(body: LoginBody, store: StoreDep, clock: ClockDep, request: Request) -> dict[str, Any]:
    """Exchange a username and password for a bearer token."""
    hours = request.app.state.settings.token_hours
    with store.session() as session:
        found = auth.login(session, body.username, body.password, clock(), hours)
        if found is None:
            note(error="login_failed")
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong username or password")
        token, row = found
        person = session.get(Specialist, row.specialist_id)
        assert person is not None
        note(specialist=person.id)
        return {"token": token, "expires_at": row.expires_at.isoformat(), "specialist": _person(person)}


@router.post("/logout", status_code=204)
def logout(
    me: Me, store: StoreDep, clock: ClockDep, credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]
) -> None:
    """End this login session."""
    with store.session() as session:
        auth.revoke(session, credentials.credentials, clock())


def _person(p: Specialist) -> dict[str, Any]:
    return {"id": p.id, "display_name": p.display_name, "role": p.role, "languages": sorted(p.language_set)}


@router.get("/me")
def whoami(me: Me) -> dict[str, Any]:
    return _person(me)


@router.get("/items")
def items(
    me: Me,
    store: StoreDep,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|in_progress|done|skipped|withdrawn)$")] = None,
    day: Annotated[date | None, Query()] = None,
    specialist: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Your items (a supervisor: everyone's, or one specialist's with ?specialist=)."""
    with store.session() as session:
        rows = list_items(session, me, status_, day, specialist)
        days = dict(session.execute(sa.select(WorkDay.id, WorkDay.day)).all())
        out = [item_view(i, days.get(i.day_id)) for i in rows]
    note(rows=len(out))
    return {"items": out}


@router.get("/items/{item_id}")
def item(item_id: ItemId, me: Me, store: StoreDep) -> dict[str, Any]:
    """One of your items with the outcomes recorded on it."""
    with store.session() as session:
        row = get_item(session, me, item_id)
        recorded = session.scalars(sa.select(Outcome).where(Outcome.item_id == row.id).order_by(Outcome.id)).all()
        results = session.scalars(
            sa.select(Result).where(Result.outcome_id.in_([o.id for o in recorded])).order_by(Result.id)
        ).all()
        return {
            **item_view(row, _day_of(session, row)),
            "outcomes": [
                {
                    "id": o.id,
                    "contact_id": o.contact_id,
                    "specialist": o.specialist_id,
                    "placed_at": o.placed_at.isoformat(),
                    "channel": o.channel,
                    "outcome": o.outcome,
                    "note": o.note,
                    "results": [_result(r) for r in results if r.outcome_id == o.id],
                }
                for o in recorded
            ],
        }


def _result(r: Result) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "promise_id": r.promise_id,
        "amount": r.amount,
        "date": None if r.first_date is None else r.first_date.isoformat(),
        "instalments": r.instalments,
        "at": None if r.callback_at is None else r.callback_at.isoformat(),
        "owner_only": r.owner_only,
    }


@router.post("/next")
def next_item(me: Me, store: StoreDep, clock: ClockDep, key: IdemKey, request: Request) -> JSONResponse:
    """Take the next item to work now (the one in progress, else due callbacks, your queue, the shared queue)."""

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        got = take_next(session, me, clock())
        if got is None:
            return 200, {"item": None, "detail": "nothing to call now"}
        note(item_id=got.id)
        return 200, {"item": item_view(got, _day_of(session, got))}

    return idempotent(store, me, key, _digest(request, None), work)


@router.post("/items/{item_id}/outcome", status_code=201)
def record_outcome(
    item_id: ItemId, body: OutcomeBody, me: Me, store: StoreDep, clock: ClockDep, key: IdemKey, request: Request
) -> JSONResponse:
    """Record an attempt and what the conversation produced; compliance withdraws what it must at once."""
    attempt = body.to_store()
    policy = _policy(request)
    note(item_id=item_id)

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        answer = record(session, me, item_id, attempt, clock(), policy)
        note(withdrawn=len(answer["withdrawn"]), holds=len(answer["holds"]))
        return 201, answer

    return idempotent(store, me, key, _digest(request, body.model_dump(mode="json")), work)


@router.post("/items/{item_id}/reassign")
def reassign_item(
    item_id: ItemId, body: ReassignBody, me: Me, store: StoreDep, clock: ClockDep, key: IdemKey, request: Request
) -> JSONResponse:
    """Give the item to another specialist."""

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        row = reassign(session, me, item_id, body.to.strip().lower(), clock())
        return 200, {"item": item_view(row, _day_of(session, row))}

    return idempotent(store, me, key, _digest(request, body.model_dump(mode="json")), work)


@router.post("/items/{item_id}/release")
def release_item(
    item_id: ItemId, me: Me, store: StoreDep, clock: ClockDep, key: IdemKey, request: Request
) -> JSONResponse:
    """Give the item back to the shared queue."""

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        row = release(session, me, item_id, clock())
        return 200, {"item": item_view(row, _day_of(session, row))}

    return idempotent(store, me, key, _digest(request, None), work)


@router.get("/summary")
def summary(me: Me, store: StoreDep, day: Annotated[date | None, Query()] = None) -> dict[str, Any]:
    """Supervisors: the day's progress per specialist, promises, callbacks due, and exploration's price."""
    if not is_supervisor(me):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="supervisors only")
    from serving.store.reports import day_summary

    with store.session() as session:
        return day_summary(session, day)


async def work_error(request: Request, exc: WorkError) -> JSONResponse:
    note(error=exc.kind, error_fields=[".".join(map(str, exc.loc))])
    return JSONResponse({"detail": exc.detail()}, status_code=exc.status)


def register(app: FastAPI) -> None:
    """Mount the routes on the app, with the handler that turns a WorkError into its 4xx.

    With PAYRANK_WORK_CLOCK_START (demos), the routes' clock starts at that instant and runs on from there.
    """
    app.include_router(router)
    app.add_exception_handler(WorkError, work_error)  # type: ignore[arg-type]
    start = app.state.settings.work_clock_start
    if start is not None:
        start = start.astimezone(UTC).replace(tzinfo=None) if start.tzinfo else start
        offset = start - utc_now()
        app.state.clock = lambda: utc_now() + offset
