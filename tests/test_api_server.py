"""The API over real HTTP: uvicorn on a loopback port (in a thread, and `payrank serve` as a process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from mlflow.deployments import PredictionsResponse
from mlflow.utils.proto_json_utils import dump_input_data

from serving.api import create_app
from serving.api.books import book_records
from serving.api.settings import ApiSettings
from tests.conftest import BOOK_END, served_from_session
from training.pyfunc_model import example_as_strings
from training.scorer import OUTPUT_COLUMNS

KEY = "server-test-key-42"
AUTH = {"X-API-Key": KEY}
START_TIMEOUT_S = 60


def _wait_ready(url: str, alive: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
    """Poll /ping until it answers 200; fail fast if the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped before it answered /ping")
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no answer from {url}/ping within {timeout} s")


@pytest.fixture(scope="module")
def server(trained_session) -> Iterator[str]:
    """uvicorn serving create_app(...) on a socket bound to a free loopback port, in a daemon thread."""
    settings = ApiSettings(_env_file=None, tracking_uri=trained_session.tracking_uri, api_keys=[KEY])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, served_from_session(trained_session))  # loading is tested by `payrank serve` below
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, thread.is_alive)
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive()


def test_ping_score_and_invocations_over_http(server, trained_session):
    book = trained_session.book
    fragment = book.subset_guarantors(book.guarantors["guarantor_id"].iloc[::100])
    with httpx.Client(base_url=server, timeout=60) as http:
        assert http.get("/ping").status_code == 200 and http.get("/health").json() == {"status": "ok"}
        body = {"as_of": BOOK_END.isoformat(), "book": book_records(fragment)}
        assert http.post("/v1/score", json=body).status_code == 401
        assert http.post("/v1/score", json=body, headers={"X-API-Key": "nope"}).status_code == 401
        r = http.post("/v1/score", json=body, headers={**AUTH, "X-Request-ID": "over-http-1"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "over-http-1" and len(r.json()["rows"]) > 10

        rows = example_as_strings(trained_session.trained.scorer, trained_session.trained.holdout.head(50))
        headers = {**AUTH, "Content-Type": "application/json"}
        r = http.post("/invocations", content=dump_input_data(rows), headers=headers)
        assert r.status_code == 200, r.text
        got = PredictionsResponse.from_json(r.text).get_predictions()
        assert list(got.columns) == OUTPUT_COLUMNS and len(got) == 50
        assert http.post("/invocations", content=dump_input_data(rows)).status_code == 401


def test_concurrent_requests_get_the_answers_of_sequential_ones(server, trained_session):
    """Requests scored at the same time on one shared model answer exactly what they answer one by one."""
    book = trained_session.book
    bodies = [
        {"as_of": BOOK_END.isoformat(), "book": book_records(book.subset_guarantors(ids))}
        for ids in (book.guarantors["guarantor_id"].iloc[i::200] for i in range(4))
    ]
    rows = example_as_strings(trained_session.trained.scorer, trained_session.trained.holdout.head(200))
    features = dump_input_data(rows)
    headers = {**AUTH, "Content-Type": "application/json"}
    with httpx.Client(base_url=server, timeout=120) as http:

        def ask(i: int) -> str:
            if i % 2:
                return http.post("/invocations", content=features, headers=headers).text
            return http.post("/v1/score", json=bodies[(i // 2) % 4], headers=AUTH).text

        alone = [ask(i) for i in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            together = list(pool.map(ask, [*range(8), *range(8)]))
    assert together == alone + alone
    assert all('"rows"' in a or '"predictions"' in a for a in alone)


def test_a_streamed_oversized_body_is_cut_off_with_413(server):
    chunk = b" " * 1024 * 1024

    def body() -> Iterator[bytes]:  # chunked transfer: no Content-Length to judge by
        yield b'{"as_of": "2026-09-30", "book": '
        for _ in range(25):
            yield chunk

    with httpx.Client(base_url=server, timeout=60) as http:
        r = http.post("/v1/score", content=body(), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413
        assert http.get("/ping").status_code == 200  # and the server is fine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_payrank_serve_runs_the_api(trained_session, tmp_path: Path):
    """The real command in its own process: JSON logs, the key from the environment, a clean stop."""
    port = _free_port()
    env = {**os.environ, "PAYRANK_API_KEYS": KEY, "PAYRANK_HOME": str(trained_session.home)}
    env.pop("PAYRANK_ALLOW_NO_AUTH", None)
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--port", str(port)]
    cmd += ["--tracking-uri", trained_session.tracking_uri]
    log = tmp_path / "serve.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, lambda: proc.poll() is None)
        assert httpx.get(f"{url}/version", timeout=10).status_code == 401
        version = httpx.get(f"{url}/version", headers=AUTH, timeout=10).json()
        assert version["model_version"].startswith("payrank/")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    logged = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in logged), text[-2000:]
    assert sum(entry["msg"] == "request" for entry in logged) >= 3 and KEY not in text


LOG_CHILD = """
import numpy as np, lightgbm as lgb
from serving.api.logging import configure_logging
configure_logging("info")
np.exp(np.array([1000.0]))  # numpy's RuntimeWarnings went to stderr as raw text
np.array([1.0]) / np.array([0.0])
X = np.random.default_rng(0).normal(size=(50, 2))
lgb.train({"objective": "binary", "verbose": 1, "num_leaves": 4}, lgb.Dataset(X, (X[:, 0] > 0) * 1.0), 2)
"""


def test_warnings_and_lightgbm_messages_are_json_log_lines(tmp_path: Path):
    """A server's stderr had 270 lines that were not JSON: numpy's warnings and LightGBM's own messages."""
    proc = subprocess.run([sys.executable, "-c", LOG_CHILD], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (proc.stdout + proc.stderr).splitlines()]  # every line is JSON
    warned = [line["msg"] for line in lines if line["logger"] == "py.warnings"]
    assert len(warned) == 2 and "overflow encountered in exp" in warned[0] and "divide by zero" in warned[1]
    assert sum(line["logger"] == "lightgbm" and "[LightGBM]" in line["msg"] for line in lines) >= 3
