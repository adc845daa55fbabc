"""The day's call list: ranked by what a call adds over the best alternative, compliant, one row per guarantor.

Ranking by raw payment likelihood would call people who pay anyway; the list ranks by the expected incremental
dollars of a call net of its cost MINUS the value of the best allowed alternative action (a text, e-mail,
letter, portal message, or nothing). `calls` is the team's capacity: the list holds that many of the best
allowed calls. A call not expected to pay for itself (increment at or below zero) is still listed while capacity
remains, flagged `below_break_even`, unless the caller asks for profitable calls only. Every open account that
is not on the list appears in the exclusions with the rule or reason that kept it off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schema import ACTIONS
from serving.policy import one_call_per_guarantor
from serving.policy_config import PolicyConfig
from serving.scoring import MONEY_DIGITS, Scored

WORKLIST_COLUMNS = [
    "rank",
    "account_id",
    "guarantor_id",
    "balance",
    "p_pay",
    "expected_value",
    "below_break_even",
    "best_alternative",
    "reasons",
    "other_accounts",
    "call_window_local",
    "call_window_start_utc",
    "call_window_end_utc",
    "model_version",
]
EXCLUSION_COLUMNS = ["account_id", "guarantor_id", "rule", "detail"]


def call_increment(scored: Scored) -> pd.DataFrame:
    """Per account: the call's value, the best allowed alternative and its value, and the increment."""
    allowed = scored.policy.allowed
    alternatives = [a for a in ACTIONS if a != "call"]
    ok = np.column_stack([np.ones(len(allowed), bool) if a == "none" else allowed[a].to_numpy() for a in alternatives])
    alt_values = np.where(ok, scored.values[alternatives].to_numpy(), -np.inf)
    best_alt = np.asarray(alternatives)[alt_values.argmax(axis=1)]
    alt_value = alt_values.max(axis=1)
    call_value = scored.values["call"].to_numpy()
    return pd.DataFrame(
        {
            "call_allowed": allowed["call"].to_numpy(),
            "call_value": call_value,
            "best_alternative": best_alt,
            "alternative_value": alt_value,
            "increment": call_value - alt_value,
        },
        index=scored.scores.index,
    )


def build_worklist(
    scored: Scored, calls: int, policy: PolicyConfig, profitable_only: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(worklist of the `calls` best allowed calls, exclusions: every other open account with why).

    With `profitable_only`, calls whose expected increment is not positive are left out (`call_not_worth_it`)
    even when capacity remains; otherwise they fill it, flagged `below_break_even`.
    """
    listed, exclusions = rank_calls(scored, calls, policy, profitable_only)
    return listed[WORKLIST_COLUMNS], exclusions


def rank_calls(
    scored: Scored, calls: int, policy: PolicyConfig, profitable_only: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """build_worklist's rows, the listed ones with their unrounded `increment` too (what the Spark engine's
    global top-N orders partitions' lists by)."""
    s = scored.scores
    if s.empty:
        return pd.DataFrame(columns=[*WORKLIST_COLUMNS, "increment"]), pd.DataFrame(columns=EXCLUSION_COLUMNS)
    inc = call_increment(scored)
    windows = scored.policy.allowed[["call_window_local", "call_window_start_utc", "call_window_end_utc"]]
    frame = pd.concat([s, inc, windows], axis=1)
    blocked = scored.policy.blocks
    call_blocks = blocked[blocked["channel"].astype(str) == "call"][["account_id", "rule", "detail"]]
    candidates = frame["call_allowed"] & ((frame["increment"] > 0) | (not profitable_only))
    not_worth = frame[frame["call_allowed"] & ~candidates]
    ranked = frame[candidates].sort_values(["increment", "account_id"], ascending=[False, True], kind="stable")
    kept, one_per_guarantor = one_call_per_guarantor(ranked, policy, score="increment")
    top, below = kept.head(calls), kept.iloc[calls:]
    out = top.assign(
        rank=np.arange(1, len(top) + 1),
        expected_value=top["increment"].round(MONEY_DIGITS),
        below_break_even=top["increment"].to_numpy() <= 0,
        reasons=scored.reasons_for(top.index),
    )
    out["other_accounts"] = _other_accounts(s, out)
    exclusions = pd.concat(
        [
            call_blocks.merge(s[["account_id", "guarantor_id"]], on="account_id"),
            not_worth.assign(
                rule="call_not_worth_it",
                detail="a call adds $"
                + not_worth["call_value"].round(2).astype(str)
                + " net, not more than "
                + not_worth["best_alternative"]
                + " ($"
                + not_worth["alternative_value"].round(2).astype(str)
                + ")",
            ),
            one_per_guarantor,
            below.assign(rule="over_capacity", detail=f"ranked below today's {calls} calls"),
        ],
        ignore_index=True,
    )[EXCLUSION_COLUMNS]
    exclusions = exclusions.sort_values(["account_id", "rule"], kind="stable").reset_index(drop=True)
    return out[[*WORKLIST_COLUMNS, "increment"]].reset_index(drop=True), exclusions


def worklist_summary(listed: pd.DataFrame, calls: int) -> dict[str, float | int]:
    """What a supervisor reads first: calls listed of capacity, how many pay for themselves, value at the cut."""
    value = listed["expected_value"].to_numpy(dtype=float) if len(listed) else np.zeros(0)
    paying = int((~listed["below_break_even"].astype(bool)).sum()) if len(listed) else 0
    return {
        "capacity": int(calls),
        "listed": len(listed),
        "paying_for_themselves": paying,
        "below_break_even": len(listed) - paying,
        "expected_value_total": round(float(value.sum()), MONEY_DIGITS),
        "expected_value_at_cut": round(float(value[-1]), MONEY_DIGITS) if len(value) else 0.0,
    }


def summary_text(summary: dict[str, float | int]) -> str:
    """One line for the CLI and the demo."""
    return (
        f"{summary['listed']:,} of {summary['capacity']:,} calls listed; {summary['paying_for_themselves']:,} expected "
        f"to pay for themselves, {summary['below_break_even']:,} below break-even; expected value "
        f"${summary['expected_value_total']:,.2f} in all, ${summary['expected_value_at_cut']:,.2f} at the cut"
    )


def _other_accounts(scores: pd.DataFrame, listed: pd.DataFrame) -> np.ndarray:
    """The guarantor's other open accounts, ';'-joined, for each listed row."""
    pairs = scores[["guarantor_id", "account_id"]].merge(
        listed[["guarantor_id", "account_id"]].rename(columns={"account_id": "lead"}), on="guarantor_id"
    )
    pairs = pairs[pairs["account_id"] != pairs["lead"]].sort_values("account_id")
    joined = pairs.groupby("lead")["account_id"].agg(";".join)
    return listed["account_id"].map(joined).fillna("").to_numpy()
