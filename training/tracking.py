"""Where MLflow keeps runs and models: an embedded SQLite store under PAYRANK_HOME unless told otherwise.

Precedence: an explicit URI (the --tracking-uri option) > MLFLOW_TRACKING_URI > PAYRANK_TRACKING_URI >
`sqlite:///<PAYRANK_HOME>/mlflow.db`. Artifacts of experiments payrank creates go to `<PAYRANK_HOME>/mlartifacts`.
The `./mlruns` file store is refused by recent MLflow versions, so it is never the default.

Processes sharing a store on one machine take a file lock (`store_lock`) where MLflow itself would race: creating
a fresh store's tables (two concurrent migrations fail with `duplicate column name: step`) and moving the
champion alias (the promotion gate's compare-and-set).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from serving.config import Settings

LOCK_TIMEOUT_S = 600.0


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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:` URI (None for other stores and in-memory SQLite)."""
    if not uri.startswith("sqlite:"):
        return None
    import sqlalchemy as sa

    database = sa.engine.make_url(uri).database or ""
    database = database.removeprefix("file:").split("?", 1)[0]
    return None if database in {"", ":memory:"} else Path(database)


def require_existing_store(uri: str) -> None:
    """Refuse a SQLite store whose file does not exist: reading from it would create an empty one."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise ValueError(f"no MLflow store at {str(path)!r} (a SQLite tracking URI must name an existing file)")


def _lock_path(uri: str, settings: Settings | None = None) -> Path:
    path = sqlite_path(uri)
    if path is not None:
        return path.with_name(path.name + ".payrank-lock")
    folder = Path((settings or Settings()).home).resolve() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}.lock"


@contextmanager
def store_lock(uri: str, settings: Settings | None = None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive lock shared by every payrank process on this machine that uses the store `uri`.

    A lock file beside a SQLite store (`<db>.payrank-lock`), else under PAYRANK_HOME/locks. It serialises only
    processes of one machine; stores shared across machines need MLflow's own server in front of them.
    """
    path = _lock_path(uri, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    held = f"another payrank process held {str(path)!r} for over {timeout:.0f} s"
                    raise TimeoutError(held) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def use_tracking(explicit: str | None = None, settings: Settings | None = None, must_exist: bool = False) -> str:
    """Point MLflow (tracking and registry) at the resolved store and open it; returns the URI.

    Opening a database store creates or upgrades its tables on first use, under `store_lock`, so concurrent
    first runs wait for each other instead of racing through MLflow's migrations. `must_exist`: refuse a
    SQLite store that is not there (commands that only read models) rather than create an empty one.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(explicit, settings)
    if must_exist:
        require_existing_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if "://" in uri and uri.split(":", 1)[0].split("+", 1)[0] in {"sqlite", "postgresql", "mysql", "mssql"}:
        with store_lock(uri, settings):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)  # opens (and on first use migrates) the tracking store
            client.search_registered_models(max_results=1)  # and the registry's
    return uri


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """Create the experiment (artifacts under PAYRANK_HOME) when missing; returns its id.

    Another process may create it at the same moment: then its experiment is used.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    settings = settings or Settings()
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = (Path(settings.home).resolve() / "mlartifacts").as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=artifacts)
    except MlflowException:
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
