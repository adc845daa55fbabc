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
    beats = r.metrics["policy_dr_lo"] > r.metrics["policy_logged_value"]
    assert r.promoted and r.reason.startswith("no champion yet")
    assert (r.reason == "no champion yet") == beats  # a warning exactly when the policy evidence is missing
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
    bad_cfg = dataclasses.replace(good_cfg, shuffle_labels=True, channel_learners=("offset",))  # one learner: cheaper
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


# ---- concurrent trainings (issue 10, item 4) -------------------------------------------------------------------

FIRST_USE = """
import sys, time
from pathlib import Path
from training.tracking import ensure_experiment, use_tracking
uri, folder, me, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(folder / f"ready-{me}").touch()
while len(list(folder.glob("ready-*"))) < n:  # every process past its imports, then all at once
    time.sleep(0.001)
use_tracking(uri)
print(ensure_experiment("race"))
"""


def test_concurrent_first_use_of_a_fresh_store_is_serialised(tmp_path):
    """Two `payrank train`-like first uses of one fresh SQLite store at the same instant: without the lock
    around MLflow's table creation one died with `duplicate column name: step` or similar."""
    import os
    import subprocess
    import sys

    uri, n = f"sqlite:///{tmp_path / 'mlflow.db'}", 2
    env = {**os.environ, "PAYRANK_HOME": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, uri, str(tmp_path), str(i), str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err[-800:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1  # one experiment, found or made by all of them


def test_promotion_is_compare_and_set(trained_session, tmp_path):
    """A training that compared itself with champion v1 must not promote itself over v2, which another
    training promoted meanwhile: the gate re-reads the champion under the lock and compares again."""
    from training.registry import Gate, register_and_gate
    from training.tracking import use_tracking

    uri = use_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name, source = "payrank-cas", str(tmp_path)  # the gate never loads these versions: score_champion says
    metrics = {"1": {"auc": 0.80, "policy_value": 10.0}, "2": {"auc": 0.80, "policy_value": 12.0}}
    client.create_registered_model(name)
    for version in metrics:
        assert client.create_model_version(name, source, run_id=trained_session.result.run_id).version == int(version)
    client.set_registered_model_alias(name, CHAMPION, "1")
    compared: list[str] = []

    def score_champion(model_uri: str) -> dict[str, float]:
        version = str(client.get_model_version_by_alias(name, CHAMPION).version if "@" in model_uri else "")
        version = version or model_uri.rsplit("/", 1)[1]
        compared.append(version)
        if len(compared) == 1:  # another training finishes meanwhile and promotes v2
            client.set_registered_model_alias(name, CHAMPION, "2")
        return metrics[version]

    evidence = {"policy_lo": 9.0, "logged_value": 8.0}  # its policy beats the logged one: only the values decide
    new = {"auc": 0.80, "policy_value": 11.0, **evidence}  # beats v1, loses to v2
    version, decision = register_and_gate(
        client, name, source, trained_session.result.run_id, new, score_champion, Gate()
    )
    assert compared == ["1", "2"]
    assert not decision.promoted and decision.champion_version == "2" and "policy value" in decision.reason
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "2"
    assert client.get_model_version(name, version).tags["gate"].startswith("kept champion")

    # with no one racing it, the same gate promotes a better model at once, comparing once
    compared.clear()
    better = {"auc": 0.81, "policy_value": 13.0, **evidence}
    version, decision = register_and_gate(
        client, name, source, trained_session.result.run_id, better, score_champion, Gate()
    )
    assert decision.promoted and compared == ["2"] and decision.champion_version == "2"
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == version
