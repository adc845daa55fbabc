"""The insights as SVG pictures (matplotlib's object API: no pyplot state, safe in server threads).

Every chart draws aggregates only (`serving.web.insights`); without data it draws a labelled empty frame that
says what is missing, so the page never shows a broken image.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from features.schema import Book
from serving.store.db import Store
from serving.web import insights as ins

COLORS = ["#1f5fa8", "#d9822b", "#2a9d5c", "#c0392b", "#7d4fb3", "#6b6b6b"]
CHARTS = {
    "recovery-aging": ("Recovery by aging bucket", "Share of the balance open 90 days before the book's end that "
                       "patients paid since, day by day, one line per aging bucket on that day."),
    "recovery-payer": ("Recovery by payer class", "The same recovery curves, one line per payer class."),
    "timing": ("Payment timing after each contact", "Share of contacts followed by a patient payment within "
               "0 to 30 days, one line per channel; a letter is the statement."),
    "channel": ("Channel effect by segment: logged exploration", "Payment within 14 days after each channel by "
                "payer class, weighted by the logged propensities, with 95% intervals."),
    "channel-model": ("Channel effect by segment: the model", "The served channel model's mean predicted change "
                      "in the 14-day payment probability from each channel, by payer class, with 95% intervals of "
                      "the mean, over the accounts open at the book's end."),
    "promises-specialist": ("Promise-kept rate by specialist", "Share of decided promise instalments kept, per "
                            "specialist, with the number decided."),
    "promises-segment": ("Promise-kept rate by payer class", "Share of decided promise instalments kept, per payer "
                         "class, with the number decided."),
    "calibration": ("Expected vs realized", "For each published day: the listed accounts' summed P(pay) against "
                    "how many of them paid within 30 days."),
}  # fmt: skip


def _fig() -> tuple[Figure, list]:
    fig = Figure(figsize=(5.2, 3.5), dpi=100, layout="constrained")
    axes = fig.subplots(1, 1, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3)
    return fig, list(axes)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _empty(ax, text: str) -> None:  # type: ignore[no-untyped-def]
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _recovery(title: str) -> Callable[[Book, Store], Figure]:
    def draw(book: Book, store: Store) -> Figure:
        curves = ins.recovery(book)[title]
        fig, (ax,) = _fig()
        for n, (name, y) in enumerate(curves.items()):
            ax.plot(np.arange(len(y)), 100 * y, color=COLORS[n % len(COLORS)], label=name, lw=2)
        ax.set(xlabel="days since", ylabel="% of balance recovered")
        if curves:
            ax.legend(fontsize=7, frameon=False)
        else:
            _empty(ax, "not enough open accounts")
        return fig

    return draw


def _timing(book: Book, store: Store) -> Figure:
    fig, (ax,) = _fig()
    curves = ins.timing(book)
    for n, (name, y) in enumerate(curves.items()):
        ax.step(np.arange(len(y)), 100 * y, where="post", color=COLORS[n % len(COLORS)], label=name, lw=2)
    ax.set(xlabel="days after the contact", ylabel="% followed by a payment")
    if curves:
        ax.legend(fontsize=7, frameon=False)
    else:
        _empty(ax, "no contacts old enough")
    return fig


def _channel(book: Book, store: Store, scorer: Any = None) -> Figure:
    df = ins.channel_effect(book)
    fig, (ax,) = _fig()
    if df.empty:
        _empty(ax, "no contacts logged with propensities")
        return fig
    _points(ax, df)
    ax.set(ylabel="% paying within 14 days (IPW)")
    return fig


def _channel_model(book: Book, store: Store, scorer: Any = None) -> Figure:
    fig, (ax,) = _fig()
    if scorer is None:
        _empty(ax, "no model is loaded")
        return fig
    _points(ax, ins.model_channel_effect(book, scorer))
    ax.axhline(0, color="#555", lw=1)
    ax.set(ylabel="predicted change, percentage points")
    return fig


def _points(ax, df) -> None:  # type: ignore[no-untyped-def]
    """Per segment, one point with its interval per channel, side by side."""
    segments = sorted(df["segment"].unique())
    channels = sorted(df["channel"].unique())
    width = 0.8 / len(channels)
    for n, ch in enumerate(channels):
        d = df[df["channel"] == ch].set_index("segment").reindex(segments)
        x = np.arange(len(segments)) + (n - (len(channels) - 1) / 2) * width
        err = np.vstack([d["rate"] - d["lo"], d["hi"] - d["rate"]]) * 100
        ax.errorbar(x, 100 * d["rate"], yerr=err, fmt="o", color=COLORS[n % len(COLORS)], label=ch, capsize=3)
    ax.set_xticks(np.arange(len(segments)), segments, fontsize=8)
    ax.legend(fontsize=7, frameon=False, ncols=min(len(channels), 3))


def _promises(key: str) -> Callable[[Book, Store], Figure]:
    def draw(book: Book, store: Store) -> Figure:
        df = ins.promise_rates(book, store).get(key)
        fig, (ax,) = _fig()
        if df is None or df.empty:
            _empty(ax, "no promise has come due yet")
            return fig
        names = df[key].astype(str)
        ax.barh(names, 100, height=0.6, color="#e6eaef")  # the whole scale, so a low rate still shows its row
        bars = ax.barh(names, 100 * df["mean"], height=0.6, color=COLORS[0] if key == "specialist" else COLORS[2])
        ax.set_ylim(max(len(df), 4) - 0.2, -0.8)  # first row on top, rows keep their height
        ax.bar_label(bars, labels=[f"{m:.0%} of {n}" for m, n in zip(df["mean"], df["size"], strict=True)],
                     fontsize=7, padding=2)  # fmt: skip
        ax.set(xlabel="% of instalments kept", xlim=(0, 115))
        return fig

    return draw


def _calibration(book: Book, store: Store) -> Figure:
    df = ins.calibration(book, store)
    fig, (ax,) = _fig()
    if df.empty:
        _empty(ax, "no published day falls inside the book yet")
        return fig
    x = np.arange(len(df))
    ax.bar(x - 0.2, df["expected"], 0.4, label="expected payers (sum of P(pay))", color=COLORS[0])
    ax.bar(x + 0.2, df["realized"], 0.4, label="paid within 30 days", color=COLORS[1])
    labels = [d + ("" if c else "\n(so far)") for d, c in zip(df["day"], df["complete"], strict=True)]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(ylabel="accounts", xlim=(-0.8, max(len(df), 4) - 0.2))
    ax.legend(fontsize=7, frameon=False)
    return fig


DRAW: dict[str, Callable[..., Figure]] = {
    "recovery-aging": _recovery("aging bucket"),
    "recovery-payer": _recovery("payer class"),
    "timing": _timing,
    "channel": _channel,
    "channel-model": _channel_model,
    "promises-specialist": _promises("specialist"),
    "promises-segment": _promises("segment"),
    "calibration": _calibration,
}


def chart_svg(name: str, book: Book | None, store: Store, scorer: Any = None) -> str:
    """The named chart as SVG text (a frame saying so when no book is configured); `scorer`: the served model's,
    for the model's channel effect."""
    if book is None:
        fig, (ax,) = _fig()
        _empty(ax, "no book configured (PAYRANK_WORKSPACE_BOOK)")
        return _svg(fig)
    fig = DRAW[name](book, store, scorer) if name == "channel-model" else DRAW[name](book, store)
    fig.suptitle(CHARTS[name][0], fontsize=11)
    return _svg(fig)
