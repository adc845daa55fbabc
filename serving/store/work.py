"""The specialist's day in the store: take the next item, record an outcome and its results, reassign, release.

Every function works inside the caller's transaction (one request = one transaction: all of it or nothing) and
raises WorkError, a client error naming the field, for anything the caller can fix. A specialist sees and
changes only their own items (assigned to them or taken by them); a supervisor sees and changes all.
Two specialists taking the next item at once never get the same one: candidates are read with
`SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers) and claimed by a conditional update
that only succeeds while the item is still open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from features.schema import OUTCOMES_BY_CHANNEL
from features.states import STATE_TZ
from serving.policy_accounts import GUARANTOR_FLAGS, call_windows
from serving.policy_config import PolicyConfig
from serving.store.compliance import call_window_open, channel_block, local_time_text, withdraw_blocked
from serving.store.models import HOLD_RESULTS, Decision, Outcome, Result, Specialist, StoreHold, WorkItem

CLOCK_SKEW = timedelta(minutes=2)
MAX_CALLBACK_DAYS = 30
MAX_PROMISE_DAYS = 366


class WorkError(Exception):
    """A request the store refuses: HTTP status, where (loc) and why; never quotes submitted values."""

    def __init__(self, status: int, msg: str, loc: list[str | int] | None = None, kind: str = "work") -> None:
        super().__init__(msg)
        self.status, self.msg, self.loc, self.kind = status, msg, loc or [], kind

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": self.loc, "msg": self.msg, "type": self.kind}]


@dataclass(frozen=True)
class ResultIn:
    """One result of a right-party call, as validated by the API schema."""

    kind: str
    amount: float | None = None
    date: date | None = None
    instalments: int | None = None
    at: datetime | None = None  # callbacks: naive UTC
    owner_only: bool = True


@dataclass(frozen=True)
class OutcomeIn:
    """A recorded attempt: channel, outcome, when it was placed (None: now), results, a note."""

    channel: str
    outcome: str
    placed_at: datetime | None = None
    results: tuple[ResultIn, ...] = ()
    note: str | None = None


def is_supervisor(me: Specialist) -> bool:
    return me.role == "supervisor"


def owns(me: Specialist, item: WorkItem) -> bool:
    return is_supervisor(me) or item.assigned_to == me.id or item.taken_by == me.id


def get_item(session: Session, me: Specialist, item_id: int, lock: bool = False) -> WorkItem:
    """The item if `me` may see it; 404 otherwise (another person's item is not revealed)."""
    query = sa.select(WorkItem).where(WorkItem.id == item_id)
    item = session.scalar(query.with_for_update() if lock else query)
    if item is None or not owns(me, item):
        raise WorkError(404, "no such item among yours", ["path", "item_id"], "not_found")
    return item


def list_items(
    session: Session, me: Specialist, status: str | None = None, day: date | None = None, who: str | None = None
) -> list[WorkItem]:
    """Your items (a supervisor: everyone's, or `who`'s), by day, kind and rank."""
    from serving.store.models import WorkDay

    query = sa.select(WorkItem).join(WorkDay, WorkItem.day_id == WorkDay.id)
    if not is_supervisor(me):
        query = query.where(sa.or_(WorkItem.assigned_to == me.id, WorkItem.taken_by == me.id))
    elif who is not None:
        query = query.where(sa.or_(WorkItem.assigned_to == who, WorkItem.taken_by == who))
    if status is not None:
        query = query.where(WorkItem.status == status)
    if day is not None:
        query = query.where(WorkDay.day == day)
    return list(session.scalars(query.order_by(WorkDay.day, WorkItem.kind, WorkItem.rank, WorkItem.id)).all())


def take_next(session: Session, me: Specialist, now: datetime) -> WorkItem | None:
    """The item to work now: the one you already have in progress, else the first callable open item — due
    callbacks first, then your own queue, then the shared queue, by rank — claimed for you."""
    mine = session.scalar(
        sa.select(WorkItem)
        .where(WorkItem.taken_by == me.id, WorkItem.status == "in_progress")
        .order_by(WorkItem.taken_at, WorkItem.id)
        .limit(1)
    )
    if mine is not None:
        return mine
    callable_now = sa.and_(
        WorkItem.status == "open",
        WorkItem.call_window_start <= now,
        WorkItem.call_window_end > now,
        sa.or_(WorkItem.due_at.is_(None), WorkItem.due_at <= now),
        sa.or_(WorkItem.assigned_to == me.id, sa.and_(WorkItem.assigned_to.is_(None), WorkItem.owner_only.is_(False))),
    )
    order = (
        sa.case((WorkItem.kind == "callback", 0), else_=1),
        sa.case((WorkItem.assigned_to == me.id, 0), else_=1),
        WorkItem.rank,
        WorkItem.id,
    )
    for _ in range(50):  # a lost race (SQLite) moves on to the next candidate
        # one row at a time: PostgreSQL locks it and the other sessions skip it instead of waiting
        item_id = session.scalar(
            sa.select(WorkItem.id).where(callable_now).order_by(*order).limit(1).with_for_update(skip_locked=True)
        )
        if item_id is None:
            return None
        claimed = session.execute(
            sa.update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.status == "open")
            .values(status="in_progress", taken_by=me.id, taken_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            return session.get(WorkItem, item_id, populate_existing=True)
    return None


def release(session: Session, me: Specialist, item_id: int, now: datetime) -> WorkItem:
    """Give an item back: open again, in the shared queue (an owner-only callback stays its owner's)."""
    item = get_item(session, me, item_id, lock=True)
    if item.status not in ("open", "in_progress"):
        raise WorkError(
            409,
            f"the item is {item.status}; only open or in-progress items can be released",
            ["path", "item_id"],
            "item_state",
        )
    item.status, item.taken_by, item.taken_at, item.manual = "open", None, None, False
    if not item.owner_only:
        item.assigned_to = None
    item.updated_at = now
    return item


def reassign(session: Session, me: Specialist, item_id: int, to: str, now: datetime) -> WorkItem:
    """Give an open or in-progress item to another active specialist (a republish keeps the choice)."""
    item = get_item(session, me, item_id, lock=True)
    if item.status not in ("open", "in_progress"):
        raise WorkError(
            409,
            f"the item is {item.status}; only open or in-progress items can be reassigned",
            ["path", "item_id"],
            "item_state",
        )
    target = session.get(Specialist, to)
    if target is None or not target.active:
        raise WorkError(422, "no active specialist with that id", ["body", "to"], "unknown_specialist")
    item.status, item.assigned_to, item.taken_by, item.taken_at, item.manual = "open", target.id, None, None, True
    item.updated_at = now
    return item


def _local_day(item: WorkItem, at: datetime) -> date:
    tz = (item.book_context or {}).get("tz") or STATE_TZ.get(item.state or "") or "UTC"
    return pd.Timestamp(at).tz_localize("UTC").tz_convert(tz).date()


def _propensity(session: Session, item: WorkItem, channel: str) -> float | None:
    """The logged probability of this contact: the call's decision, 1 for a requested callback, else the day's
    decision when it chose this channel (None when the contact was not what the policy decided)."""
    if channel == "call" and item.kind == "callback":
        return 1.0
    if channel == "call" and item.propensity is not None:
        return float(item.propensity)
    decision = session.scalar(
        sa.select(Decision).where(Decision.day_id == item.day_id, Decision.account_id == item.account_id)
    )
    return float(decision.propensity) if decision is not None and decision.action == channel else None


def _window_for(item: WorkItem, day: date, config: PolicyConfig) -> tuple[str, datetime, datetime]:
    """The item's guarantor's calling window on `day` (local text, naive UTC start and end)."""
    ctx = item.book_context or {}
    flags = ctx.get("flags", {})
    guarantor = pd.DataFrame(
        [{"guarantor_id": item.guarantor_id, "state": ctx.get("state") or item.state,
          **{f: bool(flags.get(f, False)) for f in GUARANTOR_FLAGS}}]
    )  # fmt: skip
    acc = pd.DataFrame({"account_id": [item.account_id], "guarantor_id": [item.guarantor_id]})
    w = call_windows(acc, guarantor, pd.Timestamp(day), config).iloc[0]
    start = w["call_window_start_utc"].tz_convert("UTC").tz_localize(None).to_pydatetime()
    end = w["call_window_end_utc"].tz_convert("UTC").tz_localize(None).to_pydatetime()
    return str(w["call_window_local"]), start, end


def _check_results(item: WorkItem, body: OutcomeIn, placed: datetime, now: datetime, config: PolicyConfig) -> None:
    if body.results and not (body.channel == "call" and body.outcome == "right_party"):
        raise WorkError(422, "results belong to a right-party call only", ["body", "results"], "results_without_talk")
    kinds = [r.kind for r in body.results]
    for i, kind in enumerate(kinds):
        if kind in kinds[:i]:
            raise WorkError(422, "each result kind at most once per call", ["body", "results", i, "kind"], "duplicate")
    today = _local_day(item, placed)
    for i, r in enumerate(body.results):
        where = ["body", "results", i]
        late = today + timedelta(days=MAX_PROMISE_DAYS)
        if r.kind in ("promise_to_pay", "payment_plan") and (r.date is None or not today <= r.date <= late):
            raise WorkError(422, f"must be a day from {today} to {late}", [*where, "date"], "date_range")
        if r.kind == "callback":
            if r.at is None or not (now < r.at <= now + timedelta(days=MAX_CALLBACK_DAYS)):
                raise WorkError(
                    422, f"must be a time after now and within {MAX_CALLBACK_DAYS} days", [*where, "at"], "time_range"
                )
            local, start, end = _window_for(item, _local_day(item, r.at), config)
            if not (start <= r.at < end):
                raise WorkError(422, f"outside the calling window {local} of that day", [*where, "at"], "call_window")


def record(
    session: Session, me: Specialist, item_id: int, body: OutcomeIn, now: datetime, config: PolicyConfig
) -> dict[str, Any]:
    """Record one attempt on an item with its results; place holds and callbacks; withdraw what the rules now
    block. Returns the response body (ids, the item's new status, holds placed, items withdrawn)."""
    item = get_item(session, me, item_id)
    # lock the guarantor's live items in id order before anything else: compliance may withdraw any of them, and one
    # lock order for every recording means two recordings on the same guarantor wait for each other, never deadlock
    session.scalars(
        sa.select(WorkItem.id)
        .where(WorkItem.guarantor_id == item.guarantor_id, WorkItem.status.in_(("open", "in_progress")))
        .order_by(WorkItem.id)
        .with_for_update()
    ).all()
    item = session.get(WorkItem, item_id, populate_existing=True, with_for_update=True)
    assert item is not None
    if item.status not in ("open", "in_progress"):
        reason = f": {item.withdrawn_rule} — {item.withdrawn_detail}" if item.status == "withdrawn" else ""
        raise WorkError(409, f"the item is {item.status}{reason}", ["path", "item_id"], "item_state")
    if item.status == "in_progress" and item.taken_by not in (None, me.id) and not is_supervisor(me):
        raise WorkError(409, "another specialist has this item in progress", ["path", "item_id"], "item_state")
    if body.outcome not in OUTCOMES_BY_CHANNEL.get(body.channel, ()):
        raise WorkError(422, f"not an outcome of a {body.channel} contact", ["body", "outcome"], "outcome_channel")
    blocked = channel_block(item, body.channel, config)
    if blocked is not None:
        raise WorkError(409, f"{blocked[0]}: {blocked[1]}", ["body", "channel"], "channel_not_allowed")
    placed = body.placed_at or now
    if placed > now + CLOCK_SKEW:
        raise WorkError(422, "a contact cannot be placed in the future", ["body", "placed_at"], "future")
    if body.channel == "call" and not call_window_open(item, placed):
        local = local_time_text(item, placed)
        raise WorkError(
            409,
            f"the calling window {item.call_window_local} is closed at {local} local time: the call cannot be placed",
            ["body", "placed_at"],
            "call_window_closed",
        )
    _check_results(item, body, placed, now, config)

    outcome = Outcome(
        contact_id=f"pr-{uuid.uuid4().hex[:24]}",
        item_id=item.id,
        account_id=item.account_id,
        guarantor_id=item.guarantor_id,
        specialist_id=me.id,
        placed_at=placed,
        recorded_at=now,
        channel=body.channel,
        outcome=body.outcome,
        propensity=_propensity(session, item, body.channel),
        note=body.note,
    )
    session.add(outcome)
    session.flush()
    today = _local_day(item, placed)
    holds_placed: list[dict[str, Any]] = []
    results_out: list[dict[str, Any]] = []
    callback_id = None
    for r in body.results:
        row = Result(outcome_id=outcome.id, kind=r.kind)
        if r.kind in ("promise_to_pay", "payment_plan"):
            row.promise_id = f"pp-{uuid.uuid4().hex[:24]}"
            row.amount, row.first_date = round(float(r.amount or 0), 2), r.date
            row.instalments = 1 if r.kind == "promise_to_pay" else int(r.instalments or 0)
        if r.kind == "callback":
            row.callback_at, row.owner_only = r.at, r.owner_only
        session.add(row)
        if r.kind in HOLD_RESULTS:
            accounts = [item.account_id]
            if r.kind != "dispute":  # cease contact and financial assistance are the person's, not one bill's
                accounts += [a for a in item.other_accounts.split(";") if a]
            for acc in accounts:
                session.add(
                    StoreHold(
                        account_id=acc,
                        kind=HOLD_RESULTS[r.kind],
                        start_date=today,
                        outcome_id=outcome.id,
                        created_at=now,
                    )
                )
                holds_placed.append({"account_id": acc, "kind": HOLD_RESULTS[r.kind], "start_date": today.isoformat()})
        if r.kind == "callback":
            callback_id = _callback(session, me, item, r, placed, now, config)
        results_out.append({"kind": r.kind, "promise_id": row.promise_id})
    item.status, item.finished_at, item.updated_at = "done", now, now
    if item.taken_by is None:
        item.taken_by, item.taken_at = me.id, now
    session.flush()
    withdrawn = withdraw_blocked(session, item.guarantor_id, config, now, exclude=item.id)
    return {
        "outcome_id": outcome.id,
        "contact_id": outcome.contact_id,
        "item_id": item.id,
        "item_status": item.status,
        "placed_at": placed.isoformat(),
        "propensity": outcome.propensity,
        "results": results_out,
        "holds": holds_placed,
        "callback_item_id": callback_id,
        "withdrawn": withdrawn,
    }


def _callback(
    session: Session, me: Specialist, item: WorkItem, r: ResultIn, placed: datetime, now: datetime, config: PolicyConfig
) -> int:
    assert r.at is not None
    local, start, end = _window_for(item, _local_day(item, r.at), config)
    cb = WorkItem(
        day_id=item.day_id,
        kind="callback",
        rank=0,
        account_id=item.account_id,
        guarantor_id=item.guarantor_id,
        assigned_to=me.id if r.owner_only else None,
        status="open",
        expected_value=item.expected_value,
        balance=item.balance,
        p_pay=item.p_pay,
        best_alternative=item.best_alternative,
        reasons=item.reasons,
        other_accounts=item.other_accounts,
        state=item.state,
        language=item.language,
        call_window_local=local,
        call_window_start=start,
        call_window_end=end,
        due_at=r.at,
        owner_only=r.owner_only,
        manual=False,
        consent_at=placed,
        parent_id=item.id,
        book_context=item.book_context,
        updated_at=now,
        propensity=1.0,
        explored=False,
    )
    session.add(cb)
    session.flush()
    return cb.id


def item_view(item: WorkItem, day: date | None = None) -> dict[str, Any]:
    """An item as the API shows it (no free text of the patient's; reasons are plain-language codes)."""

    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "id": item.id,
        "day": None if day is None else day.isoformat(),
        "kind": item.kind,
        "rank": item.rank,
        "account_id": item.account_id,
        "guarantor_id": item.guarantor_id,
        "status": item.status,
        "assigned_to": item.assigned_to,
        "taken_by": item.taken_by,
        "expected_value": item.expected_value,
        "balance": item.balance,
        "p_pay": item.p_pay,
        "best_alternative": item.best_alternative,
        "reasons": item.reasons,
        "other_accounts": [a for a in item.other_accounts.split(";") if a],
        "language": item.language,
        "call_window_local": item.call_window_local,
        "call_window_start_utc": iso(item.call_window_start),
        "call_window_end_utc": iso(item.call_window_end),
        "due_at": iso(item.due_at),
        "owner_only": item.owner_only,
        "withdrawn_rule": item.withdrawn_rule,
        "withdrawn_detail": item.withdrawn_detail,
    }
