"""Issue 10, "what must hold": a bounded property-based run over the API — schemathesis on the OpenAPI schema
(positive and negative data for every operation) and random mutations of valid bodies — with no 5xx, every
status documented for its operation, and no submitted value echoed back.

The counts are printed (`-s` shows them) and asserted, so a run that tried nothing fails. Examples are bounded
and derandomized, so the run takes about half a minute and is the same every time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from serving.api import create_app
from serving.api.books import book_records
from serving.api.settings import ApiSettings
from tests.conftest import BOOK_END, served_from_session
from training.pyfunc_model import example_as_strings

KEY = "fuzz-key-0123456789"
AUTH = {"X-API-Key": KEY}
SCHEMA_EXAMPLES = 15  # per operation and generation mode
MUTATIONS = 100  # per route
SKIPPED = {("POST", "/v1/admin/reload")}  # each reload proves a model in a child process: tested in test_integrity
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def client(trained_session) -> Iterator[TestClient]:
    """The app serving the session's bundle, adopted as loaded (no child process: reloads are not fuzzed)."""
    settings_ = ApiSettings(_env_file=None, tracking_uri=trained_session.tracking_uri, api_keys=[KEY])
    app = create_app(settings_, served_from_session(trained_session))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def openapi(client) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(client.get("/openapi.json", headers=AUTH).json())


def _send(client: TestClient, case: Any) -> Any:
    """The case through the in-process client (its lifespan ran once), with the API key."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=AUTH)
    # a header value outside ASCII goes out as raw bytes, as a real client can send it (httpx refuses the str)
    headers = {
        k: v.encode() if isinstance(v, str) and not v.isascii() else v for k, v in (kwargs.get("headers") or {}).items()
    }
    content: bytes | None = None
    if "json" in kwargs:
        content = json.dumps(kwargs["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        content = data if isinstance(data, bytes) else str(data).encode()
    return client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers, content=content
    )


def _operations(openapi: schemathesis.BaseSchema) -> list[Any]:
    ops = [result.ok() for result in openapi.get_all_operations()]
    return [op for op in ops if (op.method.upper(), op.path) not in SKIPPED]


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_5xx_and_only_documented_statuses(client, openapi, mode):
    operations = _operations(openapi)
    assert {op.path for op in operations} >= {"/v1/score", "/v1/worklist", "/invocations", "/v1/model", "/ping"}
    seen: Counter[int] = Counter()
    for operation in operations:

        @settings(
            max_examples=SCHEMA_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            response = _send(client, case)
            seen[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
            assert mode is schemathesis.GenerationMode.NEGATIVE and operation.method.upper() == "GET"
    TALLY[f"schemathesis {mode.value}"] += sum(seen.values())
    TALLY["5xx"] += sum(n for code, n in seen.items() if code >= 500)
    print(f"\nschemathesis {mode.value}: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= 2 * len(operations) and not any(code >= 500 for code in seen)


# ---- random mutations of valid bodies --------------------------------------------------------------------------

HOSTILE = st.one_of(
    st.sampled_from(
        [
            "9999-12-31",
            "0001-01-01",
            "1677-09-21",
            "2262-04-12T00:00:00",
            "4321",
            "now",
            "today",
            "2026",
            "2026-09",
            "2026-02-30",
            "NaN",
            "Infinity",
            "-1e308",
            "1e308",
            "02139",
            "",
            " ",
            "true",
            "\u0000",
            "x" * 5000,
        ]
    ),
    st.sampled_from([1e308, -1e308, 10**19, -(10**19), 2**53 + 1, 0, -1, 1e-300, True, False, None]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def _mutate(records: dict[str, list[dict]], data: st.DataObject) -> tuple[dict, list[Any]]:
    """A copy of the fragment with 1–4 random cells replaced by hostile values; the values used."""
    book = {name: [dict(r) for r in rows] for name, rows in records.items()}
    used = []
    for _ in range(data.draw(st.integers(1, 4))):
        table = data.draw(st.sampled_from([t for t, rows in book.items() if rows]))
        row = data.draw(st.integers(0, len(book[table]) - 1))
        column = data.draw(st.sampled_from(sorted(book[table][row])))
        value = data.draw(HOSTILE)
        book[table][row][column] = value
        used.append(value)
    return book, used


def _echoed(text: str, values: list[Any]) -> list[str]:
    """Hostile strings (long enough to be telling) that the response quotes back."""
    return [v for v in values if isinstance(v, str) and len(v) >= 6 and v in text and not v.startswith("20")]


@pytest.fixture(scope="module")
def fragment_records(trained_session) -> dict[str, list[dict]]:
    book = trained_session.book
    return book_records(book.subset_guarantors(book.guarantors["guarantor_id"].iloc[::400]))


@pytest.mark.parametrize("path", ["/v1/score", "/v1/worklist"])
def test_mutated_books_are_answered_without_5xx_or_echo(client, fragment_records, path):
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=MUTATIONS, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data(), as_of=st.sampled_from([BOOK_END.isoformat(), "1900-01-01", "2200-12-31", "2026-02-29"]))
    def run(data: st.DataObject, as_of: str) -> None:
        book, used = _mutate(fragment_records, data)
        body = {"as_of": as_of, "book": book, **({"calls": data.draw(st.integers(0, 50))} if "work" in path else {})}
        r = client.post(path, content=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"})
        statuses[r.status_code] += 1
        assert r.status_code in {200, 422}, (r.status_code, r.text[:500])
        assert not _echoed(r.text, used) or r.status_code == 200  # a 200 may carry ids, never error text
        if r.status_code == 200:
            assert all(v is not None for row in r.json()["rows"] for v in (row["balance"], row["p_pay"]))

    run()
    TALLY[f"mutations {path}"] += sum(statuses.values())
    TALLY["5xx"] += sum(n for code, n in statuses.items() if code >= 500)
    print(f"\n{path}: {sum(statuses.values())} mutated bodies, statuses {dict(sorted(statuses.items()))}")
    assert statuses[422] > MUTATIONS // 3  # most mutations break the contract, and are refused


@pytest.fixture(scope="module")
def feature_split(trained_session) -> dict[str, Any]:
    scorer = trained_session.trained.scorer
    rows = example_as_strings(scorer, trained_session.trained.holdout.head(3))
    return json.loads(rows.to_json(orient="split", index=False))


def test_mutated_feature_rows_are_answered_without_5xx(client, feature_split):
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=MUTATIONS, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data(), form=st.sampled_from(["dataframe_split", "dataframe_records", "inputs"]))
    def run(data: st.DataObject, form: str) -> None:
        rows = [list(r) for r in feature_split["data"]]
        used = []
        for _ in range(data.draw(st.integers(1, 3))):
            i, j = data.draw(st.integers(0, len(rows) - 1)), data.draw(st.integers(0, len(rows[0]) - 1))
            rows[i][j] = data.draw(HOSTILE)
            used.append(rows[i][j])
        columns = feature_split["columns"]
        if form == "dataframe_split":
            payload: Any = {"columns": columns, "data": rows}
        elif form == "dataframe_records":
            payload = [dict(zip(columns, r, strict=True)) for r in rows]
        else:
            payload = {c: [r[k] for r in rows] for k, c in enumerate(columns)}
        r = client.post(
            "/invocations", content=json.dumps({form: payload}), headers={**AUTH, "Content-Type": "application/json"}
        )
        statuses[r.status_code] += 1
        assert r.status_code in {200, 400}, (r.status_code, r.text[:500])
        if r.status_code == 400:
            assert not _echoed(r.text, used)
        else:  # every prediction a finite number
            assert all(isinstance(v, float) for p in r.json()["predictions"] for v in p.values())

    run()
    TALLY["mutations /invocations"] += sum(statuses.values())
    TALLY["5xx"] += sum(n for code, n in statuses.items() if code >= 500)
    print(f"\n/invocations: {sum(statuses.values())} mutated bodies, statuses {dict(sorted(statuses.items()))}")
    assert statuses[400] > MUTATIONS // 3


def test_tally(client):
    """Runs last in this module: the totals the issue asks for (bad inputs tried, 5xx seen)."""
    total = sum(n for k, n in TALLY.items() if k != "5xx")
    print(f"\nfuzz total: {total} requests ({dict(TALLY)}), 5xx: {TALLY['5xx']}")
    assert TALLY["5xx"] == 0
