"""Issue 10, items 1–3: a corrupted or tampered bundle never takes a process down, and reloads see the registry
as it is. Real MLflow (SQLite), real `payrank serve` processes; versions are copies of one registered bundle
with one thing changed, registered as a store would hold them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import BOOK_END
from tests.test_api_server import _free_port, _wait_ready
from training.bundle_store import (
    BUNDLE_FILE,
    DIGEST_FILE,
    DIGEST_TAG,
    ENTRY_FILE,
    combined_digest,
    file_hashes,
)
from training.registry import CHAMPION

KEY = "integrity-test-key"
AUTH = {"X-API-Key": KEY}
NAME = "payrank"


@dataclass
class Store:
    """A throw-away registry: version 1 as training registered it, and variants of it by label."""

    uri: str
    db: Path
    home: Path
    versions: dict[str, str]
    marker: Path  # the file the tampered entry file would create if its code ran

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def promote(self, label: str) -> None:
        self.client().set_registered_model_alias(NAME, CHAMPION, self.versions[label])


def _corrupt_booster(model_dir: Path) -> None:
    """One character inserted after the first `leaf_value=` of the payment booster (the issue's reproduction)."""
    path = model_dir / BUNDLE_FILE
    bundle = json.loads(path.read_text())
    text = bundle["payment_model"]
    at = text.index("leaf_value=") + len("leaf_value=")
    bundle["payment_model"] = text[:at] + "x" + text[at:]
    path.write_text(json.dumps(bundle))


def _edit_calibration(model_dir: Path) -> None:
    path = model_dir / BUNDLE_FILE
    bundle = json.loads(path.read_text())
    bundle["calibration"]["y"] = [0.99] * len(bundle["calibration"]["y"])
    bundle["meta"]["headline"]["holdout_auc"] = 0.999
    path.write_text(json.dumps(bundle))


def _reregister(model_dir: Path) -> str:
    """Make the digest (file and tag) match the edited files: a broken bundle registered as such."""
    hashes = file_hashes((model_dir / BUNDLE_FILE).read_bytes(), (model_dir / ENTRY_FILE).read_bytes())
    digest = combined_digest(hashes)
    (model_dir / "artifacts" / DIGEST_FILE).write_text(json.dumps({"digest": digest, "files": hashes}))
    return digest


@pytest.fixture(scope="module")
def store(trained_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from training.train import TrainConfig, log_and_register

    home = tmp_path_factory.mktemp("integrity")
    db = home / "mlflow.db"
    uri = f"sqlite:///{db}"
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        cfg = TrainConfig(as_of=BOOK_END, tracking_uri=uri, num_threads=1, experiment="integrity")
        first = log_and_register(trained_session.trained, cfg)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        good = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{first.version}", dst_path=str(home / "v1")))
        registered = client.get_model_version(NAME, first.version)
        marker = home / "entry-code-ran"
        edits: dict[str, tuple[Callable[[Path], None] | None, bool]] = {
            "good2": (None, False),
            "tampered": (_corrupt_booster, False),  # changed after registration: the digest tells
            "registered_corrupt": (_corrupt_booster, True),  # registered broken: only loading it tells
            "calibration": (_edit_calibration, False),
            "code": (lambda d: (d / ENTRY_FILE).write_text((d / ENTRY_FILE).read_text() + _code(marker)), False),
        }
        versions = {"good": first.version}
        for label, (edit, retag) in edits.items():
            copy = home / label
            shutil.copytree(good, copy)
            if edit is not None:
                edit(copy)
            tags = dict(registered.tags)
            if retag:
                tags[DIGEST_TAG] = _reregister(copy)
            mv = client.create_model_version(NAME, str(copy), run_id=registered.run_id, tags=tags)
            versions[label] = str(mv.version)
        client.set_registered_model_alias(NAME, CHAMPION, first.version)
        yield Store(uri=uri, db=db, home=home, versions=versions, marker=marker)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _code(marker: Path) -> str:
    return f"\nopen({str(marker)!r}, 'w').write('the artifact directory ran code in the server')\n"


# ---- in one process: the digest refuses a changed bundle or entry file ---------------------------------------


@pytest.mark.parametrize(("label", "file"), [("calibration", BUNDLE_FILE), ("code", ENTRY_FILE)])
def test_an_edited_calibration_or_added_code_is_detected(store, label, file):
    """Item 2: both loaded silently before (p_pay 0.99, AUC 0.999 on /v1/model; the code ran on load)."""
    from serving.model_store import load_model

    with pytest.raises(ValueError) as info:
        load_model(f"models:/{NAME}/{store.versions[label]}", store.uri)
    assert "integrity check" in str(info.value) and file in str(info.value)
    assert not store.marker.exists()
    good = load_model(f"models:/{NAME}/{store.versions['good']}", store.uri)
    assert good.digest == store.client().get_model_version(NAME, store.versions["good"]).tags[DIGEST_TAG]


def test_a_version_without_a_digest_is_refused(store):
    client = store.client()
    good = client.get_model_version(NAME, store.versions["good"])
    tags = {k: v for k, v in good.tags.items() if k != DIGEST_TAG}
    legacy = client.create_model_version(NAME, str(store.home / "good2"), run_id=good.run_id, tags=tags)
    from serving.model_store import load_model

    with pytest.raises(ValueError, match="no payrank.digest tag"):
        load_model(f"models:/{NAME}/{legacy.version}", store.uri)


def test_the_command_line_refuses_a_corrupted_bundle_in_one_line(store, trained_session, tmp_path):
    """Item 1: `payrank score` on the issue's corrupted bundle aborted the interpreter (exit 134)."""
    out = tmp_path / "scores.csv"
    cmd = [sys.executable, "-m", "serving.cli", "score", "--data", str(trained_session.book_dir)]
    cmd += ["--as-of", BOOK_END.isoformat(), "--out", str(out), "--tracking-uri", store.uri]
    cmd += ["--model", f"models:/{NAME}/{store.versions['tampered']}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "integrity check" in text and BUNDLE_FILE in text
    assert "Traceback" not in text and "LightGBM" not in text and not out.exists()


# ---- a real server: start and reload ---------------------------------------------------------------------------


def _serve(store: Store, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "PAYRANK_API_KEYS": KEY, "PAYRANK_HOME": str(store.home)}
    env.pop("PAYRANK_ALLOW_NO_AUTH", None)
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--port", str(port), "--tracking-uri", store.uri]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=store.home)
    return proc, f"http://127.0.0.1:{port}"


def _json_lines(log: Path) -> list[dict]:
    text = log.read_text()
    return [json.loads(line) for line in text.splitlines()]  # every line is one JSON object


def test_starting_on_a_corrupted_champion_is_one_log_line_and_a_nonzero_exit(store, tmp_path):
    """Item 1: it exited 134 with LightGBM's 94 lines. The boosters are proven in a child process first."""
    store.promote("registered_corrupt")
    try:
        proc, _ = _serve(store, tmp_path / "serve.log")
        code = proc.wait(timeout=120)
    finally:
        store.promote("good")
    lines = _json_lines(tmp_path / "serve.log")
    assert code == 1
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1 and errors[0]["msg"].startswith("cannot start: ")
    assert "crash LightGBM" in errors[0]["msg"] and "SIGABRT" in errors[0]["msg"]
    assert not any(line["level"] == "error" and "Traceback" in json.dumps(line) for line in lines)


def test_reloads_refuse_broken_models_keep_serving_and_see_a_replaced_registry(store, tmp_path):
    """Items 1–3 on one live server: a reload onto a broken bundle is a 503 with one log line (the process used
    to die), a tampered entry file is refused, and after the store's database file is replaced by a backup
    whose champion is another version, a reload serves that version (it used to answer `changed: false`)."""
    backup = tmp_path / "backup.db"
    shutil.copyfile(store.db, backup)
    backup_uri = f"sqlite:///{backup}"  # the backup's champion is version good2
    MlflowClient(backup_uri, backup_uri).set_registered_model_alias(NAME, CHAMPION, store.versions["good2"])
    log = tmp_path / "serve.log"
    proc, url = _serve(store, log)
    try:
        _wait_ready(url, lambda: proc.poll() is None, timeout=120)
        with httpx.Client(base_url=url, headers=AUTH, timeout=120) as http:
            assert http.get("/v1/model").json()["version"] == store.versions["good"]
            for label, words in (("registered_corrupt", "crash LightGBM"), ("tampered", BUNDLE_FILE)):
                store.promote(label)
                r = http.post("/v1/admin/reload")
                assert r.status_code == 503 and words in r.json()["detail"], r.text
                assert f"still serving {NAME}/{store.versions['good']}" in r.json()["detail"]
                assert proc.poll() is None and http.get("/health").json() == {"status": "ok"}
            assert not store.marker.exists()
            os.replace(backup, store.db)  # restored from a backup: same path, another file
            r = http.post("/v1/admin/reload")
            assert r.status_code == 200, r.text
            assert r.json()["changed"] is True and r.json()["model"]["version"] == store.versions["good2"]
            assert http.get("/v1/model").json()["version"] == store.versions["good2"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = _json_lines(log)
    failed = [line for line in lines if line["msg"] == "model reload failed; keeping the current model"]
    assert "crash LightGBM" in failed[0]["reason"] and "integrity check" in failed[1]["reason"]
    assert len(failed) == 2 and all(line["level"] == "warning" for line in failed)
    assert not any("[LightGBM]" in line["msg"] for line in lines)
