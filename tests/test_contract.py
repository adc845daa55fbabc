"""The data contract: parsing, every broken-book case named by table and column, docs generated from code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.contract_doc import render, render_generator
from features.schema import TABLES, pandas_dtype
from features.validate import BookError, validate_tables
from tests.tiny_raw_book import raw_tables

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_book_is_valid_and_typed():
    book = validate_tables(raw_tables())
    for name, df in book.tables().items():
        assert list(df.columns) == TABLES[name].names, name
    g = book.guarantors.set_index("guarantor_id")
    assert g.loc["g1", "has_mobile"] and not g.loc["g2", "has_mobile"]
    assert g.loc["g1", "has_email"] and g.loc["g2", "has_email"]
    assert pd.isna(g.loc["g2", "birth_year"]) and g.loc["g1", "birth_year"] == 1960
    assert book.transactions["amount"].sum() == pytest.approx(1200 - 800 - 250.50 + 90 - 40 + 310.25)
    c = book.contacts.set_index("contact_id")
    # a T or a space both parse; an offset is converted to UTC; naive means UTC
    assert c.loc["c2", "contacted_at"] == pd.Timestamp("2026-02-20 15:30:00")
    assert c.loc["c3", "contacted_at"] == pd.Timestamp("2026-03-02 14:00:00")
    assert pd.isna(c.loc["c2", "propensity"]) and c.loc["c3", "propensity"] == 1.0
    assert book.holds["end_date"].isna().all()
    assert isinstance(book.accounts["payer_class"].dtype, pd.CategoricalDtype)
    assert book.accounts["payer_class"].dtype == pandas_dtype(TABLES["accounts"].column("payer_class"))


def test_missing_optional_holds_means_none():
    raw = raw_tables()
    raw["holds"] = None
    book = validate_tables(raw)
    assert book.holds.empty and list(book.holds.columns) == TABLES["holds"].names


def _set(raw: dict, table: str, column: str, row: int, value: str) -> dict:
    raw[table].loc[row, column] = value
    return raw


BROKEN = [
    # (id, mutation, table, column, words the message must contain)
    ("missing table", lambda r: r.update(accounts=None) or r, "accounts", None, "required table is missing"),
    (
        "missing column",
        lambda r: r.update(transactions=r["transactions"].drop(columns="amount")) or r,
        "transactions",
        "amount",
        "required column is missing",
    ),
    ("bad number", lambda r: _set(r, "transactions", "amount", 1, "12,0x"), "transactions", "amount", "t2"),
    (
        "bad date",
        lambda r: _set(r, "accounts", "service_date", 2, "2026-02-30"),
        "accounts",
        "service_date",
        "a3",
    ),
    (
        "bad date format",
        lambda r: _set(r, "accounts", "service_date", 0, "05/01/2026"),
        "accounts",
        "service_date",
        "account_id=a1",
    ),
    (
        "bad timestamp",
        lambda r: _set(r, "contacts", "contacted_at", 0, "yesterday"),
        "contacts",
        "contacted_at",
        "c1",
    ),
    (
        "bad boolean",
        lambda r: _set(r, "guarantors", "sms_consent", 1, "maybe"),
        "guarantors",
        "sms_consent",
        "guarantor_id=g2",
    ),
    ("unknown enum", lambda r: _set(r, "contacts", "channel", 1, "fax"), "contacts", "channel", "contact_id=c2"),
    ("unknown state", lambda r: _set(r, "guarantors", "state", 0, "ZZ"), "guarantors", "state", "guarantor_id=g1"),
    (
        "duplicate key",
        lambda r: _set(r, "transactions", "transaction_id", 1, "t1"),
        "transactions",
        "transaction_id",
        "duplicate key",
    ),
    (
        "dangling foreign key",
        lambda r: _set(r, "accounts", "guarantor_id", 2, "g9"),
        "accounts",
        "guarantor_id",
        "account_id=a3",
    ),
    (
        "dangling contact",
        lambda r: _set(r, "contacts", "account_id", 0, "a77"),
        "contacts",
        "account_id",
        "contact_id=c1",
    ),
    (
        "sign contradicts kind",
        lambda r: _set(r, "transactions", "amount", 4, "40.00"),
        "transactions",
        "amount",
        "patient_payment",
    ),
    (
        "charge negative",
        lambda r: _set(r, "transactions", "amount", 0, "-1200"),
        "transactions",
        "amount",
        "charge",
    ),
    ("propensity zero", lambda r: _set(r, "contacts", "propensity", 0, "0"), "contacts", "propensity", "c1"),
    (
        "propensity above one",
        lambda r: _set(r, "contacts", "propensity", 2, "1.5"),
        "contacts",
        "propensity",
        "c3",
    ),
    (
        "outcome of another channel",
        lambda r: _set(r, "contacts", "outcome", 1, "right_party"),
        "contacts",
        "outcome",
        "c2",
    ),
    ("full zip", lambda r: _set(r, "guarantors", "zip3", 0, "02139"), "guarantors", "zip3", "full ZIP"),
    (
        "required value missing",
        lambda r: _set(r, "transactions", "posted_date", 3, ""),
        "transactions",
        "posted_date",
        "t4",
    ),
    (
        "hold ends before it starts",
        lambda r: _set(r, "holds", "end_date", 0, "2026-03-01"),
        "holds",
        "end_date",
        "before start_date",
    ),
    ("huge birth year", lambda r: _set(r, "guarantors", "birth_year", 0, "1e30"), "guarantors", "birth_year", "range"),
    ("infinite amount", lambda r: _set(r, "transactions", "amount", 0, "inf"), "transactions", "amount", "unparseable"),
    (
        "fractional birth year",
        lambda r: _set(r, "guarantors", "birth_year", 0, "1960.5"),
        "guarantors",
        "birth_year",
        "whole number",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "table", "column", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_book_names_table_and_column(case, mutate, table, column, words):
    raw = mutate(raw_tables())
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    problems = info.value.problems
    hits = [p for p in problems if p.table == table and (column is None or p.column == column)]
    assert hits, f"{case}: no problem for {table}.{column} in {[str(p) for p in problems]}"
    assert any(words in str(p) for p in hits), [str(p) for p in hits]


def test_several_problems_are_all_reported():
    raw = raw_tables()
    _set(raw, "contacts", "channel", 1, "fax")
    _set(raw, "transactions", "amount", 0, "abc")
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    where = {(p.table, p.column) for p in info.value.problems}
    assert {("contacts", "channel"), ("transactions", "amount")} <= where


def test_docs_are_generated_from_the_schema():
    doc = (ROOT / "docs" / "data-contract.md").read_text()
    assert doc == render(), "docs/data-contract.md is stale: run `make docs`"
    for table in TABLES.values():
        for col in table.columns:
            assert f"| {col.name} |" in doc


def test_generator_doc_is_generated_from_the_code():
    assert (ROOT / "docs" / "synthetic-book.md").read_text() == render_generator(), "stale: run `make docs`"


def _enums_as_categoricals(raw: dict) -> dict:
    """The same raw tables with every enum column dictionary-encoded, as Parquet books are read."""
    out = {}
    for name, df in raw.items():
        if df is not None:
            df = df.copy()
            for col in TABLES[name].columns:
                if col.kind == "enum" and col.name in df.columns:
                    df[col.name] = df[col.name].astype("category")
        out[name] = df
    return out


def _outcome(raw: dict) -> list[str] | dict[str, pd.DataFrame]:
    try:
        return validate_tables(raw).tables()
    except BookError as exc:
        return [str(p) for p in exc.problems]


@pytest.mark.parametrize(
    ("column", "value"),
    [("channel", "  sms "), ("channel", "fax"), ("channel", ""), ("channel", None), ("outcome", " no_answer")],
)
def test_dictionary_encoded_enums_validate_like_strings(column, value):
    raw = _set(raw_tables(), "contacts", column, 1, value)
    as_text, as_codes = _outcome(raw), _outcome(_enums_as_categoricals(raw))
    if isinstance(as_text, list):
        assert as_codes == as_text and any(p.startswith("contacts.") for p in as_text)
    else:
        assert isinstance(as_codes, dict)
        for name, frame in as_text.items():
            pd.testing.assert_frame_equal(as_codes[name], frame)


@pytest.mark.parametrize(
    ("values", "trimmed"),
    [
        (["a1", "b22", None, ""], True),
        (["a1", " b22"], False),
        (["a1", "b22\t"], False),
        (["a1", "b22\u00a0"], False),  # a non-breaking space is whitespace too
        (["é1", "b2"], False),  # non-ASCII edges go to Arrow's Unicode-aware trim (which keeps é)
    ],
)
def test_the_whitespace_shortcut_never_misses_a_padded_value(values, trimmed):
    import pyarrow as pa

    from features.validate import _surely_trimmed

    for kind in (pa.string(), pa.large_string()):
        arr = pa.array(["pad ", *values], type=kind).slice(1)  # a sliced chunk: its offset is not 0
        assert _surely_trimmed(pa.chunked_array([arr])) is trimmed


@pytest.mark.parametrize(
    ("keys", "unique"),
    [(["a", "b", "c"], True), (["c", "a", "b"], True), (["a", "b", "b", "c"], False), (["b", "a", "b"], False)],
)
def test_the_sorted_key_shortcut_agrees_with_hashing(keys, unique):
    from features.validate import _surely_unique

    assert _surely_unique(pd.Series(keys, dtype="string")) is unique


def test_padded_ids_from_arrow_strings_are_trimmed():
    raw = raw_tables()
    for name in ("accounts", "transactions"):
        raw[name]["account_id"] = (" " + raw[name]["account_id"].astype(str) + "\t").astype("str")
    book = validate_tables(raw)
    assert (
        set(book.transactions["account_id"])
        <= set(book.accounts["account_id"])
        == set(raw_tables()["accounts"]["account_id"])
    )


def test_a_text_column_of_mixed_python_objects_is_read_as_text():
    """A database driver may hand back ints and strings in one object column; they are ids as text."""
    raw = raw_tables()
    facility = raw["accounts"]["facility_id"].astype(object)
    facility.iloc[0] = 17
    raw["accounts"]["facility_id"] = facility
    book = validate_tables(raw)
    assert book.accounts.loc[0, "facility_id"] == "17"
    assert book.accounts["facility_id"].dtype == pandas_dtype(TABLES["accounts"].column("facility_id"))


# ---- bounds, strict timestamps and messages that never quote a value (issue 10) -----------------------------

OUT_OF_RANGE = [
    # (table, column, row, value, the row key the message must name)
    ("accounts", "service_date", 0, "0001-01-01", "account_id=a1"),
    ("accounts", "service_date", 1, "1899-12-31", "account_id=a2"),
    ("transactions", "posted_date", 2, "9999-12-31", "transaction_id=t3"),
    ("transactions", "posted_date", 3, "2201-01-01", "transaction_id=t4"),
    ("holds", "start_date", 0, "1677-09-21", "account_id=a3"),  # holds have no key of their own
    ("contacts", "contacted_at", 0, "9999-12-31T00:00:00", "contact_id=c1"),
    ("contacts", "contacted_at", 1, "0001-01-01 00:00", "contact_id=c2"),
    ("contacts", "contacted_at", 2, "2262-04-12T00:00:00Z", "contact_id=c3"),
    ("transactions", "amount", 0, "1e308", "transaction_id=t1"),
    ("transactions", "amount", 0, "1000000000.01", "transaction_id=t1"),
    ("transactions", "amount", 1, "-2e9", "transaction_id=t2"),
    ("guarantors", "birth_year", 0, "-5", "guarantor_id=g1"),
    ("guarantors", "birth_year", 0, "3000", "guarantor_id=g1"),
    ("guarantors", "birth_year", 0, "1899", "guarantor_id=g1"),
]


@pytest.mark.parametrize(("table", "column", "row", "value", "key"), OUT_OF_RANGE)
def test_values_out_of_range_are_problems_naming_table_column_and_row(table, column, row, value, key):
    """Far dates were 500s/tracebacks (pandas' nanosecond timestamps), 1e308 became inf, −5 was a birth year."""
    raw = _set(raw_tables(), table, column, row, value)
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    (problem,) = info.value.problems
    assert (problem.table, problem.column) == (table, column)
    assert "out of range" in problem.message and key in problem.message
    assert value not in str(problem)


def test_the_edges_of_the_ranges_are_allowed():
    raw = raw_tables()
    _set(raw, "accounts", "service_date", 0, "1900-01-01")
    _set(raw, "contacts", "contacted_at", 0, "2200-12-31T23:59:59.999999")
    _set(raw, "transactions", "amount", 0, "1000000000")
    _set(raw, "transactions", "amount", 1, "-1000000000.00")
    _set(raw, "guarantors", "birth_year", 0, "1900")
    book = validate_tables(raw)
    assert book.transactions["amount"].abs().max() == 1e9
    assert book.contacts["contacted_at"].max() == pd.Timestamp("2200-12-31 23:59:59.999999")


@pytest.mark.parametrize("value", ["now", "today", "2026", "2026-09", "4321", "2026-09-30", "2026-09-30T7", "tomorrow"])
def test_timestamps_must_be_strict_iso(value):
    raw = _set(raw_tables(), "contacts", "contacted_at", 1, value)
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    (problem,) = info.value.problems
    assert (problem.table, problem.column) == ("contacts", "contacted_at")
    assert "unparseable timestamp" in problem.message and "contact_id=c2" in problem.message


def test_typed_dates_out_of_range_from_parquet_are_problems_too():
    """Parquet hands over datetime64 columns (microseconds can hold year 9999): checked, not cast and crashed."""
    raw = raw_tables()
    raw["accounts"]["service_date"] = pd.to_datetime(["2026-01-05", "9999-12-31", "2026-03-01"]).as_unit("us")
    stamps = pd.to_datetime(["2026-02-15T14:00", "2026-02-20T15:30", "0001-01-01T00:00"]).as_unit("us")
    raw["contacts"]["contacted_at"] = stamps.tz_localize("UTC")
    with pytest.raises(BookError) as info:
        validate_tables(raw)
    found = {(p.table, p.column): p.message for p in info.value.problems}
    assert set(found) == {("accounts", "service_date"), ("contacts", "contacted_at")}
    assert "account_id=a2" in found["accounts", "service_date"] and "contact_id=c3" in found["contacts", "contacted_at"]


SECRETS = ["02139", "John Q Public SSN 123-45-6789", "x" * 100_000, "9999-12-31", "1e308", "fax-machine"]


@pytest.mark.parametrize(
    ("table", "column", "row"),
    [
        ("guarantors", "zip3", 0),
        ("guarantors", "birth_year", 1),
        ("guarantors", "state", 0),
        ("guarantors", "has_mobile", 1),
        ("accounts", "service_date", 2),
        ("accounts", "guarantor_id", 0),
        ("transactions", "amount", 1),
        ("transactions", "kind", 2),
        ("contacts", "outcome", 0),
        ("contacts", "contacted_at", 1),
        ("contacts", "propensity", 2),
        ("holds", "end_date", 0),
        ("holds", "account_id", 0),
        ("transactions", "transaction_id", 3),  # the key itself: the row is named by position
    ],
)
@pytest.mark.parametrize("secret", SECRETS, ids=["zip", "name-ssn", "100kB", "date", "huge", "word"])
def test_no_message_quotes_the_value_it_refuses(table, column, row, secret):
    """Messages reach API clients and logs: they name table, column and row key, never the submitted value."""
    raw = _set(raw_tables(), table, column, row, secret)
    try:
        validate_tables(raw)
    except BookError as exc:
        text = str(exc)
        assert secret not in text and len(text) < 2000
        assert any(p.table == table and p.column == column for p in exc.problems), text
    else:  # only a key may be any text
        assert column == "transaction_id"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-09-30", True),
        ("1900-01-01", True),
        ("2200-12-31", True),
        ("1899-12-31", False),
        ("2201-01-01", False),
        ("9999-12-31", False),
        ("1600-01-01", False),
        ("20260930", False),
        ("2026-9-30", False),
        ("2026-02-30", False),
        (" 2026-09-30", False),
        ("today", False),
        (20260930, False),
    ],
)
def test_as_of_days_are_checked_in_the_validator(text, ok):
    from features.validate import parse_day

    if ok:
        assert parse_day(text).isoformat() == text
    else:
        with pytest.raises(ValueError) as info:
            parse_day(text)
        assert str(text) not in str(info.value)
