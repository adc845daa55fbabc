"""Where MLflow keeps runs and models: an embedded SQLite store under PAYRANK_HOME unless told otherwise.

Precedence: an explicit URI (the --tracking-uri option) > MLFLOW_TRACKING_URI > PAYRANK_TRACKING_URI >
`sqlite:///<PAYRANK_HOME>/mlflow.db`. Artifacts of experiments payrank creates go to `<PAYRANK_HOME>/mlartifacts`.
The `./mlruns` file store is refused by recent MLflow versions, so it is never the default.
"""

from __future__ import annotations

import os
from pathlib import Path

from serving.config import Settings


def resolve_tracking_uri(explicit: str | None = None, settings: Settings | None = None) -> str:
    """The tracking URI to use, by the precedence above."""
    settings = settings or Settings()
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if settings.tracking_uri:
        return settings.tracking_uri
    home = Path(settings.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def use_tracking(explicit: str | None = None, settings: Settings | None = None) -> str:
    """Point MLflow (tracking and registry) at the resolved store; returns the URI."""
    import mlflow

    uri = resolve_tracking_uri(explicit, settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """Create the experiment (artifacts under PAYRANK_HOME) when missing; returns its id."""
    import mlflow

    settings = settings or Settings()
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = (Path(settings.home).resolve() / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=artifacts)
