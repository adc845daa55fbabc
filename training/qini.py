"""Qini curves and uplift-by-decile tables: does ranking by predicted uplift find who a contact moves?

Rows are sorted by predicted uplift, highest first; after targeting the top k rows the Qini gain is
    g(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)   (Radcliffe 2007)
with N_t, N_c the treated / control rows among the top k and Y_t, Y_c their positives (the control term is 0
while N_c(k) = 0). Rows with tied scores enter together, so the curve does not depend on row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _inputs(uplift_score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    s = np.asarray(uplift_score, dtype=float)
    t = np.asarray(treated).astype(bool)
    yy = np.asarray(y, dtype=float)
    if not (s.shape == t.shape == yy.shape) or s.ndim != 1:
        raise ValueError("uplift_score, treated and y must be 1-D arrays of the same length")
    if not (t.any() and (~t).any()):
        raise ValueError("need both treated and control rows")
    if np.isnan(s).any():
        raise ValueError("uplift_score contains NaN")
    return s, t, yy


def qini_curve(
    uplift_score: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    normalize: bool = True,
) -> pd.DataFrame:
    """Qini curve: columns `fraction` (share of rows targeted, from 0 to 1), `gain` and `random`.

    With `normalize` the gain is divided by the total number of treated rows, so the curve ends at the
    overall treated-minus-control response rate; otherwise it counts incremental treated responders.
    `random` is the straight line from (0, 0) to the curve's end: what random targeting gains on average.
    """
    s, t, yy = _inputs(uplift_score, treated, y)
    order = np.argsort(-s, kind="stable")
    s, t, yy = s[order], t[order], yy[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(yy * t), np.cumsum(yy * ~t)
    last = np.r_[s[1:] != s[:-1], True]  # last row of each block of tied scores
    n_t, n_c, y_t, y_c = n_t[last], n_c[last], y_t[last], y_c[last]
    ratio = np.divide(n_t, n_c, out=np.zeros(len(n_t)), where=n_c > 0)
    gain = y_t - y_c * ratio
    if normalize:
        gain = gain / t.sum()
    fraction = np.flatnonzero(last) + 1.0
    fraction = np.r_[0.0, fraction / len(s)]
    gain = np.r_[0.0, gain]
    return pd.DataFrame({"fraction": fraction, "gain": gain, "random": fraction * gain[-1]})


def qini_coefficient(
    uplift_score: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    normalize: bool = True,
) -> float:
    """Area between the Qini curve and the random line over fraction in [0, 1] (trapezoid rule).

    Positive = the ranking finds responders to treatment better than random; 0 = no better; negative =
    worse. With `normalize` (default) the area is in response-rate units, comparable across sample sizes;
    without it, in incremental treated responders.
    """
    c = qini_curve(uplift_score, treated, y, normalize=normalize)
    f, x = (c["gain"] - c["random"]).to_numpy(), c["fraction"].to_numpy()
    return float(np.sum(np.diff(x) * (f[1:] + f[:-1]) / 2))


def uplift_by_decile(
    uplift_score: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    n_bins: int = 10,
) -> pd.DataFrame:
    """Observed treated-minus-control rate per predicted-uplift bin (bin 0 = highest predicted uplift).

    Bins are equal-count by rank (ties broken by row order). Columns: bin, n_treated, n_control,
    rate_treated, rate_control, observed_uplift, predicted_uplift (mean score in the bin). A bin without
    treated or control rows has NaN rates.
    """
    s, t, yy = _inputs(uplift_score, treated, y)
    rank = np.empty(len(s), dtype=np.int64)
    rank[np.argsort(-s, kind="stable")] = np.arange(len(s))
    df = pd.DataFrame({"bin": rank * n_bins // len(s), "t": t, "c": ~t, "yt": yy * t, "yc": yy * ~t, "s": s})
    g = df.groupby("bin").agg(
        n_treated=("t", "sum"),
        n_control=("c", "sum"),
        y_t=("yt", "sum"),
        y_c=("yc", "sum"),
        predicted_uplift=("s", "mean"),
    )
    out = pd.DataFrame(
        {
            "n_treated": g["n_treated"].astype(int),
            "n_control": g["n_control"].astype(int),
            "rate_treated": g["y_t"] / g["n_treated"].where(g["n_treated"] > 0),
            "rate_control": g["y_c"] / g["n_control"].where(g["n_control"] > 0),
        }
    )
    out["observed_uplift"] = out["rate_treated"] - out["rate_control"]
    out["predicted_uplift"] = g["predicted_uplift"]
    return out.reset_index()
