"""Off-policy value estimators on logged bandit data: IPS, self-normalised IPS and doubly robust.

Each logged row i has a reward r_i for the logged action a_i, which the logging policy chose with propensity
p_i = mu(a_i | x_i) > 0. A target policy pi is evaluated through its probability of the logged action,
pi_i = pi(a_i | x_i) (0/1 for a deterministic policy, see `deterministic_pi`), via the importance weight
w_i = pi_i / p_i, optionally clipped at `clip` (lower variance, some bias; Wang, Agarwal & Dudik 2017).

- IPS:   V = mean(w_i r_i)                                    unbiased, high variance.
- SNIPS: V = sum(w_i r_i) / sum(w_i)                          slightly biased, much lower variance; equals the
                                                              on-policy mean when pi = mu.
- DR:    V = mean(q_target_i + w_i (r_i - q_logged_i))          Dudik, Langford & Li 2011: the reward model's
         with q_logged_i = q(x_i, a_i) and q_target_i = sum_a pi(a|x_i) q(x_i, a); unbiased if either the
         propensities or the reward model are right, and low variance when the reward model is good.
"""

from __future__ import annotations

import numpy as np


def deterministic_pi(target_action: np.ndarray, logged_action: np.ndarray) -> np.ndarray:
    """pi(a_logged | x) of a deterministic target policy: 1.0 where it picks the logged action, else 0.0."""
    t, a = np.asarray(target_action), np.asarray(logged_action)
    if t.shape != a.shape and t.ndim != 0:
        raise ValueError("target_action and logged_action must have the same shape (or target be a scalar)")
    return (t == a).astype(float)


def importance_weights(
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    clip: float | None = None,
) -> np.ndarray:
    """w = pi(a_logged|x) / mu(a_logged|x), clipped above at `clip` if given."""
    p = np.asarray(propensity, dtype=float)
    pi = np.asarray(pi_logged, dtype=float)
    if p.shape != pi.shape:
        raise ValueError("propensity and pi_logged must have the same shape")
    if np.any(~(p > 0) | (p > 1)):
        raise ValueError("logging propensities must lie in (0, 1]")
    if np.any((pi < 0) | (pi > 1)):
        raise ValueError("target probabilities pi_logged must lie in [0, 1]")
    w = pi / p
    return w if clip is None else np.minimum(w, clip)


def _reward(reward: np.ndarray, n: int) -> np.ndarray:
    r = np.asarray(reward, dtype=float)
    if r.shape != (n,):
        raise ValueError("reward must be 1-D and match the propensities")
    return r


def ips(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    clip: float | None = None,
) -> float:
    """Inverse propensity scoring: mean of w_i r_i."""
    w = importance_weights(propensity, pi_logged, clip)
    return float(np.mean(w * _reward(reward, len(w))))


def snips(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    clip: float | None = None,
) -> float:
    """Self-normalised IPS: sum(w_i r_i) / sum(w_i); NaN when the target policy matches no logged action."""
    w = importance_weights(propensity, pi_logged, clip)
    total = w.sum()
    return float(np.dot(w, _reward(reward, len(w))) / total) if total > 0 else float("nan")


def dr(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    q_logged: np.ndarray,
    q_target: np.ndarray,
    clip: float | None = None,
) -> float:
    """Doubly robust (Dudik et al. 2011): mean of q_target_i + w_i (r_i - q_logged_i)."""
    return float(np.mean(_dr_terms(reward, propensity, pi_logged, q_logged, q_target, clip)))


def _dr_terms(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    q_logged: np.ndarray,
    q_target: np.ndarray,
    clip: float | None,
) -> np.ndarray:
    w = importance_weights(propensity, pi_logged, clip)
    r = _reward(reward, len(w))
    ql, qt = np.asarray(q_logged, dtype=float), np.asarray(q_target, dtype=float)
    if ql.shape != r.shape or qt.shape != r.shape:
        raise ValueError("q_logged and q_target must match the reward's shape")
    return qt + w * (r - ql)


def _bootstrap_sums(V: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of V (n x k) over `n_boot` resamples of its rows with replacement: an n_boot x k array.

    Replicates are drawn in blocks of a few million indices; each block's resample counts come from one
    bincount and its sums from one matrix product.
    """
    rng = np.random.default_rng(seed)
    n = len(V)
    block = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    sums = []
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        sums.append(counts @ V)
    return np.concatenate(sums, axis=0)


def evaluate_policy(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_target: np.ndarray | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clip: float | None = None,
) -> dict[str, dict[str, float]]:
    """Value of the target policy by IPS, SNIPS and (given q_logged, q_target) DR, with bootstrap intervals.

    Returns {estimator: {"value", "lo", "hi", "se"}}: the point estimate on the data, the percentile
    interval at `confidence` and the standard deviation over `n_boot` bootstrap replicates (rows resampled
    with replacement). Every estimator is a ratio of column sums, so replicates need only resampled sums.
    `clip` caps the importance weights of all three estimators (see the module docstring).
    """
    w = importance_weights(propensity, pi_logged, clip)
    r = _reward(reward, len(w))
    cols = [np.ones_like(w), w * r, w]
    names = ["ips", "snips"]
    if (q_logged is None) != (q_target is None):
        raise ValueError("DR needs both q_logged and q_target")
    if q_logged is not None:
        cols.append(_dr_terms(r, propensity, pi_logged, q_logged, q_target, clip))
        names.append("dr")
    V = np.column_stack(cols)  # n x k: count, w r, w, dr term

    def stats(S: np.ndarray) -> dict[str, np.ndarray]:
        """Estimators from column sums S (... x k)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {"ips": S[..., 1] / S[..., 0], "snips": S[..., 1] / S[..., 2]}
            if "dr" in names:
                out["dr"] = S[..., 3] / S[..., 0]
        return out

    point = stats(V.sum(axis=0))
    boot = stats(_bootstrap_sums(V, n_boot, seed))
    alpha = (1 - confidence) / 2
    result = {}
    for name in names:
        b = boot[name]
        lo, hi = np.nanquantile(b, [alpha, 1 - alpha])
        result[name] = {
            "value": float(point[name]),
            "lo": float(lo),
            "hi": float(hi),
            "se": float(np.nanstd(b, ddof=1)),
        }
    return result


def compare_policies(
    reward: np.ndarray,
    propensity: np.ndarray,
    pi_logged: dict[str, np.ndarray],
    q_logged: np.ndarray,
    q_target: dict[str, np.ndarray],
    reference: str,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """DR and SNIPS values of several target policies on the same logged rows, and each one's DR gain over
    `reference`, with *paired* bootstrap intervals (every policy is resampled on the same rows).

    Two policies judged on one holdout share most of their noise; the interval of their difference is far
    narrower than either value's, so "better than the reference" can be told apart where the values overlap.
    Returns {policy: {dr, dr_lo, dr_hi, snips, snips_lo, snips_hi, gain, gain_lo, gain_hi}}.
    """
    names = list(pi_logged)
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not among the policies {names}")
    r = _reward(reward, len(np.asarray(propensity)))
    cols = [np.ones_like(r)]
    for name in names:
        w = importance_weights(propensity, pi_logged[name])
        cols += [w * r, w, _dr_terms(r, propensity, pi_logged[name], q_logged, q_target[name], None)]
    V = np.column_stack(cols)
    point, boot = V.sum(axis=0), _bootstrap_sums(V, n_boot, seed)
    alpha = (1 - confidence) / 2

    def value(S: np.ndarray, i: int, kind: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            base = 1 + 3 * i
            return S[..., base] / S[..., base + 1] if kind == "snips" else S[..., base + 2] / S[..., 0]

    ref = names.index(reference)
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        row: dict[str, float] = {}
        for kind in ("dr", "snips"):
            b = value(boot, i, kind)
            row[kind] = float(value(point, i, kind))
            row[f"{kind}_lo"], row[f"{kind}_hi"] = (float(x) for x in np.nanquantile(b, [alpha, 1 - alpha]))
        gain = value(boot, i, "dr") - value(boot, ref, "dr")
        row["gain"] = float(value(point, i, "dr") - value(point, ref, "dr"))
        row["gain_lo"], row["gain_hi"] = (float(x) for x in np.nanquantile(gain, [alpha, 1 - alpha]))
        out[name] = row
    return out
