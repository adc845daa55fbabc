"""Reading a book from a directory of CSV/Parquet files or from a SQL database, then validating it.

Every command that reads a book calls `load_book`, so every command refuses a broken book the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from features.schema import TABLES, Book
from features.validate import BookError, Problem, validate_tables

SQL_PREFIXES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb", "oracle", "mssql")


def is_sql_url(src: str) -> bool:
    """True when `src` is a SQLAlchemy URL rather than a path."""
    return "://" in src and src.split(":", 1)[0].split("+", 1)[0] in {p.rstrip(":") for p in SQL_PREFIXES}


def read_raw_tables(src: str | Path) -> dict[str, pd.DataFrame | None]:
    """Raw frames per contract table (None where a table is absent); only the contract's columns are kept."""
    text = str(src)
    if is_sql_url(text):
        return _read_sql(text)
    path = Path(text)
    if path.is_file() and path.suffix in {".db", ".sqlite", ".sqlite3"}:
        return _read_sql(f"sqlite:///{path.resolve()}")
    if not path.is_dir():
        raise BookError([Problem("book", "-", f"no book at {text!r}: not a directory, database file or SQL URL")])
    return {name: _read_file_table(path, name) for name in TABLES}


def _read_file_table(folder: Path, name: str) -> pd.DataFrame | None:
    wanted = set(TABLES[name].names)
    parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if parquet.exists():
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pq.read_schema(parquet)
            present = [c for c in schema.names if c in wanted]
            # enum columns stay dictionary-encoded (pandas categoricals): validation then checks a handful of
            # distinct values instead of decoding millions of strings (4x faster for the contacts table)
            enums = [
                c
                for c in present
                if TABLES[name].column(c).kind == "enum"
                and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))
            ]
            table = pq.read_table(parquet, columns=present, read_dictionary=enums)
            # dates as datetime64, not Python date objects: typing 4M object dates took most of a 1M-book load
            return table.to_pandas(date_as_object=False)
        if csv.exists():
            return pd.read_csv(
                csv,
                dtype=str,
                usecols=lambda c: c in wanted,
                keep_default_na=False,
                na_values=[""],
            )
    except Exception as exc:  # unreadable file: report it as a problem of that table
        raise BookError(
            [Problem(name, "-", f"cannot read {folder.name}/{name}: {type(exc).__name__}: {exc}")]
        ) from None
    return None


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite URL's database file when it does not exist (connecting would create it empty)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # reported by the connection attempt
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database.startswith("file:"):  # sqlite URI filenames: file:path?mode=...
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in {"", ":memory:"}:
        return database or ":memory:"
    return None if Path(database).is_file() else database


def _read_sql(url: str) -> dict[str, pd.DataFrame | None]:
    import sqlalchemy as sa

    missing = _missing_sqlite_file(url)
    if missing is not None:
        raise BookError([Problem("book", "-", f"no SQLite database file at {missing!r} (it is never created)")])
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            out: dict[str, pd.DataFrame | None] = {}
            for name, table in TABLES.items():
                if name not in present:
                    out[name] = None
                    continue
                cols = {c["name"] for c in sa.inspect(conn).get_columns(name)}
                keep = [c for c in table.names if c in cols]
                quoted = ", ".join(f'"{c}"' for c in keep)
                out[name] = pd.read_sql_query(sa.text(f'SELECT {quoted} FROM "{name}"'), conn)
        engine.dispose()
        return out
    except BookError:
        raise
    except Exception as exc:
        safe = url.split("@")[-1] if "@" in url else url
        raise BookError([Problem("book", "-", f"cannot read database {safe!r}: {type(exc).__name__}")]) from None


def load_book(src: str | Path) -> Book:
    """Read and validate a book; raises BookError listing every problem found.

    A folder's files are read in threads (Arrow and pandas' readers release the GIL) and each table is
    checked as soon as it is read, so reading the large tables overlaps checking the small ones.
    """
    path = Path(str(src))
    if is_sql_url(str(src)) or not path.is_dir():
        return validate_tables(read_raw_tables(src))
    with ThreadPoolExecutor(max_workers=len(TABLES), thread_name_prefix="read") as pool:
        pending = {name: pool.submit(_read_file_table, path, name) for name in TABLES}
        return validate_tables(pending)
