"""A synthetic book whose last days are decided with exploration and logged the way payrank logs a day.

`generate_logged_book` simulates exactly the population and history of `generate_book` (same seed), except that
from `explore_days` before the end the deciding policy is mixed with exploration: with probability `share` the
day's action is drawn uniformly among the actions the rules allow (none included), otherwise the usual policy
decides — P(a) = (1 - share) π(a) + share / |allowed|. Every decision of those days is logged with its
probability in the optional `decisions` table, "none" included, as `payrank worklist --publish` logs them.
Comparing models trained on the two kinds of log (tests/test_exploration.py) shows what the logging buys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from features import generator_truth as gt
from features.generate import generate_with_snapshots
from features.schema import ACTIONS, Book, empty_frame
from features.states import STATE_TZ


def exploring_policy(
    share: float, from_day: int, log: list[tuple[np.ndarray, int, np.ndarray]]
) -> Callable[[gt.Pool, int, np.ndarray], np.ndarray]:
    """The historic policy mixed with uniform exploration from simulation day `from_day` on; each day's
    (accounts, day, probability matrix) is appended to `log`."""

    def probs(p: gt.Pool, d: int, rows: np.ndarray) -> np.ndarray:
        base = gt.policy_probs(p, d, rows)
        if d < from_day:
            return base
        allowed = gt.allowed_actions(p, d, rows)
        mixed = (1.0 - share) * base + share * allowed / allowed.sum(axis=0)
        log.append((p.acc[rows].copy(), d, mixed.copy()))
        return mixed

    return probs


def generate_logged_book(
    n_guarantors: int,
    seed: int = 0,
    end_date: str | date = "2026-09-30",
    days: int = 450,
    explore_days: int = 120,
    share: float = 0.05,
) -> tuple[Book, pd.DataFrame]:
    """(book with a `decisions` table for its last `explore_days` days, truth at end_date)."""
    if not 0 < explore_days < days:
        raise ValueError("explore_days must lie between 0 and days")
    decided: list[tuple[np.ndarray, int, np.ndarray]] = []
    end = pd.Timestamp(end_date).normalize()
    book, truths = generate_with_snapshots(
        n_guarantors, seed, end, days, deciding_policy=exploring_policy(share, days - explore_days, decided)
    )
    start = end - pd.Timedelta(days=days - 1)
    book.decisions = _decisions(book, decided, start)
    return book, truths[end]


def _decisions(book: Book, decided: list[tuple[np.ndarray, int, np.ndarray]], start: pd.Timestamp) -> pd.DataFrame:
    """One row per account and explored day: the contact the policy made that (local) day, else "none"."""
    if not decided:
        return empty_frame("decisions")
    acc = np.concatenate([a for a, _, _ in decided])
    day = np.concatenate([np.full(len(a), d) for a, d, _ in decided])
    probs = np.concatenate([m for _, _, m in decided], axis=1)  # (actions, decided rows)
    ids = book.accounts["account_id"].to_numpy(dtype=object)
    # the policy's contact of the day: the contacts on that local calendar day (statements never share a day
    # with the policy's own decision, so any contact on a decided day is the decided one)
    ct = book.contacts
    g_state = book.guarantors.set_index("guarantor_id")["state"].astype(object)
    state = book.accounts.set_index("account_id")["guarantor_id"].map(g_state)
    tz = ct["account_id"].map(state).map(STATE_TZ).to_numpy(dtype=object)
    local_day = np.empty(len(ct), dtype=np.int64)
    utc = ct["contacted_at"].dt.tz_localize("UTC")
    for zone in pd.unique(tz):  # a handful of zones
        m = tz == zone
        local = utc[m].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
        local_day[m] = ((local - start) / pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
    key = pd.MultiIndex.from_arrays([ct["account_id"].astype(object).to_numpy(), local_day])
    made = pd.Series(ct["channel"].astype(object).to_numpy(), index=key)
    made = made[~made.index.duplicated(keep="first")]
    action = made.reindex(pd.MultiIndex.from_arrays([ids[acc], day])).fillna("none").to_numpy(dtype=object)
    code = pd.Index(ACTIONS).get_indexer(action)
    propensity = probs[code, np.arange(len(code))]  # what the deciding policy gave the action taken
    decided_for = (np.datetime64(start.date(), "D") + day.astype("timedelta64[D]")).astype("datetime64[ns]")
    account = pd.Series(ids[acc], dtype="string")
    return pd.DataFrame(
        {
            "decision_id": "sim" + pd.Series(day, dtype="string") + "-" + account,
            "account_id": account,
            "decided_for": decided_for,
            "action": pd.Categorical(action, categories=list(ACTIONS)),
            "propensity": propensity.astype(np.float64),
            "explored": np.zeros(len(acc), dtype=bool),  # the simulation has no greedy choice to differ from
            "policy_version": pd.Series("generator-policy+exploration", index=account.index, dtype="string"),
        }
    )
