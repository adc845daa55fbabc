"""Point-in-time features: one row per account open at the end of an as-of day T, from rows dated <= T only.

An account is open at T when its service_date <= T, its balance (amounts posted <= T) is at least
OPEN_BALANCE_MIN, and it is self-pay or insurance has adjudicated it (an insurance payment or adjustment
posted <= T). Contacts count up to the end of day T (UTC); holds are active when started <= T and not ended
by T. The columns are `account_id`, `guarantor_id`, `as_of` and then `spec.FEATURE_COLUMNS`.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd

from features.history_guarantor import guarantor_features
from features.history_holds import hold_features
from features.history_ledger import ledger_features, payment_features
from features.history_outreach import outreach_features
from features.history_prepared import PreparedBook, as_of_timestamp, day_number, prepare_book
from features.history_promises import promise_features
from features.schema import PAYER_CLASSES, SERVICE_LINES, Book
from features.spec import FEATURE_COLUMNS

OPEN_BALANCE_MIN = 5.00
ID_COLUMNS = ["account_id", "guarantor_id", "as_of"]
"""The columns before FEATURE_COLUMNS in a feature frame."""
SELF_PAY = PAYER_CLASSES.index("self_pay")


def open_mask(prep: PreparedBook, t: int, ledger: dict[str, np.ndarray]) -> np.ndarray:
    """Which accounts (in prep's order) are open at day t, given their ledger features at t."""
    adjudicated = (ledger["adjudicated"] > 0) | (prep.payer_class == SELF_PAY)
    return (prep.service_day <= t) & (ledger["balance"] >= OPEN_BALANCE_MIN) & adjudicated


def features_at(prep: PreparedBook, as_of: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
    """The feature frame at `as_of` (see build_features) and the open accounts' positions in `prep`."""
    t = day_number(as_of)
    exists = prep.service_day <= t
    ledger = ledger_features(prep, t) | payment_features(prep, t)
    is_open = open_mask(prep, t, ledger)
    rows = np.flatnonzero(is_open)
    numeric = (
        ledger
        | outreach_features(prep, t)
        | guarantor_features(prep, as_of.year, exists, is_open, ledger)
        | hold_features(prep, t)
        | promise_features(prep, t)
        | {"days_since_service": (t - prep.service_day).astype(np.float64)}
    )
    categorical = {  # the keys are CATEGORY_LEVELS' keys
        "state": prep.guarantor["state"].array,
        "language": prep.guarantor["language"].array,
        "service_line": pd.Categorical.from_codes(prep.service_line, categories=list(SERVICE_LINES)),
        "payer_class": pd.Categorical.from_codes(prep.payer_class, categories=list(PAYER_CLASSES)),
    }
    columns: dict[str, object] = {
        "account_id": prep.account_ids.take(rows).reset_index(drop=True),
        "guarantor_id": prep.guarantor_ids.take(rows).reset_index(drop=True),
        "as_of": np.full(len(rows), as_of.to_datetime64().astype("datetime64[ns]")),
    }
    for col in FEATURE_COLUMNS:
        columns[col] = categorical[col].take(rows) if col in categorical else numeric[col][rows].astype(np.float64)
    return pd.DataFrame(columns), rows


def build_features(book: Book, as_of: str | date | pd.Timestamp) -> pd.DataFrame:
    """One row per account open at the end of day `as_of`, sorted by account_id, with a fresh RangeIndex.

    Columns: account_id, guarantor_id, as_of, then FEATURE_COLUMNS (numerics float64 with NaN for
    "undefined", categoricals with the fixed levels of CATEGORY_LEVELS). Only rows dated <= as_of are read.
    """
    frame, _ = features_at(prepare_book(book), as_of_timestamp(as_of))
    return frame


def open_accounts(book: Book, as_of: str | date | pd.Timestamp) -> pd.DataFrame:
    """The accounts open at the end of day `as_of`: account_id, guarantor_id, balance; by account_id."""
    ledger_only = dataclasses.replace(book, contacts=book.contacts.iloc[:0], holds=book.holds.iloc[:0])
    prep = prepare_book(ledger_only)
    t = day_number(as_of_timestamp(as_of))
    ledger = ledger_features(prep, t)
    rows = np.flatnonzero(open_mask(prep, t, ledger))
    return pd.DataFrame(
        {
            "account_id": prep.account_ids.take(rows).reset_index(drop=True),
            "guarantor_id": prep.guarantor_ids.take(rows).reset_index(drop=True),
            "balance": ledger["balance"][rows],
        }
    )
