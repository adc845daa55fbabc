"""Plain-language reason codes from the payment model's per-feature contributions (LightGBM pred_contrib).

Up to three reasons per account: the features that moved its log-odds most, phrased from the feature's own
value. Only ledger, payment, outreach and hold history speak: demographic and clinical-adjacent features
(service line, state, language, age) never appear in a reason, so no clinical detail reaches a specialist.
Everything is vectorised: one pass per candidate feature over all rows, no per-row formatting loop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

MAX_REASONS = 3
SEPARATOR = "; "


def _days(v: pd.Series) -> pd.Series:
    """'1 day' / '12 days'."""
    return v.round().astype("Int64").astype(str) + _plural(v, " day", " days")


def _n(v: pd.Series) -> pd.Series:
    return v.round().astype("Int64").astype(str)


def _dollars(v: pd.Series) -> pd.Series:
    return "$" + v.round().astype("Int64").map("{:,}".format)


def _pct(v: pd.Series) -> pd.Series:
    return (100 * v).round().astype("Int64").astype(str) + "%"


def _plural(v: pd.Series, one: str, many: str) -> pd.Series:
    return pd.Series(np.where(v.round() == 1, one, many), index=v.index)


Phrase = Callable[[pd.Series], pd.Series]


def _when_nan(text_if_nan: str, phrase: Phrase) -> Phrase:
    def f(v: pd.Series) -> pd.Series:
        return phrase(v.fillna(0)).where(v.notna(), text_if_nan)

    return f


PHRASES: dict[str, Phrase] = {
    "balance": lambda v: "balance of " + _dollars(v),
    "patient_responsibility": lambda v: "owed " + _dollars(v) + " after insurance",
    "share_paid": lambda v: "has paid " + _pct(v) + " of what was owed",
    "patient_paid": lambda v: "paid " + _dollars(v) + " so far on this account",
    "balance_change_30d": lambda v: pd.Series(
        np.where(v < 0, "balance fell in the last 30 days", "balance unchanged or up in the last 30 days"), v.index
    ),
    "balance_grew_since_adjudication": lambda v: pd.Series(
        np.where(v > 0.5, "balance grew after insurance", "balance has not grown since insurance"), v.index
    ),
    "balance_change_since_adjudication": lambda v: pd.Series(
        np.where(v > 0, "balance grew after insurance", "balance went down since insurance paid"), v.index
    ),
    "days_since_service": lambda v: "billed for a visit " + _days(v) + " ago",
    "days_since_adjudication": _when_nan("insurance has not paid yet", lambda v: "insurance paid " + _days(v) + " ago"),
    "days_since_first_statement": _when_nan("no statement sent yet", lambda v: "first statement " + _days(v) + " ago"),
    "n_payments": lambda v: "paid " + _n(v) + _plural(v, " time", " times") + " on this account",
    "n_payments_90d": lambda v: _n(v) + _plural(v, " payment", " payments") + " in the last 90 days",
    "days_since_last_payment": _when_nan("never paid on this account", lambda v: "no payment in " + _days(v)),
    "mean_payment_amount": _when_nan("no payments yet", lambda v: "pays about " + _dollars(v) + " at a time"),
    "last_payment_amount": _when_nan("no payments yet", lambda v: "last paid " + _dollars(v)),
    "mean_days_between_payments": _when_nan("no repeat payments", lambda v: "pays about every " + _days(v)),
    "payment_interval_cv": _when_nan(
        "no regular payment pattern yet",
        lambda v: pd.Series(np.where(v < 0.3, "pays on a regular schedule", "pays irregularly"), v.index),
    ),
    "days_since_last_payment_over_interval": _when_nan(
        "no regular payment pattern yet",
        lambda v: pd.Series(np.where(v > 1.5, "a regular payment is overdue", "regular payments on time"), v.index),
    ),
    "n_contacts_30d": lambda v: _n(v) + _plural(v, " contact", " contacts") + " in the last 30 days",
    "n_right_party_calls_90d": lambda v: "reached by phone " + _n(v) + _plural(v, " time", " times") + " in 90 days",
    "days_since_last_right_party": _when_nan(
        "never reached by phone", lambda v: "last spoke by phone " + _days(v) + " ago"
    ),
    "n_failed_deliveries": lambda v: _n(v) + _plural(v, " message", " messages") + " failed or came back",
    "n_wrong_number_calls": lambda v: _n(v) + " wrong-number " + _plural(v, "call", "calls"),
    "n_calls_ever": lambda v: "called " + _n(v) + _plural(v, " time", " times") + " about this account",
    "guarantor_calls_365d": lambda v: "called " + _n(v) + _plural(v, " time", " times") + " this year",
    "guarantor_right_party_rate_365d": _when_nan("not called this year", lambda v: "answers " + _pct(v) + " of calls"),
    "other_open_accounts": lambda v: _n(v) + " other open " + _plural(v, "account", "accounts"),
    "other_open_balance": lambda v: _dollars(v) + " owed on other accounts",
    "other_accounts_ever": lambda v: _n(v) + " other " + _plural(v, "account", "accounts") + " with the hospital",
    "other_payments_365d": lambda v: "paid on other accounts " + _n(v) + _plural(v, " time", " times") + " this year",
    "other_paid_amount_365d": lambda v: "paid " + _dollars(v) + " on other accounts this year",
    "guarantor_ever_paid": lambda v: pd.Series(
        np.where(v > 0.5, "has paid the hospital before", "has never paid the hospital"), v.index
    ),
    "payer_class": lambda v: v.astype(str).str.replace("_", "-") + " account",
    "has_mobile": lambda v: pd.Series(np.where(v > 0.5, "mobile number on file", "no mobile number"), v.index),
    "has_email": lambda v: pd.Series(np.where(v > 0.5, "e-mail on file", "no e-mail on file"), v.index),
    "portal_enrolled": lambda v: pd.Series(np.where(v > 0.5, "uses the patient portal", "not on the portal"), v.index),
    "any_hold_active": lambda v: pd.Series(np.where(v > 0.5, "account on hold", "no hold"), v.index),
}
for _ch in ("call", "sms", "email", "letter", "portal"):
    _word = {"call": "calls", "sms": "texts", "email": "e-mails", "letter": "letters", "portal": "portal messages"}[_ch]
    PHRASES[f"n_{_ch}_30d"] = lambda v, w=_word: _n(v) + f" {w} in the last 30 days"
    PHRASES[f"n_{_ch}_90d"] = lambda v, w=_word: _n(v) + f" {w} in the last 90 days"
    PHRASES[f"n_{_ch}_7d"] = lambda v, w=_word: _n(v) + f" {w} in the last 7 days"
    PHRASES[f"days_since_last_{_ch}"] = _when_nan(
        f"no {_word} yet", lambda v, w=_word: f"last of the {w} " + _days(v) + " ago"
    )
PHRASES |= {
    "promise_open": lambda v: pd.Series(np.where(v > 0.5, "has an open promise to pay", "no open promise"), v.index),
    "promise_open_amount": lambda v: _dollars(v) + " promised and not yet due or paid",
    "days_to_promise_due": _when_nan("no open promise", lambda v: "a promised payment is due in " + _days(v)),
    "promises_kept": lambda v: _n(v) + _plural(v, " promise", " promises") + " kept",
    "promises_broken": lambda v: _n(v) + _plural(v, " promise", " promises") + " broken",
}

NEVER_REASONS = frozenset({"service_line", "state", "language", "guarantor_age_years"})
"""Features that may inform the model but never appear in a reason: clinical-adjacent or demographic."""


def reason_codes(contrib: pd.DataFrame, features: pd.DataFrame, k: int = MAX_REASONS) -> pd.Series:
    """Up to `k` reasons per row, strongest first, joined by '; '."""
    usable = [c for c in contrib.columns if c in PHRASES and c not in NEVER_REASONS]
    if not usable or contrib.empty:
        return pd.Series("", index=contrib.index, dtype=object)
    mag = np.abs(contrib[usable].to_numpy())
    top = np.argsort(-mag, axis=1, kind="stable")[:, :k]
    strong = np.take_along_axis(mag, top, axis=1) > 1e-9
    parts = np.full(top.shape, "", dtype=object)
    for j, name in enumerate(usable):  # one vectorised phrase per feature, over the rows that rank it
        hit = (top == j) & strong
        rows = hit.any(axis=1)
        if not rows.any():
            continue
        # a feature appears at most once in a row's top k, so the hits in row-major order are the rows in order
        parts[hit] = PHRASES[name](features.loc[rows, name].reset_index(drop=True)).to_numpy()
    out = pd.Series(parts[:, 0], dtype=object)
    for i in range(1, parts.shape[1]):
        nxt = pd.Series(parts[:, i], dtype=object)
        out = out.where(nxt == "", out + SEPARATOR + nxt)
    return pd.Series(out.to_numpy(), index=contrib.index, dtype=object)
