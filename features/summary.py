"""A one-screen summary of a book: rows per table, date range, open balance."""

from __future__ import annotations

import pandas as pd
from rich.table import Table as RichTable

from features.schema import Book


def book_stats(book: Book) -> dict[str, object]:
    """Numbers a person checks first: rows per table, first/last day, open balance and accounts."""
    tx = book.transactions
    days = pd.concat([tx["posted_date"], book.contacts["contacted_at"].dt.normalize(), book.accounts["service_date"]])
    balance = tx.groupby("account_id", sort=False)["amount"].sum()
    open_bal = balance[balance >= 5.0]
    return {
        "rows": {name: len(df) for name, df in book.tables().items()},
        "first_day": None if days.empty else days.min().date(),
        "last_day": None if days.empty else days.max().date(),
        "open_accounts": int(len(open_bal)),
        "open_balance": float(round(open_bal.sum(), 2)),
    }


def book_summary(book: Book) -> RichTable:
    """The stats as a rich table."""
    stats = book_stats(book)
    table = RichTable(title="book", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, n in stats["rows"].items():  # type: ignore[union-attr]
        table.add_row(f"{name} rows", f"{n:,}")
    table.add_row("date range", f"{stats['first_day']} → {stats['last_day']}")
    table.add_row("accounts with balance ≥ $5", f"{stats['open_accounts']:,}")
    table.add_row("their balance", f"${stats['open_balance']:,.2f}")
    return table
