"""A real workspace for browser tests, screenshots and the benchmark: a small generated book, a store with a
published day whose items are that book's accounts, four people, and the app served by uvicorn in a thread."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from serving.api import create_app
from serving.api.model_holder import ServedModel
from serving.api.settings import ApiSettings
from serving.store.db import Store
from serving.store.models import WorkItem
from tests.store_helpers import DAY, PASSWORD, add_people, fresh_store, item_row, local, publish_rows

CHROMIUM = "/usr/bin/chromium"
BOOK_END = date(2026, 10, 31)
NOON = local(DAY, 12)
PEOPLE = [("ana", "specialist", "en,es"), ("bo", "specialist", "en"), ("sue", "supervisor", "en")]


def chromium_or_fail() -> str:
    """Debian's Chromium, or a failure saying how to install it (never a silent skip)."""
    if not os.access(CHROMIUM, os.X_OK):
        import pytest

        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install -y chromium; "
                    "`make test` installs it when run as root)", pytrace=False)  # fmt: skip
    return CHROMIUM


def stub_model() -> ServedModel:
    """A stand-in for the served model: the workspace never scores (publishing from the page is tested apart)."""
    loaded = SimpleNamespace(name="payrank", version="7", uri="models:/payrank/7", label="payrank/7")
    return ServedModel(loaded=loaded, input_schema=None)  # type: ignore[arg-type]


def write_small_book(folder: Path, guarantors: int = 600) -> Any:
    """A generated book ending BOOK_END (parquet in `folder`); returns the Book."""
    from features.generate import generate_book, write_book

    book, truth = generate_book(guarantors, seed=3, end_date=BOOK_END)
    write_book(book, folder, "parquet")
    return book


@dataclass
class Seeded:
    """Ids the tests need: ana's items by rank, the shared guarantor's two items, the closed-window item."""

    ana: list[int]
    shared_ana: int
    shared_bo: int
    closed: int
    capped: int


def seed_day(store: Store, book: Any, extra: int = 0) -> Seeded:
    """Publish DAY: ana has rank 1 = account A of a guarantor whose account B is bo's; a Hawaii item (window
    closed at noon Chicago time); one with 7 calls in 7 days; `extra` more calls for ana (the benchmark)."""
    add_people(store, NOON, PEOPLE)
    tx = book.transactions
    balance = tx.groupby(tx["account_id"].astype(str))["amount"].sum()
    accounts = book.accounts.assign(account_id=book.accounts["account_id"].astype(str),
                                    guarantor_id=book.accounts["guarantor_id"].astype(str))  # fmt: skip
    accounts = accounts.assign(balance=accounts["account_id"].map(balance).fillna(0.0))
    counts = accounts.groupby("guarantor_id")["account_id"].transform("size")
    owing = accounts[accounts["balance"] > 50]
    pairs = owing[owing["guarantor_id"].map(owing["guarantor_id"].value_counts()) >= 2]
    pair = pairs[pairs["guarantor_id"] == pairs["guarantor_id"].iloc[0]].head(2)
    singles = owing[counts.loc[owing.index] == 1]
    g = pair["guarantor_id"].iloc[0]
    (a_acc, b_acc), (a_bal, b_bal) = pair["account_id"].tolist(), pair["balance"].tolist()
    reasons = "balance is large for this payer class; paid twice in the last year; 45 days since the last statement"
    recent = [[(local(DAY, 10) - timedelta(days=d)).isoformat(), "no_answer"] for d in range(7)]
    earlier = [[(local(DAY, 11) - timedelta(days=d)).isoformat(), o] for d, o in ((3, "voicemail"), (5, "no_answer"))]
    rows = [
        item_row(a_acc, g, rank=1, ev=48.0, other_accounts=b_acc) | {"reasons": reasons, "balance": a_bal},
        item_row(b_acc, g, rank=2, ev=47.0, other_accounts=a_acc) | {"reasons": reasons, "balance": b_bal},
    ]
    specs = [("IL", None), ("TX", earlier), ("HI", None), ("CA", recent), ("NY", None), ("IL", None)]
    specs += [("IL", None)] * extra
    words = ["recent insurance payment left a patient balance", "answered a call last quarter",
             "texts get read", "no payment since the statement", "paid a small amount in the spring"]  # fmt: skip
    for n, (state, calls) in enumerate(specs):
        acc = singles.iloc[n % len(singles)]
        row = item_row(acc["account_id"] if n < len(singles) else f"{acc['account_id']}-{n}", acc["guarantor_id"],
                       state=state, rank=n + 3, ev=40.0 - n * 0.01,
                       calls=[tuple(c) for c in calls] if calls else None)  # fmt: skip
        row |= {"balance": float(acc["balance"]), "p_pay": round(0.12 + 0.37 * ((n * 7) % 10) / 10, 3),
                "reasons": "; ".join(words[(n + k) % len(words)] for k in range(3))}  # fmt: skip
        rows.append(row)
    publish_rows(store, rows, local(DAY, 6))
    with store.session() as s:
        items = {i.account_id: i for i in s.scalars(sa.select(WorkItem))}
        for i in items.values():
            i.assigned_to = "bo" if i.account_id == b_acc else "ana"
        ana = sorted((i.rank, i.id) for i in items.values() if i.assigned_to == "ana")
        hi = next(i.id for i in items.values() if i.state == "HI")
        ca = next(i.id for i in items.values() if i.state == "CA")
    return Seeded([i for _, i in ana], items[a_acc].id, items[b_acc].id, hi, ca)


class Server:
    """The app (create_app) under uvicorn in a thread, on a free port, with the clock at NOON on DAY."""

    def __init__(self, db_url: str, home: Path, book_dir: Path | None, clock: datetime = NOON) -> None:
        import uvicorn

        settings = ApiSettings(_env_file=None, api_keys=["service-key-0123456789"], db_url=db_url, home=home)
        self.app = create_app(settings, stub_model())
        self.app.state.clock = lambda: clock
        self.app.state.web.settings.workspace_book = str(book_dir) if book_dir else None
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def workspace(tmp: Path, extra: int = 0) -> tuple[Store, Seeded, Path]:
    """A fresh store and book under `tmp`: (store, seeded ids, book folder)."""
    book_dir = tmp / "book"
    shutil.rmtree(book_dir, ignore_errors=True)
    book = write_small_book(book_dir)
    store = fresh_store(f"sqlite:///{tmp / 'workspace.db'}")
    return store, seed_day(store, book, extra), book_dir


PASSWORDS = {pid: PASSWORD for pid, _, _ in PEOPLE}
