"""Collection insights from the book and the store, as numbers for charts: only aggregates, never an account,
a guarantor or a name (specialists appear by their login id only in the promise chart).

* recovery curves: the share of the balance open 90 days before the book's end paid by patients since, by
  aging bucket and by payer class;
* payment timing: days from a contact (a letter is the statement) to the account's next patient payment;
* channel effect: the 14-day payment rate after each channel by payer class, weighted by the logged
  propensities (Hajek's estimator, 95% normal intervals) — the logged exploration's answer; and the served
  channel model's mean predicted uplift per channel and payer class (with the 95% interval of that mean);
* promise-kept rate by specialist (the store's promises) and by payer class (`promise_outcomes`);
* expected vs realized: each published day's listed p_pay summed against the listed accounts that paid within 30
  days after its as-of day.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features.schema import Book
from serving.store.db import Store
from serving.store.models import Outcome, Result, WorkDay, WorkItem

LOOKBACK = 90
AGING = [(0, 60, "0–60 days"), (61, 120, "61–120 days"), (121, 240, "121–240 days"), (241, 10**6, "over 240 days")]
HORIZON = 30


def book_end(book: Book) -> pd.Timestamp:
    return pd.Timestamp(book.transactions["posted_date"].max()).normalize()


def _payments(book: Book) -> pd.DataFrame:
    tx = book.transactions
    pay = tx[tx["kind"] == "patient_payment"]
    return pd.DataFrame({"account_id": pay["account_id"].astype(str), "day": pay["posted_date"],
                         "paid": -pay["amount"].astype(float)})  # fmt: skip


def recovery(book: Book) -> dict[str, dict[str, np.ndarray]]:
    """{'aging bucket' | 'payer class': {group: cumulative share recovered on days 0..LOOKBACK}}."""
    t0 = book_end(book) - pd.Timedelta(days=LOOKBACK)
    tx = book.transactions
    before = tx[tx["posted_date"] <= t0].groupby(tx["account_id"].astype(str))["amount"].sum()
    open_ = before[before > 1.0]
    acc = book.accounts.assign(account_id=book.accounts["account_id"].astype(str)).set_index("account_id")
    acc = acc.loc[acc.index.intersection(open_.index)]
    age = (t0 - acc["service_date"]).dt.days
    groups = {
        "aging bucket": pd.Series(
            np.select([age.between(lo, hi) for lo, hi, _ in AGING], [n for _, _, n in AGING], "other"), index=acc.index
        ),
        "payer class": acc["payer_class"].astype(str).str.replace("_", " "),
    }
    pay = _payments(book)
    pay = pay[(pay["day"] > t0) & pay["account_id"].isin(acc.index)]
    pay = pay.assign(d=(pay["day"] - t0).dt.days.clip(0, LOOKBACK))
    out: dict[str, dict[str, np.ndarray]] = {}
    for title, group in groups.items():
        curves = {}
        for name in [n for _, _, n in AGING] if title == "aging bucket" else sorted(group.unique()):
            members = group.index[group == name]
            total = float(open_.loc[members].sum())
            if len(members) < 5 or total <= 0:
                continue
            p = pay[pay["account_id"].isin(members)]
            daily = np.bincount(p["d"].to_numpy(int), weights=p["paid"].to_numpy(), minlength=LOOKBACK + 1)
            curves[f"{name} (n={len(members)})"] = np.cumsum(daily) / total
        out[title] = curves
    return out


def _next_payment_days(book: Book, contacts: pd.DataFrame) -> np.ndarray:
    """Days from each contact to the account's next patient payment (on or after its day); NaN when none."""
    pay = _payments(book).sort_values("day")
    c = contacts.assign(account_id=contacts["account_id"].astype(str), day=contacts["contacted_at"].dt.normalize())
    c = c.reset_index(drop=True).reset_index().sort_values("day")
    merged = pd.merge_asof(c, pay[["account_id", "day"]].rename(columns={"day": "paid_day"}), left_on="day",
                           right_on="paid_day", by="account_id", direction="forward")  # fmt: skip
    merged = merged.sort_values("index")
    return (merged["paid_day"] - merged["day"]).dt.days.to_numpy(float)


def timing(book: Book) -> dict[str, np.ndarray]:
    """{channel: share of contacts followed by a patient payment within d days, d = 0..HORIZON}."""
    end = book_end(book)
    c = book.contacts[book.contacts["contacted_at"] <= end - pd.Timedelta(days=HORIZON)]
    days = _next_payment_days(book, c)
    out = {}
    for ch in ["letter", "call", "sms", "email", "portal"]:
        d = days[(c["channel"] == ch).to_numpy()]
        if len(d) >= 20:
            name = "letter (statement)" if ch == "letter" else ch
            out[f"{name} (n={len(d):,})"] = np.array([(d <= k).mean() for k in range(HORIZON + 1)])
    return out


def channel_effect(book: Book, horizon: int = 14) -> pd.DataFrame:
    """Per payer class and channel: IPW (Hajek) 14-day payment rate after the contact, its 95% interval, n."""
    end = book_end(book)
    c = book.contacts[book.contacts["propensity"].notna() & (book.contacts["contacted_at"] <= end - timedelta(14))]
    if c.empty:
        return pd.DataFrame(columns=["segment", "channel", "rate", "lo", "hi", "n"])
    y = (np.nan_to_num(_next_payment_days(book, c), nan=1e9) <= horizon).astype(float)
    seg = c["account_id"].astype(str).map(
        book.accounts.assign(account_id=book.accounts["account_id"].astype(str)).set_index("account_id")["payer_class"]
        .astype(str).str.replace("_", " ")
    )  # fmt: skip
    df = pd.DataFrame({"segment": seg.to_numpy(), "channel": c["channel"].astype(str).to_numpy(), "y": y,
                       "w": 1.0 / c["propensity"].to_numpy(float)})  # fmt: skip
    rows = []
    for (s, ch), g in df.groupby(["segment", "channel"]):
        if len(g) < 20:
            continue
        w, yy = g["w"].to_numpy(), g["y"].to_numpy()
        mu = float((w * yy).sum() / w.sum())
        se = float(np.sqrt(((w * (yy - mu)) ** 2).sum()) / w.sum())
        rows.append({"segment": s, "channel": ch, "rate": mu, "lo": max(mu - 1.96 * se, 0.0),
                     "hi": min(mu + 1.96 * se, 1.0), "n": len(g)})  # fmt: skip
    return pd.DataFrame(rows)


def model_channel_effect(book: Book, scorer: Any) -> pd.DataFrame:
    """Per payer class and channel: the channel model's mean predicted uplift in 14-day payment probability
    (p14_channel − p14_none) over the accounts open at the book's end, with the 95% interval of that mean."""
    from features.build import build_features
    from features.schema import CHANNELS

    features = build_features(book, book_end(book))
    if features.empty:
        return pd.DataFrame(columns=["segment", "channel", "rate", "lo", "hi", "n"])
    pred = scorer.predict(features, num_threads=1)
    acc = book.accounts.assign(account_id=book.accounts["account_id"].astype(str)).set_index("account_id")
    seg = features["account_id"].astype(str).map(acc["payer_class"].astype(str).str.replace("_", " ")).to_numpy()
    rows = []
    for ch in CHANNELS:
        uplift = (pred[f"p14_{ch}"] - pred["p14_none"]).to_numpy()
        for s in sorted(set(seg)):
            u = uplift[seg == s]
            half = 1.96 * float(u.std(ddof=1)) / np.sqrt(len(u)) if len(u) > 1 else 0.0
            rows.append({"segment": s, "channel": ch, "rate": float(u.mean()), "lo": float(u.mean()) - half,
                         "hi": float(u.mean()) + half, "n": len(u)})  # fmt: skip
    return pd.DataFrame(rows)


def promise_rates(book: Book, store: Store) -> dict[str, pd.DataFrame]:
    """Kept rate of decided promise instalments, by specialist (the store's promises) and by payer class."""
    from features.history_promises import promise_outcomes
    from features.overlay import overlay_book
    from serving.store.export import store_tables

    with contextlib.suppress(ValueError):  # a store of another book: the book's own promises only
        book = overlay_book(book, store_tables(store))
    if book.promises is None or book.promises.empty:
        return {}
    out = promise_outcomes(book, book_end(book))
    out = out[out["status"].isin(["kept", "broken"])]
    with store.session() as s:
        who = dict(s.execute(sa.select(Result.promise_id, Outcome.specialist_id).join(Outcome)).all())
    acc = book.accounts.assign(account_id=book.accounts["account_id"].astype(str)).set_index("account_id")
    out = out.assign(
        specialist=out["promise_id"].map(who).fillna("(before the store)"),
        segment=out["account_id"].astype(str).map(acc["payer_class"].astype(str).str.replace("_", " ")),
        kept=(out["status"] == "kept").astype(float),
    )
    return {k: out.groupby(k)["kept"].agg(["mean", "size"]).reset_index() for k in ("specialist", "segment")}


def calibration(book: Book | None, store: Store) -> pd.DataFrame:
    """Per published day: expected payers (sum of listed p_pay) and realized payers within 30 days (complete or
    not), from the book's patient payments."""
    with store.session() as s:
        rows = s.execute(
            sa.select(WorkDay.day, WorkDay.as_of, WorkItem.account_id, WorkItem.p_pay)
            .join(WorkItem, WorkItem.day_id == WorkDay.id)
            .where(WorkItem.kind == "call")
        ).all()
    if not rows or book is None:
        return pd.DataFrame(columns=["day", "expected", "realized", "complete", "n"])
    df = pd.DataFrame(rows, columns=["day", "as_of", "account_id", "p_pay"])
    pay, end = _payments(book), book_end(book)
    out: list[dict[str, Any]] = []
    for (day, as_of), g in df.groupby(["day", "as_of"]):
        lo, hi = pd.Timestamp(as_of), pd.Timestamp(as_of) + pd.Timedelta(days=HORIZON)
        if lo >= end:
            continue
        hit = pay[(pay["day"] > lo) & (pay["day"] <= hi) & pay["account_id"].isin(set(g["account_id"]))]
        realized = float(hit["account_id"].nunique())
        expected = float(g["p_pay"].fillna(0).sum())
        out.append({"day": str(day), "expected": expected, "realized": realized, "complete": bool(hi <= end)})
    return pd.DataFrame(out)
