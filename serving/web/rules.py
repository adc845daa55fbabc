"""What the contact rules still allow today, per item, for the screen: local time, calling window, calls left
under 7-in-7, holds, consent, open promises and callbacks, and — when a call cannot be placed — why.

The facts are the store's own (`serving.store.compliance`: the book's facts kept at publishing plus the recorded
calls and holds); nothing here decides anything the store does not decide again when a call is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from features.states import STATE_TZ
from serving.policy_config import PolicyConfig
from serving.store.compliance import call_window_open, item_day, store_calls, store_holds
from serving.store.models import Outcome, Result, WorkItem

LIVE = ("open", "in_progress")
CONSENT = {
    "sms": ("has_mobile", "sms_consent"),
    "email": ("has_email", "email_consent"),
    "portal": ("portal_enrolled",),
}


@dataclass
class Allowed:
    """One item's standing under the rules right now."""

    local_time: str
    tz: str
    window_open: bool
    calls_made: int
    call_limit: int
    holds: list[str] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=dict)
    promise: str | None = None
    callback: str | None = None
    why_not: str | None = None  # set when no call can be recorded now

    @property
    def calls_left(self) -> int:
        return max(self.call_limit - self.calls_made, 0)


def tz_of(item: WorkItem) -> str:
    return (item.book_context or {}).get("tz") or STATE_TZ.get(item.state or "") or "UTC"


def local_dt(at: datetime, tz: str) -> pd.Timestamp:
    return pd.Timestamp(at).tz_localize("UTC").tz_convert(tz)


def call_limit(item: WorkItem, config: PolicyConfig) -> int:
    state = (item.book_context or {}).get("state") or item.state or ""
    override = config.state_overrides.get(state)
    if override is not None and override.max_calls_per_7_days is not None:
        return int(override.max_calls_per_7_days)
    return int(config.max_calls_per_7_days)


def allowed_now(session: Session, items: list[WorkItem], config: PolicyConfig, now: datetime) -> dict[int, Allowed]:
    """{item id: Allowed} for `items` at `now` (one query per kind of fact, whatever the number of items)."""
    if not items:
        return {}
    accounts = sorted({i.account_id for i in items})
    since = now - timedelta(days=9)
    recorded = store_calls(session, accounts, since)
    holds = store_holds(session, accounts)
    promises = session.execute(
        sa.select(Outcome.account_id, Result.kind, Result.amount, Result.first_date, Result.instalments)
        .join(Outcome, Result.outcome_id == Outcome.id)
        .where(Outcome.account_id.in_(accounts), Result.promise_id.is_not(None))
        .order_by(Result.id)
    ).all()
    callbacks = session.execute(
        sa.select(WorkItem.account_id, WorkItem.due_at, WorkItem.owner_only, WorkItem.assigned_to).where(
            WorkItem.account_id.in_(accounts), WorkItem.kind == "callback", WorkItem.status.in_(LIVE)
        )
    ).all()
    out = {}
    for item in items:
        tz = tz_of(item)
        local_now = local_dt(now, tz)
        day = item_day(item) or local_now.date()
        out[item.id] = _one(item, config, now, tz, local_now, day, recorded, holds, promises, callbacks)
    return out


def _one(item, config, now, tz, local_now, day, recorded, holds, promises, callbacks) -> Allowed:  # type: ignore[no-untyped-def]
    ctx = item.book_context or {}
    first = day - timedelta(days=6)
    times = {pd.Timestamp(at) for at, _ in ctx.get("calls", [])}
    times |= {pd.Timestamp(r["contacted_at"]) for r in recorded if r["account_id"] == item.account_id}
    made = sum(first <= local_dt(t.to_pydatetime(), tz).date() <= day for t in times)
    active = [(k, s) for k, s, e in ctx.get("holds", []) if _active(s, e, day)]
    active += [
        (h["kind"], h["start_date"]) for h in holds if h["account_id"] == item.account_id and _active(
            h["start_date"], h["end_date"], day)
    ]  # fmt: skip
    blocking = [f"{k.replace('_', ' ')} since {s}" for k, s in active if k in config.blocking_holds]
    flags = ctx.get("flags", {})
    consent = {ch: all(bool(flags.get(f, False)) for f in need) for ch, need in CONSENT.items()}
    promise = next(
        (
            f"{'plan' if k == 'payment_plan' else 'promise'} ${a:,.2f}"
            + (f" × {n}" if k == "payment_plan" else "")
            + f" from {d}"
            for acc, k, a, d, n in reversed(promises)
            if acc == item.account_id and d is not None and d >= day - timedelta(days=30 * max(n or 1, 1))
        ),
        None,
    )
    due = sorted(
        (t for acc, t, _, _ in callbacks if acc == item.account_id and t is not None and item.kind != "callback"),
    )
    callback = f"callback due {local_dt(due[0], tz):%a %d %b %H:%M} local" if due else None
    allowed = Allowed(
        local_time=f"{local_now:%H:%M}",
        tz=tz,
        window_open=call_window_open(item, now),
        calls_made=made,
        call_limit=call_limit(item, config),
        holds=blocking,
        consent=consent,
        promise=promise,
        callback=callback,
    )
    allowed.why_not = _why_not(item, allowed)
    return allowed


def _active(start: object, end: object, day: date) -> bool:
    s = pd.Timestamp(start).date() if start is not None else date.min
    e = pd.Timestamp(end).date() if end is not None else date.max
    return s <= day <= e


def _why_not(item: WorkItem, a: Allowed) -> str | None:
    """Why no call can be recorded on the item now, in plain words (None: it can)."""
    if item.status == "withdrawn":
        return f"Withdrawn today ({(item.withdrawn_rule or '').replace('_', ' ')}): {item.withdrawn_detail}"
    if item.status not in LIVE:
        return f"This item is {item.status.replace('_', ' ')}."
    if a.holds:
        return "On hold: " + "; ".join(a.holds) + ". No calls while the hold lasts."
    exempt = item.kind == "callback"  # a callback the guarantor asked for is outside the 7-in-7 presumption
    if not exempt and a.calls_left == 0:
        return f"7-in-7 reached: {a.calls_made} calls in the last 7 days (limit {a.call_limit}). Try another channel."
    if not a.window_open:
        return (
            f"Calling window closed: it is {a.local_time} for the guarantor ({a.tz}); "
            f"calls are allowed {item.call_window_local or 'only inside the window'}."
        )
    return None
