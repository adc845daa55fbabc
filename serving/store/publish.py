"""Publishing a day: the call list and every open account's decision into the store, the calls assigned.

`prepare_publication` turns a scored book into what is published (the exploring call list, the decisions, and
for each call the book's facts the contact rules need during the day); `publish` writes it in one transaction.
Publishing a day again replaces only its untouched items (open, never taken, not withdrawn): an item someone
took, recorded or that compliance withdrew stays as it is, and so does its account's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from features.schema import Book
from features.states import STATE_TZ
from serving.exploration import DayDecisions, Exploration, decide_day, policy_digest, policy_version
from serving.policy_accounts import GUARANTOR_FLAGS
from serving.policy_config import PolicyConfig
from serving.scoring import Scored
from serving.store.db import Store
from serving.store.models import Decision, Specialist, WorkDay, WorkItem
from serving.worklist import build_worklist

CALL_LOOKBACK_DAYS = 9  # the 7-day call rule in any zone, with a margin


@dataclass
class Publication:
    """What one day's publishing writes (built from a scored book; tests build it by hand too)."""

    day: date
    as_of: date
    model_version: str
    policy_digest: str
    policy_version: str
    capacity: int
    exploration: Exploration
    cost_calls: float
    cost_other: float
    items: pd.DataFrame  # worklist columns + propensity, explored, language, state, context (dict)
    decisions: pd.DataFrame  # serving.exploration.DECISION_COLUMNS

    @property
    def cost(self) -> float:
        return self.cost_calls + self.cost_other


@dataclass
class PublishReport:
    """What publishing did."""

    day: date
    published: int
    kept: int
    replaced: int
    skipped_earlier: int
    decisions: int
    explored: int
    cost: float
    per_specialist: dict[str, dict[str, float]] = field(default_factory=dict)


def language_code(values: pd.Series) -> np.ndarray:
    """ISO 639-1 base codes (`es-MX` → `es`), lower-case; blank or missing → `en`."""
    text = values.astype("string").fillna("").str.strip().str.lower().str.split(r"[-_]", regex=True).str[0]
    return np.where(text.fillna("") == "", "en", text.fillna("en")).astype(object)


def book_context(book: Book, items: pd.DataFrame, day: date) -> list[dict[str, Any]]:
    """Per item, the book's facts the contact rules read during the day: the guarantor's state and consent, the
    account's calls in the last days and its last right-party call, and its holds still active on `day`."""
    ids = items["account_id"].astype(object)
    ct = book.contacts[(book.contacts["channel"] == "call") & book.contacts["account_id"].isin(ids)]
    at = ct["contacted_at"]
    start = pd.Timestamp(day) - pd.Timedelta(days=CALL_LOOKBACK_DAYS)
    recent = ct[at >= start].sort_values("contacted_at")
    calls = recent.groupby(recent["account_id"].astype(object), sort=False).apply(
        lambda g: [[t.isoformat(), str(o)] for t, o in zip(g["contacted_at"], g["outcome"], strict=True)],
        include_groups=False,
    )
    rp = ct[ct["outcome"] == "right_party"]
    last_rp = rp.groupby(rp["account_id"].astype(object))["contacted_at"].max()
    h = book.holds[book.holds["account_id"].isin(ids)]
    h = h[h["end_date"].isna() | (h["end_date"] > pd.Timestamp(day))]
    holds = h.groupby(h["account_id"].astype(object), sort=False).apply(
        lambda g: [
            [str(k), s.date().isoformat(), None if pd.isna(e) else e.date().isoformat()]
            for k, s, e in zip(g["kind"], g["start_date"], g["end_date"], strict=True)
        ],
        include_groups=False,
    )
    g = book.guarantors.drop_duplicates("guarantor_id").set_index(book.guarantors["guarantor_id"].astype(object))
    out = []
    for acc, gid in zip(ids, items["guarantor_id"].astype(object), strict=True):  # the day's list: hundreds of rows
        row = g.loc[gid]
        state = str(row["state"])
        out.append(
            {
                "state": state,
                "tz": STATE_TZ.get(state),
                "flags": {f: bool(row[f]) for f in GUARANTOR_FLAGS},
                "calls": calls.get(acc, []),
                "last_right_party": None if acc not in last_rp.index else last_rp[acc].isoformat(),
                "holds": holds.get(acc, []),
            }
        )
    return out


def prepare_publication(
    book: Book,
    scored: Scored,
    capacity: int,
    config: PolicyConfig,
    exploration: Exploration,
    model_version: str,
    profitable_only: bool = False,
) -> tuple[Publication, DayDecisions]:
    """The day after the scores' as-of day: the exploring call list and decisions, ready to publish."""
    day = scored.policy.day.date() if scored.policy.day is not None else None
    if day is None:
        raise ValueError("scores carry no contact day")
    band = exploration.band(capacity)
    candidates, _ = build_worklist(scored, capacity + band, config, profitable_only)
    decided = decide_day(scored, candidates, capacity, exploration, day)
    items = decided.calls.copy()
    lang = book.guarantors.drop_duplicates("guarantor_id").set_index("guarantor_id")["language"]
    items["language"] = language_code(items["guarantor_id"].map(lang))
    context = book_context(book, items, day)
    items["state"] = [c["state"] for c in context]
    items["context"] = context
    pub = Publication(
        day=day,
        as_of=day - timedelta(days=1),
        model_version=model_version,
        policy_digest=policy_digest(config),
        policy_version=policy_version(model_version, config, exploration),
        capacity=capacity,
        exploration=exploration,
        cost_calls=decided.cost_calls,
        cost_other=decided.cost_other,
        items=items,
        decisions=decided.decisions,
    )
    return pub, decided


def assign(items: pd.DataFrame, people: list[tuple[str, set[str]]]) -> list[str | None]:
    """Assignee per item: even counts, balanced expected value, a non-English guarantor to a speaker of the language.

    Items that only some can take (a language other than English that someone on shift speaks) are placed first,
    then the rest; each group in order of expected value (largest first), each item to the specialist with the
    least expected value so far (ties: fewer items, then id) among those who may take it and, for the rest, have
    fewer than their share of items (ceil(items / people)): a greedy longest-first balance of value within even
    counts, so nobody gets one large call while another gets thirty small ones. Without anyone on shift, items stay
    unassigned (the shared queue).
    """
    if not people or items.empty:
        return [None] * len(items)
    load = {pid: [0.0, 0] for pid, _ in people}
    out: list[str | None] = [None] * len(items)
    ev = np.maximum(items["expected_value"].to_numpy(dtype=float), 0.0)
    languages = items["language"].astype(object).to_numpy()
    pools = [[pid for pid, langs in people if lang in langs] if lang != "en" else [] for lang in languages]
    everyone = [pid for pid, _ in people]
    share = -(-len(items) // len(people))
    constrained = np.array([bool(p) for p in pools])
    order = np.lexsort((-ev, ~constrained))  # constrained first, then by expected value
    for i in order:  # hundreds of items × a handful of people
        pool = pools[i] or ([p for p in everyone if load[p][1] < share] or everyone)
        pid = min(pool, key=lambda p: (load[p][0], load[p][1], p))
        load[pid][0] += ev[i]
        load[pid][1] += 1
        out[i] = pid
    return out


def on_shift(session: Session, names: list[str] | None) -> list[tuple[str, set[str]]]:
    """Active specialists (role specialist) on shift: all of them, or the named ones (ValueError for unknown)."""
    rows = session.scalars(
        sa.select(Specialist)
        .where(Specialist.active.is_(True), Specialist.role == "specialist")
        .order_by(Specialist.id)
    ).all()
    if names is not None:
        known = {r.id for r in rows}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"--on-shift: no active specialist named {', '.join(unknown)}")
        rows = [r for r in rows if r.id in set(names)]
    return [(r.id, r.language_set) for r in rows]


def _naive_utc(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def publish(store: Store, pub: Publication, now: datetime, names_on_shift: list[str] | None = None) -> PublishReport:
    """Write the publication in one transaction: the day, its items (assigned), its decisions.

    Items of earlier days still open whose calling window has passed become `skipped` (not reached that day).
    """
    with store.session() as session:
        people = on_shift(session, names_on_shift)
        work_day = session.scalar(sa.select(WorkDay).where(WorkDay.day == pub.day).with_for_update())
        if work_day is None:
            work_day = WorkDay(day=pub.day, publish_count=0)
            session.add(work_day)
        work_day.as_of = pub.as_of
        work_day.model_version = pub.model_version
        work_day.policy_digest = pub.policy_digest
        work_day.policy_version = pub.policy_version
        work_day.capacity = pub.capacity
        work_day.published_at = now
        work_day.publish_count = (work_day.publish_count or 0) + 1
        work_day.exploration_share = pub.exploration.share
        work_day.call_band = pub.exploration.band(pub.capacity)
        work_day.exploration_cost = round(pub.cost, 2)
        work_day.seed = pub.exploration.seed
        session.flush()

        existing = session.scalars(sa.select(WorkItem).where(WorkItem.day_id == work_day.id).with_for_update()).all()
        untouched = [i for i in existing if not i.touched]
        kept = [i for i in existing if i.touched]
        kept_accounts = {i.account_id for i in kept}
        kept_guarantors = {i.guarantor_id for i in kept if i.kind == "call"}
        for item in untouched:
            session.delete(item)
        session.execute(
            sa.delete(Decision).where(Decision.day_id == work_day.id, Decision.account_id.not_in(kept_accounts))
        )
        session.flush()

        fresh = pub.items[
            ~pub.items["account_id"].isin(kept_accounts) & ~pub.items["guarantor_id"].isin(kept_guarantors)
        ].reset_index(drop=True)
        assignees = assign(fresh, people)
        rows = []
        for r, who in zip(fresh.to_dict("records"), assignees, strict=True):
            rows.append(
                WorkItem(
                    day_id=work_day.id,
                    kind="call",
                    rank=int(r["rank"]),
                    account_id=str(r["account_id"]),
                    guarantor_id=str(r["guarantor_id"]),
                    assigned_to=who,
                    status="open",
                    expected_value=float(r["expected_value"]),
                    balance=float(r["balance"]),
                    p_pay=float(r["p_pay"]),
                    best_alternative=str(r.get("best_alternative") or ""),
                    reasons=str(r.get("reasons") or ""),
                    other_accounts=str(r.get("other_accounts") or ""),
                    state=r["state"],
                    language=str(r["language"]),
                    call_window_local=r.get("call_window_local"),
                    call_window_start=_naive_utc(r.get("call_window_start_utc")),
                    call_window_end=_naive_utc(r.get("call_window_end_utc")),
                    owner_only=False,
                    book_context=r["context"],
                    updated_at=now,
                    propensity=float(r["propensity"]),
                    explored=bool(r["explored"]),
                )
            )
        session.add_all(rows)
        decisions = pub.decisions[~pub.decisions["account_id"].isin(kept_accounts)]
        records = [
            {
                "day_id": work_day.id,
                "account_id": str(d["account_id"]),
                "guarantor_id": str(d["guarantor_id"]),
                "action": str(d["action"]),
                "propensity": float(d["propensity"]),
                "greedy_action": str(d["greedy_action"]),
                "explored": bool(d["explored"]),
                "value": float(d["value"]),
                "greedy_value": float(d["greedy_value"]),
                "policy_version": pub.policy_version,
            }
            for d in decisions.to_dict("records")
        ]
        if records:
            session.execute(sa.insert(Decision), records)
        skipped = session.execute(
            sa.update(WorkItem)
            .where(
                WorkItem.status.in_(("open", "in_progress")),
                WorkItem.call_window_end.is_not(None),
                WorkItem.call_window_end <= now,
                WorkItem.day_id != work_day.id,
            )
            .values(status="skipped", withdrawn_detail="not reached on its day", updated_at=now)
        ).rowcount
        per: dict[str, dict[str, float]] = {}
        for item, who in zip(fresh.to_dict("records"), assignees, strict=True):
            key = who or "(shared queue)"
            entry = per.setdefault(key, {"items": 0, "expected_value": 0.0})
            entry["items"] += 1
            entry["expected_value"] = round(entry["expected_value"] + float(item["expected_value"]), 2)
        return PublishReport(
            day=pub.day,
            published=len(rows),
            kept=len(kept),
            replaced=len(untouched),
            skipped_earlier=int(skipped or 0),
            decisions=len(decisions),
            explored=int(pub.decisions["explored"].sum()),
            cost=round(pub.cost, 2),
            per_specialist=per,
        )
