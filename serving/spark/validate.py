"""Validation of a book on Spark: the pandas path's problems, with the same lines.

Each table's rows are checked in slices (`mapInPandas`) by the pandas path's own `_checked_table`, every row named
by its position in the whole table; the slices' problems are merged (counts summed, the first examples by position
kept, in the order the pandas path reports them). The checks across rows — duplicate keys and foreign keys — run
as Spark aggregations and anti-joins. Nothing is written before this passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd

from features.schema import TABLES
from features.validate import MAX_EXAMPLES, BookError, Problem, _checked_table, _examples
from serving.spark.book import ROW, TABLE_NAMES

POS = "_pos"
_MESSAGE = re.compile(r"^(?:(\d+) )?(.*?); e\.g\. (.*)$", re.S)
_SIGN = "sign contradicts kind ("
COLUMN_KINDS = ("unknown value", "unparseable", "not a boolean", "missing value", "out of range", "not a whole")
ROW_CHECKS = (
    ("zip3", "must be exactly"),
    ("amount", "sign contradicts"),
    ("propensity", "outside (0, 1]"),
    ("outcome", "outcome does not"),
    ("end_date", "before start_date"),
    ("amount", "not > 0"),
    ("instalments", "outside 1-120"),
    ("instalments", "a promise_to_pay"),
    ("first_due_date", "before the day"),
    ("decided_for", "two decisions"),
)
CROSS_ROW = ("duplicate key",)  # checked over the whole table by Spark, not per slice


def with_positions(frame: Any) -> Any:
    """The table with `_pos`, each row's position in the table as read (monotonically_increasing_id's partition
    and row bits, made contiguous with the partitions' counts)."""
    from pyspark.sql import functions as F

    part = F.shiftright(F.col(ROW), 33)
    counts = sorted(tuple(r) for r in frame.groupBy(part.alias("p")).count().collect())
    offsets, total = {}, 0
    for p, n in counts:
        offsets[p], total = total, total + n
    if not offsets:
        return frame.withColumn(POS, F.lit(0).cast("long"))
    start = F.create_map(*[x for p, o in offsets.items() for x in (F.lit(p), F.lit(o))])
    return frame.withColumn(POS, (start[part] + (F.col(ROW) - F.shiftleft(part, 33))).cast("long"))


def _slice_problems(name: str, columns: list[str]) -> Any:
    def per_batch(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        table = TABLES[name]
        for pdf in batches:
            frame = pdf.set_index(POS)[columns]
            frame.index.name = None
            _, problems = _checked_table(name, frame, keep_index=True)
            rows = []
            for p in problems:
                m = _MESSAGE.match(p.message)
                if m is None or m.group(2).startswith(CROSS_ROW):
                    continue
                count, head = m.group(1), m.group(2)
                for text in m.group(3).split(", "):
                    pos = _position(frame, table, text)
                    rows.append((int(frame.index[0]), p.column, head, int(count) if count else None, pos, text))
            if rows:
                yield pd.DataFrame(rows, columns=["slice", "column", "head", "count", "pos", "text"])

    return per_batch


def _position(frame: pd.DataFrame, table: Any, text: str) -> int:
    """The table position of an example ('row 7', or 'account_id=a1': its first row in the slice)."""
    if text.startswith("row "):
        return int(text[4:])
    key, value = text.split("=", 1)
    hit = frame.index[frame[key].astype(str).str.strip() == value] if key in frame.columns else []
    return int(hit[0]) if len(hit) else int(frame.index[0])


def _merged(name: str, found: pd.DataFrame) -> list[tuple[tuple, Problem]]:
    """(rank, problem): one problem per (column, kind) over all slices; the rank orders them as the pandas path."""
    table = TABLES[name]
    out: list[tuple[tuple, Problem]] = []
    found = found.assign(kind=found["head"].where(~found["head"].str.startswith(_SIGN), _SIGN))
    for (column, kind), rows in found.groupby(["column", "kind"], sort=False):
        firsts = rows.drop_duplicates(["pos", "text"]).sort_values("pos").head(MAX_EXAMPLES)
        head = kind
        if kind == _SIGN:
            kinds = sorted({k for h in rows["head"] for k in h[len(_SIGN) : -1].split(", ")})
            head = f"{_SIGN}{', '.join(kinds)})"
        per_slice = rows.drop_duplicates(["slice", "head"])["count"]
        total = int(per_slice.sum()) if per_slice.notna().any() else None
        text = f"{total} {head}" if total is not None else head
        message = f"{text}; e.g. {', '.join(firsts['text'])}"
        out.append((_rank(table, column, head), Problem(name, column, message)))
    return out


def _rank(table: Any, column: str, head: str) -> tuple:
    for i, (col, prefix) in enumerate(ROW_CHECKS):
        if col == column and head.startswith(prefix):
            return (1, i, 0)
    kind = next((i for i, k in enumerate(COLUMN_KINDS) if k in head), len(COLUMN_KINDS))
    if head.startswith("number out of range"):
        kind = len(COLUMN_KINDS)
    return (0, table.names.index(column) if column in table.names else 99, kind)


def _duplicates(name: str, frame: Any) -> list[tuple[tuple, Problem]]:
    from pyspark.sql import functions as F

    table = TABLES[name]
    key = table.key
    if key is None:
        return []
    trimmed = frame.select(F.col(POS), F.trim(F.col(key)).alias(key)).filter(
        F.col(key).isNotNull() & (F.col(key) != "")
    )
    twice = trimmed.groupBy(key).count().filter(F.col("count") > 1).select(key)
    first = trimmed.join(twice, on=key).orderBy(POS).limit(MAX_EXAMPLES).toPandas()
    if first.empty:
        return []
    tiny = first.set_index(POS)[[key]]
    examples = _examples(tiny, table, pd.Series(True, index=tiny.index))
    return [((1, -1, 0), Problem(name, key, f"duplicate key; {examples}"))]


def _foreign_keys(name: str, frame: Any, tables: dict[str, Any]) -> list[Problem]:
    from pyspark.sql import functions as F

    table, problems = TABLES[name], []
    for col in table.columns:
        if not col.references:
            continue
        ref_name, ref_col = col.references.split(".")
        ref = tables.get(ref_name)
        if ref is None or ref_col not in ref.columns:
            continue
        known = ref.select(F.trim(F.col(ref_col)).alias("_ref")).distinct()
        value = F.trim(F.col(col.name))
        shown = [c for c in {table.key or "account_id", col.name} if c in frame.columns]
        rows = frame.select(POS, *shown, value.alias("_v")).filter(F.col("_v").isNotNull() & (F.col("_v") != ""))
        bad = rows.join(known, rows["_v"] == known["_ref"], "left_anti").persist()
        count = bad.count()
        if count:
            first = bad.orderBy(POS).limit(MAX_EXAMPLES).toPandas().set_index(POS)
            for c in shown:
                first[c] = first[c].astype(str).str.strip()
            examples = _examples(first, table, pd.Series(True, index=first.index), col.name)
            problems.append(Problem(name, col.name, f"{count} row(s) point to no {ref_name} row; {examples}"))
        bad.unpersist()
    return problems


def validate_on_spark(tables: dict[str, Any]) -> None:
    """Raise BookError with the pandas path's problems when the book on Spark breaks the contract."""
    from pyspark.sql import types as T

    problems: list[Problem] = []
    for name in TABLE_NAMES:
        if tables.get(name) is None and not TABLES[name].optional:
            problems.append(Problem(name, "-", "required table is missing"))
    complete: dict[str, Any] = {}
    schema = T.StructType(
        [
            T.StructField("slice", T.LongType()),
            T.StructField("column", T.StringType()),
            T.StructField("head", T.StringType()),
            T.StructField("count", T.LongType()),
            T.StructField("pos", T.LongType()),
            T.StructField("text", T.StringType()),
        ]
    )
    for name in TABLE_NAMES:
        frame = tables.get(name)
        if frame is None:
            continue
        missing = [c for c in TABLES[name].names if c not in frame.columns]
        problems += [Problem(name, c, "required column is missing") for c in missing]
        if missing:
            continue
        frame = with_positions(frame)
        columns = list(TABLES[name].names)
        found = frame.select(POS, *columns).mapInPandas(_slice_problems(name, columns), schema=schema).toPandas()
        merged = _merged(name, found) if len(found) else []
        problems += [p for _, p in sorted(_duplicates(name, frame) + merged, key=lambda x: x[0])]
        complete[name] = frame
    for name, frame in complete.items():
        problems += _foreign_keys(name, frame, complete)
    if problems:
        raise BookError(problems)
