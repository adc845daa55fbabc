"""Promise features of every account at day T, and whether each promise was kept.

A promise to pay is one instalment; a payment plan is `instalments` of `amount` due every PLAN_INTERVAL_DAYS
days from `first_due_date`. Instalment k (0-based) is **kept** once the patient payments on the account from
the day the promise was made through its due day plus PROMISE_GRACE_DAYS add up to at least
KEPT_SHARE × (k + 1) × amount (cumulative, so a late instalment paid with the next one still counts); it is
**broken** when that window has closed (due day + grace <= T) without it; otherwise it is **open**.
Only promises made on or before T and payments posted on or before T are read (point in time).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.history_prepared import PreparedBook, as_of_timestamp, day_number, group_count, group_min, prepare_book
from features.schema import PLAN_INTERVAL_DAYS, Book

PROMISE_GRACE_DAYS = 3
KEPT_SHARE = 0.99  # cents of rounding or a dollar short still keep a promise
OPEN, KEPT, BROKEN = 0, 1, 2
STATUS_NAMES = np.array(["open", "kept", "broken"], dtype=object)


def instalments(prep: PreparedBook) -> dict[str, np.ndarray]:
    """One row per instalment of every promise: promise row, account, made day, k, due day, amount, required."""
    count = prep.pr_count
    row = np.repeat(np.arange(len(count)), count)
    k = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    amount = prep.pr_amount[row]
    return {
        "promise": row,
        "account": prep.pr_account[row],
        "made": prep.pr_made[row],
        "k": k,
        "due": prep.pr_first_due[row] + PLAN_INTERVAL_DAYS * k,
        "amount": amount,
        "required": KEPT_SHARE * (k + 1) * amount,
    }


def paid_between(prep: PreparedBook, account: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Patient dollars paid on each `account` on days lo..hi (inclusive), by prefix sums over the sorted payments."""
    if not len(account):
        return np.zeros(0)
    days = np.concatenate([prep.pay_day, lo, hi])
    low, span = int(days.min()) - 1, int(days.max() - days.min()) + 3
    key = prep.pay_account.astype(np.int64) * span + (prep.pay_day - low)  # sorted: payments are by (account, day)
    cum = np.concatenate([[0.0], np.cumsum(prep.pay_amount)])

    def through(d: np.ndarray) -> np.ndarray:
        return cum[np.searchsorted(key, account.astype(np.int64) * span + (d - low), side="right")]

    return through(hi) - through(lo - 1)


def instalment_status(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """`instalments(prep)` of the promises made on or before day t, with `status` (OPEN, KEPT, BROKEN) at t."""
    rows = instalments(prep)
    made = rows["made"] <= t
    rows = {name: values[made] for name, values in rows.items()}
    closes = rows["due"] + PROMISE_GRACE_DAYS
    paid = paid_between(prep, rows["account"], rows["made"], np.minimum(closes, t))
    kept = paid >= rows["required"] - 1e-9
    rows["status"] = np.where(kept, KEPT, np.where(closes <= t, BROKEN, OPEN))
    return rows


def promise_features(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """Open promise, dollars and days to the next due day, and the account's kept/broken instalments at day t."""
    n = prep.n_accounts
    s = instalment_status(prep, t)
    acc, status = s["account"], s["status"]
    is_open = status == OPEN
    return {
        "promise_open": (group_count(acc, n, is_open) > 0).astype(np.float64),
        "promise_open_amount": np.round(np.bincount(acc[is_open], weights=s["amount"][is_open], minlength=n), 2),
        "days_to_promise_due": group_min(acc[is_open], (s["due"] - t)[is_open], n),
        "promises_kept": group_count(acc, n, status == KEPT),
        "promises_broken": group_count(acc, n, status == BROKEN),
    }


def promise_outcomes(book: Book, as_of: str | date | pd.Timestamp) -> pd.DataFrame:
    """Every instalment of the promises made on or before `as_of`, with its status then (open, kept, broken).

    Columns promise_id, account_id, kind, instalment (1-based), due_date, amount, status; sorted by promise and
    instalment. `promise_kept_rate` summarises it.
    """
    prep = prepare_book(book)
    s = instalment_status(prep, day_number(as_of_timestamp(as_of)))
    promises = prep.pr_frame
    return (
        pd.DataFrame(
            {
                "promise_id": promises["promise_id"].to_numpy(dtype=object)[s["promise"]],
                "account_id": prep.account_ids.to_numpy(dtype=object)[s["account"]],
                "kind": promises["kind"].astype(object).to_numpy()[s["promise"]],
                "instalment": s["k"] + 1,
                "due_date": s["due"].astype("datetime64[D]").astype("datetime64[ns]"),
                "amount": s["amount"],
                "status": STATUS_NAMES[s["status"]],
            }
        )
        .sort_values(["promise_id", "instalment"], kind="stable")
        .reset_index(drop=True)
    )


def promise_kept_rate(outcomes: pd.DataFrame) -> dict[str, float]:
    """Instalments kept, broken and open, dollars kept and broken, and the kept rate among those decided."""
    status = outcomes["status"]
    kept, broken = int((status == "kept").sum()), int((status == "broken").sum())
    return {
        "kept": kept,
        "broken": broken,
        "open": int((status == "open").sum()),
        "kept_dollars": float(outcomes.loc[status == "kept", "amount"].sum()),
        "broken_dollars": float(outcomes.loc[status == "broken", "amount"].sum()),
        "kept_rate": kept / (kept + broken) if kept + broken else float("nan"),
    }
