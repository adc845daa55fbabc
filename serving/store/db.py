"""Connecting to the operational store and bringing its schema up to date (Alembic, run in-process).

The store is SQLite under PAYRANK_HOME by default (`sqlite:///.payrank/workspace.db`) and PostgreSQL (or any
SQLAlchemy URL) through PAYRANK_DB_URL. `open_store` upgrades the schema to the latest revision before anything
else touches it, so every command that needs the store works on an empty database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from serving.config import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_SECONDS = 30


def store_url(settings: Settings) -> str:
    """PAYRANK_DB_URL, else a SQLite file under PAYRANK_HOME (its folder is created)."""
    if settings.db_url:
        return settings.db_url
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'workspace.db'}"


def make_engine(url: str) -> sa.Engine:
    """An engine. SQLite gets foreign keys, WAL, and transactions that begin with the write lock (`BEGIN
    IMMEDIATE`, waiting up to 30 s for it): a transaction reads what the one before it committed, so SQLite serialises
    the day's work as PostgreSQL's row locks do."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = (
                None  # we emit BEGIN ourselves (pysqlite would defer it to the 1st write)
            )
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _alembic_config(connection: sa.Connection) -> Any:
    """Alembic's configuration for our migrations folder, sharing `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` (default: the latest), in one transaction."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The latest revision the code knows."""
    from alembic.script import ScriptDirectory

    with make_engine("sqlite://").connect() as connection:
        return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head() or ""


@dataclass
class Store:
    """An upgraded store: its engine and a session factory (expire_on_commit off: rows stay readable)."""

    engine: sa.Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, or rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, settings: Settings | None = None, migrate: bool = True) -> Store:
    """Connect (to `url`, else the settings' store) and upgrade the schema to the latest revision."""
    engine = make_engine(url or store_url(settings or Settings()))
    if migrate:
        upgrade(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
