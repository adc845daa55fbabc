"""The operational store's tables (SQLAlchemy 2 declarative): who works, what is to be worked, what happened.

Times are naive UTC (`DateTime` without a zone), as the data contract's timestamps are; days are local calendar
days of the work (`Date`). Enumerated text columns carry CHECK constraints, so the database itself refuses a
status, role, channel or outcome the code does not know. The schema is created and changed only by the Alembic
migrations in `serving/store/migrations/`; a test checks that they and these models agree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from features.schema import ACTIONS, CHANNELS, HOLD_KINDS, OUTCOMES

ROLES = ("specialist", "supervisor")
ITEM_KINDS = ("call", "callback")
ITEM_STATUSES = ("open", "in_progress", "done", "skipped", "withdrawn")
RESULT_KINDS = ("promise_to_pay", "payment_plan", "dispute", "cease_contact", "financial_assistance", "callback")
HOLD_RESULTS = {"dispute": "dispute", "cease_contact": "cease_contact", "financial_assistance": "financial_assistance"}
"""Results that place a hold at once, and the hold kind each places."""


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=f"{column}_known")


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names are the same on SQLite and PostgreSQL."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Specialist(Base):
    """A person who works the list (or supervises it); `id` is the login name."""

    __tablename__ = "specialists"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16), default="specialist")
    languages: Mapped[str] = mapped_column(sa.String(200), default="en")  # ISO 639-1 codes, comma-separated
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)

    @property
    def language_set(self) -> set[str]:
        return {x.strip().lower() for x in self.languages.split(",") if x.strip()}


class ApiToken(Base):
    """A login session: the SHA-256 digest of a bearer token (the token itself is never stored)."""

    __tablename__ = "api_tokens"

    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    specialist_id: Mapped[str] = mapped_column(sa.ForeignKey("specialists.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)


class WorkDay(Base):
    """One published day of work: the list's model, contact policy, capacity and exploration."""

    __tablename__ = "work_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, unique=True)
    as_of: Mapped[date] = mapped_column(sa.Date)
    model_version: Mapped[str] = mapped_column(sa.String(200))
    policy_digest: Mapped[str] = mapped_column(sa.String(64))
    capacity: Mapped[int] = mapped_column(sa.Integer)
    published_at: Mapped[datetime] = mapped_column(sa.DateTime)
    publish_count: Mapped[int] = mapped_column(sa.Integer, default=1)
    # revision 0002: decisions logged with exploration
    policy_version: Mapped[str | None] = mapped_column(sa.String(300), nullable=True)
    exploration_share: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    call_band: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    exploration_cost: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    seed: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)

    items: Mapped[list[WorkItem]] = relationship(back_populates="work_day")


class WorkItem(Base):
    """One call to make (a listed account) or a callback a guarantor asked for."""

    __tablename__ = "work_items"
    __table_args__ = (
        _one_of("kind", ITEM_KINDS),
        _one_of("status", ITEM_STATUSES),
        sa.Index("ix_work_items_queue", "day_id", "status", "assigned_to", "rank"),
        sa.Index("ix_work_items_account", "account_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day_id: Mapped[int] = mapped_column(sa.ForeignKey("work_days.id"))
    kind: Mapped[str] = mapped_column(sa.String(16), default="call")
    rank: Mapped[int] = mapped_column(sa.Integer)
    account_id: Mapped[str] = mapped_column(sa.String(64))
    guarantor_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    assigned_to: Mapped[str | None] = mapped_column(sa.ForeignKey("specialists.id"), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    expected_value: Mapped[float] = mapped_column(sa.Float, default=0.0)
    balance: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    p_pay: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    best_alternative: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    reasons: Mapped[str] = mapped_column(sa.Text, default="")
    other_accounts: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[str | None] = mapped_column(sa.String(2), nullable=True)
    language: Mapped[str] = mapped_column(sa.String(16), default="en")
    call_window_local: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    call_window_start: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    call_window_end: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)  # callbacks: when
    owner_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # callbacks: only the assignee
    manual: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # reassigned by hand: a republish keeps it
    consent_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)  # callbacks: asked for then
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("work_items.id"), nullable=True)
    book_context: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # the book's facts at publish
    taken_by: Mapped[str | None] = mapped_column(sa.ForeignKey("specialists.id"), nullable=True)
    taken_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    withdrawn_rule: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    withdrawn_detail: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime)
    # revision 0002: the logged decision behind the call
    propensity: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    explored: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)

    work_day: Mapped[WorkDay] = relationship(back_populates="items")

    @property
    def touched(self) -> bool:
        """Taken, recorded or withdrawn since publishing: a republish leaves it alone."""
        return self.status != "open" or self.taken_by is not None or self.kind != "call" or self.manual


class Outcome(Base):
    """One recorded contact attempt (the contract's contacts row) and the specialist's note."""

    __tablename__ = "outcomes"
    __table_args__ = (_one_of("channel", CHANNELS), _one_of("outcome", OUTCOMES))

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("work_items.id"), nullable=True, index=True)
    account_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    guarantor_id: Mapped[str] = mapped_column(sa.String(64))
    specialist_id: Mapped[str] = mapped_column(sa.ForeignKey("specialists.id"))
    placed_at: Mapped[datetime] = mapped_column(sa.DateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(sa.DateTime)
    channel: Mapped[str] = mapped_column(sa.String(16))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    propensity: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    note: Mapped[str | None] = mapped_column(sa.Text, nullable=True)  # free text: stored, never logged

    results: Mapped[list[Result]] = relationship(back_populates="outcome_row")


class Result(Base):
    """What a right-party conversation produced: a promise, a plan, a dispute, a cease-contact or
    financial-assistance request, a callback."""

    __tablename__ = "results"
    __table_args__ = (_one_of("kind", RESULT_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outcome_id: Mapped[int] = mapped_column(sa.ForeignKey("outcomes.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    promise_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, unique=True)
    amount: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    first_date: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    instalments: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    callback_at: Mapped[datetime | None] = mapped_column(sa.DateTime, nullable=True)
    owner_only: Mapped[bool | None] = mapped_column(sa.Boolean, nullable=True)

    outcome_row: Mapped[Outcome] = relationship(back_populates="results")


class StoreHold(Base):
    """A hold placed by a recorded result (dispute, cease contact, financial assistance), open until lifted."""

    __tablename__ = "holds"
    __table_args__ = (_one_of("kind", HOLD_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    outcome_id: Mapped[int | None] = mapped_column(sa.ForeignKey("outcomes.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class IdempotencyKey(Base):
    """A client's idempotency key and the answer it got: a retried POST gets the same answer, recorded once."""

    __tablename__ = "idempotency_keys"

    specialist_id: Mapped[str] = mapped_column(sa.ForeignKey("specialists.id"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    request_digest: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer)
    response: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class Decision(Base):
    """The deciding policy's action for one open account on a published day, with its probability (rev. 0002)."""

    __tablename__ = "decisions"
    __table_args__ = (sa.UniqueConstraint("day_id", "account_id"), _one_of("action", ACTIONS))

    id: Mapped[int] = mapped_column(primary_key=True)
    day_id: Mapped[int] = mapped_column(sa.ForeignKey("work_days.id"))
    account_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    guarantor_id: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(16))
    propensity: Mapped[float] = mapped_column(sa.Float)
    greedy_action: Mapped[str] = mapped_column(sa.String(16))
    explored: Mapped[bool] = mapped_column(sa.Boolean)
    value: Mapped[float] = mapped_column(sa.Float)  # expected incremental net dollars of `action`
    greedy_value: Mapped[float] = mapped_column(sa.Float)
    policy_version: Mapped[str] = mapped_column(sa.String(300))
