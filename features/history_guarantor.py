"""Guarantor features of every account at day T: the guarantor's other accounts and attributes."""

from __future__ import annotations

import numpy as np

from features.history_ledger import cents
from features.history_prepared import GUARANTOR_FLAGS, PreparedBook


def guarantor_features(
    prep: PreparedBook,
    year: int,
    exists: np.ndarray,
    is_open: np.ndarray,
    ledger: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Roll-ups over the guarantor's other accounts that exist at T (service_date <= T).

    `exists` and `is_open` are per-account masks at T; `ledger` holds balance, n_payments, payments_365d and
    paid_amount_365d per account. Sums run over accounts in account_id order, so a guarantor's numbers do
    not depend on which other guarantors are in the book.
    """
    g, n_g = prep.guarantor_code, prep.n_guarantors

    def others(x: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=x, minlength=n_g)[g] - x

    def where_exists(x: np.ndarray) -> np.ndarray:
        return np.where(exists, x, 0.0)

    ever_paid = np.bincount(g, weights=where_exists(ledger["n_payments"] > 0), minlength=n_g)[g] > 0
    out = {
        "other_open_accounts": others(is_open.astype(np.float64)),
        "other_open_balance": cents(others(np.where(is_open, ledger["balance"], 0.0))) + 0.0,
        "other_accounts_ever": others(exists.astype(np.float64)),
        "other_payments_365d": others(where_exists(ledger["payments_365d"])),
        "other_paid_amount_365d": cents(others(where_exists(ledger["paid_amount_365d"]))) + 0.0,
        "guarantor_ever_paid": ever_paid.astype(np.float64),
        "guarantor_age_years": year - prep.guarantor["birth_year"].to_numpy(),
    }
    out |= {col: prep.guarantor[col].to_numpy() for col in GUARANTOR_FLAGS}
    return out
