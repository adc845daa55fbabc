"""Model quality against a known truth (the generator's), in the units a decision is made in.

A real book never has the truth; the generator writes it (features.generate), and these functions turn a
model's scores on the as-of day into the ratios docs/modeling.md reports per scenario:

* payment: AUC and Brier *expected* over outcomes drawn from the true probabilities, each divided by the same
  number for the true probabilities themselves (the best any model can do);
* channel policy: true net dollars of the actions chosen, normalised between a uniformly random allowed action
  (0) and the truth's best allowed action for every account (1);
* call list: the true incremental dollars of the top-K calls, as a share of the oracle's top-K.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.schema import ACTIONS, CHANNELS


def expected_auc(score: np.ndarray, p_true: np.ndarray) -> float:
    """ROC-AUC of `score` expected over outcomes y ~ Bernoulli(p_true) (each row twice, weighted)."""
    p = np.asarray(p_true, dtype=float)
    s = np.asarray(score, dtype=float)
    y = np.r_[np.ones(len(p)), np.zeros(len(p))]
    return float(roc_auc_score(y, np.r_[s, s], sample_weight=np.r_[p, 1 - p]))


def expected_brier(p_hat: np.ndarray, p_true: np.ndarray) -> float:
    """E[(p̂ − y)²] for y ~ Bernoulli(p_true): (p̂ − p)² + p(1 − p), averaged over rows."""
    p, q = np.asarray(p_true, dtype=float), np.asarray(p_hat, dtype=float)
    return float(np.mean((q - p) ** 2 + p * (1 - p)))


def payment_ratios(p_hat: np.ndarray, p_true: np.ndarray) -> dict[str, float]:
    """The model's expected AUC and Brier, each over the true probabilities' own."""
    oracle_auc, oracle_brier = expected_auc(p_true, p_true), expected_brier(p_true, p_true)
    return {
        "auc": expected_auc(p_hat, p_true),
        "auc_ratio": expected_auc(p_hat, p_true) / oracle_auc,
        "brier": expected_brier(p_hat, p_true),
        "brier_ratio": expected_brier(p_hat, p_true) / oracle_brier,
        "mean_predicted": float(np.mean(p_hat)),
        "mean_true": float(np.mean(p_true)),
    }


def true_action_values(truth: pd.DataFrame, costs: dict[str, float]) -> np.ndarray:
    """(n, ACTIONS) true net dollars of each action: (p14_a − p14_none) × expected payment − cost ("none" = 0)."""
    amount = truth["expected_payment"].to_numpy(dtype=float)
    base = truth["p_pay_14d_none"].to_numpy(dtype=float)
    cols = [np.zeros(len(truth))]
    cols += [(truth[f"p_pay_14d_{a}"].to_numpy(dtype=float) - base) * amount - costs.get(a, 0.0) for a in CHANNELS]
    return np.column_stack(cols)


def policy_value_ratio(chosen: np.ndarray, values: np.ndarray, allowed: np.ndarray) -> dict[str, float]:
    """True value of `chosen` actions (names in ACTIONS), random and oracle values, and the normalised value."""
    allowed = np.asarray(allowed, dtype=bool)
    idx = pd.Index(ACTIONS).get_indexer(np.asarray(chosen).astype(str))
    if (idx < 0).any():
        raise ValueError("chosen actions must be names in ACTIONS")
    rows = np.arange(len(values))
    learned = float(values[rows, idx].sum())
    oracle = float(np.where(allowed, values, -np.inf).max(axis=1).sum())
    random = float((np.where(allowed, values, 0.0).sum(axis=1) / allowed.sum(axis=1)).sum())
    span = oracle - random
    return {
        "value": learned,
        "random": random,
        "oracle": oracle,
        "normalised": (learned - random) / span if span > 0 else float("nan"),
        "share_contacted": float(np.mean(idx > 0)),
    }


def call_list_capture(
    listed: np.ndarray, values: np.ndarray, allowed: np.ndarray, guarantors: np.ndarray, k: int
) -> dict[str, float]:
    """True incremental call dollars of the listed rows (positions) over the oracle's best k calls.

    A call's true incremental dollars are its true net value over no contact; the oracle lists the k allowed calls
    with the largest, one per guarantor, as the worklist does.
    """
    call = ACTIONS.index("call")
    truth = pd.DataFrame({"g": np.asarray(guarantors), "v": values[:, call], "ok": np.asarray(allowed)[:, call]})
    oracle = truth[truth["ok"]].sort_values("v", ascending=False, kind="stable").drop_duplicates("g").head(k)
    got = float(values[np.asarray(listed, dtype=int)[:k], call].sum())
    best = float(oracle["v"].sum())
    return {"captured": got, "oracle": best, "capture": got / best if best > 0 else float("nan"), "k": float(k)}
