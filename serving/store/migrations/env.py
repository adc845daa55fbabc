"""Alembic environment of the operational store: run on the connection `serving.store.db.upgrade` hands over."""

from __future__ import annotations

from alembic import context

from serving.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
