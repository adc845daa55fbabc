"""The workspace's server side without a browser (FastAPI's TestClient on a real store and a small book): the
session cookie, sign-in CSRF and its limit, supervisors-only pages, reassigning, publishing, form errors, logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.api.logging import JsonFormatter
from serving.api.settings import ApiSettings
from serving.store.models import Outcome, WorkItem
from serving.web.views import suggest_plan
from tests.store_helpers import PASSWORD
from tests.web_helpers import NOON, workspace

NOTE = "Patient mentioned her chemotherapy; daughter Jane Roe will pay"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    tmp = tmp_path_factory.mktemp("web")
    store, ids, book_dir = workspace(tmp)
    yield tmp, store, ids
    store.dispose()


def client_for(tmp, book: bool = False) -> TestClient:
    settings = ApiSettings(_env_file=None, api_keys=["service-key-0123456789"], db_url=f"sqlite:///{tmp}/workspace.db",
                           home=tmp / "nohome")  # fmt: skip
    app = create_app(settings)
    app.state.clock = lambda: NOON
    app.state.web.settings.workspace_book = str(tmp / "book") if book else None
    return TestClient(app, base_url="http://testserver")


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/app/login").text)
    return client.post(
        "/app/login", data={"username": who, "password": password, "csrf": token}, follow_redirects=False
    )


def test_session_cookie_is_signed_httponly_strict_and_ends_at_sign_out(seeded):
    tmp, _, _ = seeded
    client = client_for(tmp)
    assert client.get("/app/calls", follow_redirects=False).headers["location"] == "/app/login"
    answer = sign_in(client, "ana")
    assert answer.status_code == 303 and answer.headers["location"] == "/app/calls"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("payrank_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie and "Path=/app" in cookie
    page = client.get("/app/calls")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    value = client.cookies.get("payrank_session")
    forged = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    other = TestClient(client.app)
    other.cookies.set("payrank_session", forged, path="/app")
    assert other.get("/app/calls", follow_redirects=False).status_code == 303
    assert client.post("/app/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    again = TestClient(client.app)
    again.cookies.set("payrank_session", value, path="/app")
    assert again.get("/app/calls", follow_redirects=False).headers["location"] == "/app/login"


def test_sign_in_needs_its_csrf_token_and_is_rate_limited(seeded):
    tmp, _, _ = seeded
    client = client_for(tmp)
    client.get("/app/login")
    refused = client.post("/app/login", data={"username": "ana", "password": PASSWORD, "csrf": "nope"})
    assert refused.status_code == 403 and "client.cookies" not in refused.text
    for _ in range(5):
        assert sign_in(client, "bo", "wrong password").status_code == 401
    blocked = sign_in(client, "bo")  # the right password, too late
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert sign_in(client, "sue").status_code == 303  # others at the same address still get in ...
    for n in range(15):
        assert sign_in(client, f"guess{n}", "wrong password").status_code == 401
    assert sign_in(client, "ana").status_code == 429  # ... until the address has failed 4 × 5 times


def test_app_paths_skip_the_api_key_but_other_paths_do_not(seeded):
    tmp, _, _ = seeded
    client = client_for(tmp)
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/login"
    assert client.get("/app/static/app.css").status_code == 200
    assert client.get("/appendix").status_code == 401


def test_supervisor_pages_reassign_and_publish(seeded):
    tmp, store, ids = seeded
    ana = client_for(tmp)
    sign_in(ana, "ana")
    assert ana.get("/app/supervisor").status_code == 403
    token = csrf_of(ana.get("/app/calls").text)
    assert ana.post(f"/app/items/{ids.ana[-1]}/reassign", data={"csrf": token, "to": "bo"}).status_code == 403
    sue = client_for(tmp)
    sign_in(sue, "sue")
    page = sue.get("/app/supervisor")
    assert "No book is configured" in page.text and 'disabled aria-describedby="pub-why"' in page.text
    token = csrf_of(page.text)
    assert sue.post("/app/publish", data={"csrf": token, "calls": "5"}).status_code == 409
    moved = sue.post(f"/app/items/{ids.ana[-1]}/reassign", data={"csrf": token, "to": "bo"}, follow_redirects=False)
    assert moved.status_code == 303
    with store.session() as s:
        assert s.get(WorkItem, ids.ana[-1]).assigned_to == "bo"
    sue.app.state.publisher = lambda request, as_of, calls: f"Published {calls} calls."
    done = sue.post("/app/publish", data={"csrf": token, "calls": "5"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/app/supervisor?msg=published"
    assert "The day is published." in sue.get(done.headers["location"]).text
    assert "<b>" not in sue.get("/app/supervisor?msg=<b>hi</b>").text  # the page says only what it knows


def test_a_bad_result_is_refused_naming_the_field_and_nothing_is_recorded(seeded, caplog):
    tmp, store, ids = seeded
    client = client_for(tmp)
    sign_in(client, "ana")
    token = csrf_of(client.get(f"/app/items/{ids.ana[5]}").text)
    caplog.set_level(logging.DEBUG)
    form = {"csrf": token, "outcome": "right_party", "promise": "1", "promise_amount": "", "note": NOTE}
    refused = client.post(f"/app/items/{ids.ana[5]}/outcome", data=form)
    assert refused.status_code == 422 and "promise amount" in refused.text and "Jane Roe" in refused.text
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Outcome).where(Outcome.item_id == ids.ana[5])) == 0
        account = s.get(WorkItem, ids.ana[5]).account_id
    ok = dict(form, promise_amount="40", promise_date="2026-10-09")
    assert client.post(f"/app/items/{ids.ana[5]}/outcome", data=ok, follow_redirects=False).status_code == 303
    blocked = client.post(f"/app/items/{ids.closed}/outcome", data={"csrf": token, "outcome": "no_answer"})
    assert blocked.status_code == 409 and "calling window" in blocked.text
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [json.loads(x) for x in lines if '"msg": "request"' in x]
    assert any(a.get("specialist") == "ana" and a.get("status") == 303 for a in access)
    text = "\n".join(lines)
    for secret in ("chemotherapy", "Jane Roe", account, PASSWORD):
        assert secret not in text, secret


def test_suggested_plan_and_its_basis():
    amount, months, basis = suggest_plan(1000.0, [])
    assert (amount, months) == (170.0, 6) and "over 6 months" in basis
    amount, months, basis = suggest_plan(1000.0, [50.0, 60.0, 55.0])
    assert amount == 55.0 and months == 19 and "usual payment" in basis
    assert suggest_plan(40.0, [])[0] == 25.0


class FakeScorer:
    """Predicts a fixed +5 points for a call and +1 for everything else."""

    def predict(self, features, num_threads: int = 0):
        import pandas as pd

        base = {"p14_none": 0.10, "p14_call": 0.15, "p14_sms": 0.11, "p14_email": 0.11, "p14_letter": 0.11,
                "p14_portal": 0.11}  # fmt: skip
        return pd.DataFrame({k: [v] * len(features) for k, v in base.items()}, index=features.index)


def test_the_models_channel_effect_chart(seeded):
    from features.load import load_book
    from serving.web.charts import chart_svg
    from serving.web.insights import model_channel_effect

    tmp, store, _ = seeded
    book = load_book(tmp / "book")
    effect = model_channel_effect(book, FakeScorer())
    calls = effect[effect["channel"] == "call"]
    assert len(calls) == book.accounts["payer_class"].nunique() and ((calls["rate"] - 0.05).abs() < 1e-9).all()
    assert chart_svg("channel-model", book, store, FakeScorer()).count("<path") > 20
    assert "no model is loaded" in chart_svg("channel-model", book, store, None)


def test_a_hold_disables_the_call_and_says_so(seeded):
    from datetime import date

    from serving.store.models import StoreHold

    tmp, store, ids = seeded
    item = ids.ana[2]  # untouched by the tests above
    with store.session() as s:
        account = s.get(WorkItem, item).account_id
        s.add(StoreHold(account_id=account, kind="dispute", start_date=date(2026, 9, 30), created_at=NOON))
    client = client_for(tmp)
    sign_in(client, "ana")
    card = client.get(f"/app/items/{item}").text
    assert "On hold: dispute since 2026-09-30" in card
    assert re.search(r'value="voicemail" disabled\s+aria-describedby="why-not"', card)
    listed = client.get("/app/calls").text
    assert listed.count("On hold: dispute since") == 1


def test_a_chart_after_publishing_loads_the_book_again_without_waiting(seeded):
    tmp, _, _ = seeded
    sue = client_for(tmp, book=True)
    sign_in(sue, "sue")
    sue.app.state.web.forget()  # as publishing does: the book and the charts are read again
    answer = sue.get("/app/insights/timing.svg")  # a maker asking for the cached book must not deadlock
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
