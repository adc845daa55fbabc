"""Decisions logged with their propensities, and each day's exploration (share, call band, expected cost).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIONS = ("none", "call", "sms", "email", "letter", "portal")


def upgrade() -> None:
    with op.batch_alter_table("work_days") as batch:
        batch.add_column(sa.Column("policy_version", sa.String(300), nullable=True))
        batch.add_column(sa.Column("exploration_share", sa.Float, nullable=True))
        batch.add_column(sa.Column("call_band", sa.Integer, nullable=True))
        batch.add_column(sa.Column("exploration_cost", sa.Float, nullable=True))
        batch.add_column(sa.Column("seed", sa.Integer, nullable=True))
    with op.batch_alter_table("work_items") as batch:
        batch.add_column(sa.Column("propensity", sa.Float, nullable=True))
        batch.add_column(sa.Column("explored", sa.Boolean, nullable=True))
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day_id", sa.Integer, sa.ForeignKey("work_days.id"), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("guarantor_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("propensity", sa.Float, nullable=False),
        sa.Column("greedy_action", sa.String(16), nullable=False),
        sa.Column("explored", sa.Boolean, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("greedy_value", sa.Float, nullable=False),
        sa.Column("policy_version", sa.String(300), nullable=False),
        sa.UniqueConstraint("day_id", "account_id"),
        sa.CheckConstraint(f"action IN ({', '.join(repr(a) for a in ACTIONS)})", name="action_known"),
    )
    op.create_index("ix_decisions_account_id", "decisions", ["account_id"])


def downgrade() -> None:
    op.drop_table("decisions")
    with op.batch_alter_table("work_items") as batch:
        batch.drop_column("explored")
        batch.drop_column("propensity")
    with op.batch_alter_table("work_days") as batch:
        for column in ("seed", "exploration_cost", "call_band", "exploration_share", "policy_version"):
            batch.drop_column(column)
