"""The contact policy: a compliance gate between the model's scores and every work list.

Scores for as-of DATE (the book at the end of DATE) are for the next day's work, so every rule is evaluated
for a contact made on D = DATE + 1. `evaluate_policy` combines the rules of `serving.policy_rules` into the
channels allowed per account and a long table of what blocks what; see docs/contact-policy.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from features.schema import CHANNELS, Book
from serving.policy_accounts import call_windows, prepare_accounts
from serving.policy_config import PolicyConfig, PolicyConfigError, load_policy
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

__all__ = [
    "RULE_NAMES",
    "PolicyConfig",
    "PolicyConfigError",
    "PolicyResult",
    "block_calls_outside_hours",
    "contact_day",
    "evaluate_policy",
    "load_policy",
    "one_call_per_guarantor",
]

BLOCK_COLUMNS = ("account_id", "channel", "rule", "detail")
ONE_CALL_DETAIL = "another account of this guarantor is called today"
CHANNEL_DTYPE = pd.CategoricalDtype(list(CHANNELS))


@dataclass
class PolicyResult:
    """What the policy allows on `day` (D): per account and channel, and why anything is blocked."""

    allowed: pd.DataFrame  # index = accounts' row order: account_id, CHANNELS (bool), call_window_* columns
    blocks: pd.DataFrame  # long form: account_id, channel, rule, detail — one row per blocking (account, channel, rule)
    day: pd.Timestamp | None = None

    def explain(self, account_id: str) -> list[str]:
        """Plain-language lines: each blocking rule with the channels it blocks, then what is allowed."""
        row = self.allowed[self.allowed["account_id"] == account_id]
        if row.empty:
            raise KeyError(f"account {account_id!r} was not evaluated")
        rows = self.blocks[self.blocks["account_id"] == account_id]
        if rows.empty:
            return ["all channels allowed"]
        by_rule = rows.assign(channel=rows["channel"].astype(str)).groupby(["rule", "detail"], sort=False)["channel"]
        channels = by_rule.agg(lambda c: "all channels" if c.nunique() == len(CHANNELS) else ", ".join(c.unique()))
        lines = [f"{chs} blocked by {rule}: {detail}" for (rule, detail), chs in channels.items()]
        first = row.iloc[0]
        ok = [c if c != "call" else f"call ({first['call_window_local']})" for c in CHANNELS if bool(first[c])]
        return [*lines, "allowed: " + ", ".join(ok) if ok else "no channel allowed"]


def contact_day(as_of: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    """D = as-of DATE + 1: the day the scores computed at the end of DATE are worked."""
    ts = pd.Timestamp(as_of)
    return (ts.tz_localize(None) if ts.tz is not None else ts).normalize() + pd.Timedelta(days=1)


def evaluate_policy(
    book: Book, as_of: date | datetime | str | pd.Timestamp, accounts: pd.DataFrame, config: PolicyConfig
) -> PolicyResult:
    """Every rule for contacts on D = as_of + 1 for `accounts` (account_id, guarantor_id; unique ids)."""
    missing = {"account_id", "guarantor_id"} - set(accounts.columns)
    if missing:
        raise ValueError(f"accounts lacks column(s) {sorted(missing)}")
    if accounts["account_id"].duplicated().any():
        raise ValueError("accounts has duplicate account_id values; evaluate each account once")
    day = contact_day(as_of)
    g, c = book.guarantors, _recent_calls(book.contacts, day, config)
    acc = prepare_accounts(accounts[["account_id", "guarantor_id"]], g, config)  # once, for every rule
    verdicts: list[tuple[str, tuple[str, ...], pd.DataFrame]] = [
        ("call_frequency", ("call",), rule_call_frequency(c, acc, g, day, config)),
        ("right_party_cooldown", ("call",), rule_right_party_cooldown(c, acc, g, day, config)),
        ("consent_autodialled_call", ("call",), rule_consent_autodialled_call(acc, g, config)),
        *((rule, CHANNELS, v) for rule, v in rule_holds(book.holds, acc, day, config).items()),
        ("consent_sms", ("sms",), rule_consent_sms(acc, g, config)),
        ("consent_email", ("email",), rule_consent_email(acc, g, config)),
        ("consent_portal", ("portal",), rule_consent_portal(acc, g, config)),
    ]
    allowed = pd.DataFrame({"account_id": acc["account_id"]}, index=accounts.index)
    for ch in CHANNELS:
        blocked = np.zeros(len(acc), dtype=bool)
        for _, channels, v in verdicts:
            if ch in channels:
                blocked |= v["blocked"].to_numpy()
        allowed[ch] = ~blocked
    allowed = allowed.join(call_windows(acc, g, day, config))
    parts = [_long(acc["account_id"], rule, channels, v) for rule, channels, v in verdicts]
    return PolicyResult(allowed=allowed, blocks=_sorted_blocks(parts, acc["account_id"]), day=day)


def _recent_calls(contacts: pd.DataFrame, day: pd.Timestamp, config: PolicyConfig) -> pd.DataFrame:
    """Only the calls a call rule can see (a generous UTC margin around the local-day windows)."""
    cooldowns = [config.right_party_cooldown_days]
    cooldowns += [o.right_party_cooldown_days for o in config.state_overrides.values() if o.right_party_cooldown_days]
    lookback = pd.Timedelta(days=max(*cooldowns, 7) + 2)
    at = contacts["contacted_at"]
    at = at.dt.tz_convert("UTC").dt.tz_localize(None) if at.dt.tz is not None else at
    keep = (contacts["channel"] == "call") & (at >= day - lookback) & (at < day + pd.Timedelta(days=2))
    return contacts[keep]


def _long(ids: pd.Series, rule: str, channels: tuple[str, ...], v: pd.DataFrame) -> pd.DataFrame:
    """The blocks rows of one verdict: one per blocked account and channel."""
    hit = v["blocked"].to_numpy()
    n = int(hit.sum())
    return pd.DataFrame(
        {
            "account_id": np.tile(ids.to_numpy(dtype=object)[hit], len(channels)),
            "channel": np.repeat(np.asarray(channels, dtype=object), n),
            "rule": rule,
            "detail": np.tile(v["detail"].to_numpy(dtype=object)[hit], len(channels)),
        }
    )


def _sorted_blocks(parts: list[pd.DataFrame], ids: pd.Series) -> pd.DataFrame:
    """Blocks in the accounts' row order, then channel order, then rule order; typed columns."""
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in BLOCK_COLUMNS})
    out = pd.concat([empty, *[p[list(BLOCK_COLUMNS)].astype(object) for p in parts if len(p)]], ignore_index=True)
    pos = pd.Index(ids.astype(object)).get_indexer(out["account_id"])
    channel = pd.Categorical(out["channel"], dtype=CHANNEL_DTYPE)
    rule = pd.Categorical(out["rule"], categories=RULE_NAMES).codes
    order = np.lexsort((rule, channel.codes, pos))
    out["channel"] = channel
    return out.iloc[order].reset_index(drop=True)


def one_call_per_guarantor(
    ranked: pd.DataFrame, config: PolicyConfig, score: str | None = "score"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, excluded): keep each guarantor's best candidate call (highest `score`; ties, or score=None, go
    by row order) and exclude the rest with rule `one_call_per_guarantor`; both keep `ranked`'s row order."""
    if config.one_call_per_guarantor_per_day and len(ranked):
        flat = ranked.reset_index(drop=True)
        order = flat.sort_values(score, ascending=False, kind="stable", na_position="last") if score else flat
        dup = order["guarantor_id"].duplicated(keep="first").sort_index().to_numpy()
    else:
        dup = np.zeros(len(ranked), dtype=bool)
    excluded = ranked[dup].assign(rule="one_call_per_guarantor", detail=ONE_CALL_DETAIL)
    return ranked[~dup], excluded


def block_calls_outside_hours(
    result_or_allowed: PolicyResult | pd.DataFrame, now_utc: pd.Timestamp | datetime | str
) -> PolicyResult | pd.DataFrame:
    """Calls blocked (rule `call_hours`) for accounts whose calling window does not contain `now_utc`
    (naive means UTC); returns the same kind it was given, leaving the input unchanged."""
    is_result = isinstance(result_or_allowed, PolicyResult)
    allowed = result_or_allowed.allowed if is_result else result_or_allowed
    now = pd.Timestamp(now_utc)
    now = now.tz_localize("UTC") if now.tz is None else now.tz_convert("UTC")
    inside = (allowed["call_window_start_utc"] <= now) & (now < allowed["call_window_end_utc"])
    out = allowed.assign(call=allowed["call"] & inside)
    if not is_result:
        return out
    codes, windows = pd.factorize(allowed["call_window_local"])
    texts = [_outside(now, w) for w in windows] + [_outside(now, None)]  # per distinct window, not per account
    detail = np.asarray(texts, dtype=object)[np.where(codes < 0, len(windows), codes)]
    v = pd.DataFrame({"blocked": ~inside.to_numpy(), "detail": detail}, index=allowed.index)
    blocks = _sorted_blocks(
        [result_or_allowed.blocks, _long(allowed["account_id"], "call_hours", ("call",), v)],
        allowed["account_id"],
    )
    return PolicyResult(allowed=out, blocks=blocks, day=result_or_allowed.day)


def _outside(now: pd.Timestamp, window: str | None) -> str:
    """The detail of a call_hours block: the local time now, and the window it is outside of."""
    if not window:
        return "no calling window is known for this account"
    local = now.tz_convert(window.rsplit(" ", 1)[-1]).strftime("%Y-%m-%d %H:%M")
    return f"now is {local} local time, outside the calling window {window}"
