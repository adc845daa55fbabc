"""The contract round-trips through CSV, Parquet, SQLite and PostgreSQL: what is written loads back equal."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from features.generate import generate_book, write_book, write_sql
from features.load import load_book
from features.schema import Book


@pytest.fixture(scope="module")
def small_book() -> Book:
    book, _ = generate_book(300, seed=4)
    return book


def assert_books_equal(got: Book, want: Book) -> None:
    for name, expected in want.tables().items():
        actual = getattr(got, name)
        key = [c for c in expected.columns if c.endswith("_id")][:1] or list(expected.columns[:2])
        a = actual.sort_values(key + list(expected.columns[1:2])).reset_index(drop=True)
        e = expected.sort_values(key + list(expected.columns[1:2])).reset_index(drop=True)
        assert list(a.columns) == list(e.columns), name
        for col in e.columns:
            left, right = a[col], e[col]
            if pd.api.types.is_float_dtype(right):
                pd.testing.assert_series_equal(left, right.round(2 if col == "amount" else 12), check_names=False)
            else:
                assert (
                    left.astype(object).where(left.notna(), None).tolist()
                    == right.astype(object).where(right.notna(), None).tolist()
                ), f"{name}.{col}"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "sqlite"])
def test_round_trip_through_files(small_book: Book, tmp_path: Path, fmt: str):
    path = write_book(small_book, tmp_path / "book", fmt)
    assert_books_equal(load_book(path), small_book)


def test_sqlite_url_is_a_book_source(small_book: Book, tmp_path: Path):
    db = write_book(small_book, tmp_path / "book", "sqlite")
    assert_books_equal(load_book(f"sqlite:///{db}"), small_book)


POSTGRES = os.environ.get("PAYRANK_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES, reason="PAYRANK_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
def test_round_trip_through_postgresql(small_book: Book):
    import sqlalchemy as sa

    schema = f"payrank_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = (
        sa.make_url(POSTGRES)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        write_sql(small_book.tables(), url)
        assert_books_equal(load_book(url), small_book)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_missing_book_is_a_clear_error(tmp_path: Path):
    from features.validate import BookError

    with pytest.raises(BookError, match="no book at"):
        load_book(tmp_path / "nowhere")
    with pytest.raises(BookError, match="cannot read database"):
        load_book("postgresql+psycopg://nobody@127.0.0.1:1/none")
