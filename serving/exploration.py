"""The day's decisions with exploration: every open account's action and the probability the policy gave it.

The deciding policy is the worklist's: the top `capacity` call candidates are called; every other account gets
its best allowed non-call action (a text, an e-mail, a letter, a portal message, or nothing). Exploration
randomises it in two places, so that every logged action has a known probability, "none" included:

* **Non-call decisions**: with probability `share` (default 5%) the action is drawn uniformly among the
  actions the contact policy allows that account (none included), otherwise it is the greedy one:
  P(a) = (1 - share) 1[a = greedy] + share / |allowed|.
* **Calls around the capacity cut**: with a band of b = round(call_band × capacity) calls, the top capacity - b
  candidates are called for sure and b calls are drawn uniformly among the next candidates up to rank
  capacity + b: each of those m candidates is called with probability b / m.

Draws only ever pick actions the contact policy allows (calls only among the list's candidates), so exploration
never breaks a contact rule. Its price is reported in the model's expected dollars: the greedy policy's
expected value minus the exploring policy's, per day (`DayDecisions.cost`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.schema import ACTIONS
from serving.policy_config import PolicyConfig
from serving.scoring import Scored
from serving.worklist import call_increment

NON_CALL = tuple(a for a in ACTIONS if a != "call")
DECISION_COLUMNS = [
    "account_id",
    "guarantor_id",
    "action",
    "propensity",
    "greedy_action",
    "explored",
    "value",
    "greedy_value",
]


@dataclass(frozen=True)
class Exploration:
    """How much the day's decisions are randomised (shares in [0, 0.5]) and the seed of the draws."""

    share: float = 0.05
    call_band: float = 0.10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("share", "call_band"):
            value = getattr(self, name)
            if not (0.0 <= value <= 0.5) or math.isnan(value):
                raise ValueError(f"exploration {name} must lie in [0, 0.5], got {value}")

    def band(self, capacity: int) -> int:
        """Calls drawn at random around the cut: round(call_band × capacity), at most the capacity."""
        return min(int(round(self.call_band * capacity)), capacity)


@dataclass
class DayDecisions:
    """One row per open account (DECISION_COLUMNS), the call list after the draw, and exploration's price."""

    decisions: pd.DataFrame
    calls: pd.DataFrame  # candidate rows that are called, re-ranked 1..n, with propensity and explored
    cost_calls: float
    cost_other: float
    band: int

    @property
    def cost(self) -> float:
        """Expected dollars (the model's) given up to exploration on this day."""
        return self.cost_calls + self.cost_other


def policy_digest(config: PolicyConfig) -> str:
    """SHA-256 of the contact policy in effect (its canonical JSON)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def policy_version(model_version: str, config: PolicyConfig, exploration: Exploration) -> str:
    """What decided: model, contact policy and exploration, e.g. `payrank/3|policy:1a2b3c4d5e6f|explore:0.05/0.1`."""
    return (
        f"{model_version}|policy:{policy_digest(config)[:12]}|explore:{exploration.share:g}/{exploration.call_band:g}"
    )


def decide_day(
    scored: Scored, candidates: pd.DataFrame, capacity: int, exploration: Exploration, day: date
) -> DayDecisions:
    """Decide every open account of `scored` for `day`.

    `candidates` are the worklist's rows in rank order (build_worklist with capacity + band calls); the first
    `capacity` of them are the greedy call list. Draws use a generator seeded by (seed, day), so deciding the same
    day again from the same scores gives the same decisions.
    """
    s = scored.scores
    if s.empty:
        return DayDecisions(pd.DataFrame(columns=DECISION_COLUMNS), candidates.iloc[:0], 0.0, 0.0, 0)
    rng = np.random.default_rng([exploration.seed, date.toordinal(day)])
    n = len(s)
    pos = pd.Index(s["account_id"]).get_indexer(candidates["account_id"])
    if (pos < 0).any():
        raise ValueError("a call candidate is not among the scored accounts")

    # calls: the sure top, and the band drawn at random
    b = exploration.band(capacity)
    k = len(candidates)
    sure = min(k, capacity - b) if k > capacity else k
    band_rows = np.arange(sure, k) if k > capacity else np.arange(0)
    drawn = capacity - sure if k > capacity else 0
    p_call = np.zeros(n)
    p_call[pos[:sure]] = 1.0
    called = np.zeros(n, dtype=bool)
    called[pos[:sure]] = True
    if len(band_rows):
        p_call[pos[band_rows]] = drawn / len(band_rows)
        chosen = np.sort(rng.choice(band_rows, size=drawn, replace=False))
        called[pos[chosen]] = True
    greedy_call = np.zeros(n, dtype=bool)
    greedy_call[pos[: min(k, capacity)]] = True

    # the other accounts: greedy non-call action, or with probability `share` one drawn among the allowed
    values = scored.values[list(ACTIONS)].to_numpy(dtype=np.float64)
    allowed = np.column_stack(
        [np.ones(n, bool) if a == "none" else scored.policy.allowed[a].to_numpy(dtype=bool) for a in NON_CALL]
    )
    other_values = values[:, [ACTIONS.index(a) for a in NON_CALL]]
    masked = np.where(allowed, other_values, -np.inf)
    greedy_other = masked.argmax(axis=1)  # ties go to the earlier action, "none" first
    n_allowed = allowed.sum(axis=1)
    explore = rng.random(n) < exploration.share
    pick = rng.random(n)
    cum = np.cumsum(allowed, axis=1) / n_allowed[:, None]
    random_other = (pick[:, None] >= cum).sum(axis=1)  # uniform among the allowed columns
    other = np.where(explore, random_other, greedy_other)
    p_other = (1 - exploration.share) * (other == greedy_other) + exploration.share / n_allowed

    names = np.asarray(NON_CALL, dtype=object)
    action = np.where(called, "call", names[other])
    propensity = np.where(called, p_call, (1.0 - p_call) * p_other)
    greedy_action = np.where(greedy_call, "call", names[greedy_other])
    col = {a: i for i, a in enumerate(ACTIONS)}
    value_of = values[np.arange(n), [col[a] for a in action]]
    greedy_value = values[np.arange(n), [col[a] for a in greedy_action]]

    # exploration's price in expected dollars: E[greedy] - E[exploring], per account
    v_greedy_other = other_values[np.arange(n), greedy_other]
    v_mean_other = np.where(allowed, other_values, 0.0).sum(axis=1) / n_allowed
    e_other = (1 - exploration.share) * v_greedy_other + exploration.share * v_mean_other
    call_value = values[:, col["call"]]
    e_explore = p_call * call_value + (1 - p_call) * e_other
    e_greedy = np.where(greedy_call, call_value, v_greedy_other)
    in_band = np.zeros(n, dtype=bool)
    in_band[pos[band_rows]] = True
    loss = e_greedy - e_explore
    # the band's share of it: its calls drawn instead of the greedy top, as if the rest acted greedily
    call_part = e_greedy - p_call * call_value - (1 - p_call) * v_greedy_other
    cost_calls = float(call_part[in_band].sum())
    cost_other = float(loss.sum() - cost_calls)

    decisions = pd.DataFrame(
        {
            "account_id": s["account_id"].to_numpy(dtype=object),
            "guarantor_id": s["guarantor_id"].to_numpy(dtype=object),
            "action": action,
            "propensity": propensity,
            "greedy_action": greedy_action,
            "explored": action != greedy_action,
            "value": value_of,
            "greedy_value": greedy_value,
        }
    )
    take = called[pos]
    calls = candidates[take].copy()
    calls["rank"] = np.arange(1, len(calls) + 1)
    calls["propensity"] = p_call[pos[take]]
    calls["explored"] = ~greedy_call[pos[take]]
    return DayDecisions(decisions, calls.reset_index(drop=True), cost_calls, cost_other, drawn)


def check_allowed(decisions: pd.DataFrame, scored: Scored, candidates: pd.DataFrame) -> None:
    """Raise if any decision is an action the contact policy does not allow that account (a guard, and a test)."""
    allowed = scored.policy.allowed.set_index("account_id")
    a = decisions.set_index("account_id")
    for action in ACTIONS:
        rows = a.index[a["action"] == action]
        if action == "none" or not len(rows):
            continue
        ok = allowed.loc[rows, action].to_numpy(dtype=bool).copy()
        if action == "call":
            ok &= np.isin(rows, candidates["account_id"].to_numpy())
        if not ok.all():
            raise AssertionError(f"decided {action} for {int((~ok).sum())} account(s) the policy does not allow it")


def call_values(scored: Scored) -> pd.DataFrame:
    """Per account: call value, best alternative and increment (serving.worklist.call_increment), by account_id."""
    inc = call_increment(scored)
    inc.insert(0, "account_id", scored.scores["account_id"].to_numpy())
    return inc.set_index("account_id")
