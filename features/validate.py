"""Validation of raw book tables against the contract in features.schema.

Each problem names the table, the column, the kind of problem and a few offending rows by their key, so a
person can fix the source without reading a traceback. It never quotes the offending value: messages reach API
clients and logs, and a value may be anything a client sent (a full ZIP, a name in a free-text field, 100 kB).
Parsing and checking happen together: a validated book is typed.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.history_prepared import positions
from features.schema import (
    AMOUNT_SIGN,
    FIRST_DAY,
    LAST_DAY,
    OUTCOMES_BY_CHANNEL,
    TABLES,
    THIS_YEAR,
    Book,
    Column,
    Table,
    empty_frame,
)

T = TypeVar("T")
MAX_EXAMPLES = 3
MAX_INT = 2**53  # integers beyond this are not exact in float64 and no contract column needs them
TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False, "1.0": True, "0.0": False}
MAX_KEY_SHOWN = 64  # a longer key is named by its row number instead

_DAY_TEXT = r"\d{4}-\d{2}-\d{2}"
_TIME_TEXT = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
TIMESTAMP_PATTERN = rf"^{_DAY_TEXT}[T ]{_TIME_TEXT}$"
"""Strict ISO 8601: date, `T` or space, hours and minutes (seconds, fraction and offset optional). Not `now`,
`today`, `2026` or `2026-09`, which pandas' ISO parser would accept."""
DATE_PATTERN = rf"^{_DAY_TEXT}(?:[T ]{_TIME_TEXT})?$"
"""YYYY-MM-DD, optionally with a time of day (SQL exports write `2026-05-02 00:00:00`); the time is dropped."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a book."""

    table: str
    column: str
    message: str

    def __str__(self) -> str:
        where = self.table if self.column == "-" else f"{self.table}.{self.column}"
        return f"{where}: {self.message}"


class BookError(Exception):
    """A book that breaks the contract; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _examples(frame: pd.DataFrame, table: Table, mask: pd.Series, column: str | None = None) -> str:
    """'e.g. transaction_id=t1, row 7': the first offending rows by their key, never by the offending value.

    `column` is the offending column: when it is the column rows are named by (the key, or `account_id` for
    holds), its values are suspect, so those rows are named by their position (from 0, as API list indices).
    A missing or over-long key is named by position too.
    """
    rows = frame.loc[mask].head(MAX_EXAMPLES)
    key = table.key or "account_id"
    keys = rows[key].tolist() if key in rows.columns and key != column else [None] * len(rows)
    parts = []
    for position, value in zip(rows.index, keys, strict=True):  # at most MAX_EXAMPLES rows
        text = None if value is None or pd.isna(value) else str(value).strip()
        parts.append(f"{key}={text}" if text and len(text) <= MAX_KEY_SHOWN else f"row {position}")
    return "e.g. " + ", ".join(parts)


def parse_day(text: object) -> date:
    """An as-of day: exactly `YYYY-MM-DD`, between FIRST_DAY and LAST_DAY (the contract's range of days).

    The API's `as_of` and the CLI's `--as-of` both come here, so they accept the same days. Raises ValueError
    saying what is wrong, without quoting the text.
    """
    day = None
    if isinstance(text, str) and re.fullmatch(_DAY_TEXT, text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            day = None
    if day is None:
        raise ValueError("expected a date YYYY-MM-DD")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def _is_text(raw: pd.Series) -> bool:
    return raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)


def _trimmed(raw: pd.Series) -> pa.ChunkedArray:
    """The column as whitespace-trimmed Arrow strings with blanks as null, computed once per column in Arrow.

    pandas' .str methods on millions of ids were most of a large book's validation time.
    """
    try:
        arr = pa.array(raw, from_pandas=True)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = pc.cast(arr, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # mixed Python objects
        arr = pa.array(raw.astype("string"), from_pandas=True)
    chunked = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    trimmed = chunked if _surely_trimmed(chunked) else pc.utf8_trim_whitespace(chunked)
    empty = pc.equal(trimmed, "")
    return pc.if_else(empty, pa.scalar(None, trimmed.type), trimmed) if pc.any(empty).as_py() else trimmed


_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20]] = True
_ASCII_SPACE[0x80:] = True  # any non-ASCII byte: let Arrow's Unicode-aware trim decide


def _surely_trimmed(text: pa.ChunkedArray) -> bool:
    """True when no value starts or ends with whitespace, judged from the first and last byte of each value
    in Arrow's buffers (ids are tens of millions of values; trimming them all took a second)."""
    for chunk in text.chunks:
        if len(chunk) == 0:
            continue
        _, offsets_buf, data_buf = chunk.buffers()
        if data_buf is None:
            continue
        kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8)
        start, end = offsets[:-1], offsets[1:]
        filled = end > start  # null and empty values have no bytes (and are blank anyway)
        if _ASCII_SPACE[data[start[filled]]].any() or _ASCII_SPACE[data[end[filled] - 1]].any():
            return False
    return True


def _as_levels(text: pa.ChunkedArray, levels: list[str]) -> pd.Categorical:
    """Strings as a Categorical of `levels`; unknown values become missing (and are reported by the caller)."""
    codes = pc.fill_null(pc.index_in(text, value_set=pa.array(levels, type=text.type)), -1)
    return pd.Categorical.from_codes(codes.to_numpy(), categories=levels)


def _enum_from_categorical(raw: pd.Series, levels: list[str]) -> tuple[pd.Categorical, pd.Series]:
    """An enum column that arrived dictionary-encoded: trim and match its few categories, then remap the codes.

    Gives what `_trimmed` + `_as_levels` give for the same values as strings (tested), without decoding them.
    """
    names = pd.Series(raw.cat.categories.astype(str), dtype=object).str.strip()
    empty = (names == "").to_numpy()
    remap = np.append(np.where(empty, -1, pd.Index(levels).get_indexer(names)), -1)
    codes = raw.cat.codes.to_numpy()  # -1 (missing) picks the appended -1 / True
    parsed = pd.Categorical.from_codes(remap[codes], categories=levels)
    return parsed, pd.Series(np.append(empty, True)[codes], index=raw.index)


def _parse(raw: pd.Series, col: Column, text: pa.ChunkedArray | None) -> pd.Series:
    """Parse one raw column into its typed form; unparseable values become missing.

    `text` is `_trimmed(raw)` for text columns (and for every string or enum column), None otherwise.
    """
    kind = col.kind
    if kind in {"string", "enum"}:
        assert text is not None
        if kind == "enum":
            return _as_levels(text, list(col.values or ()))
        return pd.Series(pd.arrays.ArrowStringArray(text), index=raw.index)
    if kind in {"int", "float", "money"}:
        number = pd.to_numeric(raw, errors="coerce").astype("float64")
        return number.where(np.isfinite(number))  # inf is no amount: reported as unparseable
    if kind == "bool":
        if pd.api.types.is_bool_dtype(raw.dtype):
            return raw.astype("boolean")
        words = raw if text is None else pd.Series(pd.arrays.ArrowStringArray(text), index=raw.index)
        return words.astype("string").str.lower().map(TRUE_WORDS).astype("boolean")
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            out = pd.to_datetime(raw, errors="coerce")
            return (out.dt.tz_convert("UTC").dt.tz_localize(None) if out.dt.tz else out).dt.normalize()
        days = _matching(raw, text, DATE_PATTERN).str.slice(0, 10)
        return pd.to_datetime(days, format="%Y-%m-%d", errors="coerce")
    if kind == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            out = pd.to_datetime(raw, errors="coerce")
        else:
            out = pd.to_datetime(_matching(raw, text, TIMESTAMP_PATTERN), format="ISO8601", utc=True, errors="coerce")
        return out.dt.tz_convert("UTC").dt.tz_localize(None) if out.dt.tz is not None else out
    raise ValueError(f"unknown column kind {kind}")


def _matching(raw: pd.Series, text: pa.ChunkedArray | None, pattern: str) -> pd.Series:
    """The trimmed text of `raw` where it fully matches `pattern`, missing elsewhere (judged in Arrow)."""
    if text is None:
        text = _trimmed(raw.astype("string"))
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    kept = pc.if_else(ok, text, pa.scalar(None, text.type))
    return pd.Series(pd.arrays.ArrowStringArray(kept), index=raw.index)


def _bounds(col: Column) -> tuple[object, object] | None:
    """The inclusive range a column's values must lie in, in the parsed column's terms (None: unbounded)."""
    if col.kind == "date":
        return pd.Timestamp(FIRST_DAY), pd.Timestamp(LAST_DAY)
    if col.kind == "timestamp":
        return pd.Timestamp(FIRST_DAY), pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if col.bounds is None:
        return None
    lo, hi = col.bounds
    return lo, datetime.now(UTC).year if hi == THIS_YEAR else hi


def _range_text(col: Column) -> str:
    """The allowed range as the message and the docs say it."""
    if col.kind in {"date", "timestamp"}:
        return f"{FIRST_DAY} … {LAST_DAY}"
    lo, hi = col.bounds or (None, None)
    number = "{:,.0f}" if col.kind == "money" else "{:.0f}"
    high = "this year" if hi == THIS_YEAR else number.format(hi)
    return f"{number.format(lo)} … {high}" + (" dollars" if col.kind == "money" else "")


def _typed_table(
    name: str, raw: pd.DataFrame, problems: list[Problem], keep_index: bool = False
) -> pd.DataFrame | None:
    table = TABLES[name]
    missing = [c for c in table.names if c not in raw.columns]
    for c in missing:
        problems.append(Problem(name, c, "required column is missing"))
    if missing:
        return None
    raw = raw if keep_index else raw.reset_index(drop=True)  # keep_index: a slice named by its rows' book positions
    out = pd.DataFrame(index=raw.index)
    for col in table.columns:
        values = raw[col.name]
        if col.kind == "enum" and isinstance(values.dtype, pd.CategoricalDtype):
            categorical, blank = _enum_from_categorical(values, list(col.values or ()))
            parsed = pd.Series(categorical, index=raw.index, name=col.name)
        else:
            text = _trimmed(values) if _is_text(values) or col.kind in {"string", "enum"} else None
            parsed = pd.Series(_parse(values, col, text), index=raw.index, name=col.name)
            blank = values.isna() if text is None else pd.Series(text.is_null().to_numpy(), index=raw.index)
        bad = parsed.isna() & ~blank
        if bad.any():
            what = {"enum": "unknown value", "bool": "not a boolean (true/false/1/0)"}.get(
                col.kind, f"unparseable {'number' if col.kind in {'int', 'float', 'money'} else col.kind}"
            )
            allowed = (
                f" (allowed: {', '.join(col.values)})" if col.kind == "enum" and len(col.values or ()) < 12 else ""
            )
            problems.append(
                Problem(
                    name,
                    col.name,
                    f"{int(bad.sum())} {what}{allowed}; {_examples(raw, table, bad, col.name)}",
                )
            )
        if not col.nullable and blank.any():
            problems.append(
                Problem(name, col.name, f"{int(blank.sum())} missing value(s); {_examples(raw, table, blank)}")
            )
        bounds = _bounds(col)
        if bounds is not None:
            lo, hi = bounds
            outside = parsed.notna() & ((parsed < lo) | (parsed > hi))
            if outside.any():
                what = "date(s)" if col.kind == "date" else "timestamp(s)" if col.kind == "timestamp" else "value(s)"
                problems.append(
                    Problem(
                        name,
                        col.name,
                        f"{int(outside.sum())} {what} out of range ({_range_text(col)}); "
                        + _examples(raw, table, outside, col.name),
                    )
                )
                parsed = parsed.where(~outside)
        if col.kind == "int":
            frac = parsed.notna() & (parsed != np.round(parsed))
            if frac.any():
                problems.append(Problem(name, col.name, f"not a whole number; {_examples(raw, table, frac, col.name)}"))
            huge = parsed.notna() & ~np.isfinite(parsed) | (parsed.abs() > MAX_INT)
            if huge.any():
                problems.append(
                    Problem(name, col.name, f"number out of range; {_examples(raw, table, huge, col.name)}")
                )
            parsed = parsed.where(~huge).round().astype("Int64")
        if col.kind == "bool":
            parsed = parsed.fillna(False).astype(bool)
        if col.kind in {"date", "timestamp"}:
            parsed = parsed.astype("datetime64[ns]")
        out[col.name] = parsed
    return out


def _surely_unique(keys: pd.Series) -> bool:
    """No key twice: strictly increasing keys (exports are usually in key order) are checked in one Arrow pass;
    others by hashing (4x faster than `duplicated`, which then runs only to name the offenders)."""
    if not keys.hasnans and len(keys) > 1:  # keys are typed strings here, so Arrow compares them as given
        arr = pa.array(keys)
        if pc.all(pc.less(arr.slice(0, len(arr) - 1), arr.slice(1))).as_py():
            return True
    return pd.Index(keys.dropna() if keys.hasnans else keys).is_unique


def _row_checks(name: str, df: pd.DataFrame, problems: list[Problem]) -> None:
    """Checks that involve more than one column or the table's key."""
    table = TABLES[name]
    keys = df[table.key] if table.key else None
    if keys is not None and not _surely_unique(keys):
        dup = df[table.key].duplicated(keep=False) & df[table.key].notna()
        if dup.any():
            problems.append(Problem(name, table.key, f"duplicate key; {_examples(df, table, dup)}"))
    if name == "guarantors":
        z = df["zip3"].astype("string")
        bad = z.notna() & ~z.str.fullmatch(r"\d{3}").fillna(False)
        if bad.any():
            problems.append(
                Problem(
                    name,
                    "zip3",
                    f"must be exactly 3 digits (never a full ZIP); {_examples(df, table, bad, 'zip3')}",
                )
            )
    if name == "transactions":
        signs = np.array([AMOUNT_SIGN[k] for k in df["kind"].cat.categories] + [0], dtype=np.float64)
        sign = pd.Series(signs[df["kind"].cat.codes.to_numpy()], index=df.index)  # code -1 (missing) → 0
        bad = ((sign > 0) & (df["amount"] <= 0)) | ((sign < 0) & (df["amount"] >= 0))
        if bad.any():
            kinds = ", ".join(sorted(df.loc[bad, "kind"].astype(str).unique()))
            problems.append(
                Problem(name, "amount", f"sign contradicts kind ({kinds}); {_examples(df, table, bad, 'amount')}")
            )
    if name == "contacts":
        p = df["propensity"]
        bad = p.notna() & ((p <= 0) | (p > 1))
        if bad.any():
            problems.append(Problem(name, "propensity", f"outside (0, 1]; {_examples(df, table, bad, 'propensity')}"))
        channels, outcomes = df["channel"].cat, df["outcome"].cat
        allowed = np.array(
            [[o in OUTCOMES_BY_CHANNEL[c] for o in outcomes.categories] for c in channels.categories], dtype=bool
        )  # a small channel × outcome table, looked up by codes
        ch, out = channels.codes.to_numpy(), outcomes.codes.to_numpy()
        known = (ch >= 0) & (out >= 0)
        bad = pd.Series(known & ~allowed[np.maximum(ch, 0), np.maximum(out, 0)], index=df.index)
        if bad.any():
            problems.append(
                Problem(
                    name,
                    "outcome",
                    f"outcome does not belong to channel; {_examples(df, table, bad, 'outcome')}",
                )
            )
    if name == "holds":
        bad = df["end_date"].notna() & (df["end_date"] < df["start_date"])
        if bad.any():
            problems.append(Problem(name, "end_date", f"before start_date; {_examples(df, table, bad, 'end_date')}"))
    _workspace_checks(name, df, table, problems)


def _workspace_checks(name: str, df: pd.DataFrame, table: Table, problems: list[Problem]) -> None:
    """Checks of the optional tables payrank's store adds (promises, decisions)."""
    if name == "promises":
        n = df["instalments"]
        checks = [
            ("amount", df["amount"].notna() & (df["amount"] <= 0), "not > 0"),
            ("instalments", n.notna() & ((n < 1) | (n > 120)), "outside 1-120"),
            ("instalments", (df["kind"] == "promise_to_pay") & (n != 1), "a promise_to_pay has exactly 1"),
            ("first_due_date", df["first_due_date"] < df["made_at"].dt.normalize(), "before the day it was made"),
        ]
        for column, mask, what in checks:
            bad = mask.fillna(False).astype(bool)
            if bad.any():
                problems.append(Problem(name, column, f"{what}; {_examples(df, table, bad, column)}"))
    if name == "decisions":
        p = df["propensity"]
        bad = p.notna() & ((p <= 0) | (p > 1))
        if bad.any():
            problems.append(Problem(name, "propensity", f"outside (0, 1]; {_examples(df, table, bad, 'propensity')}"))
        twice = df.duplicated(["account_id", "decided_for"], keep=False) & df["account_id"].notna()
        if twice.any():
            problems.append(
                Problem(name, "decided_for", f"two decisions for one account and day; {_examples(df, table, twice)}")
            )


def _foreign_key_problems(typed: dict[str, pd.DataFrame], name: str, col: Column) -> tuple[list[Problem], np.ndarray]:
    """Problems of one foreign key, and each row's position in the referenced table (-1: none)."""
    ref_table, ref_col = (col.references or "").split(".")
    df = typed[name]
    values = df[col.name]
    pos = positions(values, pd.Index(typed[ref_table][ref_col]))
    bad = pd.Series(pos < 0, index=df.index) & values.notna()
    if not bad.any():
        return [], pos
    examples = _examples(df, TABLES[name], bad, col.name)
    return [Problem(name, col.name, f"{int(bad.sum())} row(s) point to no {ref_table} row; {examples}")], pos


def _checked_table(
    name: str, frame: pd.DataFrame, keep_index: bool = False
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """(typed table or None, its problems); with `keep_index`, rows are named by the frame's index (a slice of a
    table whose index holds the rows' positions in the whole table, as the Spark engine checks it)."""
    problems: list[Problem] = []
    result = _typed_table(name, frame, problems, keep_index)
    if result is not None:
        _row_checks(name, result, problems)
    return result, problems


def _in_threads(jobs: list[Callable[[], T]]) -> list[T]:
    """Run independent checks in threads, results in the jobs' order (so messages come in a fixed order).

    Arrow's kernels and pandas' hashing release the GIL, so a large book validates up to ~2x faster on 2 cores.
    """
    if len(jobs) < 2 or (os.cpu_count() or 1) < 2:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


RawTable = pd.DataFrame | None | Future
"""A raw table as read, None when the source lacks it, or a Future of either (a read still under way)."""


def _fetch_and_check(name: str, raw: RawTable) -> tuple[bool, pd.DataFrame | None, list[Problem]]:
    """(present, typed table or None, problems) of one table, waiting for its read first if need be."""
    frame = raw.result() if isinstance(raw, Future) else raw
    if frame is None:
        return False, None, []
    return (True, *_checked_table(name, frame))


def validate_tables(raw: Mapping[str, RawTable]) -> Book:
    """Type and check raw tables; returns a Book or raises BookError with every problem found.

    A table may be given as a Future: each table is checked as soon as its read finishes, so reading the big
    tables overlaps checking the small ones.
    """
    problems: list[Problem] = []
    typed: dict[str, pd.DataFrame] = {}
    checked = _in_threads([functools.partial(_fetch_and_check, name, raw.get(name)) for name in TABLES])
    for (name, table), (present, _, _) in zip(TABLES.items(), checked, strict=True):
        if not present:
            if table.optional:
                typed[name] = empty_frame(name)
            else:
                problems.append(Problem(name, "-", "required table is missing"))
    for name, (_, result, found) in zip(TABLES, checked, strict=True):
        problems.extend(found)
        if result is not None:
            typed[name] = result
    typed = {name: typed[name] for name in TABLES if name in typed}
    references = [
        (name, col)
        for name in typed
        for col in TABLES[name].columns
        if col.references and col.references.split(".")[0] in typed
    ]
    checked_keys = _in_threads([functools.partial(_foreign_key_problems, typed, n, c) for n, c in references])
    for found, _ in checked_keys:
        problems.extend(found)
    if problems:
        raise BookError(problems)
    book = Book(**typed)
    book.remember_key_positions({(n, c.name): pos for (n, c), (_, pos) in zip(references, checked_keys, strict=True)})
    return book
