"""Book fragments between JSON and the data contract: records → raw text frames → `validate_tables` → Book.

Values become text exactly as `payrank validate` reads a CSV book (every column as strings, blank → missing),
so the API and the CLI type and check a book through one code path. The other direction, `book_records`,
turns a Book into the records a client sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from features.schema import TABLES, Book
from features.validate import BookError, validate_tables


def _text(value: Any) -> str | None:
    """A JSON scalar as the text a CSV cell would hold (None stays missing)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def records_frame(table: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw frame of one table: the contract's columns that any record has (as text); other keys are ignored."""
    names = TABLES[table].names
    present = [c for c in names if any(c in r for r in records)] if records else names
    return pd.DataFrame({c: pd.Series([_text(r.get(c)) for r in records], dtype="str") for c in present})


def fragment_book(tables: dict[str, list[dict[str, Any]] | None]) -> Book:
    """Validate a fragment (table → records; None for an absent optional table); raises BookError."""
    raw: dict[str, pd.DataFrame | None] = {
        name: None if tables.get(name) is None else records_frame(name, tables[name]) for name in TABLES
    }
    return validate_tables(raw)


def book_error_detail(exc: BookError) -> list[dict[str, Any]]:
    """FastAPI-style error items, one per problem: loc ["book", table, column]."""
    return [
        {
            "loc": ["book", p.table] if p.column == "-" else ["book", p.table, p.column],
            "msg": p.message,
            "type": "book_contract",
        }
        for p in exc.problems
    ]


def frame_records(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts of Python scalars: NaN/NaT → None, timestamps → datetime, numpy → Python."""
    cols = list(columns) if columns is not None else list(frame.columns)
    data: dict[str, list[Any]] = {}
    for c in cols:
        s = frame[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            data[c] = [None if pd.isna(v) else v.to_pydatetime() for v in s]
        elif pd.api.types.is_float_dtype(s.dtype):
            data[c] = [None if math.isnan(v) else v for v in s.to_numpy(dtype=float).tolist()]
        else:
            data[c] = [None if _missing(v) else v for v in s.astype(object).tolist()]
    return [dict(zip(cols, row, strict=True)) for row in zip(*(data[c] for c in cols), strict=True)] if cols else []


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT


def book_records(book: Book) -> dict[str, list[dict[str, Any]]]:
    """A Book as the `book` member of a request: dates YYYY-MM-DD, timestamps ISO, numbers and booleans native."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, frame in book.tables().items():
        cols: dict[str, list[Any]] = {}
        for col in TABLES[name].columns:
            s = frame[col.name]
            if col.kind in {"date", "timestamp"}:
                fmt = "%Y-%m-%d" if col.kind == "date" else "%Y-%m-%dT%H:%M:%S"
                cols[col.name] = [None if pd.isna(v) else v for v in s.dt.strftime(fmt).astype(object)]
            elif col.kind in {"float", "money"}:
                cols[col.name] = [None if math.isnan(v) else v for v in s.to_numpy(dtype=float).tolist()]
            elif col.kind == "int":
                cols[col.name] = [None if pd.isna(v) else int(v) for v in s.astype(object)]
            elif col.kind == "bool":
                cols[col.name] = np.asarray(s, dtype=bool).tolist()
            else:
                cols[col.name] = [None if _missing(v) else str(v) for v in s.astype(object).tolist()]
        names = list(cols)
        out[name] = [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]
    return out
