"""The MLflow pyfunc wrapper around Scorer, so stock `mlflow.pyfunc.load_model(...).predict(df)` works.

The signature declares categorical features as strings (MLflow cannot express pandas categories);
the bundle casts them with the saved levels inside predict.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from training.scorer import OUTPUT_COLUMNS, Scorer

BUNDLE_ARTIFACT = "bundle"


class PayrankModel(mlflow.pyfunc.PythonModel):
    """Loads the JSON bundle artifact and predicts p_pay and per-action probabilities per feature row."""

    scorer: Scorer

    def load_context(self, context: Any) -> None:
        self.scorer = Scorer.load(context.artifacts[BUNDLE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        threads = int((params or {}).get("num_threads", 0))
        return self.scorer.predict(model_input, num_threads=threads)[OUTPUT_COLUMNS]


def signature_for(scorer: Scorer, example: pd.DataFrame) -> Any:
    """Input schema from the spec (strings for categoricals, doubles for numbers), output from a prediction."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema(
        [
            ColSpec("string" if c in scorer.spec.category_levels else "double", c, required=False)
            for c in scorer.spec.columns
        ]
    )
    out = infer_signature(example_as_strings(scorer, example), scorer.predict(example)[OUTPUT_COLUMNS])
    params = ParamSchema([ParamSpec("num_threads", "long", 0)])
    return mlflow.models.ModelSignature(inputs=inputs, outputs=out.outputs, params=params)


def example_as_strings(scorer: Scorer, features: pd.DataFrame) -> pd.DataFrame:
    """Feature rows as a client sends them: categoricals as plain strings, numbers as floats."""
    X = features[scorer.spec.columns].copy()
    for c in scorer.spec.category_levels:
        X[c] = X[c].astype(object).where(X[c].notna(), None)
    for c in scorer.spec.columns:
        if c not in scorer.spec.category_levels:
            X[c] = X[c].astype("float64")
    return X
