"""The store's work as data-contract rows: for `payrank export` and for overlaying the store on a book.

contacts  ← recorded outcomes (contact_id `pr-…`, contacted_at = when placed, propensity = the decision's)
holds     ← holds placed by disputes, cease-contact and financial-assistance requests
promises  ← promises to pay and payment plans
decisions ← every open account's decided action on each published day, with its propensity
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from features.io import write_frame
from features.overlay import OVERLAY_TABLES
from features.schema import TABLES, empty_frame
from serving.store.db import Store
from serving.store.models import Decision, Outcome, Result, StoreHold, WorkDay


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    names = TABLES[table].names
    return pd.DataFrame(rows, columns=names) if rows else empty_frame(table)


def store_tables(store: Store, since: date | None = None) -> dict[str, pd.DataFrame]:
    """The store's rows (from `since` on, by their own day) as raw contract tables, table → frame."""
    start = datetime.combine(since, datetime.min.time()) if since else datetime.min
    with store.session() as s:
        contacts = [
            {"contact_id": c, "account_id": a, "contacted_at": t, "channel": ch, "outcome": o, "propensity": p}
            for c, a, t, ch, o, p in s.execute(
                sa.select(
                    Outcome.contact_id,
                    Outcome.account_id,
                    Outcome.placed_at,
                    Outcome.channel,
                    Outcome.outcome,
                    Outcome.propensity,
                )
                .where(Outcome.placed_at >= start)
                .order_by(Outcome.placed_at, Outcome.id)
            )
        ]
        holds = [
            {"account_id": a, "kind": k, "start_date": b, "end_date": e}
            for a, k, b, e in s.execute(
                sa.select(StoreHold.account_id, StoreHold.kind, StoreHold.start_date, StoreHold.end_date)
                .where(StoreHold.start_date >= (since or date.min))
                .order_by(StoreHold.id)
            )
        ]
        promises = [
            {
                "promise_id": pid,
                "account_id": a,
                "made_at": t,
                "kind": k,
                "amount": amt,
                "first_due_date": d,
                "instalments": n,
            }
            for pid, a, t, k, amt, d, n in s.execute(
                sa.select(
                    Result.promise_id,
                    Outcome.account_id,
                    Outcome.placed_at,
                    Result.kind,
                    Result.amount,
                    Result.first_date,
                    Result.instalments,
                )
                .join(Outcome, Result.outcome_id == Outcome.id)
                .where(Result.promise_id.is_not(None), Outcome.placed_at >= start)
                .order_by(Result.id)
            )
        ]
        decisions = [
            {
                "decision_id": f"{day:%Y%m%d}-{a}",
                "account_id": a,
                "decided_for": day,
                "action": act,
                "propensity": p,
                "explored": bool(x),
                "policy_version": v,
            }
            for day, a, act, p, x, v in s.execute(
                sa.select(
                    WorkDay.day,
                    Decision.account_id,
                    Decision.action,
                    Decision.propensity,
                    Decision.explored,
                    Decision.policy_version,
                )
                .join(WorkDay, Decision.day_id == WorkDay.id)
                .where(WorkDay.day >= (since or date.min))
                .order_by(WorkDay.day, Decision.account_id)
            )
        ]
    return {
        "contacts": _frame("contacts", contacts),
        "holds": _frame("holds", holds),
        "promises": _frame("promises", promises),
        "decisions": _frame("decisions", decisions),
    }


def export(store: Store, since: date, out: Path, fmt: str = "csv") -> dict[str, int]:
    """Write the store's contract rows since `since` as `<table>.csv|.parquet` in `out` (each file atomically);
    returns rows per table."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"--format {fmt!r}: csv or parquet")
    tables = store_tables(store, since)
    for name in OVERLAY_TABLES:
        frame = tables[name]
        if fmt == "csv":
            frame = frame.astype(object).where(frame.notna(), None)
        write_frame(frame, Path(out) / f"{name}.{fmt}")
    return {name: len(tables[name]) for name in OVERLAY_TABLES}
