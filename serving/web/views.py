"""What each page shows, read from the store (and the book, when one is configured) — no HTML here.

Lists reuse `serving.store.work.list_items` (own items only; a supervisor's are everyone's), the supervisor's
numbers reuse `serving.store.reports.day_summary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from features.schema import Book
from serving.policy_config import PolicyConfig
from serving.store.compliance import channel_block
from serving.store.models import Outcome, Result, Specialist, WorkDay, WorkItem
from serving.store.reports import day_summary
from serving.store.work import is_supervisor, list_items
from serving.web.rules import Allowed, allowed_now, local_dt, tz_of

CHANNEL_NAMES = {"none": "no contact", "sms": "a text", "email": "an e-mail", "letter": "a letter", "portal": "portal"}


def latest_day(session: Session) -> WorkDay | None:
    """The latest published day (the one being worked)."""
    return session.scalar(sa.select(WorkDay).order_by(WorkDay.day.desc()).limit(1))


@dataclass
class Row:
    """One line of the list."""

    item: WorkItem
    allowed: Allowed | None

    @property
    def reasons(self) -> list[str]:
        return [r.strip() for r in (self.item.reasons or "").split(";") if r.strip()]

    @property
    def others(self) -> list[str]:
        return [a for a in (self.item.other_accounts or "").split(";") if a]

    @property
    def alternative(self) -> str:
        return CHANNEL_NAMES.get(self.item.best_alternative or "none", self.item.best_alternative or "none")


def calls_view(session: Session, me: Specialist, config: PolicyConfig, now: datetime) -> dict[str, Any]:
    """My calls today: live items in order (callbacks due first, then rank), then what was done or withdrawn."""
    day = latest_day(session)
    if day is None:
        return {"day": None, "live": [], "done": [], "withdrawn": []}
    items = list_items(session, me, day=day.day)
    live = [i for i in items if i.status in ("open", "in_progress")]
    live.sort(key=lambda i: (i.kind != "callback" or (i.due_at is not None and i.due_at > now), i.rank, i.id))
    allowed = allowed_now(session, live, config, now)
    return {
        "day": day,
        "live": [Row(i, allowed.get(i.id)) for i in live],
        "done": [Row(i, None) for i in items if i.status == "done"],
        "withdrawn": [Row(i, None) for i in items if i.status in ("withdrawn", "skipped")],
    }


def suggest_plan(balance: float, payments: list[float]) -> tuple[float, int, str]:
    """A suggested affordable monthly amount, its number of months, and the basis in words (always editable)."""
    balance = max(float(balance or 0.0), 0.0)
    months = 3 if balance <= 300 else 6 if balance <= 1200 else 12
    amount = max(25.0, math.ceil(balance / months / 5) * 5) if balance else 25.0
    basis = f"${balance:,.2f} over {months} months, rounded up to $5 (at least $25)"
    typical = sorted(p for p in payments if p > 0)
    if typical:
        median = typical[len(typical) // 2]
        if median < amount:  # what they have managed before beats a formula
            amount = max(25.0, math.floor(median / 5) * 5)
            months = min(120, max(2, math.ceil(balance / amount)))
            basis = f"their usual payment so far (${median:,.2f}, the median of {len(typical)}), for {months} months"
    return amount, max(months, 2), basis


def book_facts(book: Book | None, account_id: str, until: datetime) -> dict[str, Any]:
    """Balance make-up by kind and the patient's payments (newest first) from the book up to `until`; empty
    without a book."""
    if book is None:
        return {"makeup": [], "payments": []}
    tx = book.transactions
    tx = tx[(tx["account_id"] == account_id) & (tx["posted_date"] <= pd.Timestamp(until))]
    makeup = [
        (str(k).replace("_", " "), float(v)) for k, v in tx.groupby("kind", observed=True)["amount"].sum().items()
    ]
    paid = tx[tx["kind"] == "patient_payment"].sort_values("posted_date", ascending=False)
    payments = [(pd.Timestamp(d).date(), -float(a)) for d, a in zip(paid["posted_date"], paid["amount"], strict=True)]
    return {"makeup": makeup, "payments": payments[:12]}


def card_view(
    session: Session, item: WorkItem, config: PolicyConfig, now: datetime, book: Book | None
) -> dict[str, Any]:
    """The account card: the item, what the rules allow now, history, and a suggested plan."""
    allowed = allowed_now(session, [item], config, now)[item.id]
    tz = tz_of(item)
    recorded = session.scalars(
        sa.select(Outcome).where(Outcome.account_id == item.account_id).order_by(Outcome.placed_at.desc())
    ).all()
    results = session.scalars(sa.select(Result).where(Result.outcome_id.in_([o.id for o in recorded]))).all()
    history = [
        {
            "when": f"{local_dt(o.placed_at, tz):%Y-%m-%d %H:%M}",
            "who": o.specialist_id,
            "channel": o.channel,
            "outcome": o.outcome.replace("_", " "),
            "results": [_result_text(r, tz) for r in results if r.outcome_id == o.id],
            "note": o.note,
        }
        for o in recorded
    ]
    for at, outcome in sorted((item.book_context or {}).get("calls", []), reverse=True):
        when = local_dt(pd.Timestamp(at).to_pydatetime(), tz)
        history.append({"when": f"{when:%Y-%m-%d %H:%M}", "who": "(book)", "channel": "call",
                        "outcome": outcome.replace("_", " "), "results": [], "note": None})  # fmt: skip
    facts = book_facts(book, item.account_id, now)
    amount, months, basis = suggest_plan(item.balance or 0.0, [p for _, p in facts["payments"]])
    consent = {ch: channel_block(item, ch, config) for ch in ("call", "sms", "email", "portal")}
    local_now = local_dt(now, tz)
    return {
        "row": Row(item, allowed),
        "allowed": allowed,
        "history": history,
        "facts": facts,
        "holds": (item.book_context or {}).get("holds", []),
        "consent": consent,
        "plan": {"amount": amount, "months": months, "basis": basis},
        "defaults": {
            "promise_date": (local_now + pd.Timedelta(days=7)).date().isoformat(),
            "plan_date": (local_now + pd.Timedelta(days=14)).date().isoformat(),
            "callback_at": (local_now + pd.Timedelta(days=1)).replace(hour=10, minute=0).strftime("%Y-%m-%dT%H:%M"),
        },
    }


def _result_text(r: Result, tz: str) -> str:
    if r.kind == "promise_to_pay":
        return f"promise ${r.amount:,.2f} by {r.first_date}"
    if r.kind == "payment_plan":
        return f"plan {r.instalments} × ${r.amount:,.2f} from {r.first_date}"
    if r.kind == "callback" and r.callback_at is not None:
        who = "same specialist" if r.owner_only else "anyone"
        return f"callback {local_dt(r.callback_at, tz):%Y-%m-%d %H:%M} ({who})"
    return r.kind.replace("_", " ")


def supervisor_view(session: Session, now: datetime) -> dict[str, Any]:
    """Progress per specialist, the day's promises, callbacks due, the model and policy, items to reassign."""
    summary = day_summary(session)
    day = latest_day(session)
    people = []
    for who, entry in sorted(summary.get("specialists", {}).items()):
        items, outcomes = entry["items"], entry["outcomes"]
        attempts = sum(outcomes.values())
        people.append({
            "who": who,
            "done": items.get("done", 0),
            "left": items.get("open", 0) + items.get("in_progress", 0),
            "withdrawn": items.get("withdrawn", 0) + items.get("skipped", 0),
            "attempts": attempts,
            "rpc_rate": (outcomes.get("right_party", 0) / attempts) if attempts else None,
            "expected_value": entry["expected_value"],
        })  # fmt: skip
    promises, callbacks, live = [], [], []
    if day is not None:
        ids = sa.select(WorkItem.id).where(WorkItem.day_id == day.id)
        for r, o in session.execute(
            sa.select(Result, Outcome)
            .join(Outcome, Result.outcome_id == Outcome.id)
            .where(Outcome.item_id.in_(ids), Result.promise_id.is_not(None))
            .order_by(Result.id)
        ).all():
            promises.append({"who": o.specialist_id, "account": o.account_id, "text": _result_text(r, "UTC"),
                             "total": float(r.amount or 0) * int(r.instalments or 1)})  # fmt: skip
        callbacks = list(
            session.scalars(
                sa.select(WorkItem)
                .where(WorkItem.kind == "callback", WorkItem.status.in_(("open", "in_progress")))
                .order_by(WorkItem.due_at)
            ).all()
        )
        live = list(
            session.scalars(
                sa.select(WorkItem)
                .where(WorkItem.day_id == day.id, WorkItem.status.in_(("open", "in_progress")))
                .order_by(WorkItem.kind, WorkItem.rank, WorkItem.id)
            ).all()
        )
    staff = session.scalars(sa.select(Specialist).where(Specialist.active.is_(True)).order_by(Specialist.id)).all()
    return {
        "summary": summary,
        "people": people,
        "promises": promises,
        "promised_total": sum(p["total"] for p in promises),
        "callbacks": [(c, f"{local_dt(c.due_at, tz_of(c)):%a %d %b %H:%M}" if c.due_at else "") for c in callbacks],
        "live": live,
        "staff": [p.id for p in staff if not is_supervisor(p)],
        "now": now,
        "due_soon": now + timedelta(hours=1),
    }
