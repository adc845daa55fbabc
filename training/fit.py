"""Fitting the payment parts of a bundle: payment likelihood, its calibration, and the share paid.

The channel response is fit in training.channel_fit.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from training.scorer import IsotonicMap, sigmoid

PAYMENT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 300,
    "feature_fraction": 0.5,
    "max_bin": 63,
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
CALIBRATION_FOLDS = 2


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
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )


def refit_payment_model(
    X: pd.DataFrame, y: np.ndarray, rounds: int, seed: int = 0, num_threads: int = 0
) -> lgb.Booster:
    """The payment model on a final window with a number of rounds chosen earlier (no early stopping)."""
    params = {**PAYMENT_PARAMS, "seed": seed, "num_threads": num_threads, "deterministic": True}
    return lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=max(1, rounds))


def crossfit_calibration(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    calibrate: np.ndarray,
    rounds: int,
    seed: int = 0,
    num_threads: int = 0,
    folds: int = CALIBRATION_FOLDS,
) -> IsotonicMap:
    """Isotonic calibration of `refit_payment_model` on rows it never saw, without setting any aside.

    Rows are split into folds by `groups` (guarantors: one person's rows stay together); for each fold the model
    is refit on the other folds and predicts the fold's rows marked `calibrate` (the latest labelled days). The
    isotonic map is fit on those out-of-fold predictions and applied to the model refit on every row.
    """
    fold = np.asarray(pd.factorize(np.asarray(groups))[0]) % folds
    calibrate = np.asarray(calibrate, dtype=bool)
    raw = np.full(len(y), np.nan)
    for k in range(folds):
        model = refit_payment_model(X[fold != k], y[fold != k], rounds, seed, num_threads)
        rows = calibrate & (fold == k)
        raw[rows] = sigmoid(model.predict(X[rows], raw_score=True, num_threads=num_threads))
    return fit_calibration(raw[calibrate], y[calibrate])


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
