"""Compliance during the day, rule by rule, against real stores (SQLite and PostgreSQL): what a recorded outcome
withdraws at once, the holds it places, and the calls the calling window refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from serving.policy_config import PolicyConfig
from serving.store.models import Outcome, Specialist, StoreHold, WorkDay, WorkItem
from serving.store.work import OutcomeIn, ResultIn, WorkError, record, take_next
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

D1, D8 = DAY + timedelta(days=1), DAY + timedelta(days=8)
TEN = local(DAY, 10)  # 10:00 in Illinois on the work day
CONFIG = PolicyConfig()


@pytest.fixture(scope="module", params=BACKENDS)
def url(request, tmp_path_factory) -> str:
    return backend_url(request.param, tmp_path_factory, request)


@pytest.fixture()
def store(url):
    s = fresh_store(url)
    add_people(s, TEN, [("ana", "specialist", "en"), ("bo", "specialist", "en")])
    yield s
    s.dispose()


def publish_days(store, rows_by_day: dict) -> None:
    """Publish each day's items, all Ana's (in advance, at 06:00 on the work day, before any window closes)."""
    for day, rows in rows_by_day.items():
        publish_rows(store, [item_row(**r, day=day) for r in rows], local(DAY, 6), day=day, names_on_shift=["ana"])


def row(account: str, guarantor: str, **kw) -> dict:
    return {"account": account, "guarantor": guarantor, **kw}


def work(store, who: str, account: str, day, body: OutcomeIn, now=TEN) -> dict:
    """`who` records `body` on the account's call item of `day`."""
    with store.session() as s:
        item_id = s.scalar(
            sa.select(WorkItem.id)
            .join(WorkDay, WorkItem.day_id == WorkDay.id)
            .where(WorkItem.account_id == account, WorkItem.kind == "call", WorkDay.day == day)
        )
        return record(s, s.get(Specialist, who), item_id, body, now, CONFIG)


def statuses(store) -> dict[tuple[str, str], str]:
    """(account, kind@day) → status, with the withdrawing rule."""
    with store.session() as s:
        rows = s.execute(
            sa.select(WorkItem.account_id, WorkItem.kind, WorkDay.day, WorkItem.status, WorkItem.withdrawn_rule).join(
                WorkDay, WorkItem.day_id == WorkDay.id
            )
        ).all()
    return {(a, f"{k}@{d}"): st if rule is None else f"{st}:{rule}" for a, k, d, st, rule in rows}


def test_a_right_party_conversation_withdraws_the_accounts_other_items_for_seven_days(store):
    publish_days(store, {DAY: [row("A1", "G1"), row("A2", "G2")], D1: [row("A1", "G1")], D8: [row("A1", "G1")]})
    answer = work(store, "ana", "A1", DAY, OutcomeIn("call", "right_party"))
    assert [(w["account_id"], w["rule"]) for w in answer["withdrawn"]] == [("A1", "right_party_cooldown")]
    assert "calls allowed again from 2026-10-09" in answer["withdrawn"][0]["detail"]
    st = statuses(store)
    assert st[("A1", f"call@{DAY}")] == "done"
    assert st[("A1", f"call@{D1}")] == "withdrawn:right_party_cooldown"
    assert st[("A1", f"call@{D8}")] == "open"  # the eighth day is allowed again
    assert st[("A2", f"call@{DAY}")] == "open"


def test_a_seventh_call_attempt_in_seven_days_withdraws_the_account(store):
    book_calls = [(local(DAY - timedelta(days=d), 11).isoformat(), "no_answer") for d in (1, 2, 3, 4, 5)]
    book_calls.append((local(DAY - timedelta(days=5), 15).isoformat(), "voicemail"))  # six in the book
    publish_days(store, {DAY: [row("A1", "G1", calls=book_calls)], D1: [row("A1", "G1", calls=book_calls)]})
    answer = work(store, "ana", "A1", DAY, OutcomeIn("call", "no_answer"))  # the seventh
    assert [(w["account_id"], w["rule"]) for w in answer["withdrawn"]] == [("A1", "call_frequency")]
    assert answer["withdrawn"][0]["detail"].startswith("7 calls from 2026-09-26 to 2026-10-02 (limit 7 in 7 days)")


def test_six_attempts_do_not_withdraw_and_massachusetts_stops_at_two(store):
    five = [(local(DAY - timedelta(days=d), 11).isoformat(), "no_answer") for d in (1, 2, 3, 4, 5)]
    one_ma = [(local(DAY - timedelta(days=2), 11, "MA").isoformat(), "no_answer")]
    publish_days(
        store,
        {
            DAY: [row("A1", "G1", calls=five), row("B1", "H1", state="MA", calls=one_ma)],
            D1: [row("A1", "G1", calls=five), row("B1", "H1", state="MA", calls=one_ma)],
        },
    )
    assert work(store, "ana", "A1", DAY, OutcomeIn("call", "no_answer"))["withdrawn"] == []  # six: still allowed
    answer = work(store, "ana", "B1", DAY, OutcomeIn("call", "no_answer"), now=local(DAY, 10, "MA"))
    assert [(w["account_id"], w["rule"]) for w in answer["withdrawn"]] == [("B1", "call_frequency")]


@pytest.mark.parametrize(
    ("kind", "hold", "reaches_other_accounts"),
    [
        ("dispute", "dispute", False),
        ("cease_contact", "cease_contact", True),
        ("financial_assistance", "financial_assistance", True),
    ],
)
def test_dispute_cease_contact_and_assistance_requests_place_the_hold_at_once(
    store, kind, hold, reaches_other_accounts
):
    publish_days(
        store,
        {
            DAY: [row("A1", "G1", other_accounts="A3")],
            D8: [row("A1", "G1", other_accounts="A3"), row("A3", "G1", other_accounts="A1")],
        },
    )
    answer = work(store, "ana", "A1", DAY, OutcomeIn("call", "right_party", results=(ResultIn(kind),)))
    placed = {(h["account_id"], h["kind"]) for h in answer["holds"]}
    assert placed == ({("A1", hold), ("A3", hold)} if reaches_other_accounts else {("A1", hold)})
    with store.session() as s:
        rows = s.execute(
            sa.select(StoreHold.account_id, StoreHold.kind, StoreHold.start_date, StoreHold.end_date)
        ).all()
    assert {(a, k) for a, k, _, _ in rows} == placed and {(b, e) for _, _, b, e in rows} == {(DAY, None)}
    st = statuses(store)
    assert st[("A1", f"call@{D8}")] == f"withdrawn:hold_{hold}"  # past the cooldown: the hold withdraws it
    assert st[("A3", f"call@{D8}")] == (f"withdrawn:hold_{hold}" if reaches_other_accounts else "open")


def test_a_closed_calling_window_refuses_a_call_placed_now_and_writes_nothing(store):
    publish_days(store, {DAY: [row("A1", "G1")]})
    for late in (local(DAY, 21, "IL") + timedelta(minutes=5), local(DAY, 7, "IL") + timedelta(minutes=59)):
        with pytest.raises(WorkError) as info:
            work(store, "ana", "A1", DAY, OutcomeIn("call", "no_answer"), now=late)
        assert info.value.status == 409 and info.value.loc == ["body", "placed_at"]
        assert "calling window 08:00-21:00 America/Chicago is closed" in info.value.msg
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome)) == 0
        assert s.scalar(sa.select(WorkItem.status)) == "open"
    # inside the window it records; a call placed earlier today may be recorded late, but not one in the future
    assert work(store, "ana", "A1", DAY, OutcomeIn("call", "no_answer", placed_at=local(DAY, 20)), now=local(DAY, 22))


def test_a_requested_callback_survives_the_cooldown_but_not_a_hold(store):
    publish_days(store, {DAY: [row("A1", "G1")], D1: [row("A1", "G1")]})
    at = local(D1, 15)
    answer = work(store, "ana", "A1", DAY, OutcomeIn("call", "right_party", results=(ResultIn("callback", at=at),)))
    assert [w["rule"] for w in answer["withdrawn"]] == ["right_party_cooldown"]  # the regular item of D+1
    with store.session() as s:
        cb = s.get(WorkItem, answer["callback_item_id"])
        assert (cb.kind, cb.status, cb.assigned_to, cb.due_at) == ("callback", "open", "ana", at)
        bo, ana = s.get(Specialist, "bo"), s.get(Specialist, "ana")
        assert take_next(s, bo, at) is None  # owner-only: not in the shared queue
        assert take_next(s, ana, at - timedelta(hours=1)) is None  # not due yet
        taken = take_next(s, ana, at)
        assert taken.id == cb.id
        done = record(s, ana, cb.id, OutcomeIn("call", "right_party", results=(ResultIn("dispute"),)), at, CONFIG)
    assert done["holds"] == [{"account_id": "A1", "kind": "dispute", "start_date": D1.isoformat()}]


def test_one_call_per_guarantor_withdraws_the_guarantors_other_accounts_today(store):
    publish_days(store, {DAY: [row("A1", "G1", other_accounts="A3"), row("A3", "G1", other_accounts="A1")]})
    answer = work(store, "ana", "A1", DAY, OutcomeIn("call", "no_answer"))
    assert [(w["account_id"], w["rule"]) for w in answer["withdrawn"]] == [("A3", "one_call_per_guarantor")]


def test_a_channel_without_consent_cannot_be_recorded(store):
    publish_days(store, {DAY: [row("A1", "G1", flags={"sms_consent": False, "has_email": False})]})
    for channel, outcome, rule in (("sms", "delivered", "consent_sms"), ("email", "delivered", "consent_email")):
        with pytest.raises(WorkError) as info:
            work(store, "ana", "A1", DAY, OutcomeIn(channel, outcome))
        assert info.value.status == 409 and info.value.loc == ["body", "channel"] and rule in info.value.msg
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome)) == 0
    answer = work(store, "ana", "A1", DAY, OutcomeIn("portal", "sent"))  # enrolled: allowed
    assert answer["item_status"] == "done" and answer["propensity"] is None  # the day decided a call, not this
