"""Real randomised data nobody on this project wrote: the Hillstrom e-mail test (64,000 customers, 3 arms).

The estimators and the uplift learner payrank uses must recover what the experiment measured: the visit
rate of "e-mail everyone the Mens campaign" (0.1828) and of "e-mail no one" (0.1062) from logged data with
propensity 1/3 per arm, and a better-than-random ranking of who the Mens e-mail moves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.ope import deterministic_pi, evaluate_policy
from training.qini import qini_coefficient, uplift_by_decile
from training.uplift import OffsetUpliftLearner

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hillstrom" / "hillstrom.csv"
ARMS = {"No E-Mail": "none", "Mens E-Mail": "mens", "Womens E-Mail": "womens"}
ACTIONS = ["none", "mens", "womens"]
FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
KNOWN = {"mens": 0.1828, "none": 0.1062}  # SOURCE.md: arm visit rates


@pytest.fixture(scope="module")
def hill() -> dict:
    """Data, a 50/50 split, a learner fitted on each half and cross-fitted per-action visit predictions."""
    if not DATA.parent.is_dir():
        pytest.skip(f"Hillstrom data folder {DATA.parent} is absent")
    df = pd.read_csv(DATA)
    X = df[FEATURES].astype({"zip_code": "category", "channel": "category"})
    a = df["segment"].map(ARMS).to_numpy()
    y = df["visit"].to_numpy(dtype=float)
    half = np.random.default_rng(0).random(len(df)) < 0.5
    q = np.empty((len(df), len(ACTIONS)))
    learners = []
    for fit_rows in (half, ~half):
        learner = OffsetUpliftLearner(ACTIONS, seed=0, num_threads=1)
        learner.fit(X[fit_rows], a[fit_rows], y[fit_rows])
        q[~fit_rows] = learner.predict(X[~fit_rows])[ACTIONS].to_numpy()
        learners.append(learner)
    return {"X": X, "a": a, "y": y, "half": half, "q": q, "learner": learners[0]}


def test_data_is_the_documented_file(hill: dict) -> None:
    a, y = hill["a"], hill["y"]
    assert len(y) == 64_000
    for arm, rate in KNOWN.items():
        assert y[a == arm].mean() == pytest.approx(rate, abs=5e-5)


@pytest.mark.parametrize("arm", ["mens", "none"])
def test_off_policy_estimators_recover_the_experiments_arm_value(hill: dict, arm: str) -> None:
    a, y, q = hill["a"], hill["y"], hill["q"]
    col = {act: i for i, act in enumerate(ACTIONS)}
    q_logged = q[np.arange(len(a)), pd.Series(a).map(col).to_numpy()]
    res = evaluate_policy(
        reward=y,
        propensity=np.full(len(a), 1 / 3),
        pi_logged=deterministic_pi(arm, a),
        q_logged=q_logged,
        q_target=q[:, col[arm]],
        n_boot=500,
        seed=0,
    )
    # Measured (mens): IPS 0.1825 [0.1777, 0.1880], SNIPS 0.1828 [0.1781, 0.1879], DR 0.1823 [0.1776, 0.1874];
    # (none): IPS 0.1060 [0.1022, 0.1103], SNIPS 0.1062 [0.1026, 0.1103], DR 0.1063 [0.1027, 0.1103].
    for name in ("ips", "snips", "dr"):
        r = res[name]
        assert r["lo"] <= KNOWN[arm] <= r["hi"], (name, r)
        assert abs(r["value"] - KNOWN[arm]) < 0.002, (name, r)
        assert 0.006 < r["hi"] - r["lo"] < 0.012, (name, r)
    # Uniform propensities make SNIPS the arm's mean exactly; a predictive reward model narrows DR.
    assert res["snips"]["value"] == pytest.approx(y[a == arm].mean(), abs=1e-12)
    assert res["dr"]["se"] < res["ips"]["se"]


def test_learner_ranks_who_the_mens_email_moves_better_than_random(hill: dict) -> None:
    held = ~hill["half"]
    X, a, y = hill["X"][held], hill["a"][held], hill["y"][held]
    up = hill["learner"].uplift(X)
    sel = np.isin(a, ["mens", "none"])
    qini = qini_coefficient(up["mens"].to_numpy()[sel], a[sel] == "mens", y[sel])
    # Measured 0.0020; over 12 random splits 0.0010-0.0042, while random scores give 0 +- 0.0013.
    assert 0.0008 < qini < 0.01
    assert qini_coefficient(-up["mens"].to_numpy()[sel], a[sel] == "mens", y[sel]) < 0
    # The average effect: the learner's mean uplift matches the experiment's difference in visit rates.
    ate = y[a == "mens"].mean() - y[a == "none"].mean()
    assert up["mens"].mean() == pytest.approx(ate, abs=0.01)  # measured 0.072 vs 0.076


def test_learner_finds_the_womens_email_heterogeneity(hill: dict) -> None:
    held = ~hill["half"]
    X, a, y = hill["X"][held], hill["a"][held], hill["y"][held]
    up = hill["learner"].uplift(X)["womens"].to_numpy()
    sel = np.isin(a, ["womens", "none"])
    assert qini_coefficient(up[sel], a[sel] == "womens", y[sel]) > 0.004  # measured 0.0068 (min 0.0063)
    deciles = uplift_by_decile(up[sel], a[sel] == "womens", y[sel])
    top, bottom = deciles["observed_uplift"].iloc[:3].mean(), deciles["observed_uplift"].iloc[-3:].mean()
    assert top > bottom + 0.03  # measured 0.074 vs 0.017
