"""The operational store: specialists, login tokens, work days and items, outcomes, results, holds, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CHANNELS = ("call", "sms", "email", "letter", "portal")
OUTCOMES = ("no_answer", "voicemail", "right_party", "wrong_number", "delivered", "failed", "sent", "returned")
HOLD_KINDS = ("dispute", "bankruptcy", "cease_contact", "financial_assistance", "deceased")
RESULT_KINDS = ("promise_to_pay", "payment_plan", "dispute", "cease_contact", "financial_assistance", "callback")


def one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """The same CHECK the models declare (a migration never imports the models: they move on, it must not)."""
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=f"{column}_known")


def upgrade() -> None:
    op.create_table(
        "specialists",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("languages", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        one_of("role", ("specialist", "supervisor")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("specialist_id", sa.String(64), sa.ForeignKey("specialists.id"), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_api_tokens_specialist_id", "api_tokens", ["specialist_id"])
    op.create_table(
        "work_days",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, unique=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=False),
        sa.Column("publish_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day_id", sa.Integer, sa.ForeignKey("work_days.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("guarantor_id", sa.String(64), nullable=False),
        sa.Column("assigned_to", sa.String(64), sa.ForeignKey("specialists.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expected_value", sa.Float, nullable=False),
        sa.Column("balance", sa.Float, nullable=True),
        sa.Column("p_pay", sa.Float, nullable=True),
        sa.Column("best_alternative", sa.String(16), nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("other_accounts", sa.Text, nullable=False),
        sa.Column("state", sa.String(2), nullable=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("call_window_local", sa.String(64), nullable=True),
        sa.Column("call_window_start", sa.DateTime, nullable=True),
        sa.Column("call_window_end", sa.DateTime, nullable=True),
        sa.Column("due_at", sa.DateTime, nullable=True),
        sa.Column("owner_only", sa.Boolean, nullable=False),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("consent_at", sa.DateTime, nullable=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("work_items.id"), nullable=True),
        sa.Column("book_context", sa.JSON, nullable=False),
        sa.Column("taken_by", sa.String(64), sa.ForeignKey("specialists.id"), nullable=True),
        sa.Column("taken_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("withdrawn_rule", sa.String(64), nullable=True),
        sa.Column("withdrawn_detail", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        one_of("kind", ("call", "callback")),
        one_of("status", ("open", "in_progress", "done", "skipped", "withdrawn")),
    )
    op.create_index("ix_work_items_queue", "work_items", ["day_id", "status", "assigned_to", "rank"])
    op.create_index("ix_work_items_account", "work_items", ["account_id", "status"])
    op.create_index("ix_work_items_guarantor_id", "work_items", ["guarantor_id"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.String(64), nullable=False, unique=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("work_items.id"), nullable=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("guarantor_id", sa.String(64), nullable=False),
        sa.Column("specialist_id", sa.String(64), sa.ForeignKey("specialists.id"), nullable=False),
        sa.Column("placed_at", sa.DateTime, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("propensity", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        one_of("channel", CHANNELS),
        one_of("outcome", OUTCOMES),
    )
    op.create_index("ix_outcomes_item_id", "outcomes", ["item_id"])
    op.create_index("ix_outcomes_account_id", "outcomes", ["account_id"])
    op.create_index("ix_outcomes_placed_at", "outcomes", ["placed_at"])
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("outcome_id", sa.Integer, sa.ForeignKey("outcomes.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("promise_id", sa.String(64), nullable=True, unique=True),
        sa.Column("amount", sa.Float, nullable=True),
        sa.Column("first_date", sa.Date, nullable=True),
        sa.Column("instalments", sa.Integer, nullable=True),
        sa.Column("callback_at", sa.DateTime, nullable=True),
        sa.Column("owner_only", sa.Boolean, nullable=True),
        one_of("kind", RESULT_KINDS),
    )
    op.create_index("ix_results_outcome_id", "results", ["outcome_id"])
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=True),
        sa.Column("outcome_id", sa.Integer, sa.ForeignKey("outcomes.id"), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        one_of("kind", HOLD_KINDS),
    )
    op.create_index("ix_holds_account_id", "holds", ["account_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("specialist_id", sa.String(64), sa.ForeignKey("specialists.id"), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "holds", "results", "outcomes", "work_items", "work_days", "api_tokens"):
        op.drop_table(table)
    op.drop_table("specialists")
