"""Off-policy estimators: hand-computed cases, and recovery of a known policy value on a simulated bandit."""

from __future__ import annotations

import numpy as np
import pytest

from training.ope import deterministic_pi, dr, evaluate_policy, importance_weights, ips, snips

# --- four rows, by hand --------------------------------------------------------------------------------
# w = pi / p = [2, 4, 0, 0.5]; clipped at 3: [2, 3, 0, 0.5]; w * r = [2, 0, 0, 0].
R = np.array([1.0, 0.0, 1.0, 0.0])
P = np.array([0.5, 0.25, 0.5, 1.0])
PI = np.array([1.0, 1.0, 0.0, 0.5])
QL = np.full(4, 0.5)
QT = np.array([0.6, 0.4, 0.2, 0.3])


@pytest.mark.parametrize(
    ("estimator", "clip", "expected"),
    [
        ("ips", None, 2 / 4),
        ("ips", 3.0, 2 / 4),
        ("snips", None, 2 / 6.5),
        ("snips", 3.0, 2 / 5.5),
        # DR terms q_t + w (r - q_l): [1.6, -1.6, 0.2, 0.05]; clipped: [1.6, -1.1, 0.2, 0.05].
        ("dr", None, 0.25 / 4),
        ("dr", 3.0, 0.75 / 4),
    ],
)
def test_estimators_match_hand_computation(estimator: str, clip: float | None, expected: float) -> None:
    if estimator == "ips":
        got = ips(R, P, PI, clip=clip)
    elif estimator == "snips":
        got = snips(R, P, PI, clip=clip)
    else:
        got = dr(R, P, PI, QL, QT, clip=clip)
    assert got == pytest.approx(expected, abs=1e-12)
    boot = evaluate_policy(R, P, PI, QL, QT, n_boot=20, clip=clip)[estimator]
    assert boot["value"] == pytest.approx(expected)


def test_deterministic_pi_and_weights() -> None:
    logged = np.array(["call", "sms", "none", "call"])
    assert deterministic_pi(np.array(["call", "call", "none", "sms"]), logged).tolist() == [1, 0, 1, 0]
    assert deterministic_pi("call", logged).tolist() == [1, 0, 0, 1]
    assert importance_weights(P, PI, clip=3.0).tolist() == [2.0, 3.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="propensities"):
        ips(R, np.array([0.5, 0.0, 0.5, 1.0]), PI)
    with pytest.raises(ValueError, match="both"):
        evaluate_policy(R, P, PI, q_logged=QL)


def test_snips_is_nan_when_no_logged_action_matches() -> None:
    assert np.isnan(snips(R, P, np.zeros(4)))
    assert ips(R, P, np.zeros(4)) == 0.0


# --- a simulated contextual bandit with a known truth ---------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def reward_prob(x: np.ndarray) -> np.ndarray:
    """P(r=1 | x, a) for actions 0, 1, 2 (n x 3)."""
    return _sigmoid(np.column_stack([-0.5 + 0.5 * x, -1.0 + 1.5 * x, 0.2 - 1.0 * x]))


def logging_probs(x: np.ndarray) -> np.ndarray:
    """The logging policy: softmax favouring action 1 for high x and action 2 for low x."""
    e = np.exp(np.column_stack([np.zeros_like(x), 0.8 * x, -0.8 * x]))
    return e / e.sum(axis=1, keepdims=True)


def target(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0.3, 1, 2)


def true_value() -> float:
    """E_x[P(r=1 | x, target(x))] for x ~ N(0, 1), by quadrature on a fine grid."""
    x = np.linspace(-9, 9, 180_001)
    dens = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
    return float(np.sum(reward_prob(x)[np.arange(len(x)), target(x)] * dens) * (x[1] - x[0]))


def simulate(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    mu = logging_probs(x)
    a = (rng.random(n)[:, None] > np.cumsum(mu, axis=1)).sum(axis=1)
    q = reward_prob(x)
    r = (rng.random(n) < q[np.arange(n), a]).astype(float)
    return x, a, r, mu[np.arange(n), a], q


@pytest.fixture(scope="module")
def bandit() -> dict:
    x, a, r, p, q = simulate(4000, seed=0)
    rows = np.arange(len(a))
    pi = deterministic_pi(target(x), a)
    logged = {"reward": r, "propensity": p, "pi_logged": pi}
    return {**logged, "q_logged": q[rows, a], "q_target": q[rows, target(x)]}


def test_true_value_is_what_the_quadrature_says() -> None:
    x = np.random.default_rng(1).normal(size=400_000)
    mc = reward_prob(x)[np.arange(len(x)), target(x)].mean()
    assert true_value() == pytest.approx(0.64736, abs=1e-5)
    assert mc == pytest.approx(true_value(), abs=3e-3)


def test_estimators_recover_the_true_value_within_their_intervals(bandit: dict) -> None:
    truth = true_value()
    res = evaluate_policy(**bandit, n_boot=1000, seed=0)
    # Measured: IPS 0.6573 [0.628, 0.687], SNIPS 0.6502, DR 0.6507 (truth 0.6474).
    for name in ("ips", "snips", "dr"):
        assert res[name]["lo"] <= truth <= res[name]["hi"], (name, res[name])
        assert res[name]["lo"] <= res[name]["value"] <= res[name]["hi"]
        assert abs(res[name]["value"] - truth) < 0.02


def test_dr_with_a_correct_reward_model_is_tighter_than_ips(bandit: dict) -> None:
    res = evaluate_policy(**bandit, n_boot=1000, seed=0)
    width = {k: v["hi"] - v["lo"] for k, v in res.items()}
    assert width["dr"] < 0.85 * width["ips"]  # measured ratio 0.73


def test_dr_with_a_wrong_reward_model_is_still_unbiased(bandit: dict) -> None:
    half = np.full(len(bandit["reward"]), 0.5)
    res = evaluate_policy(**{**bandit, "q_logged": half, "q_target": half}, n_boot=1000, seed=0)["dr"]
    assert res["lo"] <= true_value() <= res["hi"]


def test_bootstrap_se_matches_the_analytic_se_of_ips(bandit: dict) -> None:
    res = evaluate_policy(bandit["reward"], bandit["propensity"], bandit["pi_logged"], n_boot=2000, seed=3)
    terms = bandit["pi_logged"] / bandit["propensity"] * bandit["reward"]
    analytic = np.std(terms, ddof=1) / np.sqrt(len(terms))
    assert res["ips"]["se"] == pytest.approx(analytic, rel=0.1)
    assert "dr" not in res


def test_bootstrap_is_reproducible_and_seeded(bandit: dict) -> None:
    a = evaluate_policy(**bandit, n_boot=200, seed=5)
    assert a == evaluate_policy(**bandit, n_boot=200, seed=5)
    assert a["ips"]["lo"] != evaluate_policy(**bandit, n_boot=200, seed=6)["ips"]["lo"]


def test_logging_policy_as_target_gives_the_on_policy_mean_under_snips() -> None:
    x, a, r, p, _ = simulate(3000, seed=2)
    assert snips(r, p, p) == pytest.approx(r.mean(), abs=1e-15)
    assert ips(r, p, p) == pytest.approx(r.mean(), abs=1e-15)
    res = evaluate_policy(r, p, p, n_boot=200)["snips"]
    assert res["value"] == pytest.approx(r.mean(), abs=1e-15)
    assert res["lo"] < r.mean() < res["hi"]
