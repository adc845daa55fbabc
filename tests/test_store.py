"""The operational store: migrations, credentials, publishing and republishing, assignment, taking the next item
under concurrency — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from serving.policy_config import PolicyConfig
from serving.store import auth
from serving.store.db import current_revision, head_revision, make_engine, open_store, upgrade
from serving.store.models import Base, Decision, Outcome, Specialist, WorkItem
from serving.store.publish import assign
from serving.store.work import OutcomeIn, WorkError, record, take_next
from tests.store_helpers import (  # noqa: F401 (postgres_url is a fixture)
    BACKENDS,
    DAY,
    add_people,
    backend_url,
    fresh_store,
    item_row,
    local,
    postgres_url,
    publish_rows,
)

NOON = local(DAY, 12)


@pytest.fixture(scope="module", params=BACKENDS)
def url(request, tmp_path_factory) -> str:
    return backend_url(request.param, tmp_path_factory, request)


@pytest.fixture()
def store(url):
    s = fresh_store(url)
    yield s
    s.dispose()


# ---- migrations ----------------------------------------------------------------------------------------------


def test_upgrading_an_empty_database_creates_the_whole_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0002"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff  # the migrations build exactly what the models declare
    engine.dispose()


def test_upgrading_from_the_previous_revision_keeps_the_data(url):
    engine = make_engine(url)
    with engine.begin() as conn:  # start from scratch, whatever the module did before
        for table in ("decisions", "idempotency_keys", "holds", "results", "outcomes", "work_items", "work_days",
                      "api_tokens", "specialists", "alembic_version"):  # fmt: skip
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    now = datetime(2026, 9, 30, 12)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO specialists (id, display_name, role, languages, password_hash, active, created_at) "
                "VALUES ('ana', 'Ana', 'specialist', 'en,es', 'x', :t, :now)"
            ),
            {"t": True, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO work_days (day, as_of, model_version, policy_digest, capacity, published_at, "
                "publish_count) VALUES (:d, :a, 'payrank/1', 'abc', 10, :now, 1)"
            ),
            {"d": DAY, "a": DAY - timedelta(days=1), "now": now},
        )
    upgrade(engine)
    assert current_revision(engine) == "0002"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT languages FROM specialists WHERE id = 'ana'")).scalar() == "en,es"
        row = conn.execute(sa.text("SELECT capacity, exploration_cost FROM work_days")).one()
        assert tuple(row) == (10, None)  # new columns arrive empty, old rows intact
        assert conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar() == 0
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    engine.dispose()


# ---- credentials ------------------------------------------------------------------------------------------------


def test_passwords_are_salted_scrypt_hashes_and_tokens_stored_as_digests(store):
    h1, h2 = auth.hash_password("s3cret-pass"), auth.hash_password("s3cret-pass")
    assert h1.startswith("scrypt$16384$8$1$") and h1 != h2 and "s3cret" not in h1
    assert auth.verify_password("s3cret-pass", h1) and not auth.verify_password("s3cret-pasS", h1)
    assert not auth.verify_password("x", "not-a-hash")
    add_people(store, NOON, [("ana", "specialist", "en")])
    with store.session() as s:
        token, row = auth.login(s, "ANA", "correct horse battery", NOON, hours=1)
        assert row.digest != token and len(row.digest) == 64
        assert auth.login(s, "ana", "wrong", NOON, hours=1) is None
        assert auth.login(s, "nobody", "wrong", NOON, hours=1) is None
    with store.session() as s:
        assert auth.authenticate(s, token, NOON).id == "ana"
        assert auth.authenticate(s, token, NOON + timedelta(hours=2)) is None  # expired
        with pytest.raises(ValueError, match="username"):
            auth.add_specialist(s, "ana", "Ana", "another-password", NOON)
        with pytest.raises(ValueError, match="password"):
            auth.add_specialist(s, "bo", "Bo", "short", NOON)


# ---- publishing --------------------------------------------------------------------------------------------------


def test_assignment_balances_expected_value_and_matches_languages():
    items = pd.DataFrame(
        {
            "expected_value": [50, 40, 30, 20, 10, 9, 8, 7, 6, 5],
            "language": ["en", "es", "en", "en", "es", "en", "vi", "en", "en", "es"],
        }
    )
    people = [("ana", {"en", "es"}), ("bo", {"en"}), ("cy", {"en"})]
    who = assign(items, people)
    assert [w for w, lang in zip(who, items["language"], strict=True) if lang == "es"] == ["ana"] * 3
    assert who[6] in {"ana", "bo", "cy"}  # nobody speaks Vietnamese: anyone
    load = items.assign(who=who).groupby("who")["expected_value"].sum()
    assert load.max() - load.min() <= 10, load  # language-bound items first, then greedy longest-first
    assert assign(items, []) == [None] * len(items)  # nobody on shift: the shared queue


def test_publish_assigns_logs_decisions_and_republish_replaces_only_untouched_items(store):
    add_people(store, NOON, [("ana", "specialist", "en,es"), ("bo", "specialist", "en"), ("sue", "supervisor", "en")])
    rows = [item_row(f"A{i}", f"G{i}", rank=i, ev=100 - i, language="es" if i == 3 else "en") for i in range(1, 7)]
    report = publish_rows(store, rows, NOON)
    assert report.published == 6 and report.kept == 0 and set(report.per_specialist) == {"ana", "bo"}
    with store.session() as s:
        items = {i.account_id: i for i in s.scalars(sa.select(WorkItem))}
        assert items["A3"].assigned_to == "ana"  # the Spanish speaker
        assert s.scalar(sa.select(sa.func.count()).select_from(Decision)) == 6
        me = s.get(Specialist, "bo")
        taken = take_next(s, me, NOON)
        record(s, me, taken.id, OutcomeIn("call", "no_answer"), NOON, PolicyConfig())
    # the same day again, from a list that changed: the worked item stays, untouched ones are replaced
    again = [item_row(f"A{i}", f"G{i}", rank=i, ev=50 + i) for i in range(2, 9)]
    report = publish_rows(store, again, NOON + timedelta(hours=1))
    assert report.kept == 1 and report.replaced == 5
    with store.session() as s:
        items = s.scalars(sa.select(WorkItem).order_by(WorkItem.account_id)).all()
        done = [i for i in items if i.status == "done"]
        assert [i.account_id for i in done] == [taken.account_id]
        assert sorted(i.account_id for i in items if i.status == "open") == sorted(
            {f"A{i}" for i in range(2, 9)} - {taken.account_id}
        )
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome)) == 1  # never loses a recorded outcome
        decided = {d.account_id for d in s.scalars(sa.select(Decision))}
        assert taken.account_id in decided and "A1" not in decided - {taken.account_id}


def test_publishing_a_later_day_skips_unreached_items_of_earlier_days(store):
    add_people(store, NOON, [("ana", "specialist", "en")])
    publish_rows(store, [item_row("A1", "G1")], NOON)
    nxt = DAY + timedelta(days=1)
    report = publish_rows(store, [item_row("A2", "G2", day=nxt)], local(nxt, 6), day=nxt)
    assert report.skipped_earlier == 1
    with store.session() as s:
        assert s.scalar(sa.select(WorkItem.status).where(WorkItem.account_id == "A1")) == "skipped"


# ---- the next item, under concurrency ------------------------------------------------------------------------


def test_next_item_order_and_the_shared_queue(store):
    add_people(store, NOON, [("ana", "specialist", "en"), ("bo", "specialist", "en")])
    publish_rows(store, [item_row(f"A{i}", f"G{i}", rank=i, ev=10 - i) for i in range(1, 5)], NOON, names_on_shift=[])
    with store.session() as s:
        assert all(i.assigned_to is None for i in s.scalars(sa.select(WorkItem)))  # nobody on shift: shared
        ana = s.get(Specialist, "ana")
        first = take_next(s, ana, NOON)
        assert first.account_id == "A1" and take_next(s, ana, NOON).id == first.id  # in progress: the same again
        assert take_next(s, ana, local(DAY, 7)).id == first.id
    with store.session() as s:
        assert take_next(s, s.get(Specialist, "bo"), local(DAY, 22)) is None  # every calling window is closed


def _race(url: str, people: list[str], rounds: int) -> list[tuple[str, int]]:
    """Each person takes the next item and records it, `rounds` times, all starting together (own sessions)."""
    barrier = threading.Barrier(len(people))
    taken: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(pid: str) -> None:
        store = open_store(url, migrate=False)
        try:
            for _ in range(rounds):
                barrier.wait(timeout=30)
                with store.session() as s:
                    me = s.get(Specialist, pid)
                    item = take_next(s, me, NOON)
                    if item is None:
                        continue
                    with lock:
                        taken.append((pid, item.id))
                with store.session() as s:
                    record(s, s.get(Specialist, pid), item.id, OutcomeIn("call", "no_answer"), NOON, PolicyConfig())
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()
        finally:
            store.dispose()

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return taken


def test_two_specialists_taking_the_next_item_at_once_never_get_the_same_one(store, url):
    add_people(store, NOON, [("ana", "specialist", "en"), ("bo", "specialist", "en")])
    publish_rows(store, [item_row(f"A{i:02d}", f"G{i:02d}", rank=i) for i in range(1, 25)], NOON, names_on_shift=[])
    taken = _race(url, ["ana", "bo"], rounds=12)
    ids = [i for _, i in taken]
    assert len(ids) == 24 and len(set(ids)) == 24, taken  # every item once, none twice
    assert {p for p, _ in taken} == {"ana", "bo"}
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome)) == 24
        assert set(s.scalars(sa.select(WorkItem.status))) == {"done"}


def test_two_recordings_on_one_guarantor_at_once_serialise_and_the_second_is_withdrawn(store, url):
    """Ana and Bo call two accounts of one guarantor at the same moment: one call is recorded, and the other item is
    withdrawn by the one-call-per-guarantor rule before it can be recorded — never a deadlock, never both."""
    add_people(store, NOON, [("ana", "specialist", "en"), ("bo", "specialist", "en")])
    rows = [item_row("A1", "G1", rank=1, other_accounts="A3"), item_row("A3", "G1", rank=2, other_accounts="A1")]
    publish_rows(store, rows, NOON, names_on_shift=["ana", "bo"])
    with store.session() as s:
        owner = {i.account_id: (i.id, i.assigned_to) for i in s.scalars(sa.select(WorkItem))}
    barrier = threading.Barrier(2)
    answers: dict[str, object] = {}

    def work(account: str) -> None:
        item_id, who = owner[account]
        mine = open_store(url, migrate=False)
        try:
            barrier.wait(timeout=30)
            with mine.session() as s:
                answers[account] = record(
                    s, s.get(Specialist, who), item_id, OutcomeIn("call", "no_answer"), NOON, PolicyConfig()
                )
        except WorkError as exc:
            answers[account] = exc
        finally:
            mine.dispose()

    threads = [threading.Thread(target=work, args=(a,)) for a in ("A1", "A3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    refused = [a for a, v in answers.items() if isinstance(v, WorkError)]
    assert len(answers) == 2 and len(refused) == 1, answers
    assert answers[refused[0]].status == 409 and "one_call_per_guarantor" in answers[refused[0]].msg
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome)) == 1
