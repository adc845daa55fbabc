"""A registered bundle on disk: the digest that proves it is what was registered, and loading it safely.

At registration (training.train) payrank hashes the two files that decide what a model does — the bundle
(`artifacts/bundle.json`: boosters, calibration, feature spec) and the Python entry file MLflow keeps beside it
(`pyfunc_entry.py`) — into one SHA-256 digest. The digest is recorded three times: in
`artifacts/payrank-digest.json` beside them, as the run's tag and as the model version's tag `payrank.digest`.

Loading (`fetch`) resolves the URI in the registry, downloads the version's files and compares their digest with
the registry's tag and with the file beside them before any booster text reaches LightGBM, whose parser aborts the
whole interpreter on a corrupted tree. Whoever can only write the artifact store cannot make a version pass: the
registry's copy of the digest differs. The bundle is then read straight from the verified bytes; no code from the
artifact directory is ever imported.

`check_in_subprocess` does all of this — registry, download, digest, building every booster and predicting one
row — in a fresh interpreter, so the server proves a candidate loads before it touches it, and reads the registry
afresh every time (a long-lived process's MLflow keeps SQLite connections that never see a replaced database).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DIGEST_FORMAT = "payrank-digest/1"
DIGEST_TAG = "payrank.digest"
DIGEST_ARTIFACT = "digest"  # the pyfunc artifact key: artifacts/payrank-digest.json
DIGEST_FILE = "payrank-digest.json"
BUNDLE_FILE = "artifacts/bundle.json"  # paths inside the model directory
ENTRY_FILE = "pyfunc_entry.py"
ENTRY_SOURCE = Path(__file__).with_name(ENTRY_FILE)
CHECK_TIMEOUT_S = 600.0


class IntegrityError(ValueError):
    """A bundle whose files are not what was registered, or that carries no digest to tell."""


def file_hashes(bundle: bytes, entry: bytes) -> dict[str, str]:
    """SHA-256 of each file that decides what the model does, by its path in the model directory."""
    return {BUNDLE_FILE: hashlib.sha256(bundle).hexdigest(), ENTRY_FILE: hashlib.sha256(entry).hexdigest()}


def combined_digest(hashes: dict[str, str]) -> str:
    """One digest over the files' hashes (names included): `sha256:<hex>`."""
    lines = [DIGEST_FORMAT, *(f"{name} {hashes[name]}" for name in sorted(hashes))]
    return "sha256:" + hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest()


def write_digest_file(path: Path, bundle_path: Path, entry_path: Path = ENTRY_SOURCE) -> str:
    """Write the digest file of a bundle about to be logged (its entry file as MLflow will copy it); the digest."""
    hashes = file_hashes(Path(bundle_path).read_bytes(), Path(entry_path).read_bytes())
    digest = combined_digest(hashes)
    Path(path).write_text(json.dumps({"format": DIGEST_FORMAT, "digest": digest, "files": hashes}, indent=2))
    return digest


@dataclass
class Fetched:
    """A model version's files downloaded and verified: where they are, where they came from, their digest."""

    uri: str
    model_dir: str
    digest: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None


def _read_verified(model_dir: Path, expected: str | None, where: str) -> tuple[bytes, str]:
    """The bundle's bytes, once their digest (and the entry file's) matches `expected` and the digest file."""
    try:
        bundle = (model_dir / BUNDLE_FILE).read_bytes()
        entry = (model_dir / ENTRY_FILE).read_bytes()
    except OSError:
        raise IntegrityError(f"{where} is not a payrank bundle (no {BUNDLE_FILE} and {ENTRY_FILE})") from None
    hashes = file_hashes(bundle, entry)
    digest = combined_digest(hashes)
    try:
        recorded = json.loads((model_dir / "artifacts" / DIGEST_FILE).read_text())
        beside, beside_files = recorded["digest"], dict(recorded["files"])
    except (OSError, ValueError, KeyError, TypeError):
        beside, beside_files = None, {}
    if expected is None and beside is None:
        raise IntegrityError(
            f"{where} carries no integrity digest (registered before payrank recorded them): retrain it"
        )
    for reference in (expected, beside):
        if reference is not None and reference != digest:
            changed = [name for name in sorted(hashes) if beside_files.get(name) not in {None, hashes[name]}]
            what = " and ".join(changed) if changed else "its files"
            raise IntegrityError(f"{where} failed its integrity check: {what} changed since it was registered")
    return bundle, digest


def verify(model_dir: str | Path, expected: str | None, where: str = "the model") -> str:
    """The digest of a model directory's files; IntegrityError unless it matches `expected` and the digest file."""
    return _read_verified(Path(model_dir), expected, where)[1]


def read_scorer(fetched: Fetched) -> Any:
    """The Scorer of a fetched bundle, built from bytes verified again right here (nothing changed since)."""
    from training.scorer import Scorer

    bundle, _ = _read_verified(Path(fetched.model_dir), fetched.digest, _where(fetched))
    try:
        return Scorer.from_dict(json.loads(bundle))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{_where(fetched)} is not a readable payrank bundle ({type(exc).__name__})") from None


def _where(f: Fetched) -> str:
    return f"model {f.name}/{f.version}" if f.name and f.version else f"model {f.uri!r}"


def fetch(uri: str, dest: str | Path, tracking_uri: str | None = None) -> Fetched:
    """Resolve `uri` in the registry, download its files into `dest` and verify them (raises ValueError).

    `models:/name@alias` and `models:/name/N` are checked against the version's `payrank.digest` tag (the alias
    is resolved once, so the files are those of the version it named); `runs:/` URIs against the run's tag;
    anything else (a local path) against the digest file beside the bundle only.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.tracking import require_existing_store

    store = tracking_uri or mlflow.get_tracking_uri()  # the store `use_tracking` pointed MLflow at
    name = version = alias = run_id = expected = None
    download = uri
    try:
        if uri.startswith(("models:/", "runs:/")):
            require_existing_store(store)
        client = MlflowClient(tracking_uri=store, registry_uri=store)
        if uri.startswith("models:/") and not uri.startswith("models:/m-"):
            ref = uri.removeprefix("models:/")
            if "@" in ref:
                name, alias = ref.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, version = ref.split("/", 1)
                mv = client.get_model_version(name, version)
            version, run_id = str(mv.version), mv.run_id
            expected = (mv.tags or {}).get(DIGEST_TAG)
            if expected is None:
                raise IntegrityError(
                    f"model {name}/{version} has no {DIGEST_TAG} tag (registered before payrank recorded "
                    "digests): retrain it"
                )
            download = f"models:/{name}/{version}"
        elif uri.startswith("runs:/"):
            run_id = uri.removeprefix("runs:/").split("/", 1)[0]
            expected = client.get_run(run_id).data.tags.get(DIGEST_TAG)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.set_tracking_uri(store)  # MLflow resolves a version's source through the global stores
        mlflow.set_registry_uri(store)
        model_dir = mlflow.artifacts.download_artifacts(artifact_uri=download, dst_path=str(dest), tracking_uri=store)
    except MlflowException as exc:
        raise ValueError(f"cannot load model {uri!r}: {exc.message.splitlines()[0]}") from None
    except OSError as exc:
        raise ValueError(f"cannot load model {uri!r}: {exc.strerror or type(exc).__name__}") from None
    fetched = Fetched(uri=uri, model_dir=str(model_dir), digest="", name=name, version=version, alias=alias)
    fetched.run_id = run_id
    fetched.digest = verify(model_dir, expected, _where(fetched))
    return fetched


def load_verified(uri: str, dest: str | Path, tracking_uri: str | None = None) -> tuple[Any, Fetched]:
    """`fetch` and `read_scorer` in this process: for short-lived commands (score, worklist, the training gate)."""
    fetched = fetch(uri, dest, tracking_uri)
    return read_scorer(fetched), fetched


def check_in_subprocess(uri: str, dest: str | Path, tracking_uri: str, timeout: float = CHECK_TIMEOUT_S) -> Fetched:
    """Fetch, verify and load the bundle in a fresh interpreter that predicts one row; raises ValueError.

    The child's output (MLflow's and LightGBM's chatter, a LightGBM abort's 90 lines) is kept from this
    process's stderr; a failure comes back as one line saying why.
    """
    cmd = [sys.executable, "-m", "training.bundle_store", uri, str(dest), tracking_uri]
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONFAULTHANDLER": ""}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ValueError(f"cannot load model {uri!r}: checking it took more than {timeout:.0f} s") from None
    result = _last_json(proc.stdout)
    if proc.returncode == 0 and result and result.get("ok"):
        return Fetched(**result["fetched"])
    if result and result.get("error"):
        raise ValueError(result["error"])
    if proc.returncode < 0:
        how = f"killed by {signal.Signals(-proc.returncode).name}"
    else:
        how = f"exit code {proc.returncode}"
    raise ValueError(f"cannot load model {uri!r}: its boosters crash LightGBM (the check process died: {how})")


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _check_main(uri: str, dest: str, tracking_uri: str) -> int:
    """The child of check_in_subprocess: one JSON line on stdout, exit 0 when the bundle loads and predicts."""
    import numpy as np

    try:
        fetched = fetch(uri, dest, tracking_uri)
        scorer = read_scorer(fetched)  # builds every booster: where a corrupted tree would abort us
        probe = np.zeros((1, len(scorer.spec.columns)))  # a zero balance, the first level of every category
        out = scorer.predict_encoded(probe, num_threads=1)
        if not all(np.isfinite(v).all() for v in out.values()):
            raise ValueError(f"{_where(fetched)} predicts no finite numbers")
    except ValueError as exc:
        print(json.dumps({"ok": False, "error": str(exc).splitlines()[0]}), flush=True)
        return 2
    print(json.dumps({"ok": True, "fetched": asdict(fetched)}), flush=True)
    return 0


if __name__ == "__main__":  # python -m training.bundle_store URI DEST TRACKING_URI
    sys.exit(_check_main(*sys.argv[1:4]))
