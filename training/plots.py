"""PNG plots logged with every training run: calibration, gains, feature importance, uplift by decile."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration_plot(table: pd.DataFrame, path: Path) -> Path:
    """Observed rate against mean predicted probability per decile, with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    hi = float(max(table["mean_predicted"].max(), table["observed"].max(), 0.05)) * 1.05
    ax.plot([0, hi], [0, hi], ls="--", c="grey", lw=1, label="perfect")
    ax.plot(table["mean_predicted"], table["observed"], "o-", label="holdout deciles")
    ax.set(xlabel="mean predicted P(pay in 30 days)", ylabel="observed rate", title="Calibration (holdout)")
    ax.legend(loc="upper left")
    return _save(fig, path)


def gains_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """Cumulative share of payers captured against share of accounts worked, per ranking."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    x = np.linspace(0, 1, 101)
    total = max(float(np.sum(y)), 1.0)
    for name, s in scores.items():
        ys = np.asarray(y)[np.argsort(-np.asarray(s), kind="stable")]
        cum = np.concatenate([[0.0], np.cumsum(ys) / total])
        ax.plot(x, np.interp(x * len(ys), np.arange(len(cum)), cum), label=name)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="random")
    ax.set(xlabel="share of accounts worked", ylabel="share of payers captured", title="Gains (holdout)")
    ax.legend(loc="lower right")
    return _save(fig, path)


def importance_plot(names: list[str], gain: np.ndarray, path: Path, top: int = 20) -> Path:
    """Total split gain of the payment model's top features."""
    order = np.argsort(gain)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(order) + 1))
    ax.barh([names[i] for i in order], np.asarray(gain)[order])
    ax.set(xlabel="total gain", title="Payment model: feature importance")
    return _save(fig, path)


def uplift_decile_plot(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """Observed treated-minus-control 14-day payment rate per predicted-uplift decile, per channel."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, t in tables.items():
        if len(t):
            ax.plot(t["bin"] + 1, t["observed_uplift"], "o-", label=name)
    ax.axhline(0, c="grey", lw=1)
    ax.set(xlabel="predicted uplift decile (1 = highest)", ylabel="observed uplift", title="Uplift by decile")
    ax.legend()
    return _save(fig, path)


def channel_learners_plot(table: pd.DataFrame, chosen: str, path: Path) -> Path:
    """Each candidate's holdout policy value (DR, 95% interval) and its paired gain over the reference."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 0.6 * len(table) + 1.8), sharey=True)
    y = np.arange(len(table))
    names = [f"{n} (chosen)" if n == chosen else n for n in table["learner"]]
    for ax, (col, lo, hi, title) in zip(
        (left, right),
        (
            ("dr", "dr_lo", "dr_hi", "policy value (DR), $ per account-day"),
            ("gain", "gain_lo", "gain_hi", "gain over the reference (paired)"),
        ),
        strict=True,
    ):
        err = np.vstack([table[col] - table[lo], table[hi] - table[col]])
        ax.errorbar(table[col], y, xerr=err, fmt="o", capsize=4)
        ax.set(title=title)
    left.axvline(float(table["logged_value"].iloc[0]), ls="--", c="grey", lw=1, label="logged policy")
    left.legend(loc="lower right", fontsize=8)
    right.axvline(0, c="grey", lw=1)
    left.set_yticks(y, names)
    return _save(fig, path)
