"""Ledger features of every account at day T: balance make-up, adjudication and patient-payment history."""

from __future__ import annotations

import numpy as np

from features.history_prepared import PreparedBook, group_count, group_max, group_min
from features.schema import TRANSACTION_KINDS

CHARGE, INSURANCE, PAYMENT, ADJUSTMENT, REFUND = (
    TRANSACTION_KINDS.index(k) for k in ("charge", "insurance_payment", "patient_payment", "adjustment", "refund")
)
GUARANTOR_PAYMENT_WINDOW_DAYS = 365


def cents(x: np.ndarray) -> np.ndarray:
    """Dollar sums rounded to the cent, so float noise never decides a threshold or an equality."""
    return np.round(x, 2)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or NaN."""
    out = np.full(len(num), np.nan)
    ok = np.isfinite(den) & (den != 0)
    np.divide(num, den, out=out, where=ok)
    return out


def ledger_features(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """Balance, its make-up and adjudication, from transactions posted on or before day t (all accounts).

    Also returns `adjudicated` (0/1: an insurance payment or adjustment has posted) for the open-set rule.
    """
    n, k = prep.n_accounts, len(TRANSACTION_KINDS)
    posted = prep.tx_day <= t
    acc, day, kind, amount = (a[posted] for a in (prep.tx_account, prep.tx_day, prep.tx_kind, prep.tx_amount))
    by_kind = np.bincount(acc * k + kind, weights=amount, minlength=n * k).reshape(n, k)
    balance = cents(np.bincount(acc, weights=amount, minlength=n))
    patient_paid = cents(-by_kind[:, PAYMENT]) + 0.0  # + 0.0 turns -0.0 into 0.0
    responsibility = cents(balance + patient_paid)
    recent = day > t - 30

    is_adj = (kind == INSURANCE) | (kind == ADJUSTMENT)
    first_adj = group_min(acc[is_adj], day[is_adj], n)
    at_adj = day <= np.nan_to_num(first_adj, nan=-np.inf)[acc]
    balance_at_adj = cents(np.bincount(acc[at_adj], weights=amount[at_adj], minlength=n))
    adjudicated = ~np.isnan(first_adj)
    change_since_adj = np.where(adjudicated, cents(balance - balance_at_adj), np.nan)
    return {
        "balance": balance,
        "total_charges": cents(by_kind[:, CHARGE]),
        "refunds": cents(by_kind[:, REFUND]),
        "insurance_paid": cents(-by_kind[:, INSURANCE]) + 0.0,
        "adjustments": cents(by_kind[:, ADJUSTMENT]),
        "patient_paid": patient_paid,
        "patient_responsibility": responsibility,
        "share_paid": ratio(patient_paid, np.where(responsibility > 0, responsibility, np.nan)),
        "balance_change_30d": cents(np.bincount(acc[recent], weights=amount[recent], minlength=n)),
        "balance_change_since_adjudication": change_since_adj,
        "balance_grew_since_adjudication": np.where(adjudicated, (change_since_adj > 0).astype(float), np.nan),
        "days_since_adjudication": t - first_adj,
        "adjudicated": adjudicated.astype(float),
    }


def payment_features(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """Patient-payment history of every account at day t: counts, recency, amounts and regularity.

    Regularity is measured on distinct payment days: the mean gap (= (last - first) / (days - 1)) and its
    coefficient of variation; a payment plan shows a small CV and a days-since-last / mean-gap ratio near 1.
    Also returns `payments_365d` and `paid_amount_365d` for the guarantor roll-up.
    """
    n = prep.n_accounts
    seen = prep.pay_day <= t  # the arrays are sorted by (account, day); masking keeps that order
    acc, day, amount = prep.pay_account[seen], prep.pay_day[seen], prep.pay_amount[seen]
    count = group_count(acc, n)
    last_day = group_max(acc, day, n)
    on_last_day = day == np.nan_to_num(last_day, nan=-np.inf)[acc]
    year = day > t - GUARANTOR_PAYMENT_WINDOW_DAYS

    new_day = np.ones(len(acc), dtype=bool)
    new_day[1:] = (acc[1:] != acc[:-1]) | (day[1:] != day[:-1])
    d_acc, d_day = acc[new_day], day[new_day]
    follows = d_acc[1:] == d_acc[:-1]  # a gap between two payment days of the same account
    gap_acc, gap = d_acc[1:][follows], np.diff(d_day)[follows].astype(np.float64)
    n_gaps = group_count(gap_acc, n)
    mean_gap = ratio(np.bincount(gap_acc, weights=gap, minlength=n), n_gaps)
    dev = gap - np.nan_to_num(mean_gap)[gap_acc]
    std_gap = np.sqrt(ratio(np.bincount(gap_acc, weights=dev * dev, minlength=n), n_gaps))
    days_since_last = t - last_day
    return {
        "n_payments": count,
        "n_payments_90d": group_count(acc, n, day > t - 90),
        "days_since_last_payment": days_since_last,
        "mean_payment_amount": ratio(np.bincount(acc, weights=amount, minlength=n), count),
        "last_payment_amount": np.where(
            count > 0, cents(np.bincount(acc[on_last_day], weights=amount[on_last_day], minlength=n)), np.nan
        ),
        "mean_days_between_payments": mean_gap,
        "payment_interval_cv": np.where(n_gaps >= 2, ratio(std_gap, mean_gap), np.nan),
        "days_since_last_payment_over_interval": ratio(days_since_last, mean_gap),
        "payments_365d": group_count(acc, n, year),
        "paid_amount_365d": cents(np.bincount(acc[year], weights=amount[year], minlength=n)),
    }
