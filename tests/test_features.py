"""Hand-computed features, open-set rule, FeatureSpec and labels on a tiny hand-written book.

The as-of day is T = 2024-03-31 (a leap year: 2024-02-01 .. 2024-03-31 is 59 days).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.build import ID_COLUMNS, build_features, open_accounts
from features.labels import build_snapshots, next_day_actions, payment_labels
from features.schema import ACTIONS, TABLES, Book, empty_frame, pandas_dtype
from features.spec import CATEGORY_LEVELS, FEATURE_COLUMNS, FeatureSpec

T = "2024-03-31"


def typed(table: str, rows: list[tuple]) -> pd.DataFrame:
    """A frame of a contract table from row tuples, with the in-memory dtypes of a validated book."""
    cols = TABLES[table].columns
    raw = pd.DataFrame(rows, columns=[c.name for c in cols], dtype=object)
    return pd.DataFrame({c.name: raw[c.name].astype(pandas_dtype(c)) for c in cols})


def dt(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


NA = None
GUARANTORS = [
    # id, birth_year, state, zip3, language, has_mobile, has_email, sms/email consent, portal_enrolled
    ("G1", 1980, "CA", "941", "es", True, False, True, False, False),
    ("G2", NA, "TX", "750", NA, False, True, False, True, True),
    ("G3", 1950, "NY", "100", "fr", True, True, True, True, False),
]
ACCOUNTS = [
    # id, guarantor, service_date, service_line, payer_class, facility
    ("A1", "G1", dt("2024-01-10"), "outpatient", "commercial", "F1"),
    ("A2", "G1", dt("2024-02-01"), "lab", "self_pay", NA),  # open without adjudication: self-pay
    ("A3", "G1", dt("2024-03-01"), "imaging", "medicare", "F1"),  # not open: insurance has not adjudicated
    ("A4", "G2", dt("2024-01-15"), "emergency", "commercial", "F2"),  # not open: balance 4.99
    ("A5", "G2", dt("2024-02-20"), "clinic", "medicaid", "F2"),
    ("A6", "G3", dt("2024-04-05"), "other", "self_pay", NA),  # serviced after T: does not exist yet
    ("A7", "G3", dt("2023-12-01"), "inpatient", "self_pay", NA),  # open: balance exactly 5.00
]
TRANSACTIONS = [
    ("X01", "A1", dt("2024-01-10"), "charge", 1000.00),
    ("X02", "A1", dt("2024-02-01"), "insurance_payment", -600.00),
    ("X03", "A1", dt("2024-02-01"), "adjustment", -100.00),
    ("X04", "A1", dt("2024-02-15"), "patient_payment", -50.00),
    ("X05", "A1", dt("2024-03-15"), "patient_payment", -50.00),
    ("X06", "A1", dt("2024-03-25"), "patient_payment", -25.00),
    ("X07", "A1", dt("2024-03-28"), "refund", 10.00),
    ("X08", "A1", dt("2024-04-10"), "patient_payment", -100.00),  # after T
    ("X09", "A2", dt("2024-02-01"), "charge", 200.00),
    ("X10", "A2", dt("2024-03-01"), "patient_payment", -20.00),
    ("X11", "A2", dt("2024-03-01"), "patient_payment", -30.00),
    ("X12", "A2", dt("2024-04-15"), "patient_payment", -10.00),  # after T; the book's last day
    ("X13", "A3", dt("2024-03-01"), "charge", 500.00),
    ("X14", "A4", dt("2024-01-15"), "charge", 100.00),
    ("X15", "A4", dt("2024-02-10"), "insurance_payment", -80.00),
    ("X16", "A4", dt("2024-02-10"), "adjustment", -15.01),
    ("X17", "A5", dt("2024-02-20"), "charge", 300.00),
    ("X18", "A5", dt("2024-03-10"), "insurance_payment", -250.00),
    ("X19", "A5", dt("2024-03-31"), "adjustment", 40.00),  # posted on T itself: counts
    ("X20", "A5", dt("2024-04-02"), "insurance_payment", -40.00),  # after T
    ("X21", "A6", dt("2024-04-05"), "charge", 700.00),
    ("X22", "A7", dt("2023-12-01"), "charge", 5.00),
]
CONTACTS = [
    ("C01", "A1", dt("2024-03-31 23:59:59"), "call", "right_party", 0.5),  # last second of T: counts
    ("C02", "A1", dt("2024-03-25 10:00"), "call", "voicemail", 0.5),  # 6 days ago: in the 7-day window
    ("C03", "A1", dt("2024-03-24 10:00"), "call", "no_answer", np.nan),  # 7 days ago: not in it
    ("C04", "A1", dt("2024-01-20 15:00"), "call", "right_party", 0.5),  # 71 days ago
    ("C05", "A1", dt("2024-01-15 12:00"), "letter", "sent", 1.0),  # first statement, 76 days ago
    ("C06", "A1", dt("2024-02-15 12:00"), "letter", "returned", 1.0),
    ("C07", "A1", dt("2024-03-30 18:00"), "sms", "failed", 0.3),
    ("C08", "A1", dt("2024-04-01 00:00"), "call", "right_party", 0.25),  # T+1 first: A1's next action
    ("C09", "A1", dt("2024-04-01 08:00"), "sms", "delivered", 0.4),
    ("C10", "A5", dt("2024-03-01 09:00"), "email", "delivered", 0.6),  # 30 days ago: outside 30d
    ("C11", "A5", dt("2024-03-20 17:00"), "call", "wrong_number", 0.6),
    ("C12", "A5", dt("2024-04-01 12:00"), "letter", "sent", np.nan),  # next action letter, no propensity
    ("C21", "A2", dt("2024-04-01 14:00"), "email", "delivered", 0.3),  # same time as C20: C20 wins
    ("C20", "A2", dt("2024-04-01 14:00"), "sms", "delivered", 0.7),
]
HOLDS = [
    ("A5", "dispute", dt("2024-03-15"), NA),  # open-ended: active
    ("A5", "bankruptcy", dt("2024-01-01"), dt("2024-03-31")),  # ends on T: not active
    ("A1", "cease_contact", dt("2024-04-01"), NA),  # starts after T
    ("A2", "financial_assistance", dt("2024-03-01"), dt("2024-04-15")),
]


def tiny_book(holds: bool = True) -> Book:
    return Book(
        guarantors=typed("guarantors", GUARANTORS),
        accounts=typed("accounts", ACCOUNTS),
        transactions=typed("transactions", TRANSACTIONS),
        contacts=typed("contacts", CONTACTS),
        holds=typed("holds", HOLDS) if holds else empty_frame("holds"),
    )


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(tiny_book(), T).set_index("account_id")


def test_open_set_applies_threshold_adjudication_and_self_pay_rules() -> None:
    got = open_accounts(tiny_book(), T)
    assert got["account_id"].tolist() == ["A1", "A2", "A5", "A7"]
    assert got["guarantor_id"].tolist() == ["G1", "G1", "G2", "G3"]
    assert got["balance"].tolist() == [185.00, 150.00, 90.00, 5.00]
    # before A5's adjudication it is not open; after it, it is
    assert "A5" not in open_accounts(tiny_book(), "2024-03-09")["account_id"].tolist()
    assert "A5" in open_accounts(tiny_book(), "2024-03-10")["account_id"].tolist()


def test_frame_layout_and_dtypes() -> None:
    frame = build_features(tiny_book(), pd.Timestamp(T))
    assert ID_COLUMNS == ["account_id", "guarantor_id", "as_of"]
    assert list(frame.columns) == [*ID_COLUMNS, *FEATURE_COLUMNS]
    assert frame["account_id"].tolist() == ["A1", "A2", "A5", "A7"]
    assert frame.index.equals(pd.RangeIndex(4))
    assert (frame["as_of"] == pd.Timestamp(T)).all()
    for col, levels in CATEGORY_LEVELS.items():
        assert list(frame[col].cat.categories) == levels
    assert all(frame[c].dtype == np.float64 for c in FEATURE_COLUMNS if c not in CATEGORY_LEVELS)


def test_balance_make_up(features: pd.DataFrame) -> None:
    a1 = features.loc["A1"]
    assert (a1.balance, a1.total_charges, a1.insurance_paid, a1.adjustments) == (185.0, 1000.0, 600.0, -100.0)
    assert (a1.patient_paid, a1.refunds, a1.patient_responsibility) == (125.0, 10.0, 310.0)
    assert a1.share_paid == pytest.approx(125 / 310)
    assert a1.balance_change_30d == -65.0  # 03-15, 03-25 payments and the 03-28 refund
    assert features.loc["A2", "balance_change_30d"] == 0.0  # 03-01 is 30 days ago: outside the window
    assert a1.balance_change_since_adjudication == -115.0  # 185 now vs 300 after 02-01
    assert a1.balance_grew_since_adjudication == 0.0
    assert features.loc["A5", "balance_change_since_adjudication"] == 40.0
    assert features.loc["A5", "balance_grew_since_adjudication"] == 1.0
    assert np.isnan(features.loc["A2", "balance_change_since_adjudication"])  # self-pay: never adjudicated
    assert features.loc["A7", "share_paid"] == 0.0


def test_ages(features: pd.DataFrame) -> None:
    assert features["days_since_service"].tolist() == [81.0, 59.0, 40.0, 121.0]
    assert features.loc["A1", "days_since_adjudication"] == 59.0
    assert features.loc["A5", "days_since_adjudication"] == 21.0
    assert np.isnan(features.loc["A2", "days_since_adjudication"])
    assert features.loc["A1", "days_since_first_statement"] == 76.0
    assert np.isnan(features.loc["A5", "days_since_first_statement"])


def test_payment_history(features: pd.DataFrame) -> None:
    a1 = features.loc["A1"]
    assert (a1.n_payments, a1.n_payments_90d, a1.days_since_last_payment) == (3.0, 3.0, 6.0)
    assert a1.mean_payment_amount == pytest.approx(125 / 3)
    assert a1.last_payment_amount == 25.0
    assert a1.mean_days_between_payments == 19.5  # gaps of 29 (02-15 .. 03-15) and 10 days
    assert a1.payment_interval_cv == pytest.approx(9.5 / 19.5)
    assert a1.days_since_last_payment_over_interval == pytest.approx(6 / 19.5)
    a2 = features.loc["A2"]  # two payments on one day: one payment day, no gap
    assert (a2.n_payments, a2.last_payment_amount, a2.days_since_last_payment) == (2.0, 50.0, 30.0)
    assert np.isnan(a2.mean_days_between_payments) and np.isnan(a2.payment_interval_cv)
    a5 = features.loc["A5"]
    assert a5.n_payments == 0.0 and np.isnan(a5.days_since_last_payment) and np.isnan(a5.mean_payment_amount)


def test_outreach_history(features: pd.DataFrame) -> None:
    a1 = features.loc["A1"]
    assert (a1.n_call_7d, a1.n_call_30d, a1.n_call_90d, a1.days_since_last_call) == (2.0, 3.0, 4.0, 0.0)
    assert (a1.n_right_party_calls_90d, a1.days_since_last_right_party) == (2.0, 0.0)
    assert (a1.n_letter_90d, a1.days_since_last_letter, a1.n_sms_7d) == (2.0, 45.0, 1.0)
    assert (a1.n_failed_deliveries, a1.n_wrong_number_calls, a1.n_contacts_30d) == (2.0, 0.0, 4.0)
    assert np.isnan(a1.days_since_last_email) and a1.n_email_90d == 0.0
    a5 = features.loc["A5"]
    assert (a5.n_email_30d, a5.n_email_90d, a5.days_since_last_email) == (0.0, 1.0, 30.0)
    assert (a5.n_wrong_number_calls, a5.n_right_party_calls_90d) == (1.0, 0.0)
    # A1's calls by the end of T: C01 and C04 reached G1, C02 and C03 did not; A5's: C11, a wrong number
    assert a1.n_calls_ever == 4.0 and a5.n_calls_ever == 1.0
    # the guarantor's year: A2 (also G1's) shares A1's calls and rate; A7's guarantor was never called
    g = features[["guarantor_calls_365d", "guarantor_right_party_rate_365d"]]
    assert g.loc["A1"].tolist() == g.loc["A2"].tolist() == [4.0, 0.5]
    assert g.loc["A5"].tolist() == [1.0, 0.0]
    assert g.loc["A7", "guarantor_calls_365d"] == 0.0 and np.isnan(g.loc["A7", "guarantor_right_party_rate_365d"])
    assert np.isnan(a5.days_since_last_right_party)
    assert features.loc["A2", "n_contacts_30d"] == 0.0  # its contacts are on T+1


def test_guarantor_roll_ups(features: pd.DataFrame) -> None:
    cols = ["other_open_accounts", "other_open_balance", "other_accounts_ever"]
    cols += ["other_payments_365d", "other_paid_amount_365d", "guarantor_ever_paid"]
    got = features[cols]
    assert got.loc["A1"].tolist() == [1.0, 150.0, 2.0, 2.0, 50.0, 1.0]  # A2 open; A3 exists, not open
    assert got.loc["A2"].tolist() == [1.0, 185.0, 2.0, 3.0, 125.0, 1.0]
    assert got.loc["A5"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # A4 closed and unpaid
    assert got.loc["A7"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # A6 is serviced after T


def test_guarantor_and_account_attributes(features: pd.DataFrame) -> None:
    assert features["guarantor_age_years"].tolist()[:2] == [44.0, 44.0]
    assert np.isnan(features.loc["A5", "guarantor_age_years"]) and features.loc["A7", "guarantor_age_years"] == 74.0
    assert features["state"].tolist() == ["CA", "CA", "TX", "NY"]
    assert features["language"].tolist() == ["es", "es", "en", "other"]  # missing -> en, fr -> other
    assert features["has_mobile"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert features["portal_enrolled"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert features["service_line"].tolist() == ["outpatient", "lab", "clinic", "inpatient"]
    assert features["payer_class"].tolist() == ["commercial", "self_pay", "medicaid", "self_pay"]


def test_active_holds(features: pd.DataFrame) -> None:
    holds = features[["hold_dispute", "hold_bankruptcy", "hold_cease_contact", "hold_financial_assistance"]]
    assert holds.loc["A5"].tolist() == [1.0, 0.0, 0.0, 0.0]  # bankruptcy ended on T
    assert holds.loc["A2"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert features["any_hold_active"].tolist() == [0.0, 1.0, 1.0, 0.0]  # A1's hold starts after T
    no_holds = build_features(tiny_book(holds=False), T)
    assert (no_holds[[c for c in FEATURE_COLUMNS if c.startswith("hold_")] + ["any_hold_active"]] == 0).all().all()


def test_feature_spec_round_trip_and_apply(features: pd.DataFrame) -> None:
    frame = features.reset_index()
    spec = FeatureSpec.from_frame(frame)
    assert spec.columns == FEATURE_COLUMNS
    assert spec.category_levels == CATEGORY_LEVELS
    assert {c for c, d in spec.dtypes.items() if d == "category"} == set(CATEGORY_LEVELS)
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec

    applied = spec.apply(frame)
    pd.testing.assert_frame_equal(applied, frame[FEATURE_COLUMNS])
    as_strings = frame.astype({c: object for c in CATEGORY_LEVELS})[FEATURE_COLUMNS[::-1]]  # also reordered
    from_strings = spec.apply(as_strings)
    for col in CATEGORY_LEVELS:
        np.testing.assert_array_equal(from_strings[col].cat.codes, applied[col].cat.codes)
    assert list(from_strings.columns) == FEATURE_COLUMNS

    odd = frame.assign(state=["CA", "ZZ", None, "NY"], n_payments=[1, 2, 3, 4], has_mobile=[True] * 4)
    got = spec.apply(odd)
    assert got["state"].isna().tolist() == [False, True, True, False]
    assert got["n_payments"].dtype == np.float64 and got["has_mobile"].tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="days_since_last_call"):
        spec.apply(frame.drop(columns="days_since_last_call"))


def test_payment_labels_by_hand() -> None:
    book = tiny_book()
    ids = pd.Series(["A1", "A2", "A5", "A7", "unknown"])
    assert payment_labels(book, T, 14, ids).tolist() == [1, 0, 0, 0, 0]  # A2 pays on 04-15 = T + 15
    assert payment_labels(book, T, 15, ids).tolist() == [1, 1, 0, 0, 0]
    assert payment_labels(book, "2024-03-25", 3, pd.Series(["A1"])).tolist() == [0]  # T's own payment is out
    assert payment_labels(book, "2024-03-24", 1, pd.Series(["A1"])).tolist() == [1]


def test_next_day_actions_by_hand() -> None:
    got = next_day_actions(tiny_book(), T, pd.Series(["A7", "A1", "A2", "A5"]))
    assert got["account_id"].tolist() == ["A7", "A1", "A2", "A5"]
    assert got["action_next"].tolist() == ["none", "call", "sms", "letter"]
    assert list(got["action_next"].cat.categories) == list(ACTIONS)
    np.testing.assert_array_equal(got["action_propensity"], [np.nan, 0.25, 0.7, np.nan])
    assert got["outcome_next"].astype(object).where(got["outcome_next"].notna(), None).tolist() == [
        None,
        "right_party",
        "delivered",
        "sent",
    ]


def test_snapshots_join_features_and_labels_and_refuse_unobserved_windows() -> None:
    book = tiny_book()
    calls: list[tuple[int, int]] = []
    snap = build_snapshots(book, ["2024-03-30", T], horizons=(15,), progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 2), (2, 2)]
    last = snap[snap["as_of"] == pd.Timestamp(T)].reset_index(drop=True)
    pd.testing.assert_frame_equal(last[[*ID_COLUMNS, *FEATURE_COLUMNS]], build_features(book, T))
    assert last["paid_15d"].tolist() == [1, 1, 0, 0]
    assert last["action_next"].tolist() == ["call", "sms", "letter", "none"]
    with pytest.raises(ValueError, match="last observed day"):
        build_snapshots(book, [T], horizons=(30, 14))  # 2024-04-30 > 2024-04-15
    with pytest.raises(ValueError, match="last observed day"):
        build_snapshots(book, ["2024-04-01"], horizons=(15,))


def test_snapshots_sample_each_day_without_changing_rows():
    """Per-day sampling keeps at most N accounts a day, and the kept rows equal the unsampled ones."""
    from features.generate import generate_book

    book, _ = generate_book(600, seed=3)
    days = ["2026-07-01", "2026-07-15"]
    full = build_snapshots(book, days, horizons=(14,))
    small = build_snapshots(book, days, horizons=(14,), max_rows_per_day=50, seed=1)
    assert small.groupby("as_of").size().tolist() == [50, 50]
    merged = small.merge(full, on=["account_id", "as_of"], suffixes=("", "_full"))
    assert len(merged) == 100
    assert (merged["balance"] == merged["balance_full"]).all() and (merged["paid_14d"] == merged["paid_14d_full"]).all()
    again = build_snapshots(book, days[1:], horizons=(14,), max_rows_per_day=50, seed=1)
    pd.testing.assert_frame_equal(again, small[small["as_of"] == pd.Timestamp(days[1])].reset_index(drop=True))


def test_validation_key_lookups_are_reused_only_while_they_hold(tmp_path) -> None:
    """Feature building reuses validation's id lookups; the features are the same as without them, and a
    replaced or shuffled table is looked up afresh."""
    import dataclasses

    from features.generate import generate_book, write_book
    from features.load import load_book

    raw, _ = generate_book(400, seed=5, end_date="2026-09-30")
    book = load_book(write_book(raw, tmp_path / "book", "parquet"))
    assert book.key_positions("contacts", "account_id") is not None
    plain = Book(**book.tables())  # same frames, no remembered lookups
    assert plain.key_positions("contacts", "account_id") is None
    pd.testing.assert_frame_equal(build_features(book, "2026-09-30"), build_features(plain, "2026-09-30"))

    shuffled = dataclasses.replace(book, contacts=book.contacts.sample(frac=1.0, random_state=1))
    assert shuffled.key_positions("contacts", "account_id") is None
    assert shuffled.key_positions("transactions", "account_id") is None  # replace() copies no cache at all
    pd.testing.assert_frame_equal(build_features(shuffled, "2026-09-30"), build_features(plain, "2026-09-30"))
    book.accounts = book.accounts.iloc[::-1]  # a referenced table replaced in place invalidates its lookups
    assert book.key_positions("contacts", "account_id") is None
