"""MLflow's scoring protocol on feature rows, as `mlflow models serve` speaks it.

Input: `application/json` with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`
(and optional `params`, ignored: the server sets LightGBM's threads), `text/csv`, or Parquet. Parsing uses
MLflow's own functions with the model's input schema, and the answer is written by MLflow's own
`predictions_to_json`, so MLflow's clients read it unchanged. Errors are MLflow's shape,
`{"error_code", "message"}`, plus FastAPI's `detail` list naming the field.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from training.scorer import OUTPUT_COLUMNS, Scorer

CONTENT_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")
CATEGORY_VALUE_KINDS = {"string", "empty", "integer", "floating", "mixed-integer-float", "categorical"}
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class InvocationError(Exception):
    """A request the MLflow protocol cannot score: HTTP status, MLflow error code, message, offending field."""

    def __init__(self, message: str, status: int = 400, error_code: str = "BAD_REQUEST", field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.error_code, self.field = message, status, error_code, field

    def body(self) -> dict[str, Any]:
        loc = ["body", self.field] if self.field else ["body"]
        return {"error_code": self.error_code, "message": self.message, "detail": [{"loc": loc, "msg": self.message}]}


def _media_type(content_type: str | None) -> str:
    if not content_type:
        raise InvocationError(f"Content-Type missing; supported: {', '.join(CONTENT_TYPES)}", 415)
    mime, *params = (p.strip() for p in content_type.split(";"))
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset":
            raise InvocationError(f"unrecognized content type parameter {key.strip()!r}", 415)
        if value.strip().strip('"').lower() != "utf-8":
            raise InvocationError("the scoring server only supports UTF-8", 415)
    mime = mime.lower()
    if mime not in CONTENT_TYPES:
        raise InvocationError(f"unsupported content type {mime!r}; supported: {', '.join(CONTENT_TYPES)}", 415)
    return mime


def parse_input(body: bytes, content_type: str | None, schema: Any) -> pd.DataFrame:
    """The request body as a DataFrame of feature rows (raises InvocationError)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input, parse_parquet_input

    mime = _media_type(content_type)
    try:
        if mime == "application/vnd.apache.parquet":
            data = parse_parquet_input(io.BytesIO(body))
        elif mime == "text/csv":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvocationError("the CSV body is not valid UTF-8") from None
            data = parse_csv_input(io.StringIO(text), schema)
        else:
            payload = _json_payload(body)
            data = _split_frame(payload.get("dataframe_split"))
            if data is None:
                data = infer_and_parse_data(payload, schema)
    except MlflowException as exc:
        raise InvocationError(exc.message.split("\n")[0]) from None
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError as exc:
            raise InvocationError(f"the input is not a table of feature rows: {exc}") from None
    if not isinstance(data, pd.DataFrame):
        raise InvocationError("the input is not a table of feature rows (send named columns)")
    return data


def _split_frame(split: Any) -> pd.DataFrame | None:
    """The fast path for `dataframe_split` (what MLflow's own client sends): the rows as given, no schema cast.

    `FeatureSpec.encode` casts every column exactly as the signature would (numbers to float64, categoricals by
    their saved levels) and `check_features` names a column whose values are not numbers, so skipping MLflow's
    per-column cast changes no prediction (the benchmark and the tests compare with stock pyfunc) and saves
    most of a single row's latency. Anything unusual goes through MLflow's parser instead.
    """
    if not (isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list)):
        return None
    columns, rows = split["columns"], split["data"]
    if (
        len(set(columns)) != len(columns)
        or not all(isinstance(c, str) for c in columns)
        or not all(isinstance(r, list) and len(r) == len(columns) for r in rows)
    ):
        return None
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def _json_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvocationError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvocationError(f"the body must be a JSON object with exactly one of {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in payload]
    if len(keys) != 1:
        raise InvocationError(
            f"the body must have exactly one of {', '.join(FORMATS)}; got keys {sorted(payload)[:10]}",
            field=keys[1] if len(keys) > 1 else None,
        )
    return {keys[0]: payload[keys[0]]}


def check_features(frame: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """The model's feature columns of `frame`; a missing column or a non-numeric value is a 400 naming it."""
    spec = scorer.spec
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InvocationError(f"missing feature column(s): {shown}", field=missing[0])
    for c in spec.columns:
        if c in spec.category_levels:
            kind = pd.api.types.infer_dtype(frame[c], skipna=True)
            if kind not in CATEGORY_VALUE_KINDS:
                raise InvocationError(f"feature {c!r}: values must be strings (got {kind})", field=c)
            continue
        if pd.api.types.is_numeric_dtype(frame[c].dtype):
            continue
        numbers = pd.to_numeric(frame[c], errors="coerce")
        bad = numbers.isna() & frame[c].notna()
        if bad.any():
            raise InvocationError(f"feature {c!r}: {int(bad.sum())} value(s) are not numbers", field=c)
    return frame[spec.columns]


def predict(frame: pd.DataFrame, scorer: Scorer, num_threads: int) -> pd.DataFrame:
    """What the bundle's pyfunc `predict` returns: OUTPUT_COLUMNS per row."""
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in OUTPUT_COLUMNS})
    return scorer.predict(frame, num_threads=num_threads)[OUTPUT_COLUMNS]


def predictions_json(predictions: pd.DataFrame | dict[str, np.ndarray]) -> str:
    """`{"predictions": [{column: value}, ...]}`: byte for byte what MLflow's `predictions_to_json` writes for
    float columns (tested), without its per-cell encoder class."""
    names = list(predictions.columns if isinstance(predictions, pd.DataFrame) else predictions)
    if not names:
        return json.dumps({"predictions": []})
    matrix = np.column_stack([np.asarray(predictions[n], dtype=np.float64) for n in names])
    return json.dumps({"predictions": [dict(zip(names, row, strict=True)) for row in matrix.tolist()]})


def fast_invoke(
    body: bytes, content_type: str | None, scorer: Scorer, threads: Callable[[int], int]
) -> tuple[str, int] | None:
    """The common request — JSON `dataframe_split` of plain values — from bytes to answer without pandas.

    Gives the same answer as parse_input → check_features → predict → predictions_json (tested); returns None
    for anything else, which then takes that general path and its precise errors.
    """
    if _media_type(content_type) != "application/json":
        return None
    split = _json_payload(body).get("dataframe_split")
    if not (isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list)):
        return None
    X = scorer.spec.encode_rows(split["columns"], split["data"])
    if X is None:
        return None
    predictions = scorer.predict_encoded(X, num_threads=threads(len(X)))
    return predictions_json({c: predictions[c] for c in OUTPUT_COLUMNS}), len(X)
