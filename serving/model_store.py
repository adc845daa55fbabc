"""Loading a registered bundle: by alias (default `models:/payrank@champion`), a version, or any MLflow URI.

Every load goes through training.bundle_store: the version's files are downloaded and their digest checked
against the registry before LightGBM reads them, and the bundle is built from the verified bytes (no code from
the artifact directory is imported). Commands load in their own process (`load_model`); the server proves a
model loads in a separate process first (`load_model_checked`), so a corrupted bundle cannot take it down.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.bundle_store import Fetched, check_in_subprocess, load_verified, read_scorer
from training.scorer import Scorer


@dataclass
class LoadedModel:
    """A bundle ready to score, with where it came from."""

    scorer: Scorer
    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    digest: str | None = None

    @property
    def label(self) -> str:
        """What goes into the `model_version` column: 'payrank/3' or the URI."""
        return f"{self.name}/{self.version}" if self.name and self.version else self.uri

    def describe(self) -> dict[str, Any]:
        meta = self.scorer.meta
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "uri": self.uri,
            "run_id": self.run_id,
            "digest": self.digest,
            "as_of": meta.get("as_of"),
            "data_window": meta.get("data_window"),
            "metrics": {k: float(v) for k, v in meta.get("headline", {}).items()},
        }


def default_uri(model_name: str) -> str:
    return f"models:/{model_name}@champion"


def _loaded(scorer: Scorer, fetched: Fetched) -> LoadedModel:
    return LoadedModel(
        scorer=scorer,
        uri=fetched.uri,
        name=fetched.name,
        version=fetched.version,
        alias=fetched.alias,
        run_id=fetched.run_id,
        digest=fetched.digest,
    )


def load_model(uri: str, tracking_uri: str | None = None) -> LoadedModel:
    """Load and verify in this process (the store `use_tracking` set unless given); ValueError with a readable
    message when the model is missing, tampered with or not a payrank bundle."""
    with tempfile.TemporaryDirectory(prefix="payrank-model-") as tmp:
        scorer, fetched = load_verified(uri, tmp, tracking_uri)
    return _loaded(scorer, fetched)


def load_model_checked(uri: str, tracking_uri: str) -> tuple[LoadedModel, Any]:
    """Prove in a separate process that the model loads and predicts (reading the registry afresh), then load
    the same verified files here; the model and its signature's input schema (None when it has none)."""
    with tempfile.TemporaryDirectory(prefix="payrank-model-") as tmp:
        fetched = check_in_subprocess(uri, tmp, tracking_uri)
        scorer = read_scorer(fetched)
        schema = _input_schema(Path(fetched.model_dir))
    return _loaded(scorer, fetched), schema


def _input_schema(model_dir: Path) -> Any:
    """The input schema of the signature in the downloaded MLmodel file (what was verified with the bundle)."""
    from mlflow.models import Model

    try:
        signature = Model.load(str(model_dir / "MLmodel")).signature
    except Exception:  # a model without readable metadata still scores; /invocations then parses untyped
        return None
    return signature.inputs if signature is not None else None
