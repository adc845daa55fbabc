"""Smoke test of the benchmarks: each module runs in --quick mode into a temporary results directory.

Only the shape of the JSON (expected keys, positive numbers) and the plot are checked, never timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("scoring", "features", "training", "plot")  # scoring first: it must create the work folder itself


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run every benchmark module in quick mode (sharing one generated book); the results directory."""
    base = tmp_path_factory.mktemp("bench")
    out, work = base / "results", base / "work"
    for name in MODULES:
        cmd = [sys.executable, "-m", f"benchmarks.{name}", "--quick", "--results-dir", str(out)]
        if name != "plot":
            cmd += ["--work-dir", str(work)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"benchmarks.{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _load(results: Path, name: str) -> dict[str, Any]:
    data = json.loads((results / f"{name}.json").read_text())
    assert data["benchmark"] == name
    machine = data["machine"]
    assert machine["nproc"] > 0 and machine["memory_gib"] > 0 and machine["cpu"]
    assert {"python", "pandas", "numpy", "lightgbm", "pyarrow"} <= set(machine["versions"])
    assert len(data["sizes"]) == 1
    return data


def _positive_median(entry: dict[str, Any], *keys: str) -> None:
    for key in keys:
        node = entry[key]
        assert node["median"] > 0 and node["min"] > 0 and node["n"] >= 1, key


@pytest.mark.slow
def test_features_json(results: Path) -> None:
    entry = _load(results, "features")["sizes"][0]
    assert entry["book_accounts"] > 0 and entry["open_accounts"] > 0
    _positive_median(entry, "load_s", "build_s", "total_s", "peak_rss_mib", "load_peak_rss_mib")
    assert entry["accounts_per_s"] > 0


@pytest.mark.slow
def test_training_json(results: Path) -> None:
    data = _load(results, "training")
    entry = data["sizes"][0]
    assert data["config"]["num_threads"] == 1
    _positive_median(entry, "train_s", "load_s", "peak_rss_mib", "snapshots_s", "payment_model_s")
    _positive_median(entry, "channel_candidates_s", "channel_comparison_s", "channel_refit_s", "evaluate_s")
    assert entry["snapshot_days"] > 0 and entry["snapshot_rows"]["median"] > 0
    phases = sum(entry[k]["median"] for k in entry if k.endswith("_s") and k not in ("train_s", "load_s", "cpu_s"))
    assert phases == pytest.approx(entry["train_s"]["median"], rel=0.05)  # the steps cover the whole run


@pytest.mark.slow
def test_scoring_json(results: Path) -> None:
    data = _load(results, "scoring")
    assert data["model"]["model_uri"].startswith("models:/") and data["model"]["train_s"] > 0
    entry = data["sizes"][0]
    _positive_median(entry["e2e"], "wall_s", "peak_rss_mib", "book_accounts_per_s", "scored_accounts_per_s")
    keys = ("predict_full_s", "payment_path_s", "raw_payment_s", "raw_payment_frame_s", "raw_all_s")
    _positive_median(entry["predict"], *keys, "ratio_payment_path", "ratio_full_bundle")
    assert entry["e2e_reasons"] is not None  # the CLI has --reasons
    _positive_median(entry["e2e_reasons"], "wall_s", "book_accounts_per_s")
    assert entry["predict_child"]["p_pay_consistent"]
    assert all(v > 0 for v in entry["stages"].values())


@pytest.mark.slow
def test_plot_png(results: Path) -> None:
    png = results / "scaling.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
