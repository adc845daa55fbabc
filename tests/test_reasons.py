"""Reason codes: the strongest contributions, phrased from the feature's own value, never clinical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.reasons import reason_codes


def one_row(contrib: dict[str, float], values: dict[str, float]) -> str:
    c = pd.DataFrame([contrib])
    f = pd.DataFrame([values])
    return reason_codes(c, f).iloc[0]


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("days_since_last_payment", 95.0, "no payment in 95 days"),
        ("days_since_last_payment", 1.0, "no payment in 1 day"),
        ("days_since_last_payment", np.nan, "never paid on this account"),
        ("other_payments_365d", 2.0, "paid on other accounts 2 times this year"),
        ("balance_grew_since_adjudication", 1.0, "balance grew after insurance"),
        ("balance", 1234.4, "balance of $1,234"),
        ("share_paid", 0.4, "has paid 40% of what was owed"),
        ("n_call_30d", 3.0, "3 calls in the last 30 days"),
    ],
)
def test_phrase_from_value(feature: str, value: float, text: str):
    assert one_row({feature: 0.8}, {feature: value}) == text


def test_strongest_three_in_order_and_clinical_features_never_speak():
    contrib = {
        "service_line": 5.0,
        "balance": -0.2,
        "n_payments": 0.9,
        "days_since_service": -1.5,
        "state": 3.0,
        "guarantor_ever_paid": 0.1,
    }
    values = {
        "service_line": "emergency",
        "balance": 500.0,
        "n_payments": 2.0,
        "days_since_service": 40.0,
        "state": "MA",
        "guarantor_ever_paid": 1.0,
    }
    assert one_row(contrib, values) == ("billed for a visit 40 days ago; paid 2 times on this account; balance of $500")


def test_zero_contributions_give_no_reason():
    assert one_row({"balance": 0.0}, {"balance": 10.0}) == ""


def test_rows_are_independent():
    c = pd.DataFrame({"balance": [1.0, 0.0], "n_payments": [0.0, 1.0]})
    f = pd.DataFrame({"balance": [100.0, 200.0], "n_payments": [0.0, 1.0]})
    assert reason_codes(c, f).tolist() == ["balance of $100", "paid 1 time on this account"]
