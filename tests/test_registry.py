"""The MLflow bundle and the registry: stock pyfunc loading, aliases, the promotion gate, promotion by hand."""

from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from training.pyfunc_model import example_as_strings
from training.registry import CHALLENGER, CHAMPION, list_versions, promote
from training.scorer import OUTPUT_COLUMNS


@pytest.fixture()
def client(trained_session) -> MlflowClient:
    mlflow.set_tracking_uri(trained_session.tracking_uri)
    mlflow.set_registry_uri(trained_session.tracking_uri)
    return MlflowClient()


def test_first_bundle_is_champion_and_challenger(trained_session, client):
    r = trained_session.result
    assert r.promoted and r.reason == "no champion yet"
    assert str(client.get_model_version_by_alias("payrank", CHAMPION).version) == r.version
    assert str(client.get_model_version_by_alias("payrank", CHALLENGER).version) == r.version


def test_stock_pyfunc_predicts_what_the_process_predicts(trained_session):
    mlflow.set_tracking_uri(trained_session.tracking_uri)
    hold = trained_session.trained.holdout.head(300)
    scorer = trained_session.trained.scorer
    stock = mlflow.pyfunc.load_model("models:/payrank@champion")
    got = stock.predict(example_as_strings(scorer, hold))
    want = scorer.predict(hold)[OUTPUT_COLUMNS]
    assert list(got.columns) == OUTPUT_COLUMNS
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0)


def test_signature_declares_categoricals_as_strings(trained_session):
    mlflow.set_tracking_uri(trained_session.tracking_uri)
    info = mlflow.models.get_model_info("models:/payrank@champion")
    inputs = {c.name: str(c.type) for c in info.signature.inputs.inputs}
    assert inputs["payer_class"].lower().endswith("string") and inputs["balance"].lower().endswith("double")


def test_a_worse_model_does_not_become_champion(trained_session, client):
    """Shuffled labels train a useless payment model; the gate keeps the champion and says why."""
    from training.train import log_and_register, train_bundle

    good_cfg = dataclasses.replace(_cfg(trained_session), model_name="payrank-gate", experiment="payrank-gate-test")
    first = log_and_register(trained_session.trained, good_cfg)
    assert first.promoted
    bad_cfg = dataclasses.replace(good_cfg, shuffle_labels=True)
    bad = log_and_register(train_bundle(trained_session.book, bad_cfg), bad_cfg)
    assert not bad.promoted
    assert "AUC" in bad.reason
    assert str(client.get_model_version_by_alias("payrank-gate", CHAMPION).version) == first.version
    assert str(client.get_model_version_by_alias("payrank-gate", CHALLENGER).version) == bad.version
    gate_tag = client.get_model_version("payrank-gate", bad.version).tags["gate"]
    assert gate_tag.startswith("kept champion")

    promote(client, "payrank-gate", bad.version, "testing a manual override")
    assert str(client.get_model_version_by_alias("payrank-gate", CHAMPION).version) == bad.version
    assert client.get_model_version("payrank-gate", bad.version).tags["promoted_by_hand"] == "testing a manual override"
    rows = list_versions(client, "payrank-gate")
    assert [r["version"] for r in rows] == [bad.version, first.version]
    assert "champion" in rows[0]["aliases"] and rows[1]["aliases"] == ""
    assert float(rows[1]["auc"]) > float(rows[0]["auc"]) + 0.1


def _cfg(session):
    from tests.conftest import BOOK_END
    from training.train import TrainConfig

    return TrainConfig(as_of=BOOK_END, tracking_uri=session.tracking_uri, num_threads=1)
