"""Dollars a guarantor actually paid on an account in a window after an as-of day (for the share model)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.schema import Book


def paid_amounts(book: Book, account_ids: pd.Series, as_of: pd.Series, horizon_days: int) -> np.ndarray:
    """Per (account, as-of day) row: patient payments posted in (T, T+h], as positive dollars."""
    tx = book.transactions
    pay = tx.loc[tx["kind"] == "patient_payment", ["account_id", "posted_date", "amount"]]
    rows = pd.DataFrame(
        {
            "account_id": account_ids.to_numpy(),
            "as_of": pd.to_datetime(as_of).to_numpy(),
            "_row": np.arange(len(as_of)),
        }
    )
    joined = rows.merge(pay, on="account_id", how="inner")
    days = (joined["posted_date"] - joined["as_of"]).dt.days
    inside = (days > 0) & (days <= horizon_days)
    sums = joined.loc[inside].groupby("_row")["amount"].sum()
    out = np.zeros(len(rows))
    out[sums.index.to_numpy()] = -sums.to_numpy()
    return out
