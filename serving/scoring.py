"""Scoring a book on an as-of day: features → bundle → contact policy → best allowed action → reasons.

The one code path behind `payrank score`, `payrank worklist` and the API's /v1/score and /v1/worklist.
Scores for as-of DATE are for work on DATE+1; the contact policy is evaluated for that day, and an action
the policy blocks is never chosen or shown for that account.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import build_features
from features.schema import ACTIONS, CHANNELS, Book
from serving.policy import PolicyResult, evaluate_policy
from serving.policy_config import PolicyConfig
from serving.reasons import reason_codes
from training.policy_value import action_values, best_action
from training.scorer import Scorer

SCORE_COLUMNS = [
    "account_id",
    "guarantor_id",
    "balance",
    "p_pay",
    "best_channel",
    "channel_uplift",
    "expected_value",
    "reasons",
    "allowed_channels",
    "model_version",
]
MONEY_DIGITS = 2
PROB_DIGITS = 6


@dataclass
class Scored:
    """Everything a list is made from: the score rows, per-action values, the policy verdicts."""

    scores: pd.DataFrame  # SCORE_COLUMNS, one row per open account, sorted by account_id
    values: pd.DataFrame  # expected incremental net dollars per action (ACTIONS), same rows
    policy: PolicyResult
    features: pd.DataFrame
    scorer: Scorer | None = None
    num_threads: int = 0
    has_reasons: bool = True

    def reasons_for(self, rows: pd.Index) -> pd.Series:
        """Reason codes of the given score rows: computed now when scoring skipped them (they cost the most)."""
        if self.has_reasons or self.scorer is None or not len(rows):
            return self.scores.loc[rows, "reasons"]
        feats = self.features.loc[rows]
        return reason_codes(self.scorer.contributions(feats, num_threads=self.num_threads), feats)


def score_book(
    book: Book,
    as_of: object,
    scorer: Scorer,
    policy: PolicyConfig,
    model_version: str,
    costs: dict[str, float] | None = None,
    num_threads: int = 0,
    reasons: bool = True,
) -> Scored:
    """Score every open account of `book` as of `as_of`.

    Reason codes (LightGBM's pred_contrib, exact TreeSHAP) cost more than everything else together; with
    `reasons=False` they are left empty and a list computes them only for the rows it shows (Scored.reasons_for).
    """
    feats = build_features(book, as_of)
    costs = {**scorer.costs, **(costs or {})}
    if feats.empty:
        verdict = evaluate_policy(book, as_of, feats[["account_id", "guarantor_id"]], policy)
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
        return Scored(empty, pd.DataFrame(columns=list(ACTIONS)), verdict, feats)
    # The contact policy (pandas, one core) runs beside the boosters (LightGBM releases the GIL): on a large
    # book that hides most of the policy's time. Both only read the book.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy") as pool:
        pending = pool.submit(evaluate_policy, book, as_of, feats[["account_id", "guarantor_id"]], policy)
        pred = scorer.predict(feats, num_threads=num_threads)
        verdict = pending.result()
    scores, values = finish_scores(feats, pred, verdict.allowed, scorer, costs, model_version, num_threads, reasons)
    return Scored(scores, values, verdict, feats, scorer=scorer, num_threads=num_threads, has_reasons=reasons)


def finish_scores(
    feats: pd.DataFrame,
    pred: pd.DataFrame,
    allowed_channels: pd.DataFrame,
    scorer: Scorer,
    costs: dict[str, float],
    model_version: str,
    num_threads: int = 0,
    reasons: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(score rows, values per action) from features, predictions and the policy's allowed channels: row by row,
    so any split of the rows gives the same rows (the Spark engine scores per partition with this)."""
    values = action_values(pred, costs)
    allowed = allowed_channels[list(CHANNELS)].copy()
    allowed.insert(0, "none", True)
    best = best_action(values, allowed).astype(str)
    # "none" unless an allowed action pays for itself: best_action ranks "none" (value 0) first on ties
    p_best = pred[[f"p14_{a}" for a in ACTIONS]].to_numpy()[np.arange(len(pred)), pd.Index(ACTIONS).get_indexer(best)]
    ev = values.to_numpy()[np.arange(len(values)), pd.Index(values.columns).get_indexer(best)]
    scores = pd.DataFrame(
        {
            "account_id": feats["account_id"].to_numpy(),
            "guarantor_id": feats["guarantor_id"].to_numpy(),
            "balance": feats["balance"].round(MONEY_DIGITS).to_numpy(),
            "p_pay": pred["p_pay"].round(PROB_DIGITS).to_numpy(),
            "best_channel": best.to_numpy(),
            "channel_uplift": np.round(p_best - pred["p14_none"].to_numpy(), PROB_DIGITS),
            "expected_value": np.round(ev, MONEY_DIGITS),
            "reasons": (
                reason_codes(scorer.contributions(feats, num_threads=num_threads), feats).to_numpy()
                if reasons
                else np.full(len(feats), "", dtype=object)
            ),
            "allowed_channels": _allowed_text(allowed_channels),
            "model_version": str(model_version),
        }
    )
    return scores, values


def _allowed_text(allowed: pd.DataFrame) -> np.ndarray:
    """'call,sms,letter' per row, from the boolean channel columns (vectorised string sums)."""
    text = pd.Series("", index=allowed.index, dtype=object)
    for ch in CHANNELS:
        add = allowed[ch].to_numpy()
        text = text.where(~add, text.where(text == "", text + ",") + ch)
    return text.to_numpy()
