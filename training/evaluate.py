"""Holdout evaluation of the payment model: discrimination, calibration, gains, dollars, subgroups.

Everything here takes predictions and outcomes of rows the models were never fit or calibrated on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

EPS = 1e-6


def safe_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC, NaN when only one class is present."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def payment_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Headline metrics of a probability forecast."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return {
        "auc": safe_auc(y, p),
        "pr_auc": float(average_precision_score(y, p)) if y.any() else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "mean_predicted": float(p.mean()),
        "observed_rate": float(y.mean()),
        "n": float(len(y)),
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of predicted probability: mean predicted vs observed rate and counts."""
    frame = pd.DataFrame({"p": p, "y": y})
    frame["decile"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False) + 1
    return (
        frame.groupby("decile").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed=("y", "mean")).reset_index()
    )


def gains(y: np.ndarray, score: np.ndarray, fractions: tuple[float, ...] = (0.05, 0.10, 0.20)) -> pd.DataFrame:
    """Share of all payers captured in the top fraction by score, and lift over random."""
    order = np.argsort(-np.asarray(score), kind="stable")
    ys = np.asarray(y)[order]
    total = max(ys.sum(), 1)
    rows = []
    for f in fractions:
        k = max(1, int(round(f * len(ys))))
        captured = ys[:k].sum() / total
        rows.append({"fraction": f, "captured": float(captured), "lift": float(captured / f)})
    return pd.DataFrame(rows)


def recovered_dollars(paid_amount: np.ndarray, score: np.ndarray, capacity: int) -> float:
    """Dollars actually paid by the `capacity` accounts ranked highest by `score`."""
    order = np.argsort(-np.asarray(score), kind="stable")[:capacity]
    return float(np.asarray(paid_amount)[order].sum())


def age_band(age: pd.Series) -> pd.Series:
    """Age bands for the fairness review."""
    return pd.cut(age, [0, 30, 45, 65, 200], labels=["<30", "30-44", "45-64", "65+"], right=False).astype(object)


def subgroup_table(frame: pd.DataFrame, y: str, p: str, groups: list[str]) -> pd.DataFrame:
    """Per-subgroup n, observed rate, mean predicted, AUC — for a fairness review."""
    rows = []
    for g in groups:
        for level, part in frame.groupby(g, observed=True):
            yy, pp = part[y].to_numpy(), part[p].to_numpy()
            rows.append(
                {
                    "group": g,
                    "level": str(level),
                    "n": len(part),
                    "observed": float(yy.mean()),
                    "mean_predicted": float(pp.mean()),
                    "auc": safe_auc(yy, pp) if len(part) >= 30 else float("nan"),
                }
            )
    return pd.DataFrame(rows)
