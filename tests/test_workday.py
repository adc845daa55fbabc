"""A full day: generate → train → publish → three specialists record over the API → the store holds exactly that →
compliance withdraws at once → export → the next day's scores see the contacts and holds → a retrain reads the
logged propensities. On the session's generated book and model; the store is SQLite under a temporary home."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.history_promises import promise_kept_rate, promise_outcomes
from features.labels import next_day_actions
from features.overlay import overlay_book
from features.schema import TABLES
from features.validate import BookError
from serving.api import create_app
from serving.api.settings import ApiSettings
from serving.cli import app as cli
from serving.exploration import Exploration
from serving.policy import evaluate_policy
from serving.policy_config import PolicyConfig
from serving.scoring import score_book
from serving.store.db import open_store
from serving.store.export import store_tables
from serving.store.models import Decision, Outcome, Result, StoreHold, WorkItem
from serving.store.publish import prepare_publication, publish
from tests.conftest import BOOK_END
from tests.store_helpers import PASSWORD
from training.policy_value import logged_propensity

D = BOOK_END + timedelta(days=1)  # the worked day
WORK_TIME = pd.Timestamp(D) + pd.Timedelta(hours=19)  # 19:00 UTC: inside every US calling window
CALLS = 30
runner = CliRunner()


@pytest.fixture(scope="module")
def day(trained_session, tmp_path_factory):
    """The store, the CLI environment and the model, after publishing day D (and D+1 in advance)."""
    s = trained_session
    home = tmp_path_factory.mktemp("workday")
    url = f"sqlite:///{home / 'workspace.db'}"
    env = {"PAYRANK_DB_URL": url, "PAYRANK_HOME": str(home)}
    for pid, role, langs in (("ana", "specialist", "en,es"), ("bo", "specialist", "en"), ("cy", "specialist", "en"),
                             ("sue", "supervisor", "en")):  # fmt: skip
        r = runner.invoke(
            cli, ["specialists", "add", pid, "--role", role, "--languages", langs, "--password-stdin"],
            input=PASSWORD + "\n", env=env,
        )  # fmt: skip
        assert r.exit_code == 0, r.output
    model = ["--model", f"models:/payrank/{s.result.version}", "--tracking-uri", s.tracking_uri]
    out = home / "published.csv"
    args = ["worklist", "--data", str(s.book_dir), "--as-of", BOOK_END.isoformat(), "--calls", str(CALLS)]
    r = runner.invoke(cli, [*args, *model, "--publish", "--on-shift", "ana,bo,cy", "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert "published 30 calls" in r.output and "exploration costs $" in r.output
    store = open_store(url)
    # tomorrow's list published in advance (as a team does before a weekend), from the same book as of D
    scorer = s.trained.scorer
    scored = score_book(s.book, D, scorer, PolicyConfig(), "payrank/test", reasons=False)
    pub, _ = prepare_publication(s.book, scored, CALLS, PolicyConfig(), Exploration(), "payrank/test")
    publish(store, pub, (WORK_TIME - pd.Timedelta(hours=12)).to_pydatetime(), ["ana", "bo", "cy"])
    yield {"store": store, "url": url, "env": env, "home": home, "model": model, "published": pd.read_csv(out)}
    store.dispose()


def test_a_full_day(day, trained_session):
    store, s = day["store"], trained_session
    with store.session() as session:
        items = session.scalars(sa.select(WorkItem).order_by(WorkItem.rank)).all()
        today = [i for i in items if i.work_day.day == D]
        tomorrow = {i.account_id: i for i in items if i.work_day.day == D + timedelta(days=1)}
        n_decisions = session.scalar(sa.select(sa.func.count()).select_from(Decision))
    assert len(today) == CALLS and {i.assigned_to for i in today} == {"ana", "bo", "cy"}
    assert n_decisions == 2 * len(s.truth)  # every open account (the truth has one row each), both days
    assert list(day["published"]["account_id"]) == [i.account_id for i in today]

    app = create_app(ApiSettings(_env_file=None, api_keys=["service-key-0123456789"], db_url=day["url"]))
    app.state.clock = lambda: WORK_TIME.to_pydatetime()
    client = TestClient(app)
    tokens = {}
    for pid in ("ana", "bo", "cy"):
        r = client.post("/v1/work/login", json={"username": pid, "password": PASSWORD})
        tokens[pid] = {"Authorization": f"Bearer {r.json()['token']}"}

    def take(pid: str, key: str) -> dict:
        r = client.post("/v1/work/next", headers={**tokens[pid], "Idempotency-Key": key})
        assert r.status_code == 200, r.text
        return r.json()["item"]

    def record(pid: str, item: dict, key: str, body: dict) -> dict:
        r = client.post(
            f"/v1/work/items/{item['id']}/outcome", json=body, headers={**tokens[pid], "Idempotency-Key": key}
        )
        assert r.status_code == 201, r.text
        return r.json()

    promise_day = (D + timedelta(days=7)).isoformat()
    a = take("ana", "ana-next-1")
    got_a = record("ana", a, "ana-rec-1", {"outcome": "right_party", "note": "will pay Friday",
                   "results": [{"kind": "promise_to_pay", "amount": 75.0, "date": promise_day}]})  # fmt: skip
    b = take("bo", "bo-next-01")
    got_b = record("bo", b, "bo-rec-01", {"outcome": "right_party", "results": [{"kind": "dispute"}]})
    c = take("cy", "cy-next-01")
    got_c = record("cy", c, "cy-rec-01", {"outcome": "no_answer"})
    callback_at = (WORK_TIME + pd.Timedelta(hours=1)).isoformat() + "Z"
    a2 = take("ana", "ana-next-2")
    got_a2 = record("ana", a2, "ana-rec-2", {"outcome": "right_party",
                    "results": [{"kind": "callback", "at": callback_at, "owner_only": False}]})  # fmt: skip
    # a retried recording (same key) changes nothing
    assert client.post(f"/v1/work/items/{c['id']}/outcome", json={"outcome": "no_answer"},
                       headers={**tokens["cy"], "Idempotency-Key": "cy-rec-01"}).json() == got_c  # fmt: skip

    # compliance withdrew tomorrow's items of the accounts spoken to, at once (the cooldown, or first the 2-call
    # limit of Massachusetts); the no-answer account keeps its item
    for got, item in ((got_a, a), (got_b, b), (got_a2, a2)):
        if item["account_id"] in tomorrow:
            assert [w["account_id"] for w in got["withdrawn"]] == [item["account_id"]]
            assert got["withdrawn"][0]["rule"] in {"right_party_cooldown", "call_frequency"}
    assert got_c["withdrawn"] == [] and got_b["holds"] == [{"account_id": b["account_id"], "kind": "dispute",
                                                            "start_date": D.isoformat()}]  # fmt: skip
    spoken = {a["account_id"], b["account_id"], a2["account_id"]}
    assert spoken & set(tomorrow), "the test day needs an account listed on both days"

    # the store holds exactly what was recorded
    with store.session() as session:
        outcomes = session.execute(
            sa.select(
                Outcome.account_id, Outcome.specialist_id, Outcome.outcome, Outcome.channel, Outcome.propensity
            ).order_by(Outcome.id)
        ).all()
        results = session.execute(sa.select(Result.kind, Result.amount, Result.first_date).order_by(Result.id)).all()
        holds = session.execute(sa.select(StoreHold.account_id, StoreHold.kind, StoreHold.start_date)).all()
        statuses = {(i.account_id, i.work_day.day): i.status for i in session.scalars(sa.select(WorkItem))}
        callback = session.scalar(sa.select(WorkItem).where(WorkItem.kind == "callback"))
    assert [tuple(o)[:4] for o in outcomes] == [
        (a["account_id"], "ana", "right_party", "call"),
        (b["account_id"], "bo", "right_party", "call"),
        (c["account_id"], "cy", "no_answer", "call"),
        (a2["account_id"], "ana", "right_party", "call"),
    ]
    assert all(0 < o.propensity <= 1 for o in outcomes)
    assert [tuple(r) for r in results] == [("promise_to_pay", 75.0, D + timedelta(days=7)), ("dispute", None, None),
                                           ("callback", None, None)]  # fmt: skip
    assert [tuple(h) for h in holds] == [(b["account_id"], "dispute", D)]
    assert callback.account_id == a2["account_id"] and callback.assigned_to is None and callback.status == "open"
    for acc in spoken & set(tomorrow):
        assert statuses[(acc, D + timedelta(days=1))] == "withdrawn"

    # export: the contract's tables, which overlay the book and validate
    export_dir = day["home"] / "export"
    r = runner.invoke(cli, ["export", "--since", D.isoformat(), "--out", str(export_dir)], env=day["env"])
    assert r.exit_code == 0, r.output
    exported = {t: pd.read_csv(export_dir / f"{t}.csv", dtype=str, keep_default_na=False, na_values=[""])
                for t in ("contacts", "holds", "promises", "decisions")}  # fmt: skip
    assert list(exported["contacts"].columns) == TABLES["contacts"].names and len(exported["contacts"]) == 4
    assert len(exported["holds"]) == 1 and len(exported["promises"]) == 1
    assert len(exported["decisions"]) == n_decisions
    book = overlay_book(s.book, exported)
    assert len(book.contacts) == len(s.book.contacts) + 4
    assert len(overlay_book(book, exported).contacts) == len(book.contacts)  # overlaying twice adds nothing
    from_store = overlay_book(s.book, store_tables(store))
    pd.testing.assert_frame_equal(
        from_store.contacts.tail(4).reset_index(drop=True), book.contacts.tail(4).reset_index(drop=True)
    )

    # the next day's scores see the contacts and the hold
    verdict = evaluate_policy(book, D, book.accounts[["account_id", "guarantor_id"]].reset_index(drop=True),
                              PolicyConfig())  # fmt: skip
    blocks = verdict.blocks.assign(channel=verdict.blocks["channel"].astype(str))
    rules = blocks.groupby("account_id")["rule"].agg(set)
    for acc in spoken:
        assert "right_party_cooldown" in rules[acc]
    assert "hold_dispute" in rules[b["account_id"]]
    assert c["account_id"] not in rules.index or "right_party_cooldown" not in rules[c["account_id"]]
    scores_out = day["home"] / "next-day.csv"
    r = runner.invoke(cli, ["score", "--data", str(s.book_dir), "--as-of", D.isoformat(), "--out", str(scores_out),
                            *day["model"], "--with-store"], env=day["env"])  # fmt: skip
    assert r.exit_code == 0, r.output
    nxt = pd.read_csv(scores_out, keep_default_na=False).set_index("account_id")
    assert "call" not in nxt.loc[a["account_id"], "allowed_channels"].split(",")
    assert nxt.loc[b["account_id"], "allowed_channels"] == ""  # the dispute hold blocks every channel
    promised = promise_outcomes(book, D)
    assert promise_kept_rate(promised)["open"] == 1 and promised["account_id"].tolist() == [a["account_id"]]

    # a retrain reads the logged propensities: the labels training builds carry them, "none" included
    decided = exported["decisions"][exported["decisions"]["decided_for"] == D.isoformat()].set_index("account_id")
    labels = next_day_actions(book, BOOK_END, pd.Series(decided.index)).set_index("account_id")
    taken = labels["action_next"].astype(str)
    same = taken == decided["action"]  # the decided action is the one taken: "none", and the calls made
    # (a few "none" accounts hold a contact the book already dates to that UTC day: a west-coast evening the day before)
    assert (decided.loc[same, "action"] == "none").sum() >= 0.95 * (decided["action"] == "none").sum() > 300
    worked = {a["account_id"], b["account_id"], c["account_id"], a2["account_id"]}
    assert worked <= set(decided.index[same & (taken == "call")])
    ours = same & ((taken == "none") | taken.index.isin(worked))  # not the book's own contacts of that UTC day
    np.testing.assert_allclose(labels.loc[ours, "action_propensity"], decided.loc[ours, "propensity"].astype(float))
    # a text or letter decided but not (yet) sent by the hospital's systems: no contact, no propensity claimed
    assert labels.loc[~same & (taken == "none"), "action_propensity"].isna().all()
    ope = logged_propensity(taken.to_numpy(), labels["action_propensity"].to_numpy(), np.full(len(labels), 0.5))
    np.testing.assert_allclose(ope[ours.to_numpy()], decided.loc[ours, "propensity"].astype(float))  # OPE keeps them


def test_the_overlay_refuses_a_store_from_another_book(day, trained_session):
    foreign = {"contacts": pd.DataFrame([{"contact_id": "pr-x", "account_id": "NOT-IN-BOOK",
                                          "contacted_at": "2026-10-01T15:00:00", "channel": "call",
                                          "outcome": "no_answer", "propensity": "0.5"}])}  # fmt: skip
    with pytest.raises(BookError, match="contacts.account_id: 1 row"):
        overlay_book(trained_session.book, foreign)
    first = trained_session.book.accounts["account_id"].iloc[0]
    bad = {"decisions": pd.DataFrame([{"decision_id": "x", "account_id": first, "decided_for": "2026-10-01",
                                       "action": "call", "propensity": "1.5", "explored": "false",
                                       "policy_version": ""}])}  # fmt: skip
    with pytest.raises(BookError, match="decisions.propensity"):
        overlay_book(trained_session.book, bad)


def test_the_store_commands(day, trained_session):
    env = day["env"]
    args = ["promises", "--data", str(trained_session.book_dir), "--as-of", (D + timedelta(days=30)).isoformat()]
    r = runner.invoke(cli, args, env=env)  # the promise of the full day was never paid: broken by then
    assert r.exit_code == 0 and "0 kept ($0.00), 1 broken ($75.00), 0 open; kept rate 0.0%" in r.output, r.output
    r = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert r.exit_code == 0 and "revision 0002" in r.output
    r = runner.invoke(cli, ["specialists", "list"], env=env)
    assert r.exit_code == 0 and "supervisor" in r.output
    r = runner.invoke(cli, ["specialists", "add", "bad name!", "--password-stdin"], input="x" * 12 + "\n", env=env)
    assert r.exit_code == 2 and "username" in r.output
    r = runner.invoke(cli, ["export", "--since", "2026-13-01", "--out", str(Path(day["home"]) / "x")], env=env)
    assert r.exit_code == 2 and "--since" in r.output
