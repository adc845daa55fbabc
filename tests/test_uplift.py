"""OffsetUpliftLearner on a confounded synthetic book with known uplift; Qini and decile evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.qini import qini_coefficient, qini_curve, uplift_by_decile
from training.uplift import OffsetUpliftLearner, offset_intercept, propensity_weights

ACTIONS = ("none", "call", "sms", "letter")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def make_book(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Confounded history: calls go to high-x0 accounts, and x0 also drives paying.

    True log-odds shifts: call 0.2 + 0.8 x1 (uplift depends on x1 only), sms 0 (no effect), letter 0.5 but
    only ~0.5% of rows. Returns X, action, y, logging propensity of the logged action, true uplift.
    """
    rng = np.random.default_rng(seed)
    x0, x1, x2 = rng.normal(size=n), rng.normal(size=n), rng.uniform(-1, 1, n)
    region = pd.Categorical(rng.choice(["north", "south", "west"], n), categories=["north", "south", "west"])
    X = pd.DataFrame({"x0": x0, "x1": x1, "x2": x2, "region": region})
    e = np.exp(np.column_stack([np.zeros(n), 1.5 * x0 - 1.0, np.full(n, -0.8)]))
    mu = np.column_stack([0.995 * e / e.sum(axis=1, keepdims=True), np.full(n, 0.005)])
    idx = (rng.random(n)[:, None] > np.cumsum(mu, axis=1)).sum(axis=1)
    base = -1.2 + 0.8 * x0 + 0.3 * x2 + 0.4 * (region == "south")
    shift = np.column_stack([np.zeros(n), 0.2 + 0.8 * x1, np.zeros(n), np.full(n, 0.5)])
    p = _sigmoid(base[:, None] + shift)
    y = (rng.random(n) < p[np.arange(n), idx]).astype(float)
    true_uplift = pd.DataFrame(p[:, 1:] - p[:, :1], columns=list(ACTIONS[1:]))
    return X, np.array(ACTIONS)[idx], y, mu[np.arange(n), idx], true_uplift


@pytest.fixture(scope="module")
def book() -> dict:
    X, a, y, prop, _ = make_book(20_000, seed=0)
    X_test, _, _, _, true_up = make_book(5_000, seed=1000)
    learner = OffsetUpliftLearner(ACTIONS, seed=0, num_threads=1).fit(X, a, y)
    return {"X": X, "a": a, "y": y, "prop": prop, "X_test": X_test, "true": true_up, "learner": learner}


def test_predictions_are_probabilities_per_action(book: dict) -> None:
    pred = book["learner"].predict(book["X_test"])
    assert list(pred.columns) == list(ACTIONS)
    assert pred.index.equals(book["X_test"].index)
    assert ((pred > 0) & (pred < 1)).all().all()
    up = book["learner"].uplift(book["X_test"])
    assert list(up.columns) == ["call", "sms", "letter"]
    np.testing.assert_allclose(up["call"], pred["call"] - pred["none"])


def test_uplift_tracks_the_true_uplift_despite_confounding(book: dict) -> None:
    up, true = book["learner"].uplift(book["X_test"]), book["true"]
    a, y = book["a"], book["y"]
    naive = y[a == "call"].mean() - y[a == "none"].mean()
    assert naive > 0.15  # measured 0.214: who was called, not what the call did
    assert abs(up["call"].mean() - true["call"].mean()) < 0.03  # measured 0.068 vs 0.050
    assert np.corrcoef(up["call"], true["call"])[0, 1] > 0.85  # measured 0.951 (0.93-0.97 over 8 seeds)


def test_zero_effect_action_gets_near_zero_uplift(book: dict) -> None:
    up = book["learner"].uplift(book["X_test"])
    # Measured 0.008 (up to 0.03 over 8 seeds) against 0.117 for the call.
    assert up["sms"].abs().mean() < 0.035
    assert up["sms"].abs().mean() < 0.3 * up["call"].abs().mean()


def test_rare_action_falls_back_to_zero_uplift(book: dict) -> None:
    learner = book["learner"]
    assert learner.fallback_["letter"] == "too_few_rows"
    assert learner.n_rounds_["letter"] == 0
    assert (learner.uplift(book["X_test"])["letter"] == 0).all()
    assert "call" not in learner.fallback_


def test_round_trip_through_json_predicts_identically(book: dict) -> None:
    learner = book["learner"]
    d = json.loads(json.dumps(learner.to_dict()))
    assert d["control_model"].startswith("tree")
    assert all(s.startswith("tree") for s in d["shift_models"].values())
    clone = OffsetUpliftLearner.from_dict(d)
    expected = learner.predict(book["X_test"])
    pd.testing.assert_frame_equal(clone.predict(book["X_test"]), expected, check_exact=True)
    assert clone.fallback_ == learner.fallback_
    pd.testing.assert_frame_equal(
        clone.predict(book["X_test"], num_threads=1), learner.predict(book["X_test"]), check_exact=True
    )


def test_category_levels_and_column_order_do_not_matter_at_prediction(book: dict) -> None:
    X = book["X_test"]
    shuffled = X[["region", "x2", "x1", "x0"]].assign(
        region=X["region"].cat.reorder_categories(["west", "north", "south"]), extra=1.0
    )
    learner = book["learner"]
    pd.testing.assert_frame_equal(learner.predict(shuffled), learner.predict(X), check_exact=True)


def test_fallback_reasons_and_given_validation_split(book: dict) -> None:
    X, a, y = book["X"], book["a"].copy(), book["y"]
    # 400 accounts relabelled "portal" with only 5 payers among them.
    none = a == "none"
    portal = np.r_[np.flatnonzero(none & (y == 0))[:395], np.flatnonzero(none & (y == 1))[:5]]
    a[portal] = "portal"
    Xv, av, yv, _, _ = make_book(5_000, seed=7)
    learner = OffsetUpliftLearner((*ACTIONS, "portal"), seed=1, num_threads=1)
    learner.fit(X, a, y, valid=(Xv, av, yv))
    assert learner.fallback_ == {"letter": "too_few_rows", "portal": "too_few_positives"}
    up = learner.uplift(book["X_test"])
    assert (up["portal"] == 0).all()
    assert np.corrcoef(up["call"], book["true"]["call"])[0, 1] > 0.85  # measured 0.961


def test_propensity_weighted_fit_still_recovers_the_uplift(book: dict) -> None:
    w = propensity_weights(book["prop"], max_weight=20.0)
    assert w.max() == 20.0  # the letter's 1/0.005 is clipped
    learner = OffsetUpliftLearner(ACTIONS, seed=0, num_threads=1)
    learner.fit(book["X"], book["a"], book["y"], weight=w)
    up = learner.uplift(book["X_test"])
    assert np.corrcoef(up["call"], book["true"]["call"])[0, 1] > 0.8  # measured 0.925
    assert abs(up["call"].mean() - book["true"]["call"].mean()) < 0.03  # measured 0.058 vs 0.050


def test_offset_intercept_is_the_maximum_likelihood_shift() -> None:
    rng = np.random.default_rng(0)
    off = rng.normal(size=200_000)
    y = (rng.random(len(off)) < _sigmoid(off + 0.7)).astype(float)
    assert offset_intercept(y, off) == pytest.approx(0.7, abs=0.03)
    # A weight of 2 is the same as the row appearing twice.
    w = np.where(np.arange(len(y)) < 1000, 2.0, 1.0)
    dup = np.r_[np.arange(len(y)), np.arange(1000)]
    assert offset_intercept(y, off, w) == pytest.approx(offset_intercept(y[dup], off[dup]), abs=1e-9)


def test_bad_inputs_are_refused(book: dict) -> None:
    X, a, y = book["X"].iloc[:500], book["a"][:500], book["y"][:500]
    with pytest.raises(ValueError, match="not among"):
        OffsetUpliftLearner(["none", "call"]).fit(X, a, y)
    with pytest.raises(ValueError, match="binary"):
        OffsetUpliftLearner(ACTIONS).fit(X, a, y * 2)
    with pytest.raises(ValueError, match="control"):
        OffsetUpliftLearner(["call", "sms"], control="none")
    with pytest.raises(RuntimeError, match="not fitted"):
        OffsetUpliftLearner(ACTIONS).predict(X)
    with pytest.raises(ValueError, match="propensities"):
        propensity_weights(np.array([0.5, 0.0]))


# --- Qini and deciles -----------------------------------------------------------------------------------
def test_qini_curve_by_hand() -> None:
    # Sorted by score: treated payer, control, treated non-payer, control. Gains 1, 1, 1, 1 of 2 treated.
    score, treated, y = np.array([4, 3, 2, 1.0]), np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0])
    c = qini_curve(score, treated, y)
    np.testing.assert_allclose(c["fraction"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(c["gain"], [0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(c["random"], [0, 0.125, 0.25, 0.375, 0.5])
    # Area under the gain 0.4375, under the random line 0.25.
    assert qini_coefficient(score, treated, y) == pytest.approx(0.1875)
    assert qini_coefficient(score, treated, y, normalize=False) == pytest.approx(0.375)
    assert qini_coefficient(-score, treated, y) < 0


def test_qini_ties_enter_together_and_constant_scores_score_zero() -> None:
    rng = np.random.default_rng(0)
    treated, y = rng.random(1000) < 0.5, (rng.random(1000) < 0.3).astype(float)
    assert qini_coefficient(np.zeros(1000), treated, y) == pytest.approx(0.0, abs=1e-15)
    score = rng.integers(0, 5, 1000).astype(float)
    perm = rng.permutation(1000)
    shuffled = qini_coefficient(score[perm], treated[perm], y[perm])
    assert qini_coefficient(score, treated, y) == pytest.approx(shuffled)


def test_qini_ranks_true_uplift_above_random_and_reversed() -> None:
    rng = np.random.default_rng(1)
    n = 40_000
    tau = rng.uniform(-0.1, 0.3, n)
    treated = rng.random(n) < 0.5
    y = (rng.random(n) < 0.2 + tau * treated).astype(float)
    good = qini_coefficient(tau, treated, y)
    assert good > 0.02  # measured 0.032
    assert abs(qini_coefficient(rng.random(n), treated, y)) < 0.005
    assert qini_coefficient(-tau, treated, y) < -0.02
    table = uplift_by_decile(tau, treated, y)
    assert list(table["bin"]) == list(range(10))
    assert table["n_treated"].sum() + table["n_control"].sum() == n
    assert table["predicted_uplift"].is_monotonic_decreasing
    assert table["observed_uplift"].iloc[0] > table["observed_uplift"].iloc[-1] + 0.25


def test_uplift_by_decile_rates_by_hand() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    treated = np.array([1, 0, 1, 1, 0, 0])
    y = np.array([1, 0, 0, 1, 1, 0])
    t = uplift_by_decile(score, treated, y, n_bins=2)
    assert t["n_treated"].tolist() == [2, 1] and t["n_control"].tolist() == [1, 2]
    np.testing.assert_allclose(t["rate_treated"], [0.5, 1.0])
    np.testing.assert_allclose(t["rate_control"], [0.0, 0.5])
    np.testing.assert_allclose(t["observed_uplift"], [0.5, 0.5])
    np.testing.assert_allclose(t["predicted_uplift"], [0.8, 0.5])
