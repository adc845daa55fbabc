"""Shared fixtures: one generated book and one trained, registered bundle per test session.

Training is the expensive step (tens of seconds), so every test that needs a model shares this one; it is
trained and registered through the same code as `payrank train`, into a throw-away SQLite MLflow store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

BOOK_END = date(2026, 9, 30)
BOOK_GUARANTORS = 10_000
BOOK_SEED = 11
TRAIN_THREADS = 2  # the session's trainings run alone, before the tests that start servers: both cores


@dataclass
class TrainedSession:
    book: object
    truth: pd.DataFrame
    trained: object
    result: object
    tracking_uri: str
    home: Path
    book_dir: Path


@pytest.fixture(scope="session")
def generated() -> tuple[object, pd.DataFrame]:
    """A 10k-guarantor generated book (≈15k accounts) and its truth, ending BOOK_END."""
    from features.generate import generate_book

    return generate_book(BOOK_GUARANTORS, seed=BOOK_SEED, end_date=BOOK_END)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PAYRANK_HOME for the whole session, so nothing lands in the developer's .payrank/."""
    home = tmp_path_factory.mktemp("payrank-home")
    os.environ["PAYRANK_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return home


def served_from_session(session: TrainedSession) -> object:
    """The session's registered bundle as the API serves it, for apps that need not prove it in a child process
    again (`create_app(settings, served)`); the real load is tested where loading is the point."""
    import mlflow

    from serving.api.model_holder import ServedModel
    from serving.model_store import LoadedModel

    version = session.result.version
    client = mlflow.MlflowClient(tracking_uri=session.tracking_uri, registry_uri=session.tracking_uri)
    digest = client.get_model_version("payrank", version).tags.get("payrank.digest")
    mlflow.set_tracking_uri(session.tracking_uri)
    mlflow.set_registry_uri(session.tracking_uri)
    signature = mlflow.models.get_model_info(f"models:/payrank/{version}").signature
    uri = "models:/payrank@champion"
    loaded = LoadedModel(
        session.trained.scorer, uri, "payrank", version, "champion", session.result.run_id, digest=digest
    )
    return ServedModel(loaded, signature.inputs)


@pytest.fixture(scope="session")
def trained_session(generated, session_home: Path) -> TrainedSession:
    """The generated book trained as of its last day, logged and registered as champion."""
    from features.generate import write_book
    from training.train import TrainConfig, log_and_register, train_bundle

    book, truth = generated
    uri = f"sqlite:///{session_home / 'mlflow.db'}"
    cfg = TrainConfig(as_of=BOOK_END, tracking_uri=uri, num_threads=TRAIN_THREADS)
    trained = train_bundle(book, cfg)
    result = log_and_register(trained, cfg)
    book_dir = write_book(book, session_home / "book", "parquet", truth)
    return TrainedSession(book, truth, trained, result, uri, session_home, Path(book_dir))
