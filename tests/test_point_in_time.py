"""Point-in-time and partition properties of build_features on small random books.

(a) rows dated after T (ledger, contacts, holds, even new accounts and guarantors) never change the
features at T; (b) building per disjoint guarantor group and concatenating equals one build.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.build import build_features, open_accounts
from features.schema import (
    CHANNELS,
    HOLD_KINDS,
    OUTCOMES_BY_CHANNEL,
    PAYER_CLASSES,
    SERVICE_LINES,
    TABLES,
    US_STATES,
    Book,
    pandas_dtype,
)
from features.spec import CATEGORY_LEVELS, FEATURE_COLUMNS

BOOK_START = np.datetime64("2024-01-01", "D")
BOOK_DAYS = 240
LANGUAGE_SAMPLES = np.array(["en", "es", "ES", "zh", "vi-VN", "fr", None], dtype=object)
ids = np.vectorize(lambda prefix, i: f"{prefix}{i:06d}", otypes=[object])


def typed(table: str, data: dict) -> pd.DataFrame:
    """A frame of a contract table with the in-memory dtypes of a validated book."""
    cols = TABLES[table].columns
    return pd.DataFrame({c.name: pd.Series(data[c.name]).astype(pandas_dtype(c)) for c in cols})


def _dates(days: np.ndarray) -> np.ndarray:
    return (BOOK_START + days.astype("timedelta64[D]")).astype("datetime64[ns]")


def _pick(rng: np.random.Generator, levels: tuple | list, n: int) -> np.ndarray:
    return np.asarray(levels, dtype=object)[rng.integers(0, len(levels), n)]


def fabricate_tables(
    rng: np.random.Generator,
    n_guarantors: int,
    day_range: tuple[int, int],
    first_ids: tuple[int, int, int, int],
    hold_share: float = 0.15,
) -> dict[str, dict]:
    """Random raw columns: guarantors with 1-3 accounts serviced within `day_range`, each with a charge,
    usually an adjudication, some patient payments, refunds and adjustments, contacts and holds.
    `first_ids` numbers the new guarantor, account, transaction and contact ids, so books can be extended."""
    g0, a0, x0, c0 = first_ids
    n_acc_per = rng.integers(1, 4, n_guarantors)
    n_acc = int(n_acc_per.sum())
    acc_g = np.repeat(np.arange(n_guarantors), n_acc_per)
    service = rng.integers(day_range[0], day_range[1], n_acc)
    payer = _pick(rng, PAYER_CLASSES, n_acc)
    guarantors = {
        "guarantor_id": ids("G", g0 + np.arange(n_guarantors)),
        "birth_year": np.where(rng.random(n_guarantors) < 0.1, None, rng.integers(1930, 2005, n_guarantors)),
        "state": _pick(rng, US_STATES, n_guarantors),
        "zip3": np.char.zfill(rng.integers(0, 1000, n_guarantors).astype(str), 3).astype(object),
        "language": _pick(rng, LANGUAGE_SAMPLES, n_guarantors),
        **{c: rng.random(n_guarantors) < 0.6 for c in ("has_mobile", "has_email", "sms_consent", "email_consent")},
        "portal_enrolled": rng.random(n_guarantors) < 0.3,
    }
    accounts = {
        "account_id": ids("A", a0 + rng.permutation(n_acc)),  # unsorted on purpose
        "guarantor_id": guarantors["guarantor_id"][acc_g],
        "service_date": _dates(service),
        "service_line": _pick(rng, SERVICE_LINES, n_acc),
        "payer_class": payer,
        "facility_id": _pick(rng, ["F1", "F2", None], n_acc),
    }
    # ledger: charge at service; adjudication (insurance payment + adjustment) for most insured accounts
    charge = np.round(rng.uniform(20, 3000, n_acc), 2)
    adjudicate = (payer != "self_pay") & (rng.random(n_acc) < 0.8)
    adj_day = service + rng.integers(5, 60, n_acc)
    ins = np.round(-charge * rng.uniform(0.3, 0.9, n_acc), 2)
    writeoff = np.round(-charge * rng.uniform(0.0, 0.2, n_acc), 2)
    n_pay = rng.integers(0, 5, n_acc)
    pay_acc = np.repeat(np.arange(n_acc), n_pay)
    pay_day = service[pay_acc] + rng.integers(0, 150, len(pay_acc))
    pay_amt = -np.round(rng.choice([5.0, 25.0, 50.0, 100.0], len(pay_acc)) * rng.integers(1, 4, len(pay_acc)), 2)
    refund = rng.random(n_acc) < 0.05
    adj_i = np.flatnonzero(adjudicate)
    ref_i = np.flatnonzero(refund)
    tx_acc = np.concatenate([np.arange(n_acc), adj_i, adj_i, pay_acc, ref_i])
    tx_day = np.concatenate([service, adj_day[adj_i], adj_day[adj_i], pay_day, service[ref_i] + 90])
    tx_kind = np.concatenate(
        [
            np.full(n_acc, "charge", dtype=object),
            np.full(len(adj_i), "insurance_payment", dtype=object),
            np.full(len(adj_i), "adjustment", dtype=object),
            np.full(len(pay_acc), "patient_payment", dtype=object),
            np.full(len(ref_i), "refund", dtype=object),
        ]
    )
    tx_amt = np.concatenate([charge, ins[adj_i], writeoff[adj_i], pay_amt, np.full(len(ref_i), 10.0)])
    shuffle = rng.permutation(len(tx_acc))
    transactions = {
        "transaction_id": ids("T", x0 + np.arange(len(tx_acc))),
        "account_id": accounts["account_id"][tx_acc[shuffle]],
        "posted_date": _dates(tx_day[shuffle]),
        "kind": tx_kind[shuffle],
        "amount": tx_amt[shuffle],
    }
    # contacts: a few per account after service, at random UTC times
    n_ct = rng.integers(0, 7, n_acc)
    ct_acc = np.repeat(np.arange(n_acc), n_ct)
    ct_seconds = rng.integers(0, 86_400, len(ct_acc)).astype("timedelta64[s]")
    channel = _pick(rng, CHANNELS, len(ct_acc))
    outcome = np.array([OUTCOMES_BY_CHANNEL[c][0] for c in CHANNELS], dtype=object)[
        pd.Index(CHANNELS).get_indexer(channel)
    ]
    alt = rng.random(len(ct_acc))
    for ch, outs in OUTCOMES_BY_CHANNEL.items():  # one small loop over the 5 channels, not over rows
        is_ch = channel == ch
        outcome[is_ch] = np.asarray(outs, dtype=object)[(alt[is_ch] * len(outs)).astype(int)]
    contacts = {
        "contact_id": ids("C", c0 + np.arange(len(ct_acc))),
        "account_id": accounts["account_id"][ct_acc],
        "contacted_at": (
            _dates(service[ct_acc] + rng.integers(0, 120, len(ct_acc))).astype("datetime64[s]") + ct_seconds
        ).astype("datetime64[ns]"),
        "channel": channel,
        "outcome": outcome,
        "propensity": np.where(rng.random(len(ct_acc)) < 0.2, np.nan, rng.uniform(0.05, 1.0, len(ct_acc))),
    }
    # holds on some accounts, half of them open-ended
    hold_i = np.flatnonzero(rng.random(n_acc) < hold_share)
    start = service[hold_i] + rng.integers(0, 90, len(hold_i))
    end = np.where(rng.random(len(hold_i)) < 0.5, -1, start + rng.integers(0, 60, len(hold_i)))
    end_dates = pd.Series(_dates(np.maximum(end, 0))).where(end >= 0)
    holds = {
        "account_id": accounts["account_id"][hold_i],
        "kind": _pick(rng, HOLD_KINDS, len(hold_i)),
        "start_date": _dates(start),
        "end_date": end_dates,
    }
    return {
        "guarantors": guarantors,
        "accounts": accounts,
        "transactions": transactions,
        "contacts": contacts,
        "holds": holds,
    }


def random_book(seed: int, n_guarantors: int = 40) -> Book:
    """A small random book covering BOOK_DAYS days, with the dtypes of a validated book."""
    raw = fabricate_tables(np.random.default_rng(seed), n_guarantors, (0, BOOK_DAYS - 60), (0, 0, 0, 0))
    return Book(**{name: typed(name, cols) for name, cols in raw.items()})


def append_rows(book: Book, extra: dict[str, pd.DataFrame]) -> Book:
    """The book with extra rows appended to some tables."""
    tables = book.tables()
    for name, rows in extra.items():
        tables[name] = pd.concat([tables[name], rows], ignore_index=True)
    return Book(**tables)


def future_rows(book: Book, rng: np.random.Generator, t: np.datetime64) -> dict[str, pd.DataFrame]:
    """Rows all dated after day t: ledger rows, contacts (some at exactly t + 1 day 00:00) and holds on
    existing accounts, plus new guarantors and new accounts (some of existing guarantors) serviced after t."""
    t_day = int((t - BOOK_START).astype(int))
    raw = fabricate_tables(rng, 8, (t_day + 1, t_day + 40), (10_000, 10_000, 100_000, 100_000), hold_share=0.5)
    # give some new accounts to existing guarantors
    existing = book.guarantors["guarantor_id"].to_numpy(dtype=object)
    reassign = rng.random(len(raw["accounts"]["account_id"])) < 0.5
    raw["accounts"]["guarantor_id"] = np.where(
        reassign, existing[rng.integers(0, len(existing), len(reassign))], raw["accounts"]["guarantor_id"]
    )
    # move some of the new ledger rows, contacts and holds onto existing accounts (still dated after t)
    old_ids = book.accounts["account_id"].to_numpy(dtype=object)
    for name in ("transactions", "contacts", "holds"):
        acc = np.asarray(raw[name]["account_id"], dtype=object)
        move = rng.random(len(acc)) < 0.6
        raw[name]["account_id"] = np.where(move, old_ids[rng.integers(0, len(old_ids), len(acc))], acc)
    # the first rows of each table sit exactly on the boundary: day t + 1 (a contact at 00:00 UTC)
    next_day = (t + np.timedelta64(1, "D")).astype("datetime64[ns]")
    raw["contacts"]["contacted_at"][:3] = next_day
    raw["holds"]["start_date"][:3] = next_day
    raw["transactions"]["posted_date"][:6] = next_day
    raw["transactions"]["kind"][:3], raw["transactions"]["amount"][:3] = "patient_payment", -10.0
    return {name: typed(name, cols) for name, cols in raw.items()}


@settings(max_examples=20, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**31), t_offset=st.integers(20, BOOK_DAYS - 1))
def test_rows_after_as_of_never_change_features(seed: int, t_offset: int) -> None:
    book = random_book(seed)
    t = BOOK_START + np.timedelta64(t_offset, "D")
    before = build_features(book, pd.Timestamp(t))
    after = build_features(append_rows(book, future_rows(book, np.random.default_rng(seed + 1), t)), str(t))
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=15, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**31), n_parts=st.integers(2, 5), t_offset=st.integers(30, BOOK_DAYS - 1))
def test_disjoint_guarantor_groups_build_the_same_rows(seed: int, n_parts: int, t_offset: int) -> None:
    book = random_book(seed)
    t = pd.Timestamp(BOOK_START + np.timedelta64(t_offset, "D"))
    guarantors = book.guarantors["guarantor_id"].to_numpy(dtype=object)
    part = np.random.default_rng(seed).integers(0, n_parts, len(guarantors))
    pieces = [build_features(book.subset_guarantors(list(guarantors[part == p])), t) for p in range(n_parts)]
    joined = pd.concat(pieces, ignore_index=True).sort_values("account_id", ignore_index=True)
    pd.testing.assert_frame_equal(joined, build_features(book, t))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_book_builds_a_sane_frame(seed: int) -> None:
    book = random_book(seed)
    t = pd.Timestamp(BOOK_START + np.timedelta64(150, "D"))
    frame = build_features(book, t)
    assert len(frame) > 10
    assert list(frame.columns) == ["account_id", "guarantor_id", "as_of", *FEATURE_COLUMNS]
    assert frame["account_id"].is_monotonic_increasing and frame["account_id"].is_unique
    assert frame.index.equals(pd.RangeIndex(len(frame)))
    for col, levels in CATEGORY_LEVELS.items():
        assert list(frame[col].cat.categories) == levels
    numeric = frame[[c for c in FEATURE_COLUMNS if c not in CATEGORY_LEVELS]]
    assert (numeric.dtypes == np.float64).all()
    assert (frame["balance"] >= 5.0).all()
    assert ((frame["share_paid"] >= 0) & (frame["share_paid"] < 1)).all()
    assert (frame["days_since_service"] >= 0).all()
    pd.testing.assert_frame_equal(
        open_accounts(book, t), frame[["account_id", "guarantor_id", "balance"]], check_dtype=False
    )
