"""Offset (residual) T-learner on LightGBM: what each outreach action does to the response, per account.

A control ("none") response model is fitted on control rows. Each other action's *shift* on the log-odds
scale is then learned only on the rows where that action was taken, with the control model's log-odds as
an offset: first a constant (the action's average effect, one-parameter logistic regression), then a
small, strongly regularised LightGBM model (`init_score` = offset + constant) for how the effect varies.
A backfitting pass then refits the base on the rows of *all* fitted actions, each offset by its shift, and
refits the shifts on it: shared structure (balance, age of debt, ...) is learned from every account, not
only the uncontacted ones, so a shift does not have to soak up the base model's misfit on its rows (which
it would otherwise report as uplift). Effects stay small and smooth.
Confounding by observed features is handled by conditioning on them; where logged propensities exist,
inverse-propensity sample weights (see `propensity_weights`) correct what the features do not carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd

FORMAT = "payrank.offset_uplift/1"

CONTROL_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    # 0.05 × 15 leaves ran into a 1,000-round cap and was 60% of all trees scored; this is 2.5x fewer trees, one
    # level deeper, and on the test book's truth lists fewer calls that earn more (docs/modeling.md)
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 50,
    "lambda_l2": 1.0,
    "feature_fraction": 0.9,
    "num_iterations": 400,
    "early_stopping_round": 50,
}
SHIFT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "learning_rate": 0.05,
    "num_leaves": 4,
    "max_depth": 3,
    "min_child_samples": 100,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "num_iterations": 300,
    "early_stopping_round": 30,
}
FIXED_PARAMS: dict[str, Any] = {"verbosity": -1, "deterministic": True, "force_row_wise": True}


def propensity_weights(propensity: np.ndarray, max_weight: float = 20.0) -> np.ndarray:
    """Inverse-propensity sample weights 1/p, clipped at `max_weight` so a few rare rows cannot dominate."""
    p = np.asarray(propensity, dtype=float)
    if np.any(~(p > 0) | (p > 1)):
        raise ValueError("propensities must lie in (0, 1]")
    return np.minimum(1.0 / p, max_weight)


class _Rows(NamedTuple):
    """Aligned training or validation rows."""

    X: pd.DataFrame
    action: np.ndarray
    y: np.ndarray
    w: np.ndarray

    def take(self, mask: np.ndarray) -> _Rows:
        return _Rows(self.X[mask], self.action[mask], self.y[mask], self.w[mask])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def offset_intercept(
    y: np.ndarray,
    offset: np.ndarray,
    w: np.ndarray | None = None,
    tol: float = 1e-10,
) -> float:
    """Weighted maximum-likelihood b in logit P(y=1) = offset + b (Newton's method on one parameter)."""
    y, off = np.asarray(y, dtype=float), np.asarray(offset, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    b = 0.0
    for _ in range(50):  # iterations of the 1-D solver, each fully vectorised over rows
        p = _sigmoid(off + b)
        step = np.dot(w, y - p) / max(np.dot(w, p * (1 - p)), 1e-12)
        b += float(np.clip(step, -5.0, 5.0))
        if abs(step) < tol:
            break
    return b


def _logloss(y: np.ndarray, raw: np.ndarray, w: np.ndarray | None) -> float:
    """Weighted binary log-loss of raw log-odds `raw`, as LightGBM's `binary_logloss` metric computes it."""
    p = np.clip(_sigmoid(raw), 1e-15, 1 - 1e-15)
    ll = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return float(np.average(ll, weights=w))


class OffsetUpliftLearner:
    """P(y=1 | x, action) = sigmoid(control log-odds(x) + shift_a + tree_shift_a(x)), one shift per action.

    Each part of a shift is kept only if it lowers the validation log-loss of that action's rows (so noise
    is not learned: early stopping and this gate keep a pure-noise shift at exactly zero). An action falls
    back to the control response (zero uplift) when it has fewer than `min_rows` training rows, fewer than
    `MIN_CLASS` positives or negatives, no validation rows, or no validation gain; `fallback_` records why.
    `params` / `shift_params` override the LightGBM defaults of the control / shift models
    (`num_iterations` caps rounds, `early_stopping_round` stops on the validation split).
    """

    MIN_CLASS = 20
    VALID_FRACTION = 0.2
    BACKFIT_PASSES = 1

    def __init__(
        self,
        actions: Sequence[str],
        control: str = "none",
        params: dict | None = None,
        shift_params: dict | None = None,
        min_rows: int = 200,
        seed: int = 0,
        num_threads: int = 0,
        backfit_passes: int | None = None,
    ) -> None:
        self.actions = [str(a) for a in actions]
        if control not in self.actions:
            raise ValueError(f"control {control!r} is not among actions {self.actions}")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"duplicate actions in {self.actions}")
        self.control = control
        self.params = dict(params or {})
        self.shift_params = dict(shift_params or {})
        self.min_rows = int(min_rows)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self.backfit_passes = self.BACKFIT_PASSES if backfit_passes is None else int(backfit_passes)
        self.features_: list[str] = []
        self.control_model_: lgb.Booster | None = None
        self.base_intercept_ = 0.0
        self.intercepts_: dict[str, float] = {}
        self.shift_models_: dict[str, lgb.Booster] = {}
        self.fallback_: dict[str, str] = {}
        self.n_rounds_: dict[str, int] = {}
        self.valid_gain_: dict[str, float] = {}

    @property
    def treatments(self) -> list[str]:
        """The actions other than control, in the order given."""
        return [a for a in self.actions if a != self.control]

    def _lgb_params(self, base: dict, override: dict) -> dict:
        return {**base, **override, **FIXED_PARAMS, "seed": self.seed, "num_threads": self.num_threads}

    def _train(
        self,
        params: dict,
        train: tuple[pd.DataFrame, np.ndarray, np.ndarray | None, np.ndarray | None],
        valid: tuple[pd.DataFrame, np.ndarray, np.ndarray | None, np.ndarray | None],
    ) -> lgb.Booster:
        """Binary booster on (X, y, weight, init_score), early-stopped on `valid`; keep its best trees."""
        dtrain = lgb.Dataset(train[0], label=train[1], weight=train[2], init_score=train[3])
        dvalid = lgb.Dataset(valid[0], label=valid[1], weight=valid[2], init_score=valid[3], reference=dtrain)
        booster = lgb.train(params, dtrain, valid_sets=[dvalid], valid_names=["valid"])
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def fit(
        self,
        X: pd.DataFrame,
        action: pd.Series | np.ndarray,
        y: np.ndarray,
        weight: np.ndarray | None = None,
        valid: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None,
        control_from: OffsetUpliftLearner | None = None,
    ) -> OffsetUpliftLearner:
        """Fit the base, each action's shift, then backfit; early-stop on `valid` or a random 20% split.

        `weight` (e.g. clipped 1/propensity) weights training rows and, for the internal split, validation
        rows; a given `valid` = (X, action, y) is unweighted. `control_from`, a learner fit on the same rows
        without backfitting, lends its base (control) model, so only the shifts are fit here.
        """
        a = np.asarray(action).astype(str)
        y = np.asarray(y, dtype=float)
        n = len(X)
        if len(a) != n or len(y) != n or (weight is not None and len(weight) != n):
            raise ValueError("X, action, y and weight must have the same number of rows")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y must be binary 0/1")
        unknown = sorted(set(np.unique(a)) - set(self.actions))
        if unknown:
            raise ValueError(f"actions {unknown} are not among {self.actions}")
        w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
        self.features_ = [str(c) for c in X.columns]
        X = X.reset_index(drop=True)

        if valid is None:
            is_valid = np.random.default_rng(self.seed).random(n) < self.VALID_FRACTION
            tr, va = _Rows(X, a, y, w).take(~is_valid), _Rows(X, a, y, w).take(is_valid)
        else:
            tr = _Rows(X, a, y, w)
            Xv = valid[0][self.features_].reset_index(drop=True)
            av, yv = np.asarray(valid[1]).astype(str), np.asarray(valid[2], dtype=float)
            va = _Rows(Xv, av, yv, np.ones(len(Xv)))

        ct, cv = tr.action == self.control, va.action == self.control
        if ct.sum() < self.min_rows or cv.sum() == 0:
            raise ValueError(f"control {self.control!r} has too few rows to fit the response model")
        cparams = self._lgb_params(CONTROL_PARAMS, self.params)
        self.base_intercept_ = 0.0
        self.intercepts_, self.shift_models_, self.fallback_, self.valid_gain_ = {}, {}, {}, {}
        if control_from is not None:
            if control_from.backfit_passes or control_from.control_model_ is None:
                raise ValueError("control_from must be a fitted learner without backfitting")
            self.control_model_, self.base_intercept_ = control_from.control_model_, control_from.base_intercept_
        else:
            self._fit_base(cparams, tr.take(ct), va.take(cv))
        self._fit_shifts(tr, va)
        for _ in range(self.backfit_passes):
            use_t = ct | np.isin(tr.action, list(self.intercepts_))
            use_v = cv | np.isin(va.action, list(self.intercepts_))
            self._fit_base(cparams, tr.take(use_t), va.take(use_v))
            self._fit_shifts(tr, va)
        return self

    def _fit_base(self, params: dict, tr: _Rows, va: _Rows) -> None:
        """The base (control) response on the given rows, each offset by its action's current shift.

        Boosting starts from the best constant (LightGBM skips `boost_from_average` under an init_score).
        """
        st, sv = self._shift_logit(tr.X, tr.action), self._shift_logit(va.X, va.action)
        self.base_intercept_ = offset_intercept(tr.y, st, tr.w)
        c = self.base_intercept_
        self.control_model_ = self._train(params, (tr.X, tr.y, tr.w, st + c), (va.X, va.y, va.w, sv + c))

    def _base_logit(self, X: pd.DataFrame | np.ndarray, num_threads: int) -> np.ndarray:
        """Control (no-action) log-odds."""
        raw = self._check_fitted().predict(X, raw_score=True, num_threads=num_threads)
        return raw + self.base_intercept_

    def _shift_logit(self, X: pd.DataFrame, action: np.ndarray) -> np.ndarray:
        """Each row's shift (constant + trees) for its own action; 0 for the control and fallbacks."""
        out = np.zeros(len(X))
        for act, b in self.intercepts_.items():
            m = action == act
            model = self.shift_models_.get(act)
            if m.any():
                out[m] = b
                if model is not None:
                    out[m] += model.predict(X[m], raw_score=True, num_threads=self.num_threads)
        return out

    def _fit_shifts(self, tr: _Rows, va: _Rows) -> None:
        """(Re)fit every non-control action's shift on the current base, or record why it falls back."""
        self.n_rounds_ = {self.control: self.control_model_.current_iteration()}
        self.intercepts_, self.shift_models_, self.fallback_, self.valid_gain_ = {}, {}, {}, {}
        for act in self.treatments:
            mt, mv = tr.action == act, va.action == act
            n_act, pos = int(mt.sum()), float(tr.y[mt].sum())
            if n_act < self.min_rows:
                self._fall_back(act, "too_few_rows")
            elif min(pos, n_act - pos) < self.MIN_CLASS:
                self._fall_back(act, "too_few_positives" if pos < self.MIN_CLASS else "too_few_negatives")
            elif mv.sum() == 0:
                self._fall_back(act, "no_validation_rows")
            else:
                self._fit_shift(act, tr.take(mt), va.take(mv))

    def _fit_shift(self, act: str, tr: _Rows, va: _Rows) -> None:
        """Constant shift, then tree shift on top, each kept only if it lowers the validation log-loss."""
        (X1, _, y1, w1), (X2, _, y2, w2) = tr, va
        off1, off2 = self._base_logit(X1, self.num_threads), self._base_logit(X2, self.num_threads)
        base_loss = _logloss(y2, off2, w2)
        b = offset_intercept(y1, off1, w1)
        if _logloss(y2, off2 + b, w2) >= base_loss:
            b = 0.0
        params = self._lgb_params(SHIFT_PARAMS, self.shift_params)
        # A small action still needs room for a split.
        params["min_child_samples"] = int(min(params["min_child_samples"], max(20, len(y1) // 4)))
        booster = self._train(params, (X1, y1, w1, off1 + b), (X2, y2, w2, off2 + b))
        tree2 = booster.predict(X2, raw_score=True, num_threads=self.num_threads)
        keep_trees = _logloss(y2, off2 + b + tree2, w2) < _logloss(y2, off2 + b, w2)
        final = off2 + b + (tree2 if keep_trees else 0.0)
        self.valid_gain_[act] = base_loss - _logloss(y2, final, w2)
        if b == 0.0 and not keep_trees:
            self._fall_back(act, "no_validation_gain")
            return
        self.intercepts_[act] = b
        if keep_trees:
            self.shift_models_[act] = booster
        self.n_rounds_[act] = booster.current_iteration() if keep_trees else 0

    def _fall_back(self, act: str, reason: str) -> None:
        self.fallback_[act] = reason
        self.n_rounds_[act] = 0

    def _check_fitted(self) -> lgb.Booster:
        if self.control_model_ is None:
            raise RuntimeError("OffsetUpliftLearner is not fitted")
        return self.control_model_

    def logit_arrays(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
        """Log-odds of y=1 under each action, as arrays keyed by action (no DataFrame: the API's small batches).

        X is a frame, or a float matrix already in `features_` order with categoricals as level codes.
        """
        nt = self.num_threads if num_threads is None else int(num_threads)
        Xf = X[self.features_] if isinstance(X, pd.DataFrame) else X
        base = self._base_logit(Xf, nt)
        out = {}
        for act in self.actions:
            z = base + self.intercepts_.get(act, 0.0)
            model = self.shift_models_.get(act)
            out[act] = z if model is None else z + model.predict(Xf, raw_score=True, num_threads=nt)
        return out

    def predict_logit(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> pd.DataFrame:
        """Log-odds of y=1 under each action (columns = actions); fallback actions equal the control."""
        out = self.logit_arrays(X, num_threads)
        return pd.DataFrame(out, index=X.index if isinstance(X, pd.DataFrame) else None)

    def predict(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> pd.DataFrame:
        """P(y=1 | x, action) for every action (columns = actions, in the order given)."""
        return _sigmoid(self.predict_logit(X, num_threads=num_threads))

    def uplift(self, X: pd.DataFrame, num_threads: int | None = None) -> pd.DataFrame:
        """P(y=1 | x, a) - P(y=1 | x, control) for every non-control action (exactly 0 for fallbacks)."""
        p = self.predict(X, num_threads=num_threads)
        return p[self.treatments].sub(p[self.control], axis=0)

    def to_dict(self) -> dict:
        """JSON-serialisable state: boosters as LightGBM model text (no pickles) plus metadata."""
        control = self._check_fitted()
        return {
            "format": FORMAT,
            "actions": list(self.actions),
            "control": self.control,
            "params": dict(self.params),
            "shift_params": dict(self.shift_params),
            "min_rows": self.min_rows,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "features": list(self.features_),
            "control_model": control.model_to_string(),
            "base_intercept": self.base_intercept_,
            "intercepts": dict(self.intercepts_),
            "shift_models": {a: m.model_to_string() for a, m in self.shift_models_.items()},
            "fallback": dict(self.fallback_),
            "n_rounds": dict(self.n_rounds_),
            "valid_gain": dict(self.valid_gain_),
            "backfit_passes": self.backfit_passes,
        }

    @classmethod
    def from_dict(cls, d: dict) -> OffsetUpliftLearner:
        """Rebuild a fitted learner from `to_dict` output."""
        if d.get("format") != FORMAT:
            raise ValueError(f"unknown format {d.get('format')!r}, expected {FORMAT!r}")
        obj = cls(
            d["actions"],
            control=d["control"],
            params=d["params"],
            shift_params=d["shift_params"],
            min_rows=d["min_rows"],
            seed=d["seed"],
            num_threads=d["num_threads"],
            backfit_passes=d.get("backfit_passes"),
        )
        obj.features_ = list(d["features"])
        obj.control_model_ = lgb.Booster(model_str=d["control_model"])
        obj.base_intercept_ = float(d["base_intercept"])
        obj.intercepts_ = {a: float(v) for a, v in d["intercepts"].items()}
        obj.shift_models_ = {a: lgb.Booster(model_str=s) for a, s in d["shift_models"].items()}
        obj.fallback_ = dict(d["fallback"])
        obj.n_rounds_ = {a: int(v) for a, v in d["n_rounds"].items()}
        obj.valid_gain_ = {a: float(v) for a, v in d["valid_gain"].items()}
        return obj
