"""What a supervisor reads about a day: progress per specialist, promises, callbacks due, exploration's price."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from serving.store.models import Decision, Outcome, Result, WorkDay, WorkItem


def day_summary(session: Session, day: date | None = None) -> dict[str, Any]:
    """The day (default: the latest published) with counts per specialist and status, outcomes, promises,
    open callbacks, and the decisions' exploration (explored share, expected cost in dollars)."""
    query = sa.select(WorkDay).order_by(WorkDay.day.desc()).limit(1)
    work_day = session.scalar(query if day is None else sa.select(WorkDay).where(WorkDay.day == day))
    if work_day is None:
        return {"day": None, "specialists": {}}
    people: dict[str, dict[str, Any]] = {}
    for who, state, n, value in session.execute(
        sa.select(
            sa.func.coalesce(WorkItem.taken_by, WorkItem.assigned_to),
            WorkItem.status,
            sa.func.count(),
            sa.func.sum(WorkItem.expected_value),
        )
        .where(WorkItem.day_id == work_day.id)
        .group_by(sa.func.coalesce(WorkItem.taken_by, WorkItem.assigned_to), WorkItem.status)
    ):
        entry = people.setdefault(who or "(shared queue)", {"items": {}, "expected_value": 0.0, "outcomes": {}})
        entry["items"][state] = int(n)
        entry["expected_value"] = round(entry["expected_value"] + float(value or 0.0), 2)
    item_ids = sa.select(WorkItem.id).where(WorkItem.day_id == work_day.id)
    for who, outcome, n in session.execute(
        sa.select(Outcome.specialist_id, Outcome.outcome, sa.func.count())
        .where(Outcome.item_id.in_(item_ids))
        .group_by(Outcome.specialist_id, Outcome.outcome)
    ):
        people.setdefault(who, {"items": {}, "expected_value": 0.0, "outcomes": {}})["outcomes"][outcome] = int(n)
    promises = session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Result.amount * Result.instalments), 0.0))
        .join(Outcome, Result.outcome_id == Outcome.id)
        .where(Outcome.item_id.in_(item_ids), Result.promise_id.is_not(None))
    ).one()
    callbacks = session.scalar(
        sa.select(sa.func.count()).where(
            WorkItem.day_id == work_day.id, WorkItem.kind == "callback", WorkItem.status == "open"
        )
    )
    decided, explored = session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((Decision.explored, 1), else_=0)), 0)).where(
            Decision.day_id == work_day.id
        )
    ).one()
    return {
        "day": work_day.day.isoformat(),
        "model_version": work_day.model_version,
        "policy_version": work_day.policy_version,
        "capacity": work_day.capacity,
        "specialists": people,
        "promises": {"count": int(promises[0]), "dollars": round(float(promises[1]), 2)},
        "callbacks_open": int(callbacks or 0),
        "decisions": {"count": int(decided), "explored": int(explored)},
        "exploration_cost_dollars": work_day.exploration_cost,
    }
