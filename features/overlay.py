"""A book with more rows laid over it: today's recorded contacts, holds, promises and decisions, before the
hospital's next extract carries them.

The extra rows are typed and checked table by table exactly as the loader checks a book (`validate.py`), must
name accounts of the book, and are appended to its tables. A row the book already holds (same key; for holds the
same account, kind and start date) is not added twice, so overlaying a store on an extract that already
re-imported its export changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from features.schema import TABLES, Book
from features.validate import BookError, Problem, _checked_table

OVERLAY_TABLES = ("contacts", "holds", "promises", "decisions")
HOLD_IDENTITY = ["account_id", "kind", "start_date"]


def overlay_book(book: Book, extra: Mapping[str, pd.DataFrame]) -> Book:
    """`book` with the rows of `extra` (table → raw or typed rows of the contract) added; raises BookError.

    Only OVERLAY_TABLES may be given. Problems name the table and column like `payrank validate` does.
    """
    unknown = sorted(set(extra) - set(OVERLAY_TABLES))
    if unknown:
        raise ValueError(f"cannot overlay table(s) {unknown}; only {list(OVERLAY_TABLES)}")
    problems: list[Problem] = []
    typed: dict[str, pd.DataFrame] = {}
    for name, frame in extra.items():
        if frame is None or not len(frame):
            continue
        result, found = _checked_table(name, frame)
        problems.extend(found)
        if result is None:
            continue
        known = result["account_id"].isin(book.accounts["account_id"])
        if not known.all():
            problems.append(
                Problem(name, "account_id", f"{int((~known).sum())} row(s) name an account the book does not hold")
            )
        typed[name] = result
    if problems:
        raise BookError(problems)
    changes = {name: _append(getattr(book, name), rows, name) for name, rows in typed.items()}
    return dataclasses.replace(book, **changes) if changes else book


def _append(current: pd.DataFrame, rows: pd.DataFrame, name: str) -> pd.DataFrame:
    """`rows` not already in `current`, appended (the book's rows first, in their order)."""
    key = TABLES[name].key
    if key is not None:
        rows = rows[~rows[key].isin(current[key])]
    else:
        seen = pd.MultiIndex.from_frame(current[HOLD_IDENTITY].astype(object))
        rows = rows[~pd.MultiIndex.from_frame(rows[HOLD_IDENTITY].astype(object)).isin(seen)]
    if not len(rows):
        return current
    rows = rows.astype(current.dtypes.to_dict())
    return pd.concat([current, rows], ignore_index=True)
