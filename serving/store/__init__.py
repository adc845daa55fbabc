"""The operational store: specialists, published days, work items, recorded outcomes, holds, promises, decisions.

SQLAlchemy 2 models (`models`), Alembic migrations (`migrations/`, applied by `db.open_store`), publishing
(`publish`), the day's work (`work`), compliance during the day (`compliance`), export and overlay (`export`).
See docs/workspace-store.md.
"""
