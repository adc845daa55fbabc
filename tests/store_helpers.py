"""Real operational stores for the tests (SQLite files and per-module PostgreSQL databases), and hand-built days.

PostgreSQL runs when PAYRANK_TEST_POSTGRES_URL is set (as `.ci/run` does): each module gets its own database,
created through the server's `postgres` database and dropped at the end, so concurrent runs never share one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from features.states import STATE_TZ
from serving.exploration import Exploration
from serving.policy_accounts import GUARANTOR_FLAGS, call_windows
from serving.policy_config import PolicyConfig
from serving.store import auth
from serving.store.db import Store, open_store
from serving.store.models import Base
from serving.store.publish import Publication, publish

POSTGRES = os.environ.get("PAYRANK_TEST_POSTGRES_URL")
NO_POSTGRES = "PAYRANK_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES))]
DAY = date(2026, 10, 1)
PASSWORD = "correct horse battery"


def _admin() -> sa.Engine:
    url = sa.make_url(POSTGRES).set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the module (dropped afterwards)."""
    if not POSTGRES:
        pytest.skip(NO_POSTGRES)
    name = f"payrank_store_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def backend_url(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'workspace.db'}"
    return request.getfixturevalue("postgres_url")


def wipe(store: Store) -> None:
    """Delete every row (children first), keeping the schema: each test starts from an empty, migrated store."""
    with store.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


def add_people(store: Store, now: datetime, people: list[tuple[str, str, str]]) -> None:
    """(id, role, languages) each, all with PASSWORD."""
    with store.session() as session:
        for pid, role, languages in people:
            auth.add_specialist(session, pid, pid.title(), PASSWORD, now, role=role, languages=languages)


def item_row(
    account: str,
    guarantor: str,
    state: str = "IL",
    rank: int = 1,
    ev: float = 10.0,
    language: str = "en",
    calls: list[tuple[str, str]] | None = None,
    last_right_party: str | None = None,
    holds: list[list[Any]] | None = None,
    other_accounts: str = "",
    day: date = DAY,
    propensity: float = 1.0,
    flags: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """One call item as publishing builds it: real calling window for `day`, the book's facts as its context."""
    config = PolicyConfig()
    flags = {f: True for f in GUARANTOR_FLAGS} | (flags or {})
    acc = pd.DataFrame({"account_id": [account], "guarantor_id": [guarantor]})
    g = pd.DataFrame([{"guarantor_id": guarantor, "state": state, **flags}])
    w = call_windows(acc, g, pd.Timestamp(day), config).iloc[0]
    return {
        "account_id": account,
        "guarantor_id": guarantor,
        "rank": rank,
        "balance": 100.0 * ev,
        "p_pay": 0.2,
        "expected_value": ev,
        "best_alternative": "none",
        "reasons": "balance of $1,000",
        "other_accounts": other_accounts,
        "call_window_local": w["call_window_local"],
        "call_window_start_utc": w["call_window_start_utc"],
        "call_window_end_utc": w["call_window_end_utc"],
        "language": language,
        "state": state,
        "propensity": propensity,
        "explored": propensity < 1,
        "context": {
            "state": state,
            "tz": STATE_TZ[state],
            "flags": flags,
            "calls": [list(c) for c in (calls or [])],
            "last_right_party": last_right_party,
            "holds": holds or [],
        },
    }


def publish_rows(store: Store, rows: list[dict[str, Any]], now: datetime, day: date = DAY, **kw: Any) -> Any:
    """Publish hand-built items for `day` (each account decided "call" with its item's propensity)."""
    items = pd.DataFrame(rows)
    decisions = pd.DataFrame(
        {
            "account_id": items["account_id"],
            "guarantor_id": items["guarantor_id"],
            "action": "call",
            "propensity": items["propensity"],
            "greedy_action": "call",
            "explored": False,
            "value": items["expected_value"],
            "greedy_value": items["expected_value"],
        }
    )
    pub = Publication(
        day=day,
        as_of=day - timedelta(days=1),
        model_version="payrank/test",
        policy_digest="0" * 64,
        policy_version="payrank/test|policy:test|explore:0.05/0.1",
        capacity=len(rows),
        exploration=Exploration(),
        cost_calls=0.0,
        cost_other=0.0,
        items=items,
        decisions=decisions,
    )
    return publish(store, pub, now, **kw)


def local(day: date, hour: int, state: str = "IL") -> datetime:
    """Naive UTC of `hour`:00 local time on `day` in the state's zone."""
    ts = pd.Timestamp(datetime.combine(day, datetime.min.time())) + pd.Timedelta(hours=hour)
    return ts.tz_localize(STATE_TZ[state]).tz_convert("UTC").tz_localize(None).to_pydatetime()


def fresh_store(url: str) -> Store:
    store = open_store(url)
    wipe(store)
    return store
