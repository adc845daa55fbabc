"""Outcome-decomposed offset learner: what a contact does, through what happened on the contact.

A call's effect on payment runs through its outcome: a right-party conversation helps, a voicemail a little,
an unanswered call or a wrong number hardly at all. The book logs every contact's outcome, so

    P(pay | x, channel) = Σ_o P(o | x, channel) · P(pay | x, channel, o)

holds exactly (the law of total probability; no assumption about who answers). Both factors are easier to
learn than their product: P(o | x, channel) from every contact of the channel, with little noise (an outcome is
known at once); P(pay | x, channel, o) as an offset shift on the no-contact response (an `OffsetUpliftLearner`
whose actions are the arms `channel:outcome`), each arm fit only on its own rows. Arms with too few rows or no
validation gain fall back to the no-contact response, exactly as a whole channel does in the offset learner.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.uplift import FIXED_PARAMS, OffsetUpliftLearner

FORMAT = "payrank.outcome_uplift/1"
OUTCOME_PARAMS: dict[str, Any] = {
    "objective": "multiclass",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 100,
    "lambda_l2": 1.0,
}
OUTCOME_ROUNDS = 100
ARM_SEP = ":"


def arm_names(action: np.ndarray, outcome: np.ndarray, control: str = "none") -> np.ndarray:
    """`channel:outcome` per row (the control stays as it is; a contact without an outcome is `channel:`)."""
    a = np.asarray(action).astype(str)
    o = pd.Series(outcome, dtype=object).fillna("").astype(str).to_numpy()
    return np.where(a == control, a, np.char.add(np.char.add(a, ARM_SEP), o))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


class OutcomeUpliftLearner:
    """P(y | x, action) = Σ_o P(o | x, action) · sigmoid(control(x) + shift_{action:o}(x)).

    `actions` are the decision's actions (control first or anywhere); outcomes come from the data. An outcome
    seen on fewer than `min_arm_rows` training rows of its channel is pooled into the channel's `other` arm.
    """

    def __init__(
        self,
        actions: list[str] | tuple[str, ...],
        control: str = "none",
        min_arm_rows: int = 200,
        seed: int = 0,
        num_threads: int = 0,
        backfit_passes: int | None = None,
    ) -> None:
        self.actions = [str(a) for a in actions]
        self.control = control
        self.backfit_passes = backfit_passes
        self.min_arm_rows = int(min_arm_rows)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self.arms_: dict[str, list[str]] = {}  # action -> its arms, in the order of the outcome model's classes
        self.response_: OffsetUpliftLearner | None = None
        self.outcome_models_: dict[str, lgb.Booster] = {}

    @property
    def treatments(self) -> list[str]:
        return [a for a in self.actions if a != self.control]

    def _arms(self, action: np.ndarray, outcome: np.ndarray) -> np.ndarray:
        """Arm per row, rare outcomes pooled into `channel:other`."""
        arm = arm_names(action, outcome, self.control)
        out = arm.copy()
        for act in self.treatments:
            rows = action == act
            names, counts = np.unique(arm[rows], return_counts=True)
            rare = set(names[counts < self.min_arm_rows])
            if rare:
                out[rows & np.isin(arm, list(rare))] = f"{act}{ARM_SEP}other"
        return out

    def fit(
        self,
        X: pd.DataFrame,
        action: np.ndarray,
        outcome: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray | None = None,
        control_from: OffsetUpliftLearner | None = None,
    ) -> OutcomeUpliftLearner:
        """Fit the arm responses (offset learner over arms) and, per channel, P(outcome | x).

        `control_from` lends a no-backfit offset learner's base model fit on the same rows (see
        OffsetUpliftLearner.fit), so that two candidates share the costliest fit.
        """
        a = np.asarray(action).astype(str)
        arm = self._arms(a, np.asarray(outcome, dtype=object))
        present = [self.control] + sorted(set(arm) - {self.control})
        self.response_ = OffsetUpliftLearner(
            present, control=self.control, seed=self.seed, num_threads=self.num_threads
        )
        self.response_.fit(X, arm, y, weight=weight)
        self.arms_, self.outcome_models_ = {}, {}
        X = X.reset_index(drop=True)
        for act in self.treatments:
            rows = a == act
            names = sorted(set(arm[rows]))
            self.arms_[act] = names
            if len(names) < 2:
                continue
            codes = pd.Categorical(arm[rows], categories=names).codes
            params = {**OUTCOME_PARAMS, **FIXED_PARAMS, "num_class": len(names), "seed": self.seed}
            params["num_threads"] = self.num_threads
            w = None if weight is None else np.asarray(weight)[rows]
            data = lgb.Dataset(X[rows], label=codes, weight=w)
            self.outcome_models_[act] = lgb.train(params, data, num_boost_round=OUTCOME_ROUNDS)
        return self

    def outcome_probabilities(
        self, X: pd.DataFrame | np.ndarray, action: str, num_threads: int | None = None
    ) -> np.ndarray:
        """(n, arms) P(outcome | x, action), columns in the order of `arms_[action]`."""
        nt = self.num_threads if num_threads is None else int(num_threads)
        model = self.outcome_models_.get(action)
        if model is None:
            return np.ones((len(X), max(1, len(self.arms_.get(action, [])))))
        return model.predict(X, num_threads=nt)

    def logit_arrays(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
        """Log-odds of y=1 under each action (an action never contacted equals the control)."""
        if self.response_ is None:
            raise RuntimeError("OutcomeUpliftLearner is not fitted")
        nt = self.num_threads if num_threads is None else int(num_threads)
        Xf = X[self.response_.features_] if isinstance(X, pd.DataFrame) else X
        arm_logits = self.response_.logit_arrays(Xf, nt)
        out = {self.control: arm_logits[self.control]}
        for act in self.treatments:
            arms = self.arms_.get(act, [])
            if not arms:
                out[act] = arm_logits[self.control]
                continue
            probs = self.outcome_probabilities(Xf, act, nt)
            p = sum(probs[:, k] * _sigmoid(arm_logits[arm]) for k, arm in enumerate(arms))
            out[act] = _logit(p)
        return out

    def predict(self, X: pd.DataFrame | np.ndarray, num_threads: int | None = None) -> pd.DataFrame:
        """P(y=1 | x, action) for every action (columns = actions)."""
        logits = self.logit_arrays(X, num_threads)
        return pd.DataFrame({a: _sigmoid(logits[a]) for a in self.actions}, index=getattr(X, "index", None))

    @property
    def fallback_(self) -> dict[str, str]:
        """Arms that fell back to the control response, and why."""
        return {} if self.response_ is None else dict(self.response_.fallback_)

    def to_dict(self) -> dict:
        """JSON-serialisable state (boosters as LightGBM text)."""
        if self.response_ is None:
            raise RuntimeError("OutcomeUpliftLearner is not fitted")
        return {
            "format": FORMAT,
            "actions": list(self.actions),
            "control": self.control,
            "min_arm_rows": self.min_arm_rows,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "arms": {a: list(v) for a, v in self.arms_.items()},
            "response": self.response_.to_dict(),
            "outcome_models": {a: m.model_to_string() for a, m in self.outcome_models_.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> OutcomeUpliftLearner:
        if d.get("format") != FORMAT:
            raise ValueError(f"unknown format {d.get('format')!r}, expected {FORMAT!r}")
        obj = cls(d["actions"], d["control"], d["min_arm_rows"], d["seed"], d["num_threads"])
        obj.arms_ = {a: list(v) for a, v in d["arms"].items()}
        obj.response_ = OffsetUpliftLearner.from_dict(d["response"])
        obj.outcome_models_ = {a: lgb.Booster(model_str=s) for a, s in d["outcome_models"].items()}
        return obj
