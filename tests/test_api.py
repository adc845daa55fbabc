"""The API in-process (TestClient): CLI and MLflow agreement, auth, bad input, reload, logs, metrics, limits."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from mlflow.deployments import PredictionsResponse
from mlflow.utils.proto_json_utils import dump_input_data
from typer.testing import CliRunner

from features.generate import write_book
from serving.api import create_app
from serving.api.books import book_records, fragment_book
from serving.api.logging import JsonFormatter
from serving.api.schemas import ExclusionRow, ScoreRow, WorklistRow
from serving.api.security import AuthConfigError, hash_key, key_digests, key_matches
from serving.api.settings import ApiSettings
from serving.cli import app as cli_app
from serving.policy_config import PolicyConfig
from serving.scoring import SCORE_COLUMNS, score_book
from serving.worklist import EXCLUSION_COLUMNS, WORKLIST_COLUMNS, build_worklist
from tests.conftest import BOOK_END
from training.pyfunc_model import example_as_strings
from training.scorer import OUTPUT_COLUMNS

KEY = "test-key-0123456789"
AUTH = {"X-API-Key": KEY}
AS_OF = BOOK_END.isoformat()


def make_settings(session: Any, **over: Any) -> ApiSettings:
    values = {"tracking_uri": session.tracking_uri, "api_keys": [KEY], "max_concurrency": 2, **over}
    return ApiSettings(_env_file=None, **values)


@pytest.fixture(scope="module")
def client(trained_session) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(trained_session))) as c:
        yield c


@pytest.fixture(scope="module")
def fragment(trained_session):
    """Every 25th guarantor of the session book with all their accounts (≈600 accounts, ≈150 open)."""
    book = trained_session.book
    return book.subset_guarantors(book.guarantors["guarantor_id"].iloc[::25])


@pytest.fixture(scope="module")
def records(fragment) -> dict[str, list[dict[str, Any]]]:
    return book_records(fragment)


@pytest.fixture(scope="module")
def served_version(client) -> str:
    return client.get("/v1/model", headers=AUTH).json()["version"]


@pytest.fixture(scope="module")
def scored(client, records) -> dict[str, Any]:
    r = client.post("/v1/score", json={"as_of": AS_OF, "book": records}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


# ---- the same numbers as the CLI and as MLflow ---------------------------------------------------------------


def test_score_agrees_with_the_cli_to_the_last_digit(scored, fragment, served_version, trained_session, tmp_path):
    book_dir = write_book(fragment, tmp_path / "fragment", "csv")
    out = tmp_path / "scores.csv"
    args = ["score", "--data", str(book_dir), "--as-of", AS_OF, "--out", str(out), "--reasons"]
    args += ["--model", f"models:/payrank/{served_version}", "--tracking-uri", trained_session.tracking_uri]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    cli = pd.read_csv(out, dtype=str, keep_default_na=False)
    api = pd.DataFrame(scored["rows"], columns=SCORE_COLUMNS)
    assert len(api) == len(cli) > 50
    for col in SCORE_COLUMNS:
        if col in {"balance", "p_pay", "channel_uplift", "expected_value"}:
            assert api[col].tolist() == [float(v) for v in cli[col]], col  # exact, no tolerance
        else:
            assert api[col].tolist() == cli[col].tolist(), col
    assert scored["model_version"] == f"payrank/{served_version}" and scored["as_of"] == AS_OF


def test_response_rows_have_exactly_the_batch_columns():
    assert list(ScoreRow.model_fields) == SCORE_COLUMNS
    assert list(WorklistRow.model_fields) == WORKLIST_COLUMNS
    assert list(ExclusionRow.model_fields) == EXCLUSION_COLUMNS


def test_worklist_is_build_worklist_of_the_fragment(client, records, fragment, trained_session):
    r = client.post("/v1/worklist", json={"as_of": AS_OF, "book": records, "calls": 3}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    scorer = client.app.state.holder.current.loaded.scorer
    local = score_book(fragment_book(records), BOOK_END, scorer, PolicyConfig(), body["model_version"])
    listed, left_out = build_worklist(local, 3, PolicyConfig())
    assert [row["account_id"] for row in body["rows"]] == listed["account_id"].tolist()
    assert [row["rank"] for row in body["rows"]] == list(range(1, len(listed) + 1))
    got = [(e["account_id"], e["rule"], e["detail"]) for e in body["exclusions"]]
    assert got == list(left_out[["account_id", "rule", "detail"]].itertuples(index=False, name=None))
    assert len({row["guarantor_id"] for row in body["rows"]}) == len(body["rows"]) <= 3


def test_fragment_records_validate_like_the_book(fragment, records):
    """book_records → JSON → the API's frames gives back the same typed book as the CSV reader does."""
    again = fragment_book(json.loads(json.dumps(records)))
    for name, frame in fragment.tables().items():
        pd.testing.assert_frame_equal(again.tables()[name], frame.reset_index(drop=True), check_dtype=False)


@pytest.fixture(scope="module")
def feature_rows(trained_session) -> pd.DataFrame:
    scorer = trained_session.trained.scorer
    return example_as_strings(scorer, trained_session.trained.holdout.head(300)).reset_index(drop=True)


@pytest.fixture(scope="module")
def stock_predictions(feature_rows, served_version, trained_session) -> pd.DataFrame:
    mlflow.set_tracking_uri(trained_session.tracking_uri)
    mlflow.set_registry_uri(trained_session.tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/payrank/{served_version}").predict(feature_rows)


def test_invocations_answers_what_stock_mlflow_pyfunc_predicts(client, feature_rows, stock_predictions):
    r = client.post(
        "/invocations", content=dump_input_data(feature_rows), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    got = PredictionsResponse.from_json(r.text).get_predictions()  # how MLflow's own client reads the answer
    assert list(got.columns) == OUTPUT_COLUMNS
    pd.testing.assert_frame_equal(got, stock_predictions.reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("form", ["dataframe_records", "instances", "inputs", "csv"])
def test_invocations_input_formats_agree(client, feature_rows, stock_predictions, form):
    if form == "csv":
        body, ctype = feature_rows.to_csv(index=False), "text/csv; charset=utf-8"
    else:
        rows = feature_rows.astype(object).where(feature_rows.notna(), None)
        data = rows.to_dict("records") if form != "inputs" else rows.to_dict("list")
        body, ctype = json.dumps({form: data}), "application/json"
    r = client.post("/invocations", content=body, headers={**AUTH, "Content-Type": ctype})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json()["predictions"])
    pd.testing.assert_frame_equal(got, stock_predictions.reset_index(drop=True), check_exact=True)


def test_invocations_with_no_rows(client, feature_rows):
    empty = {"dataframe_split": {"columns": list(feature_rows.columns), "data": []}}
    r = client.post("/invocations", json=empty, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"predictions": []}


# ---- open and closed doors ----------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/version"),
    ("GET", "/v1/model"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/score"),
    ("POST", "/v1/worklist"),
    ("POST", "/invocations"),
    ("POST", "/v1/admin/reload"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("key", [None, "wrong-key", KEY + " "])
def test_everything_but_ping_and_health_needs_a_valid_key(client, method, path, key):
    headers = {} if key is None else {"X-API-Key": key}
    r = client.request(method, path, headers=headers, json={})
    assert r.status_code == 401
    assert "X-API-Key" in r.json()["detail"]


def test_ping_and_health_are_open(client):
    ping = client.get("/ping")
    assert ping.status_code == 200 and ping.text == "\n"
    assert client.get("/health").json() == {"status": "ok"}


def test_version_and_model(client, served_version):
    v = client.get("/version", headers=AUTH).json()
    assert v["payrank"] and v["mlflow"] == mlflow.__version__ and v["model_version"] == f"payrank/{served_version}"
    m = client.get("/v1/model", headers=AUTH).json()
    assert m["name"] == "payrank" and m["alias"] == "champion" and m["uri"] == "models:/payrank@champion"
    assert ".." in m["data_window"] and 0.5 < m["metrics"]["holdout_auc"] <= 1.0


def test_openapi_lists_the_routes(client):
    paths = client.get("/openapi.json", headers=AUTH).json()["paths"]
    assert {"/v1/score", "/v1/worklist", "/invocations", "/v1/model", "/ping"} <= set(paths)


def test_keys_are_compared_as_sha256_digests():
    digests = [bytes.fromhex(hash_key("alpha")), bytes.fromhex(hash_key("beta"))]
    assert key_matches("beta", digests) and key_matches("alpha", digests)
    assert not key_matches("gamma", digests) and not key_matches("", digests) and not key_matches("alpha", [])


def test_key_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("PAYRANK_API_KEY_HASHES", f" {hash_key('a').upper()} , {hash_key('b')},")
    monkeypatch.setenv("PAYRANK_API_KEYS", '["c", "d,e"]')
    s = ApiSettings(_env_file=None)
    assert s.api_key_hashes == [hash_key("a"), hash_key("b")]
    assert [k.get_secret_value() for k in s.api_keys] == ["c", "d,e"] and "d,e" not in repr(s)
    assert all(key_matches(k, key_digests(s)) for k in ("a", "b", "c", "d,e"))


def test_a_malformed_key_hash_is_refused_without_echoing_it(monkeypatch):
    from serving.api.server import ServeError, build_settings

    monkeypatch.setenv("PAYRANK_API_KEY_HASHES", "my-secret-plain-key")
    with pytest.raises(ServeError) as err:
        build_settings()
    assert "PAYRANK_API_KEY_HASHES" in str(err.value) and "SHA-256" in str(err.value)
    assert "my-secret-plain-key" not in str(err.value)


def test_no_key_no_app_unless_explicitly_allowed(trained_session, client):
    with pytest.raises(AuthConfigError, match="PAYRANK_API_KEY_HASHES"):
        create_app(make_settings(trained_session, api_keys=[]))
    served = client.app.state.holder.current  # the model as loaded: no second check process
    app = create_app(make_settings(trained_session, api_keys=[], allow_no_auth=True), served)
    with TestClient(app) as open_client:
        assert open_client.get("/v1/model").status_code == 200
        assert open_client.post("/v1/score", content=b"{not json").status_code == 422


def test_payrank_serve_refuses_to_start_without_a_key(monkeypatch):
    for var in ("PAYRANK_API_KEYS", "PAYRANK_API_KEY_HASHES", "PAYRANK_ALLOW_NO_AUTH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir("/")  # no .env
    result = CliRunner().invoke(cli_app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "no API key configured" in result.output and "hashlib.sha256" in result.output


# ---- bad input is a 4xx naming the field, never a 500 --------------------------------------------------------


def _with(records: dict[str, list], table: str, row: int, **values: Any) -> dict[str, list]:
    out = {k: [dict(r) for r in v] for k, v in records.items()}
    out[table][row].update(values)
    return out


def test_a_broken_book_names_table_column_and_keys(client, records):
    book = _with(records, "transactions", 0, amount="abc")
    book = _with(book, "transactions", 1, amount="12.x")
    r = client.post("/v1/score", json={"as_of": AS_OF, "book": book}, headers=AUTH)
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["book", "transactions", "amount"]
    tx = records["transactions"][0]["transaction_id"]
    assert item["msg"].startswith("2 unparseable number") and f"transaction_id={tx}" in item["msg"]
    assert "abc" not in r.text and "12.x" not in r.text  # rows are named by key, values never echoed


def _bad_bodies(records: dict[str, list]) -> list[tuple[str, Any, tuple]]:
    """(case, body, expected loc prefix) — body None means 'send raw bytes'."""
    no_contacts = {k: v for k, v in records.items() if k != "contacts"}
    return [
        ("missing table", {"as_of": AS_OF, "book": no_contacts}, ("body", "book", "contacts")),
        ("unknown table", {"as_of": AS_OF, "book": {**records, "payments": []}}, ("body", "book", "payments")),
        ("book not an object", {"as_of": AS_OF, "book": [1, 2]}, ("body", "book")),
        ("records not a list", {"as_of": AS_OF, "book": {**records, "holds": {"a": 1}}}, ("body", "book", "holds")),
        ("nested value", {"as_of": AS_OF, "book": _with(records, "accounts", 2, service_date=[1])}, ("body", "book")),
        ("bad as_of", {"as_of": "30/09/2026", "book": records}, ("body", "as_of")),
        ("as_of a number", {"as_of": 20260930, "book": records}, ("body", "as_of")),
        ("as_of out of range", {"as_of": "9999-12-31", "book": records}, ("body", "as_of")),
        ("as_of impossible", {"as_of": "2026-02-30", "book": records}, ("body", "as_of")),
        ("no as_of", {"book": records}, ("body", "as_of")),
        ("unknown enum", {"as_of": AS_OF, "book": _with(records, "contacts", 0, channel="pigeon")}, ("book",)),
        ("bad date", {"as_of": AS_OF, "book": _with(records, "accounts", 0, service_date="yesterday")}, ("book",)),
        ("bad bool", {"as_of": AS_OF, "book": _with(records, "guarantors", 0, has_mobile="maybe")}, ("book",)),
        ("dangling key", {"as_of": AS_OF, "book": _with(records, "accounts", 0, guarantor_id="nobody")}, ("book",)),
        ("amount a bool", {"as_of": AS_OF, "book": _with(records, "transactions", 0, amount=True)}, ("book",)),
        ("missing column", {"as_of": AS_OF, "book": {**records, "holds": [{"account_id": "x"}]}}, ("book", "holds")),
    ]


def test_an_out_of_range_birth_year_is_a_contract_problem(client, records):
    book = _with(records, "guarantors", 0, birth_year="1e30")
    r = client.post("/v1/score", json={"as_of": AS_OF, "book": book}, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["book", "guarantors", "birth_year"]


def test_bad_score_bodies_are_4xx_naming_the_field(client, records):
    for case, body, loc in _bad_bodies(records):
        r = client.post("/v1/score", json=body, headers=AUTH)
        assert 400 <= r.status_code < 500, (case, r.status_code, r.text[:300])
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail, case
        assert any(tuple(d["loc"][: len(loc)]) == loc for d in detail), (case, detail[:3])
        assert all("input" not in d for d in detail), case  # the input is not echoed back


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b'{"as_of": "2026-09-30"}', "application/json"),
        (b'{"as_of": "2026-09-30", "book": {}}', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"as_of=2026-09-30", "application/x-www-form-urlencoded"),
        (b'{"as_of": "2026-09-30", "book": null}', "text/plain"),
    ],
)
def test_malformed_bodies_are_4xx(client, body, ctype):
    for path in ("/v1/score", "/v1/worklist"):
        r = client.post(path, content=body, headers={**AUTH, "Content-Type": ctype})
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        assert "detail" in r.json()


@pytest.mark.parametrize("calls", [-1, 10**9, 2.5, "ten", None, 10**40, True, "5", 5.0])
def test_bad_calls_are_422(client, records, calls):
    r = client.post("/v1/worklist", json={"as_of": AS_OF, "book": records, "calls": calls}, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "calls"]


def test_big_but_allowed_calls_list_everyone_once(client, records):
    r = client.post("/v1/worklist", json={"as_of": AS_OF, "book": records, "calls": 1_000_000}, headers=AUTH)
    assert r.status_code == 200
    rows = r.json()["rows"]
    assert len({row["guarantor_id"] for row in rows}) == len(rows)
    assert not any(e["rule"] == "over_capacity" for e in r.json()["exclusions"])


def test_an_empty_book_scores_nothing(client):
    empty = {"guarantors": [], "accounts": [], "transactions": [], "contacts": []}
    r = client.post("/v1/score", json={"as_of": AS_OF, "book": empty}, headers=AUTH)
    assert r.status_code == 200 and r.json()["rows"] == []
    r = client.post("/v1/worklist", json={"as_of": AS_OF, "book": empty, "calls": 5}, headers=AUTH)
    assert r.status_code == 200 and r.json()["rows"] == [] and r.json()["exclusions"] == []


def test_an_as_of_before_the_book_scores_nothing(client, records):
    r = client.post("/v1/score", json={"as_of": "1999-01-01", "book": records}, headers=AUTH)
    assert r.status_code == 200 and r.json()["rows"] == []


def _post_features(client: TestClient, payload: Any, ctype: str = "application/json") -> Any:
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post("/invocations", content=body, headers={**AUTH, "Content-Type": ctype})


def test_invocations_names_a_missing_feature(client, feature_rows):
    r = _post_features(client, {"dataframe_records": feature_rows.drop(columns=["balance"]).head(3).to_dict("records")})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "BAD_REQUEST" and "balance" in body["message"]
    assert body["detail"][0]["loc"] == ["body", "balance"]


def test_invocations_names_a_non_numeric_feature(client, feature_rows):
    rows = feature_rows.head(3).astype(object).where(feature_rows.head(3).notna(), None).to_dict("records")
    rows[1]["balance"] = "lots"
    r = _post_features(client, {"dataframe_records": rows})
    assert r.status_code == 400 and "balance" in r.json()["message"]


@pytest.mark.parametrize(
    ("column", "value"), [("balance", "lots"), ("balance", {"x": 1}), ("payer_class", {"x": 1}), ("payer_class", [1])]
)
def test_split_rows_with_wrong_values_are_4xx_naming_the_column(client, feature_rows, column, value):
    split = json.loads(feature_rows.head(2).to_json(orient="split", index=False))
    split["data"][0][split["columns"].index(column)] = value
    r = _post_features(client, {"dataframe_split": split})
    assert 400 <= r.status_code < 500 and column in r.text, r.text[:300]


@pytest.mark.parametrize(
    ("payload", "ctype", "status"),
    [
        ("{nope", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "inputs": [1]}, "application/json", 400),
        ({"records": []}, "application/json", 400),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}, "application/json", 400),
        ({"dataframe_split": "x"}, "application/json", 400),
        ({"dataframe_records": [1, 2]}, "application/json", 400),
        ({"instances": [1, 2, 3]}, "application/json", 400),
        ({"inputs": {"balance": [[1, 2], [3]]}}, "application/json", 400),
        ("balance\n1\n", "text/csv", 400),
        (b"\xff\xfe", "text/csv", 400),
        ("a,b\n1", "text/plain", 415),
        ("{}", "application/json; charset=latin-1", 415),
        ("{}", "application/json; format=pandas-split", 415),
        (b"not parquet", "application/vnd.apache.parquet", 400),
    ],
)
def test_bad_invocations_are_4xx(client, payload, ctype, status):
    r = _post_features(client, payload, ctype)
    assert r.status_code == status, r.text[:300]
    assert r.json()["message"]


def test_invocations_without_content_type_is_415(client):
    r = client.post("/invocations", content=b"{}", headers=AUTH)
    assert r.status_code == 415


# ---- limits, reload, bugs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alias_version(trained_session, served_version) -> Iterator[str]:
    """An alias of the served version only these tests use (and delete)."""
    mlflow.set_registry_uri(trained_session.tracking_uri)
    client = MlflowClient(tracking_uri=trained_session.tracking_uri, registry_uri=trained_session.tracking_uri)
    client.set_registered_model_alias("payrank", "api-test", served_version)
    yield served_version
    with contextlib.suppress(mlflow.exceptions.MlflowException):
        client.delete_registered_model_alias("payrank", "api-test")


@pytest.fixture(scope="module")
def small_client(trained_session, alias_version, client) -> Iterator[TestClient]:
    """An app with a 64 kB body limit configured for the `api-test` alias; it starts with the main client's
    model (the same version) as loaded, and its reloads load the alias."""
    settings = make_settings(trained_session, max_body_bytes=64_000, model_uri="models:/payrank@api-test")
    with TestClient(create_app(settings, client.app.state.holder.current)) as c:
        yield c


def test_bodies_over_the_limit_are_413(small_client):
    big = b'{"as_of": "2026-09-30", "book": {"guarantors": [' + b'{"a": 1},' * 10_000 + b"{}]}}"
    r = small_client.post("/v1/score", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than 64000" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams in
        yield from (big[i : i + 8192] for i in range(0, len(big), 8192))

    for path in ("/v1/score", "/invocations"):
        r = small_client.post(path, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.text[:200])
    r = small_client.post("/v1/score", content=b"{}", headers={**AUTH, "Content-Length": "12x"})
    assert r.status_code == 400


def test_a_failed_reload_keeps_serving_the_old_model(small_client, trained_session, alias_version, feature_rows):
    ok = small_client.post("/v1/admin/reload", headers=AUTH)
    assert ok.status_code == 200 and ok.json()["changed"] is False
    assert ok.json()["model"]["version"] == alias_version
    MlflowClient(registry_uri=trained_session.tracking_uri).delete_registered_model_alias("payrank", "api-test")
    r = small_client.post("/v1/admin/reload", headers=AUTH)
    assert r.status_code == 503
    assert "api-test" in r.json()["detail"] and f"still serving payrank/{alias_version}" in r.json()["detail"]
    assert small_client.get("/v1/model", headers=AUTH).json()["version"] == alias_version
    rows = feature_rows.head(5)
    again = small_client.post(
        "/invocations", content=dump_input_data(rows), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert again.status_code == 200 and len(again.json()["predictions"]) == 5
    settings = small_client.app.state.settings
    settings.model_uri = "file:///nonexistent/model"
    r = small_client.post("/v1/admin/reload", headers=AUTH)
    assert r.status_code == 503 and "nonexistent" in r.json()["detail"]
    assert small_client.get("/health").json() == {"status": "ok"}


def test_a_reload_during_a_reload_is_409(small_client, monkeypatch):
    class Busy:
        def locked(self) -> bool:
            return True

    monkeypatch.setattr(small_client.app.state.holder, "_lock", Busy())
    r = small_client.post("/v1/admin/reload", headers=AUTH)
    assert r.status_code == 409 and "already in progress" in r.json()["detail"]


def test_a_genuine_bug_is_a_json_500_with_the_request_id(client, records, monkeypatch, caplog):
    import serving.api.service as service

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "score_book", broken)
    with caplog.at_level(logging.ERROR, logger="payrank.api"):
        r = client.post("/v1/score", json={"as_of": AS_OF, "book": records}, headers=AUTH)
    assert r.status_code == 500
    assert r.json()["request_id"] == r.headers["X-Request-ID"] and "a bug" not in r.text
    assert any(rec.levelno == logging.ERROR and rec.exc_info for rec in caplog.records)


# ---- logs and metrics ------------------------------------------------------------------------------------------


def test_info_logs_carry_no_phi(client, records, fragment, caplog):
    broken = _with(records, "transactions", 0, amount="abc")
    with caplog.at_level(logging.INFO):
        ok = client.post("/v1/score", json={"as_of": AS_OF, "book": records}, headers=AUTH)
        bad = client.post("/v1/score", json={"as_of": AS_OF, "book": broken}, headers=AUTH)
    assert ok.status_code == 200 and bad.status_code == 422
    fmt = JsonFormatter()
    lines = [fmt.format(rec) for rec in caplog.records if rec.levelno >= logging.INFO]
    text = "\n".join(lines)
    ids = set(fragment.accounts["account_id"]) | set(fragment.guarantors["guarantor_id"])
    ids |= set(fragment.transactions["transaction_id"])
    assert not [i for i in ids if i in text]
    balances = {f"{row['balance']:.2f}" for row in ok.json()["rows"] if row["balance"] >= 100}
    assert len(balances) > 20 and not [b for b in balances if b in text]
    access = [json.loads(line) for line in lines if '"msg": "request"' in line]
    assert [a["status"] for a in access] == [200, 422]
    first = access[0]
    assert first["path"] == "/v1/score" and first["rows"] == len(ok.json()["rows"]) and first["latency_ms"] >= 0
    assert first["model_version"] == ok.json()["model_version"] and first["request_id"] == ok.headers["X-Request-ID"]
    assert access[1]["error_fields"] == ["transactions.amount"]


def test_request_ids_are_echoed_or_made(client):
    mine = client.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    odd = client.get("/ping", headers={"X-Request-ID": "no spaces <allowed>"})
    assert odd.headers["X-Request-ID"] != "no spaces <allowed>" and len(odd.headers["X-Request-ID"]) == 32


def test_metrics_count_rows_latency_and_model(client, scored, served_version):
    text = client.get("/metrics", headers=AUTH).text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    assert samples['payrank_rows_scored_total{route="/v1/score"}'] >= len(scored["rows"]) > 0
    assert samples['payrank_http_request_duration_seconds_count{method="POST",route="/v1/score"}'] >= 1
    assert samples['payrank_http_requests_total{method="POST",route="/v1/score",status="200"}'] >= 1
    info = f'payrank_model_info{{label="payrank/{served_version}",name="payrank",version="{served_version}"}}'
    assert samples[info] == 1.0


def test_metrics_can_be_public(trained_session, client):
    app = create_app(make_settings(trained_session, metrics_public=True), client.app.state.holder.current)
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/v1/model").status_code == 401


# ---- issue 10: bounds, huge numbers, no echo, authentication first, documented statuses --------------------------


def _problem(r: Any, table: str, column: str) -> str:
    assert r.status_code == 422, r.text[:300]
    items = [d for d in r.json()["detail"] if d["loc"] == ["book", table, column]]
    assert items, r.json()["detail"]
    return items[0]["msg"]


@pytest.mark.parametrize("path", ["/v1/score", "/v1/worklist"])
@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("transactions", "posted_date", "9999-12-31"),
        ("accounts", "service_date", "0001-01-01"),
        ("contacts", "contacted_at", "4321"),
        ("contacts", "contacted_at", "now"),
        ("contacts", "contacted_at", "2026-09"),
        ("transactions", "amount", 1e308),
        ("guarantors", "birth_year", -5),
        ("guarantors", "birth_year", 3000),
    ],
)
def test_out_of_range_values_are_422_naming_table_column_and_key(client, records, path, table, column, value):
    """These were 500s (OutOfBoundsDatetime), or 200 with `balance: null` for a 1e308 charge."""
    book = _with(records, table, 0, **{column: value})
    if table == "transactions":  # a charge, so the sign agrees with the kind
        book = _with(book, table, 0, kind="charge")
    r = client.post(path, json={"as_of": AS_OF, "book": book}, headers=AUTH)
    msg = _problem(r, table, column)
    key = {"guarantors": "guarantor_id", "accounts": "account_id", "transactions": "transaction_id"}.get(
        table, "contact_id"
    )
    assert f"{key}={records[table][0][key]}" in msg
    assert str(value) not in r.text and repr(value) not in r.text


def test_as_of_out_of_range_is_422_without_echo(client, records):
    r = client.post("/v1/score", json={"as_of": "1600-01-01", "book": records}, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "as_of"] and "1600" not in r.text


SECRETS = {
    ("guarantors", "zip3"): "02139",
    ("contacts", "outcome"): "spoke to John Q Public, SSN 123-45-6789, will pay",
    ("accounts", "service_date"): "z" * 100_000,
    ("transactions", "amount"): "twelve hundred",
    ("guarantors", "state"): "Massachusetts",
}


@pytest.mark.parametrize("path", ["/v1/score", "/v1/worklist"])
def test_error_bodies_never_echo_submitted_values(client, records, path):
    """422 bodies quoted values (`value='02139'`, a free-text outcome with a name and SSN, a 100 kB value)."""
    book = records
    for (table, column), secret in SECRETS.items():
        book = _with(book, table, 1, **{column: secret})
    odd_key = "k" * 10_000  # an unknown column a client made up: ignored, like a CSV's extra column
    book = _with(book, "accounts", 0, **{odd_key: "x"})
    r = client.post(path, json={"as_of": AS_OF, "book": book}, headers=AUTH)
    assert r.status_code == 422 and len(r.content) < 4_000, len(r.content)
    assert {tuple(d["loc"][1:]) for d in r.json()["detail"]} == set(SECRETS)
    for secret in SECRETS.values():
        assert secret[:40] not in r.text
    nested = client.post(path, json={"as_of": AS_OF, "book": {**records, odd_key: []}}, headers=AUTH)
    assert nested.status_code == 422 and odd_key not in nested.text and len(nested.content) < 2_000


def _split(feature_rows: pd.DataFrame, column: str, value: Any) -> dict:
    split = json.loads(feature_rows.head(2).to_json(orient="split", index=False))
    for row in split["data"]:  # the whole column: a column of ints was a category by one format, not another
        row[split["columns"].index(column)] = value
    return {"dataframe_split": split}


def _records(feature_rows: pd.DataFrame, column: str, value: Any) -> dict:
    rows = json.loads(feature_rows.head(2).to_json(orient="records"))
    for row in rows:
        row[column] = value
    return {"dataframe_records": rows}


@pytest.mark.parametrize("shape", [_split, _records], ids=["dataframe_split", "dataframe_records"])
@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("balance", True, "booleans are not numbers"),
        ("n_payments", False, "booleans are not numbers"),
        ("payer_class", 3, "must be strings"),
        ("state", 1.5, "must be strings"),
        ("balance", 10**400, "finite"),
        ("balance", "1e400", "finite"),
        ("balance", "lots", "must be numbers"),
    ],
)
def test_invocations_judge_values_alike_in_every_format(client, feature_rows, shape, column, value, words):
    """A numeric category was 400 by `dataframe_split` and 200 by `dataframe_records`; booleans passed as 1.0;
    10**400 was a 500. Every format now gives the same 400 naming the column, and never echoes the value."""
    r = _post_features(client, shape(feature_rows, column, value))
    assert r.status_code == 400, r.text[:300]
    body = r.json()
    assert body["detail"][0]["loc"] == ["body", column] and words in body["message"]
    assert "lots" not in r.text and "1e400" not in r.text


def test_invocations_refuse_infinity_and_deep_bodies_with_400(client, feature_rows):
    text = json.dumps(_split(feature_rows, "balance", 0.0)).replace("0.0", "Infinity", 1)
    r = _post_features(client, text)
    assert r.status_code == 400 and "finite" in r.json()["message"]
    for path in ("/invocations", "/v1/score", "/v1/worklist"):
        deep = client.post(path, content=b"[" * 100_000, headers={**AUTH, "Content-Type": "application/json"})
        assert deep.status_code == 400, (path, deep.status_code, deep.text[:200])


@pytest.mark.parametrize("path", ["/v1/score", "/v1/worklist", "/invocations", "/v1/admin/reload"])
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}], ids=["no-key", "wrong-key"])
def test_the_key_is_checked_before_the_body_is_read(client, path, headers):
    """Malformed JSON without a key was a 422 on /v1/score and /v1/worklist: the body was parsed first."""
    for body in (b"{not json", b"[" * 100_000, b'{"as_of": "9999-12-31"}'):
        r = client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "X-API-Key", (path, r.text[:200])
    assert client.get("/no-such-route").status_code == 401  # unknown paths tell nothing either


def test_every_error_status_is_in_the_openapi_schema(client):
    paths = client.get("/openapi.json", headers=AUTH).json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    common = {"400", "413", "500"}
    assert common | {"200", "401", "422", "503"} <= codes("/v1/score", "post")
    assert common | {"200", "401", "422", "503"} <= codes("/v1/worklist", "post")
    assert common | {"200", "401", "415", "503"} <= codes("/invocations", "post")
    assert common | {"200", "401", "409", "503"} <= codes("/v1/admin/reload", "post")
    assert common | {"200", "401", "503"} <= codes("/v1/model", "get")
    assert common | {"200", "503"} <= codes("/ping", "get") and "401" not in codes("/ping", "get")
    assert "401" in codes("/metrics", "get") and "401" in codes("/version", "get")
