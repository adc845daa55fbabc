"""Fitting the three parts of a bundle: payment likelihood (+ calibration), share paid, channel response."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from features.schema import ACTIONS
from training.scorer import IsotonicMap
from training.uplift import OffsetUpliftLearner

PAYMENT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "verbose": -1,
}
AMOUNT_PARAMS: dict[str, Any] = {
    "objective": "cross_entropy",  # labels are shares in [0, 1]
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 50,
    "verbose": -1,
}
PROPENSITY_WEIGHT_CLIP = (1.0, 20.0)


def fit_payment_model(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    seed: int = 0,
    num_threads: int = 0,
    max_rounds: int = 2000,
) -> lgb.Booster:
    """LightGBM binary classifier with early stopping on the later (validation) time slice."""
    params = {**PAYMENT_PARAMS, "seed": seed, "num_threads": num_threads, "deterministic": True}
    train = lgb.Dataset(X_fit, label=y_fit, free_raw_data=False)
    valid = lgb.Dataset(X_valid, label=y_valid, reference=train)
    return lgb.train(
        params,
        train,
        num_boost_round=max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )


def fit_calibration(p_uncalibrated: np.ndarray, y: np.ndarray) -> IsotonicMap:
    """Isotonic map from raw model probability to observed rate, fit on a slice the trees did not see."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_uncalibrated, y)
    return IsotonicMap(x=[float(v) for v in iso.X_thresholds_], y=[float(v) for v in iso.y_thresholds_])


def fit_amount_model(
    X: pd.DataFrame, share_paid: np.ndarray, seed: int = 0, num_threads: int = 0, rounds: int = 200
) -> lgb.Booster | None:
    """Share of the balance paid in the window, given a payment: expected dollars are not the balance."""
    if len(X) < 100:
        return None
    params = {**AMOUNT_PARAMS, "seed": seed, "num_threads": num_threads, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, label=np.clip(share_paid, 0.0, 1.0)), num_boost_round=rounds)


def propensity_weights(propensity: np.ndarray) -> np.ndarray:
    """Inverse logged propensity, clipped; rows without one get the median weight of those with one."""
    p = np.asarray(propensity, dtype=float)
    w = np.clip(1.0 / p, *PROPENSITY_WEIGHT_CLIP)
    fill = float(np.nanmedian(w)) if np.isfinite(w).any() else 1.0
    return np.where(np.isfinite(w), w, fill)


def fit_channel_model(
    X_fit: pd.DataFrame,
    action_fit: np.ndarray,
    y_fit: np.ndarray,
    weight_fit: np.ndarray,
    valid: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None,
    seed: int = 0,
    num_threads: int = 0,
) -> OffsetUpliftLearner:
    """Offset T-learner: the no-contact response, then each channel's log-odds shift on its own rows."""
    learner = OffsetUpliftLearner(actions=list(ACTIONS), control="none", seed=seed, num_threads=num_threads)
    return learner.fit(X_fit, action_fit, y_fit, weight=weight_fit, valid=valid)
