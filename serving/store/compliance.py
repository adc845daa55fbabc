"""Compliance during the day: the contact rules over the book (as published) and the store's outcomes and holds.

After every recorded outcome, the guarantor's other open items are re-evaluated at once with the very rule
functions of `serving.policy_rules`, now counting the calls already made on the item's own day:

* `call_frequency` — the calls on D-6 … D (book and store together) have reached the limit (7; 2 in MA);
* `right_party_cooldown` — a right-party conversation on D-k … D (k = 7 by default) blocks calls;
* `hold_<kind>` — a hold active on D, from the book or placed by a recorded dispute, cease-contact or
  financial-assistance request;
* `one_call_per_guarantor` — another account of the guarantor was called on D.

An item blocked on its day is withdrawn with the rule and its plain-language detail. A callback the guarantor
asked for within the last 7 days is a call made with their prior consent, which Regulation F leaves out of the
call-frequency presumptions (12 CFR 1006.14(b)(3)(i)): frequency and cooldown do not withdraw it; holds do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from features.schema import TABLES, empty_frame, pandas_dtype
from features.states import STATE_TZ
from serving.policy_accounts import GUARANTOR_FLAGS
from serving.policy_config import PolicyConfig
from serving.policy_rules import (
    RULE_NAMES,
    rule_call_frequency,
    rule_consent_autodialled_call,
    rule_consent_email,
    rule_consent_portal,
    rule_consent_sms,
    rule_holds,
    rule_right_party_cooldown,
)
from serving.store.models import Outcome, StoreHold, WorkItem

LIVE = ("open", "in_progress")
CONSENT_DAYS = 7
CALL_LOOKBACK_DAYS = 9


def _typed(table: str, rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_frame(table)
    cols = TABLES[table].columns
    return pd.DataFrame(
        {c.name: pd.Series([r.get(c.name) for r in rows], dtype=object).astype(pandas_dtype(c)) for c in cols}
    )


def item_day(item: WorkItem) -> date | None:
    """The local calendar day an item is to be called on (its calling window's day)."""
    tz = (item.book_context or {}).get("tz") or STATE_TZ.get(item.state or "")
    if item.call_window_start is None or tz is None:
        return None
    return pd.Timestamp(item.call_window_start).tz_localize("UTC").tz_convert(tz).date()


def store_calls(session: Session, accounts: Iterable[str], since: datetime) -> list[dict]:
    """The store's recorded calls on `accounts` placed since `since`, as contract contacts rows."""
    rows = session.execute(
        sa.select(Outcome.contact_id, Outcome.account_id, Outcome.placed_at, Outcome.outcome).where(
            Outcome.account_id.in_(list(accounts)), Outcome.channel == "call", Outcome.placed_at >= since
        )
    ).all()
    return [
        {"contact_id": c, "account_id": a, "contacted_at": t, "channel": "call", "outcome": o} for c, a, t, o in rows
    ]


def store_holds(session: Session, accounts: Iterable[str]) -> list[dict]:
    """The store's holds on `accounts`, as contract holds rows."""
    rows = session.execute(
        sa.select(StoreHold.account_id, StoreHold.kind, StoreHold.start_date, StoreHold.end_date).where(
            StoreHold.account_id.in_(list(accounts))
        )
    ).all()
    return [{"account_id": a, "kind": k, "start_date": s, "end_date": e} for a, k, s, e in rows]


def blocked_items(
    session: Session, items: list[WorkItem], config: PolicyConfig, now: datetime
) -> dict[int, tuple[str, str]]:
    """{item id: (rule, detail)} for the items a contact rule blocks on their own day; the others are absent."""
    dated = [(i, item_day(i)) for i in items]
    dated = [(i, d) for i, d in dated if d is not None]
    if not dated:
        return {}
    accounts = sorted({i.account_id for i, _ in dated})
    first_day = min(d for _, d in dated)
    since = datetime.combine(first_day, datetime.min.time()) - timedelta(days=CALL_LOOKBACK_DAYS)
    recorded = store_calls(session, accounts, since)
    contacts = {(r["account_id"], pd.Timestamp(r["contacted_at"]), r["outcome"]): r for r in recorded}
    holds = store_holds(session, accounts)
    guarantors: dict[str, dict] = {}
    for item, _ in dated:
        ctx = item.book_context or {}
        flags = ctx.get("flags", {})
        guarantors[item.guarantor_id] = {
            "guarantor_id": item.guarantor_id,
            "state": ctx.get("state") or item.state,
            **{f: bool(flags.get(f, False)) for f in GUARANTOR_FLAGS},
        }
        for at, outcome in ctx.get("calls", []):
            key = (item.account_id, pd.Timestamp(at), outcome)
            contacts.setdefault(key, {"account_id": item.account_id, "contacted_at": key[1], "outcome": outcome})
        if ctx.get("last_right_party"):
            key = (item.account_id, pd.Timestamp(ctx["last_right_party"]), "right_party")
            contacts.setdefault(key, {"account_id": item.account_id, "contacted_at": key[1], "outcome": "right_party"})
        for kind, start, end in ctx.get("holds", []):
            holds.append({"account_id": item.account_id, "kind": kind, "start_date": start, "end_date": end})
    calls = [{**r, "contact_id": f"c{n}", "channel": "call"} for n, r in enumerate(contacts.values())]
    contact_frame = _typed("contacts", calls)
    hold_frame = _typed("holds", holds)
    guarantor_frame = _typed("guarantors", list(guarantors.values()))
    called_today = _calls_by_guarantor_day(session, dated)

    out: dict[int, tuple[str, str]] = {}
    for day in sorted({d for _, d in dated}):
        group = [i for i, d in dated if d == day]
        acc = pd.DataFrame(
            {"account_id": [i.account_id for i in group], "guarantor_id": [i.guarantor_id for i in group]}
        ).drop_duplicates("account_id", ignore_index=True)
        ts = pd.Timestamp(day)
        verdicts = {
            "call_frequency": rule_call_frequency(contact_frame, acc, guarantor_frame, ts, config, include_day=True),
            "right_party_cooldown": rule_right_party_cooldown(
                contact_frame, acc, guarantor_frame, ts, config, include_day=True
            ),
            **rule_holds(hold_frame, acc, ts, config),
        }
        position = {a: n for n, a in enumerate(acc["account_id"])}
        for item in group:
            consented = (
                item.kind == "callback"
                and item.consent_at is not None
                and item.due_at is not None
                and item.due_at - item.consent_at <= timedelta(days=CONSENT_DAYS)
            )
            hit = _first_block(verdicts, position[item.account_id], skip_call_limits=consented)
            if hit is None and config.one_call_per_guarantor_per_day:
                others = called_today.get((item.guarantor_id, day), set()) - {item.account_id}
                if others:
                    hit = ("one_call_per_guarantor", "another account of this guarantor was called today")
            if hit is not None:
                out[item.id] = hit
    return out


def _first_block(verdicts: dict[str, pd.DataFrame], row: int, skip_call_limits: bool) -> tuple[str, str] | None:
    """The first rule (in RULE_NAMES order) blocking the account at `row`."""
    for rule in RULE_NAMES:
        v = verdicts.get(rule)
        if v is None or (skip_call_limits and rule in ("call_frequency", "right_party_cooldown")):
            continue
        if bool(v["blocked"].iloc[row]):
            return rule, str(v["detail"].iloc[row])
    return None


def _calls_by_guarantor_day(session: Session, dated: list[tuple[WorkItem, date]]) -> dict[tuple[str, date], set]:
    """{(guarantor, local day): accounts called that day} from the store's recorded calls."""
    guarantors = sorted({i.guarantor_id for i, _ in dated})
    first = min(d for _, d in dated)
    rows = session.execute(
        sa.select(Outcome.guarantor_id, Outcome.account_id, Outcome.placed_at).where(
            Outcome.guarantor_id.in_(guarantors),
            Outcome.channel == "call",
            Outcome.placed_at >= datetime.combine(first, datetime.min.time()) - timedelta(days=1),
        )
    ).all()
    tz_of = {i.guarantor_id: (i.book_context or {}).get("tz") or STATE_TZ.get(i.state or "") for i, _ in dated}
    out: dict[tuple[str, date], set] = {}
    for gid, acc, at in rows:
        tz = tz_of.get(gid)
        if tz is None:
            continue
        local = pd.Timestamp(at).tz_localize("UTC").tz_convert(tz).date()
        out.setdefault((gid, local), set()).add(acc)
    return out


def withdraw_blocked(
    session: Session, guarantor_id: str, config: PolicyConfig, now: datetime, exclude: int | None = None
) -> list[dict]:
    """Re-evaluate the guarantor's live items and withdraw those a rule now blocks; returns what was withdrawn."""
    items = session.scalars(
        sa.select(WorkItem)
        .where(WorkItem.guarantor_id == guarantor_id, WorkItem.status.in_(LIVE))
        .order_by(WorkItem.id)
        .with_for_update()
    ).all()
    items = [i for i in items if i.id != exclude]
    blocked = blocked_items(session, items, config, now)
    out = []
    for item in items:
        if item.id in blocked:
            rule, detail = blocked[item.id]
            item.status, item.withdrawn_rule, item.withdrawn_detail, item.updated_at = "withdrawn", rule, detail, now
            out.append({"item_id": item.id, "account_id": item.account_id, "rule": rule, "detail": detail})
    return out


def channel_block(item: WorkItem, channel: str, config: PolicyConfig) -> tuple[str, str] | None:
    """(rule, detail) when a consent rule forbids `channel` to the item's guarantor (texts, e-mail, portal, and calls
    when autodialled), from the book's facts kept at publishing; None when the channel is allowed."""
    rules = {
        "call": ("consent_autodialled_call", rule_consent_autodialled_call),
        "sms": ("consent_sms", rule_consent_sms),
        "email": ("consent_email", rule_consent_email),
        "portal": ("consent_portal", rule_consent_portal),
    }
    if channel not in rules:
        return None
    ctx = item.book_context or {}
    flags = ctx.get("flags", {})
    guarantor = _typed(
        "guarantors",
        [{"guarantor_id": item.guarantor_id, "state": ctx.get("state") or item.state,
          **{f: bool(flags.get(f, False)) for f in GUARANTOR_FLAGS}}],
    )  # fmt: skip
    acc = pd.DataFrame({"account_id": [item.account_id], "guarantor_id": [item.guarantor_id]})
    name, rule = rules[channel]
    v = rule(acc, guarantor, config)
    return (name, str(v["detail"].iloc[0])) if bool(v["blocked"].iloc[0]) else None


def call_window_open(item: WorkItem, at: datetime) -> bool:
    """True when `at` (naive UTC) lies in the item's calling window."""
    if item.call_window_start is None or item.call_window_end is None:
        return False
    return item.call_window_start <= at < item.call_window_end


def local_time_text(item: WorkItem, at: datetime) -> str:
    """`at` in the guarantor's local time, for error messages."""
    tz = (item.book_context or {}).get("tz") or STATE_TZ.get(item.state or "") or "UTC"
    return pd.Timestamp(at).tz_localize("UTC").tz_convert(tz).strftime("%Y-%m-%d %H:%M")
