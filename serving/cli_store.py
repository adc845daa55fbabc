"""The commands of the operational store: `payrank db`, `payrank specialists`, `payrank export`, `payrank promises`,
and the helpers behind `--publish` and `--with-store` of the book commands.

Every command that needs the store opens it through `serving.store.db.open_store`, which upgrades the schema
first: an empty database (the default SQLite file under PAYRANK_HOME, or PAYRANK_DB_URL) just works.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.config import Settings

WithStoreOpt = Annotated[
    bool,
    typer.Option(
        "--with-store/--without-store",
        help="Lay the store's recorded contacts, holds, promises and decisions over the book (PAYRANK_DB_URL).",
    ),
]
DbUrlOpt = Annotated[str | None, typer.Option("--db-url", help="Store URL (default PAYRANK_DB_URL, else SQLite).")]


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _store(db_url: str | None = None) -> Any:
    from serving.store.db import open_store

    return open_store(db_url, Settings())


def overlay_store(book: Any, db_url: str | None = None) -> Any:
    """`book` with the store's rows laid over it (features.overlay.overlay_book)."""
    from features.overlay import overlay_book
    from serving.store.export import store_tables

    store = _store(db_url)
    try:
        return overlay_book(book, store_tables(store))
    finally:
        store.dispose()


def publish_scored(
    book: Any,
    scored: Any,
    calls: int,
    config: Any,
    model_version: str,
    on_shift: list[str] | None,
    console: Any,
    db_url: str | None = None,
    profitable_only: bool = False,
) -> Any:
    """Decide the day with exploration, publish it to the store, print what happened; returns the published list."""
    from serving.exploration import Exploration
    from serving.store.publish import prepare_publication, publish
    from serving.worklist import WORKLIST_COLUMNS

    settings = Settings()
    exploration = Exploration(settings.exploration_share, settings.exploration_call_band)
    pub, decided = prepare_publication(book, scored, calls, config, exploration, model_version, profitable_only)
    store = _store(db_url)
    try:
        report = publish(store, pub, now_utc(), on_shift)
    finally:
        store.dispose()
    console.print(
        f"published {report.published} calls for {report.day} to the store "
        f"({report.kept} worked items kept, {report.replaced} untouched replaced, "
        f"{report.skipped_earlier} unreached earlier items skipped)",
        soft_wrap=True,
    )
    for who, load in sorted(report.per_specialist.items()):
        console.print(f"  {who}: {int(load['items'])} calls, ${load['expected_value']:,.2f} expected", highlight=False)
    console.print(
        f"decisions: {report.decisions:,} accounts logged with propensities, {report.explored:,} explored "
        f"(share {exploration.share:g}, call band {decided.band}); exploration costs ${decided.cost:,.2f} expected "
        f"today (calls ${decided.cost_calls:,.2f}, other channels ${decided.cost_other:,.2f})",
        highlight=False,
        soft_wrap=True,
    )
    return pub.items[[c for c in WORKLIST_COLUMNS if c in pub.items.columns]]


def register(app: typer.Typer) -> None:
    """Add the store's commands to the `payrank` app."""
    from serving.cli import UserError, console, friendly_errors, parse_day

    db_app = typer.Typer(no_args_is_help=True, help="The operational store's schema (Alembic migrations).")
    people = typer.Typer(no_args_is_help=True, help="Specialists and supervisors who work the list.")
    app.add_typer(db_app, name="db")
    app.add_typer(people, name="specialists")

    @db_app.command("upgrade")
    @friendly_errors
    def db_upgrade(db_url: DbUrlOpt = None) -> None:
        """Create or upgrade the store's schema to the latest revision."""
        from serving.store.db import current_revision, store_url

        store = _store(db_url)
        url = db_url or store_url(Settings())
        console.print(f"store at revision [bold]{current_revision(store.engine)}[/] ({_safe(url)})", highlight=False)
        store.dispose()

    @people.command("add")
    @friendly_errors
    def specialists_add(
        username: Annotated[str, typer.Argument(help="Login name (a-z 0-9 . _ -).")],
        name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
        role: Annotated[str, typer.Option(help="specialist or supervisor.")] = "specialist",
        languages: Annotated[str, typer.Option(help="Languages spoken, ISO 639-1, comma-separated.")] = "en",
        password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
        db_url: DbUrlOpt = None,
    ) -> None:
        """Add a person who can log in to the work API (the password is asked for, or read from stdin)."""
        from serving.store.auth import add_specialist

        password = (
            sys.stdin.readline().rstrip("\n")
            if password_stdin
            else typer.prompt("password", hide_input=True, confirmation_prompt=True)
        )
        store = _store(db_url)
        try:
            with store.session() as session:
                person = add_specialist(session, username, name, password, now_utc(), role, languages)
                console.print(f"added {person.role} [bold]{person.id}[/] ({person.languages})", highlight=False)
        finally:
            store.dispose()

    @people.command("list")
    @friendly_errors
    def specialists_list(db_url: DbUrlOpt = None) -> None:
        """Everyone who can log in."""
        import sqlalchemy as sa
        from rich.table import Table

        from serving.store.models import Specialist

        store = _store(db_url)
        table = Table(title="specialists")
        for col in ("id", "name", "role", "languages", "active"):
            table.add_column(col)
        with store.session() as session:
            for p in session.scalars(sa.select(Specialist).order_by(Specialist.id)):
                table.add_row(p.id, p.display_name, p.role, p.languages, "yes" if p.active else "no")
        store.dispose()
        console.print(table)

    @people.command("deactivate")
    @friendly_errors
    def specialists_deactivate(
        username: Annotated[str, typer.Argument(help="Login name.")], db_url: DbUrlOpt = None
    ) -> None:
        """Stop someone logging in; their open items go back to the shared queue."""
        import sqlalchemy as sa

        from serving.store.models import ApiToken, Specialist, WorkItem

        store = _store(db_url)
        try:
            with store.session() as session:
                person = session.get(Specialist, username.strip().lower())
                if person is None:
                    raise UserError(f"no specialist named {username!r}")
                person.active = False
                now = now_utc()
                session.execute(
                    sa.update(ApiToken)
                    .where(ApiToken.specialist_id == person.id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                moved = session.execute(
                    sa.update(WorkItem)
                    .where(WorkItem.assigned_to == person.id, WorkItem.status == "open")
                    .values(assigned_to=None, owner_only=False, updated_at=now)
                ).rowcount
        finally:
            store.dispose()
        console.print(f"deactivated {person.id}; {moved} open item(s) moved to the shared queue")

    @app.command("export")
    @friendly_errors
    def export_cmd(
        since: Annotated[str, typer.Option("--since", help="First day to export (YYYY-MM-DD).")],
        out: Annotated[Path, typer.Option("--out", help="Folder to write contacts/holds/promises/decisions into.")],
        fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
        db_url: DbUrlOpt = None,
    ) -> None:
        """Write the store's recorded contacts (with propensities), holds, promises and decisions in the contract."""
        from serving.store.export import export

        day = parse_day(since, "--since")
        store = _store(db_url)
        try:
            counts = export(store, day, out, fmt)
        finally:
            store.dispose()
        rows = ", ".join(f"{n:,} {t}" for t, n in counts.items())
        console.print(f"exported {rows} since {day} → [bold]{out}[/]", highlight=False, soft_wrap=True)

    @app.command("promises")
    @friendly_errors
    def promises_cmd(
        data: Annotated[str, typer.Option("--data", help="Book: a folder of CSV/Parquet files or a SQLAlchemy URL.")],
        as_of: Annotated[str, typer.Option("--as-of", help="As-of day YYYY-MM-DD.")],
        with_store: WithStoreOpt = True,
        out: Annotated[
            Path | None, typer.Option("--out", help="Every instalment with its status (.csv/.parquet).")
        ] = None,
    ) -> None:
        """How many promises to pay (and plan instalments) were kept, broken, or are still open on the as-of day."""
        from features.history_promises import promise_kept_rate, promise_outcomes
        from features.io import check_output_path, write_frame
        from features.load import load_book

        day = parse_day(as_of)
        if out is not None:
            check_output_path(out)
        book = load_book(data)
        if with_store:
            book = overlay_store(book)
        outcomes = promise_outcomes(book, day)
        m = promise_kept_rate(outcomes)
        if out is not None:
            write_frame(outcomes, out)
        rate = "n/a" if m["kept"] + m["broken"] == 0 else f"{m['kept_rate']:.1%}"
        console.print(
            f"promises as of {day}: {m['kept']} kept (${m['kept_dollars']:,.2f}), {m['broken']} broken "
            f"(${m['broken_dollars']:,.2f}), {m['open']} open; kept rate {rate}",
            highlight=False,
            soft_wrap=True,
        )


def _safe(url: str) -> str:
    """A URL without its credentials, for printing."""
    return url.split("@")[-1] if "@" in url else url
