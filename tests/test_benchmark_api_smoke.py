"""Smoke test of the API benchmark: `python -m benchmarks.api --quick` into a temporary results directory.

It trains a tiny model, starts `payrank serve` and `mlflow models serve` and loads both; only the shape of the
JSON, positive latencies, the plot and the prediction agreement are checked, never timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = {"invocations_1", "invocations_100", "invocations_1000", "worklist_1000"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The quick benchmark's JSON and results directory."""
    out = tmp_path_factory.mktemp("bench-api") / "results"
    cmd = [sys.executable, "-m", "benchmarks.api", "--quick", "--results-dir", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"benchmarks.api failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "api.json").read_text()), out


@pytest.mark.slow
def test_api_json_has_every_case_with_positive_latencies(run: tuple[dict[str, Any], Path]) -> None:
    data, _ = run
    assert data["benchmark"] == "api" and data["quick"] is True
    assert {"machine", "config", "model", "results", "p99_ratios", "goals", "table_markdown"} <= set(data)
    assert data["machine"]["nproc"] > 0 and {"mlflow", "fastapi", "uvicorn"} <= set(data["machine"]["versions"])
    assert data["config"]["workers"] == 1 and data["config"]["concurrency"] == [1, 4]
    seen = {(r["concurrency"], r["case"], r["server"]) for r in data["results"]}
    for c in (1, 4):
        assert {(c, case, "payrank") for case in CASES} <= seen
        assert {(c, case, "mlflow") for case in CASES - {"worklist_1000"}} <= seen
    for r in data["results"]:
        m = r["median"]
        assert 0 < m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"] <= m["max_ms"], r
        assert m["req_per_s"] > 0 and m["rows_per_s"] > 0 and len(r["repeats"]) == 1
    assert len(data["p99_ratios"]) == 6 and all(q["ratio_p99"] > 0 for q in data["p99_ratios"])
    assert all(isinstance(g["met"], bool) for g in data["goals"])


@pytest.mark.slow
def test_both_servers_predict_the_same(run: tuple[dict[str, Any], Path]) -> None:
    data, _ = run
    match = data["predictions_match"]
    assert [m["rows"] for m in match] == [1, 100, 1000]
    assert all(m["max_abs_diff"] <= 1e-12 and len(m["columns"]) == 8 for m in match)
    assert data["worklist_fragment"]["accounts"] == 1000 and data["worklist_fragment"]["listed"] > 0


@pytest.mark.slow
def test_api_plot_is_a_png(run: tuple[dict[str, Any], Path]) -> None:
    _, out = run
    png = out / "api_latency.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
