"""The demo's workspace: two demo specialists (fresh passwords each run) and the demo day published to the store."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from serving.config import Settings
from serving.exploration import Exploration
from serving.store.auth import add_specialist, hash_password
from serving.store.db import open_store
from serving.store.models import Specialist
from serving.store.publish import PublishReport, prepare_publication, publish

DEMO_PEOPLE = (("demo-ana", "Ana (demo)", "en,es"), ("demo-ben", "Ben (demo)", "en"))
DEMO_SUPERVISOR = ("demo-sue", "Sue (demo supervisor)", "en")  # sees everyone's work at /app/supervisor


def publish_demo_day(
    book: Any, scored: Any, calls: int, config: Any, model_version: str, settings: Settings
) -> tuple[PublishReport, dict[str, str]]:
    """Publish the scored demo day for the two demo specialists; returns the report and their new passwords."""
    store = open_store(settings=settings)
    now = datetime.now(UTC).replace(tzinfo=None)
    passwords = {pid: secrets.token_urlsafe(9) for pid, _, _ in (*DEMO_PEOPLE, DEMO_SUPERVISOR)}
    try:
        with store.session() as session:
            for pid, name, languages in (*DEMO_PEOPLE, DEMO_SUPERVISOR):
                person = session.get(Specialist, pid)
                role = "supervisor" if pid == DEMO_SUPERVISOR[0] else "specialist"
                if person is None:
                    add_specialist(session, pid, name, passwords[pid], now, role=role, languages=languages)
                else:
                    person.password_hash, person.active = hash_password(passwords[pid]), True
        exploration = Exploration(settings.exploration_share, settings.exploration_call_band)
        pub, _ = prepare_publication(book, scored, calls, config, exploration, model_version)
        report = publish(store, pub, now, [pid for pid, _, _ in DEMO_PEOPLE])
    finally:
        store.dispose()
    return report, passwords
