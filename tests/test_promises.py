"""Promises as a feature family (open promise, kept and broken instalments, point in time) and promise-kept measured;
the optional promises and decisions tables of the contract, checked like every other table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import build_features
from features.generate import write_book
from features.history_promises import PROMISE_GRACE_DAYS, promise_kept_rate, promise_outcomes
from features.load import load_book
from features.schema import TABLES
from features.validate import BookError, validate_tables

PROMISE_COLUMNS = ["promise_open", "promise_open_amount", "days_to_promise_due", "promises_kept", "promises_broken"]


def raw_book() -> dict[str, pd.DataFrame]:
    """Two guarantors; a1 gets a promise kept early, a2 a three-instalment plan kept once then broken twice."""
    flags = {
        c: ["true", "true"] for c in ("has_mobile", "has_email", "sms_consent", "email_consent", "portal_enrolled")
    }
    return {
        "guarantors": pd.DataFrame(
            {
                "guarantor_id": ["g1", "g2"],
                "birth_year": ["1970", "1980"],
                "state": ["IL", "TX"],
                "zip3": ["606", ""],
                "language": ["en", "es"],
                **flags,
            }
        ),  # fmt: skip
        "accounts": pd.DataFrame(
            {
                "account_id": ["a1", "a2", "a3"],
                "guarantor_id": ["g1", "g1", "g2"],
                "service_date": ["2026-01-05"] * 3,
                "service_line": ["clinic"] * 3,
                "payer_class": ["self_pay"] * 3,
                "facility_id": [""] * 3,
            }
        ),
        "transactions": pd.DataFrame(
            {
                "transaction_id": ["t1", "t2", "t3", "t4", "t5"],
                "account_id": ["a1", "a2", "a3", "a1", "a2"],
                "posted_date": ["2026-01-05", "2026-01-05", "2026-01-05", "2026-03-08", "2026-03-06"],
                "kind": ["charge", "charge", "charge", "patient_payment", "patient_payment"],
                "amount": ["500", "300", "200", "-100", "-50"],
            }
        ),
        "contacts": pd.DataFrame(columns=TABLES["contacts"].names),
        "promises": pd.DataFrame(
            {
                "promise_id": ["p1", "p2", "p3"],
                "account_id": ["a1", "a2", "a3"],
                "made_at": ["2026-03-01T15:00:00", "2026-03-01 16:00:00", "2026-03-20T15:00:00Z"],
                "kind": ["promise_to_pay", "payment_plan", "promise_to_pay"],
                "amount": ["100", "50", "25"],
                "first_due_date": ["2026-03-10", "2026-03-05", "2026-03-25"],
                "instalments": ["1", "3", "1"],
            }
        ),
    }


@pytest.fixture(scope="module")
def book():
    return validate_tables(raw_book())


def promise_features(book, day: str) -> pd.DataFrame:
    return build_features(book, day).set_index("account_id")[PROMISE_COLUMNS]


@pytest.mark.parametrize(
    ("day", "a1", "a2"),
    [
        ("2026-02-28", (0, 0, None, 0, 0), (0, 0, None, 0, 0)),  # nothing promised yet
        ("2026-03-05", (1, 100, 5, 0, 0), (1, 150, 0, 0, 0)),  # both open; a2's first instalment due today
        ("2026-03-08", (0, 0, None, 1, 0), (1, 100, 27, 1, 0)),  # a1 paid in full early; a2's first paid in grace
        ("2026-04-07", (0, 0, None, 1, 0), (1, 50, 27, 1, 1)),  # a2's second broken once its grace has passed
        ("2026-05-07", (0, 0, None, 1, 0), (0, 0, None, 1, 2)),
    ],
)
def test_promise_features_at_each_day(book, day, a1, a2):
    f = promise_features(book, day)
    for account, want in (("a1", a1), ("a2", a2)):
        got = f.loc[account].tolist()
        assert [None if pd.isna(v) else v for v in got] == [v if v is None else float(v) for v in want], account
    if day < "2026-03-20":
        assert f.loc["a3"].fillna(-1).tolist() == [0, 0, -1, 0, 0]  # made after the as-of day: not seen yet
    assert PROMISE_GRACE_DAYS == 3


def test_promise_kept_is_measured(book):
    out = promise_outcomes(book, "2026-05-07")
    assert out[["promise_id", "instalment", "status"]].values.tolist() == [
        ["p1", 1, "kept"],
        ["p2", 1, "kept"],
        ["p2", 2, "broken"],
        ["p2", 3, "broken"],
        ["p3", 1, "broken"],
    ]
    rate = promise_kept_rate(out)
    assert rate == {"kept": 2, "broken": 3, "open": 0, "kept_dollars": 150.0, "broken_dollars": 125.0,
                    "kept_rate": 0.4}  # fmt: skip
    assert promise_kept_rate(promise_outcomes(book, "2026-02-01"))["kept_rate"] != promise_kept_rate(out)["kept_rate"]


def test_promise_features_are_partition_safe(book):
    whole = build_features(book, "2026-04-07").set_index("account_id")
    alone = build_features(book.subset_guarantors(["g1"]), "2026-04-07").set_index("account_id")
    pd.testing.assert_frame_equal(alone[PROMISE_COLUMNS], whole.loc[alone.index, PROMISE_COLUMNS])


def test_the_tables_round_trip_through_files(book, tmp_path: Path):
    for fmt in ("csv", "parquet"):
        again = load_book(write_book(book, tmp_path / fmt, fmt))
        pd.testing.assert_frame_equal(again.promises, book.promises, check_dtype=False)
    assert (tmp_path / "csv" / "decisions.csv").exists()


@pytest.mark.parametrize(
    ("table", "column", "value", "where"),
    [
        ("promises", "amount", "0", "promises.amount: not > 0"),
        ("promises", "instalments", "2", "promises.instalments: a promise_to_pay has exactly 1"),
        ("promises", "first_due_date", "2026-02-01", "promises.first_due_date: before the day it was made"),
        ("promises", "kind", "maybe", "promises.kind: 1 unknown value"),
        ("promises", "account_id", "nope", "promises.account_id: 1 row(s) point to no accounts row"),
    ],
)
def test_broken_promises_are_named(table, column, value, where):
    raw = raw_book()
    raw[table].loc[0, column] = value
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    assert any(str(p).startswith(where) for p in info.value.problems), [str(p) for p in info.value.problems]


def test_decisions_are_checked():
    raw = raw_book()
    raw["decisions"] = pd.DataFrame(
        {
            "decision_id": ["d1", "d2", "d3"],
            "account_id": ["a1", "a1", "a2"],
            "decided_for": ["2026-03-02", "2026-03-02", "2026-03-02"],
            "action": ["none", "sms", "call"],
            "propensity": ["0.95", "0.01", "0"],
            "explored": ["false", "true", "false"],
            "policy_version": ["payrank/1", "", "payrank/1"],
        }
    )
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith("decisions.propensity: outside (0, 1]") for p in problems), problems
    assert any(p.startswith("decisions.decided_for: two decisions for one account and day") for p in problems)
