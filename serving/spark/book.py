"""A book on Spark: its tables read from Parquet or JDBC, then packed into groups of whole guarantors.

Every row gets its guarantor's group, `pmod(xxhash64(guarantor_id), groups)` (rows keyed by account take their
account's guarantor). The tables of a group travel together as one long frame — a table tag, the row's position in
its table, and each table's columns under `<table>__<column>` — so one `applyInPandas` call receives whole
guarantors with everything the pandas path would read about them, and rebuilds a `Book` from it (`unpack_book`)
through the same validation that types the pandas path's book.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from features.schema import TABLES, Book
from features.validate import BookError, Problem, validate_tables

PART = "_part"
TAG = "_table"
ROW = "_row"
TABLE_NAMES = list(TABLES)


def is_jdbc(src: str) -> bool:
    return src.startswith("jdbc:")


def read_tables(spark: Any, src: str, jdbc_options: dict[str, str] | None = None) -> dict[str, Any]:
    """Spark frames per contract table (None where absent), with only the contract's columns and a row position.

    `src` is a folder holding `<table>.parquet` (a file, or a folder of part files, partitioned or not) or a
    `jdbc:` URL (tables by their contract names).
    """
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for name, table in TABLES.items():
        frame = _read_jdbc(spark, src, name, jdbc_options or {}) if is_jdbc(src) else _read_parquet(spark, src, name)
        if frame is None:
            out[name] = None
            continue
        keep = [c for c in frame.columns if c in set(table.names)]
        out[name] = frame.select(*keep).withColumn(ROW, F.monotonically_increasing_id())
    return out


def _read_parquet(spark: Any, src: str, name: str) -> Any:
    folder = Path(src)
    if not folder.is_dir():
        raise BookError([Problem("book", "-", f"no book at {src!r}: not a directory or jdbc: URL")])
    for path in (folder / f"{name}.parquet", folder / name):
        if path.exists():
            try:
                return spark.read.parquet(str(path))
            except Exception as exc:
                msg = f"cannot read {folder.name}/{name}: {type(exc).__name__}"
                raise BookError([Problem(name, "-", msg)]) from None
    return None


JDBC_DRIVERS = {"postgresql": "org.postgresql.Driver", "mysql": "com.mysql.cj.jdbc.Driver", "sqlite": "org.sqlite.JDBC"}


def _read_jdbc(spark: Any, url: str, name: str, options: dict[str, str]) -> Any:
    driver = JDBC_DRIVERS.get(url.split(":")[1]) if url.count(":") > 1 else None
    options = {"driver": driver, **options} if driver else options
    try:
        return spark.read.format("jdbc").options(url=url, dbtable=name, **options).load()
    except Exception as exc:
        text = str(exc).lower()
        if "does not exist" in text or "not found" in text or "no such table" in text:
            return None
        safe = url.split("@")[-1].split("?")[0]
        raise BookError([Problem("book", "-", f"cannot read database {safe!r}: {type(exc).__name__}")]) from None


def group_column(guarantor_id: Any, groups: int) -> Any:
    """The group of a guarantor id column: stable across runs and machines (xxhash64)."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(guarantor_id), F.lit(groups)).cast("int")


def pack(tables: dict[str, Any], groups: int) -> tuple[Any, dict[str, pa.Schema]]:
    """(one long frame of every table's rows with their guarantor group, each table's Arrow schema as read).

    Rows of accounts unknown to `accounts` are dropped here (validation reports them before this runs).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    accounts = tables["accounts"]
    owner = accounts.select("account_id", group_column(F.col("guarantor_id"), groups).alias(PART))
    parts, schemas = [], {}
    for i, name in enumerate(TABLE_NAMES):
        frame = tables.get(name)
        if frame is None:
            continue
        cols = [c for c in frame.columns if c != ROW]
        schemas[name] = _naive(to_arrow_schema(frame.select(*cols).schema, timezone="UTC"))
        if name in {"guarantors", "accounts"}:
            keyed = frame.withColumn(PART, group_column(F.col("guarantor_id"), groups))
        else:
            keyed = frame.join(owner, on="account_id", how="inner")
        parts.append(
            keyed.select(F.col(PART), F.lit(i).alias(TAG), F.col(ROW), *(F.col(c).alias(f"{name}__{c}") for c in cols))
        )
    packed = parts[0]
    for part in parts[1:]:
        packed = packed.unionByName(part, allowMissingColumns=True)
    return packed, schemas


def _naive(schema: pa.Schema) -> pa.Schema:
    """Timestamps without a zone: Spark hands pandas naive UTC times (session time zone UTC), as the book has them."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz else f
        for f in schema
    ]
    return pa.schema(fields)


def unpack_raw(pdf: pd.DataFrame, schemas: dict[str, pa.Schema]) -> dict[str, pd.DataFrame | None]:
    """The raw tables of one group, in the book's row order, typed as the pandas path's Parquet reader types them."""
    out: dict[str, pd.DataFrame | None] = {name: None for name in TABLE_NAMES}
    tags = pdf[TAG].to_numpy()
    for i, name in enumerate(TABLE_NAMES):
        schema = schemas.get(name)
        if schema is None:
            continue
        rows = pdf[tags == i].sort_values(ROW, kind="stable")
        arrays = [pa.array(rows[f"{name}__{f.name}"], type=f.type, from_pandas=True) for f in schema]
        out[name] = pa.Table.from_arrays(arrays, schema=schema).to_pandas(date_as_object=False)
    return out


def unpack_book(pdf: pd.DataFrame, schemas: dict[str, pa.Schema]) -> Book:
    """The Book of one group of whole guarantors (validated and typed as `load_book` types a book)."""
    return validate_tables(unpack_raw(pdf, schemas))
