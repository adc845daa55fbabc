"""Cross-fitted multi-action DR-learner (Kennedy 2020), with effects shrunk by their cross-fit variance.

For every action a and the control c, the doubly robust pseudo-outcome of a row (x, A, y) is

    φ_a − φ_c,   φ_a = μ_a(x) + 1{A = a} (y − μ_a(x)) / e_a(x)

with outcome models μ and propensities e fitted on the *other* folds (cross-fitting). e is the logged
propensity of the action taken where the book has one, and a fitted multinomial model over every action
("none" included) elsewhere, clipped below at `clip` (the share clipped is reported). The effect τ_a(x) is a
regression of the pseudo-outcome on x, one per fold; the served effect is their mean shrunk toward zero by
the folds' disagreement (positive-part James-Stein): τ = τ̄ · max(0, 1 − 4v/τ̄²), with v the variance of the mean
of the folds' predictions, pooled over the training rows (one number per action: a per-row variance from K = 2
predictions is itself too noisy to shrink with). An effect within two standard deviations of the folds'
disagreement (thin data, a rare channel, no effect at all) comes out as zero instead of as a large number.

The no-contact response P(y | x, c) comes from a given base learner (any channel model); an action's
probability is that plus the shrunk effect, clipped to (0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.uplift import FIXED_PARAMS

FORMAT = "payrank.dr_uplift/1"
PROPENSITY_PARAMS: dict[str, Any] = {
    "objective": "multiclass",
    "learning_rate": 0.15,
    "num_leaves": 15,
    "min_child_samples": 200,
    "lambda_l2": 1.0,
    "max_bin": 63,
}
PROPENSITY_ROUNDS = 60
EFFECT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 2000,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
}
EFFECT_ROUNDS = 100
EPS = 1e-6
SHRINK_SD = 2.0  # an effect within two standard deviations of the folds' disagreement is shrunk all the way to zero

ChannelModel = Any  # anything with logit_arrays(X, num_threads) -> {action: log-odds}, to_dict()
OutcomeFactory = Callable[[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], ChannelModel]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


class DRLearner:
    """τ_a(x) from cross-fitted DR pseudo-outcomes; P(y | x, a) = P_base(y | x, c) + the shrunk τ̄_a(x)."""

    def __init__(
        self,
        actions: list[str] | tuple[str, ...],
        control: str = "none",
        folds: int = 2,
        clip: float = 0.01,
        seed: int = 0,
        num_threads: int = 0,
    ) -> None:
        if folds < 2:
            raise ValueError("cross-fitting needs at least 2 folds")
        self.actions = [str(a) for a in actions]
        self.control = control
        self.folds = int(folds)
        self.clip = float(clip)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self.base_: ChannelModel | None = None
        self.effects_: dict[str, list[lgb.Booster]] = {}
        self.noise_: dict[str, float] = {}
        self.diagnostics_: dict[str, float] = {}
        self.features_: list[str] = []

    @property
    def treatments(self) -> list[str]:
        return [a for a in self.actions if a != self.control]

    def _params(self, base: dict, **extra: Any) -> dict:
        return {**base, **FIXED_PARAMS, "seed": self.seed, "num_threads": self.num_threads, **extra}

    def fit(
        self,
        X: pd.DataFrame,
        action: np.ndarray,
        outcome: np.ndarray,
        y: np.ndarray,
        logged_propensity: np.ndarray,
        groups: np.ndarray,
        base: ChannelModel,
        fit_outcome_model: OutcomeFactory,
        weight: np.ndarray | None = None,
    ) -> DRLearner:
        """Fit on rows (X, action, outcome, y); `groups` (e.g. guarantor codes) keep a person in one fold.

        `base` is the fitted no-contact response served with the effects; `fit_outcome_model(X, action, outcome,
        y, weight)` fits the outcome model μ on the other folds. `weight` corrects a sample that kept only some of
        the control rows (1 / their sampling rate), so that propensities describe the whole population.
        """
        X = X.reset_index(drop=True)
        self.features_ = [str(c) for c in X.columns]
        a = np.asarray(action).astype(str)
        y = np.asarray(y, dtype=float)
        w = np.ones(len(a)) if weight is None else np.asarray(weight, dtype=float)
        fold = np.asarray(pd.factorize(np.asarray(groups))[0]) % self.folds
        codes = pd.Categorical(a, categories=self.actions).codes
        if (codes < 0).any():
            raise ValueError(f"actions {sorted(set(a) - set(self.actions))} are not among {self.actions}")
        mu = np.zeros((len(a), len(self.actions)))
        e = np.zeros((len(a), len(self.actions)))
        for k in range(self.folds):
            tr, te = fold != k, fold == k
            model = fit_outcome_model(X[tr], a[tr], np.asarray(outcome, dtype=object)[tr], y[tr], w[tr])
            logits = model.logit_arrays(X[te])
            mu[te] = np.column_stack([_sigmoid(logits[act]) for act in self.actions])
            params = self._params(PROPENSITY_PARAMS, num_class=len(self.actions))
            prop = lgb.train(params, lgb.Dataset(X[tr], label=codes[tr], weight=w[tr]), PROPENSITY_ROUNDS)
            e[te] = prop.predict(X[te], num_threads=self.num_threads)
        rows = np.arange(len(a))
        lp = np.asarray(logged_propensity, dtype=float)
        taken = np.where(np.isfinite(lp) & (lp > 0), lp, e[rows, codes])  # a logged "none" counts too
        clipped = taken < self.clip
        taken = np.maximum(taken, self.clip)
        resid = (y - mu[rows, codes]) / taken
        c = self.actions.index(self.control)
        self.diagnostics_ = {
            "clip": self.clip,
            "share_clipped": float(np.average(clipped, weights=w)),
            "share_logged": float(np.mean(np.isfinite(lp))),
        }
        self.base_ = base
        self.effects_ = {}
        for j, act in enumerate(self.actions):
            if act == self.control:
                continue
            phi = mu[:, j] - mu[:, c] + np.where(codes == j, resid, 0.0) - np.where(codes == c, resid, 0.0)
            self.diagnostics_[f"pseudo_mean_{act}"] = float(np.average(phi, weights=w))
            self.effects_[act] = [
                lgb.train(
                    self._params(EFFECT_PARAMS),
                    lgb.Dataset(X[fold == k], label=phi[fold == k], weight=w[fold == k]),
                    EFFECT_ROUNDS,
                )
                for k in range(self.folds)
            ]
            preds = np.vstack([m.predict(X, num_threads=self.num_threads) for m in self.effects_[act]])
            self.noise_[act] = float(np.average(preds.var(axis=0, ddof=1), weights=w) / self.folds)
            self.diagnostics_[f"noise_sd_{act}"] = self.noise_[act] ** 0.5
        return self

    def effect(self, X: pd.DataFrame | np.ndarray, action: str, num_threads: int | None = None) -> np.ndarray:
        """The shrunk effect τ̄ · max(0, 1 − 4v/τ̄²) of `action` on P(y) (0 for the control)."""
        models = self.effects_.get(action)
        if not models:
            return np.zeros(len(X))
        nt = self.num_threads if num_threads is None else int(num_threads)
        Xf = X[self.features_] if isinstance(X, pd.DataFrame) else X
        preds = np.vstack([m.predict(Xf, num_threads=nt) for m in models])
        mean = preds.mean(axis=0)
        noise = self.noise_.get(action, 0.0)  # the fold disagreement's variance, pooled over the training rows
        return mean * np.maximum(0.0, 1.0 - SHRINK_SD**2 * noise / np.maximum(mean**2, 1e-18))

    def logit_arrays(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
        """Log-odds of y=1 under each action."""
        if self.base_ is None:
            raise RuntimeError("DRLearner is not fitted")
        base = self.base_.logit_arrays(X, num_threads)[self.control]
        p0 = _sigmoid(base)
        out = {self.control: base}
        for act in self.treatments:
            out[act] = _logit(p0 + self.effect(X, act, num_threads))
        return out

    def predict(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> pd.DataFrame:
        logits = self.logit_arrays(X, num_threads)
        return pd.DataFrame({a: _sigmoid(logits[a]) for a in self.actions}, index=getattr(X, "index", None))

    @property
    def fallback_(self) -> dict[str, str]:
        return {}

    def to_dict(self) -> dict:
        if self.base_ is None:
            raise RuntimeError("DRLearner is not fitted")
        return {
            "format": FORMAT,
            "actions": list(self.actions),
            "control": self.control,
            "folds": self.folds,
            "clip": self.clip,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "features": list(self.features_),
            "base": self.base_.to_dict(),
            "effects": {a: [m.model_to_string() for m in ms] for a, ms in self.effects_.items()},
            "noise": dict(self.noise_),
            "diagnostics": dict(self.diagnostics_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DRLearner:
        from training.channel_models import channel_from_dict

        if d.get("format") != FORMAT:
            raise ValueError(f"unknown format {d.get('format')!r}, expected {FORMAT!r}")
        obj = cls(d["actions"], d["control"], d["folds"], d["clip"], d["seed"], d["num_threads"])
        obj.base_ = channel_from_dict(d["base"])
        obj.effects_ = {a: [lgb.Booster(model_str=s) for s in ms] for a, ms in d["effects"].items()}
        obj.diagnostics_ = dict(d.get("diagnostics", {}))
        obj.noise_ = {a: float(v) for a, v in d["noise"].items()}
        obj.features_ = list(d["features"])
        return obj
