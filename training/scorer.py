"""The trained bundle in memory: feature spec, payment model, amount model, channel model, decision parameters.

One object predicts for training's evaluation, batch scoring, the API and MLflow's pyfunc alike.
It is stored as one JSON document (LightGBM boosters in their text format, never pickles), so the
fitted feature spec travels with the model and train and serve cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.schema import ACTIONS, CHANNELS
from features.spec import FeatureSpec
from serving.config import DEFAULT_CHANNEL_COSTS
from training.channel_models import ChannelModel, channel_from_dict

DEFAULT_COSTS = DEFAULT_CHANNEL_COSTS
OUTPUT_COLUMNS = ["p_pay", *(f"p14_{a}" for a in ACTIONS), "expected_payment"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class IsotonicMap:
    """A fitted isotonic calibration as its breakpoints (what sklearn's IsotonicRegression interpolates)."""

    x: list[float]
    y: list[float]

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(p, np.asarray(self.x), np.asarray(self.y))


@dataclass
class Scorer:
    """Predicts p_pay (calibrated, 30 days), per-action 14-day payment probabilities and the expected payment."""

    spec: FeatureSpec
    payment_model: str  # LightGBM model text
    calibration: IsotonicMap
    amount_model: str | None
    channel: ChannelModel
    costs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._payment = lgb.Booster(model_str=self.payment_model)
        self._amount = lgb.Booster(model_str=self.amount_model) if self.amount_model else None

    # ---- prediction -------------------------------------------------------------------------------
    def matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model matrix: the saved spec applied (columns in order, categories at the saved levels)."""
        return self.spec.apply(features)

    def encode(self, features: pd.DataFrame) -> np.ndarray:
        """The model matrix as floats (categoricals as saved-level codes): one conversion for every booster."""
        return self.spec.encode(features)

    def p_pay(self, X: pd.DataFrame | np.ndarray, num_threads: int = 0) -> np.ndarray:
        raw = self._payment.predict(X, raw_score=True, num_threads=num_threads)
        return np.clip(self.calibration(sigmoid(raw)), 0.0, 1.0)

    def expected_payment(self, X: pd.DataFrame | np.ndarray, balance: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Expected dollars of the payment, given one occurs: balance × the predicted share paid."""
        if self._amount is None:
            share = np.ones(len(X))
        else:
            share = np.clip(self._amount.predict(X, num_threads=num_threads), 0.0, 1.0)
        return share * balance

    def predict(self, features: pd.DataFrame, num_threads: int = 0) -> pd.DataFrame:
        """One row per input row: OUTPUT_COLUMNS."""
        return pd.DataFrame(self.predict_encoded(self.encode(features), num_threads), index=features.index)

    def predict_encoded(self, X: np.ndarray, num_threads: int = 0) -> dict[str, np.ndarray]:
        """OUTPUT_COLUMNS as arrays, from the encoded matrix (`encode` / `FeatureSpec.encode_rows`)."""
        logits = self.channel.logit_arrays(X, num_threads=num_threads)
        out = {"p_pay": self.p_pay(X, num_threads)}
        for a in ACTIONS:
            out[f"p14_{a}"] = sigmoid(logits[a] if a in logits else logits["none"])
        balance = X[:, self.spec.columns.index("balance")]
        out["expected_payment"] = self.expected_payment(X, balance, num_threads)
        return out

    def contributions(self, features: pd.DataFrame, num_threads: int = 0) -> pd.DataFrame:
        """Per-feature log-odds contributions of the payment model (pred_contrib; the bias column dropped)."""
        contrib = self._payment.predict(self.encode(features), pred_contrib=True, num_threads=num_threads)
        return pd.DataFrame(contrib[:, :-1], columns=self.spec.columns, index=features.index)

    # ---- storage ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "payrank-bundle/1",
            "spec": self.spec.to_dict(),
            "payment_model": self.payment_model,
            "calibration": {"x": list(self.calibration.x), "y": list(self.calibration.y)},
            "amount_model": self.amount_model,
            "channel": self.channel.to_dict(),
            "costs": self.costs,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scorer:
        if d.get("format") != "payrank-bundle/1":
            raise ValueError(f"not a payrank bundle (format={d.get('format')!r})")
        return cls(
            spec=FeatureSpec.from_dict(d["spec"]),
            payment_model=d["payment_model"],
            calibration=IsotonicMap(**d["calibration"]),
            amount_model=d.get("amount_model"),
            channel=channel_from_dict(d["channel"]),
            costs={**DEFAULT_COSTS, **d.get("costs", {})},
            meta=d.get("meta", {}),
        )

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def load(cls, path: str) -> Scorer:
        with open(path) as fh:
            return cls.from_dict(json.load(fh))


def channel_values(pred: pd.DataFrame, costs: dict[str, float]) -> pd.DataFrame:
    """Expected incremental dollars net of cost for each channel: (p14_a − p14_none) × expected payment − cost."""
    base = pred["p14_none"].to_numpy()
    amount = pred["expected_payment"].to_numpy()
    return pd.DataFrame(
        {c: (pred[f"p14_{c}"].to_numpy() - base) * amount - costs.get(c, 0.0) for c in CHANNELS},
        index=pred.index,
    )
