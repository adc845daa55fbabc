"""/v1/work over HTTP (FastAPI's TestClient on a real store): per-specialist login, own items only, idempotent and
whole-or-nothing writes, 4xx naming the field without echoing it, and no patient data in the logs."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.api.logging import JsonFormatter
from serving.api.settings import ApiSettings
from serving.store.models import IdempotencyKey, Outcome, Result, StoreHold, WorkItem
from tests.store_helpers import (  # noqa: F401 (postgres_url is a fixture)
    BACKENDS,
    DAY,
    PASSWORD,
    add_people,
    backend_url,
    fresh_store,
    item_row,
    local,
    postgres_url,
    publish_rows,
)

NOON = local(DAY, 12)
SECRET_NOTE = "Guarantor mentioned chemotherapy at St Elsewhere; daughter Jane Roe pays"


@pytest.fixture(scope="module")
def url(tmp_path_factory, request) -> str:
    return backend_url("sqlite", tmp_path_factory, request)


def make_client(url: str, tmp_path) -> tuple[TestClient, object]:
    store = fresh_store(url)
    add_people(store, NOON, [("ana", "specialist", "en,es"), ("bo", "specialist", "en"), ("sue", "supervisor", "en")])
    rows = [item_row(f"A{i}", f"G{i}", rank=i, ev=50 - i, other_accounts=f"B{i}") for i in range(1, 7)]
    publish_rows(store, rows, local(DAY, 6))
    app = create_app(ApiSettings(_env_file=None, api_keys=["service-key-0123456789"], db_url=url, home=tmp_path))
    app.state.clock = lambda: NOON
    return TestClient(app), store


@pytest.fixture()
def api(url, tmp_path):
    client, store = make_client(url, tmp_path)
    yield client, store
    store.dispose()


def login(client: TestClient, who: str) -> dict[str, str]:
    r = client.post("/v1/work/login", json={"username": who, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def post(client, path, headers, key, body=None):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


def count(store, model) -> int:
    with store.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def test_login_and_tokens(api):
    client, _ = api
    assert client.post("/v1/work/login", json={"username": "ana", "password": "nope"}).status_code == 401
    assert client.post("/v1/work/login", json={"username": "zed", "password": "nope"}).status_code == 401
    assert client.get("/v1/work/items").status_code == 401
    assert client.get("/v1/work/items", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.get("/v1/work/items", headers={"X-API-Key": "service-key-0123456789"}).status_code == 401
    h = login(client, "ana")
    assert client.get("/v1/work/me", headers=h).json()["languages"] == ["en", "es"]
    assert client.post("/v1/work/logout", headers=h).status_code == 204
    assert client.get("/v1/work/me", headers=h).status_code == 401


def test_a_specialist_sees_and_changes_only_their_own_items_a_supervisor_all(api):
    client, store = api
    ana, bo, sue = login(client, "ana"), login(client, "bo"), login(client, "sue")
    mine = client.get("/v1/work/items", headers=ana).json()["items"]
    theirs = client.get("/v1/work/items", headers=bo).json()["items"]
    everyone = client.get("/v1/work/items", headers=sue).json()["items"]
    assert {i["assigned_to"] for i in mine} == {"ana"} and {i["assigned_to"] for i in theirs} == {"bo"}
    assert len(mine) + len(theirs) == len(everyone) == 6
    other = theirs[0]["id"]
    assert client.get(f"/v1/work/items/{other}", headers=ana).status_code == 404
    huge = client.get("/v1/work/items/99999999999999999999", headers=ana)
    assert huge.status_code == 422 and huge.json()["detail"][0]["loc"] == ["path", "item_id"]
    r = post(client, f"/v1/work/items/{other}/outcome", ana, "key-ana-1", {"outcome": "no_answer"})
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "item_id"]
    assert client.get("/v1/work/summary", headers=ana).status_code == 403
    # the supervisor reassigns Bo's item to Ana; now it is hers
    r = post(client, f"/v1/work/items/{other}/reassign", sue, "key-sue-1", {"to": "ana"})
    assert r.status_code == 200 and r.json()["item"]["assigned_to"] == "ana"
    assert client.get(f"/v1/work/items/{other}", headers=ana).status_code == 200
    r = post(client, f"/v1/work/items/{other}/reassign", sue, "key-sue-2", {"to": "nobody"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "to"]
    # releasing puts it in the shared queue, where anyone may take it
    r = post(client, f"/v1/work/items/{other}/release", ana, "key-ana-2")
    assert r.status_code == 200 and r.json()["item"]["assigned_to"] is None
    summary = client.get("/v1/work/summary", headers=sue).json()
    assert summary["day"] == DAY.isoformat() and summary["decisions"]["count"] == 6


def test_take_record_and_a_retried_post_records_once(api):
    client, store = api
    ana = login(client, "ana")
    taken = post(client, "/v1/work/next", ana, "next-0001").json()["item"]
    assert taken["assigned_to"] == "ana" and taken["status"] == "in_progress" and taken["rank"] == 1
    assert post(client, "/v1/work/next", ana, "next-0001").json()["item"]["id"] == taken["id"]  # replayed
    body = {
        "outcome": "right_party",
        "results": [{"kind": "promise_to_pay", "amount": 125.5, "date": "2026-10-09"}],
        "note": SECRET_NOTE,
    }
    first = post(client, f"/v1/work/items/{taken['id']}/outcome", ana, "rec-0001", body)
    assert first.status_code == 201, first.text
    again = post(client, f"/v1/work/items/{taken['id']}/outcome", ana, "rec-0001", body)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(store, Outcome) == 1 and count(store, Result) == 1
    reused = post(client, f"/v1/work/items/{taken['id']}/outcome", ana, "rec-0001", {"outcome": "no_answer"})
    assert reused.status_code == 422 and reused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    missing = client.post(f"/v1/work/items/{taken['id']}/outcome", json=body, headers=ana)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    detail = client.get(f"/v1/work/items/{taken['id']}", headers=ana).json()
    assert detail["status"] == "done" and detail["outcomes"][0]["note"] == SECRET_NOTE
    assert detail["outcomes"][0]["results"][0]["amount"] == 125.5
    # a second attempt on a finished item is refused, naming the item
    late = post(client, f"/v1/work/items/{taken['id']}/outcome", ana, "rec-0002", {"outcome": "no_answer"})
    assert late.status_code == 409 and late.json()["detail"][0]["loc"] == ["path", "item_id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"outcome": "sent-a-pigeon<script>"}, ["body", "outcome"]),
        ({"outcome": "right_party", "results": [{"kind": "promise_to_pay", "amount": -5, "date": "2026-10-09"}]},
         ["body", "results", 0, "promise_to_pay", "amount"]),
        ({"outcome": "right_party", "results": [{"kind": "promise_to_pay", "amount": 5, "date": "2026-13-45"}]},
         ["body", "results", 0, "promise_to_pay", "date"]),
        ({"outcome": "right_party", "results": [{"kind": "payment_plan", "amount": 5, "date": "2026-10-09",
                                                  "instalments": 999}]},
         ["body", "results", 0, "payment_plan", "instalments"]),
        ({"outcome": "right_party", "results": [{"kind": "gift"}]}, ["body", "results", 0]),
        ({"outcome": "no_answer", "ssn": "123-45-6789"}, ["body", "ssn"]),
        ({"outcome": "no_answer", "results": [{"kind": "dispute"}]}, ["body", "results"]),
        ({"channel": "sms", "outcome": "right_party"}, ["body", "outcome"]),
        ({"outcome": "right_party", "results": [{"kind": "promise_to_pay", "amount": 5, "date": "2031-01-01"}]},
         ["body", "results", 0, "date"]),
        ({"outcome": "no_answer", "placed_at": "2026-10-01T23:59:00Z"}, ["body", "placed_at"]),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_written(api, body, loc):
    client, store = api
    ana = login(client, "ana")
    item = post(client, "/v1/work/next", ana, "next-bad-1").json()["item"]
    r = post(client, f"/v1/work/items/{item['id']}/outcome", ana, "bad-input-1", body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["detail"][0]["loc"][: len(loc)] == loc, r.json()
    for secret in ("pigeon", "123-45-6789", "-5", "2026-13-45", "999", "gift", "2031"):
        if secret in json.dumps(body):
            assert secret not in r.text  # never echoes what was sent
    assert count(store, Outcome) == 0 and count(store, Result) == 0 and count(store, IdempotencyKey) == 1
    with store.session() as s:
        assert s.get(WorkItem, item["id"]).status == "in_progress"


def test_a_write_is_whole_or_absent(api):
    """A promise with a callback outside the calling window: refused, and neither the outcome, the promise nor a
    hold is left behind."""
    client, store = api
    ana = login(client, "ana")
    item = post(client, "/v1/work/next", ana, "next-whole-1").json()["item"]
    body = {
        "outcome": "right_party",
        "results": [
            {"kind": "promise_to_pay", "amount": 40, "date": "2026-10-05"},
            {"kind": "dispute"},
            {"kind": "callback", "at": local(DAY + timedelta(days=1), 23).isoformat() + "Z"},
        ],
    }
    r = post(client, f"/v1/work/items/{item['id']}/outcome", ana, "whole-0001", body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "results", 2, "at"]
    assert "calling window" in r.json()["detail"][0]["msg"]
    assert count(store, Outcome) == count(store, Result) == count(store, StoreHold) == 0
    assert count(store, IdempotencyKey) == 1  # only the /next call's; the refused key is free to use again
    body["results"][2]["at"] = local(DAY + timedelta(days=1), 15).isoformat() + "Z"
    ok = post(client, f"/v1/work/items/{item['id']}/outcome", ana, "whole-0001", body)
    assert ok.status_code == 201 and len(ok.json()["holds"]) == 1 and ok.json()["callback_item_id"]


def test_notes_and_patient_data_never_reach_the_logs(api, caplog):
    client, store = api
    ana = login(client, "ana")
    caplog.set_level(logging.DEBUG)
    item = post(client, "/v1/work/next", ana, "next-log-1").json()["item"]
    body = {"outcome": "right_party", "note": SECRET_NOTE, "results": [{"kind": "cease_contact"}]}
    assert post(client, f"/v1/work/items/{item['id']}/outcome", ana, "log-0001", body).status_code == 201
    bad = {"outcome": "right_party", "note": SECRET_NOTE, "results": [{"kind": "promise_to_pay", "amount": "x1"}]}
    assert post(client, f"/v1/work/items/{item['id']}/outcome", ana, "log-0002", bad).status_code == 422
    lines = [JsonFormatter().format(r) for r in caplog.records]
    text = "\n".join(lines)
    access = [json.loads(line) for line in lines if '"msg": "request"' in line]
    assert any(a.get("route") == "/v1/work/items/{item_id}/outcome" and a.get("status") == 201 for a in access)
    assert any(a.get("specialist") == "ana" for a in access)
    for secret in ("chemotherapy", "Jane Roe", item["account_id"], item["guarantor_id"], PASSWORD, "x1"):
        assert secret not in text, secret


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_retries_of_one_post_record_once(backend, tmp_path_factory, request, tmp_path):
    url = backend_url(backend, tmp_path_factory, request)
    client, store = make_client(url, tmp_path)
    try:
        ana = login(client, "ana")
        item = post(client, "/v1/work/next", ana, "next-race-1").json()["item"]
        body = {"outcome": "right_party", "results": [{"kind": "promise_to_pay", "amount": 10, "date": "2026-10-02"}]}
        answers: list = []
        barrier = threading.Barrier(4)

        def send() -> None:
            barrier.wait(timeout=30)
            answers.append(post(client, f"/v1/work/items/{item['id']}/outcome", ana, "race-0001", body))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.json()["outcome_id"] for a in answers}) == 1
        assert count(store, Outcome) == 1 and count(store, Result) == 1
    finally:
        store.dispose()
