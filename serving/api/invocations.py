"""MLflow's scoring protocol on feature rows, as `mlflow models serve` speaks it.

Input: `application/json` with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`
(and optional `params`, ignored: the server sets LightGBM's threads), `text/csv`, or Parquet. Parsing uses
MLflow's own functions with the model's input schema, and the answer is written by MLflow's own
`predictions_to_json`, so MLflow's clients read it unchanged. Errors are MLflow's shape,
`{"error_code", "message"}`, plus FastAPI's `detail` list naming the field — never the value (MLflow's own
messages quote values, so they are replaced by ours).

JSON bodies are judged as sent, before any schema cast: MLflow's parser turns `true` into 1.0 for a double
column and keeps a number in a string column, so the same row would be scored as `dataframe_records` and refused
as `dataframe_split`. Here every format follows one rule: numeric features take numbers (or numeric strings, as
CSV cells are), finite and never booleans; categorical features take strings; null is missing everywhere.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from training.scorer import OUTPUT_COLUMNS, Scorer

CONTENT_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")
CATEGORY_VALUE_KINDS = {"string", "empty"}
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
    """The request body as a DataFrame of feature rows (raises InvocationError).

    JSON is parsed without the schema (check_features judges the values as sent); CSV with it (every cell is
    text, the schema says which are numbers); Parquet is typed already.
    """
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
            data = _json_frame(payload)
            if data is None:  # an unusual layout: MLflow's parser, values still as sent (no schema cast)
                data = infer_and_parse_data(payload, None)
    except MlflowException as exc:
        raise _unreadable(exc.message, schema) from None
    except RecursionError:
        raise InvocationError("the input is nested too deeply") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):  # a parser's own surprise: still 400
        raise _unreadable("", schema) from None
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except (ValueError, TypeError):
            raise InvocationError("the input is not a table of feature rows (columns of unequal length)") from None
    if not isinstance(data, pd.DataFrame):
        raise InvocationError("the input is not a table of feature rows (send named columns)")
    return data


def _unreadable(mlflow_message: str, schema: Any) -> InvocationError:
    """Our error for one MLflow's parser raised: MLflow's text quotes values, so only a column it names (if it
    is one of the schema's) is kept."""
    names = {c.name for c in getattr(schema, "inputs", [])}
    found = next((n for n in re.findall(r"column '?([A-Za-z0-9_]+)'?", mlflow_message) if n in names), None)
    if found is not None:
        return InvocationError(f"feature {found!r}: values of the wrong type for the model's schema", field=found)
    return InvocationError("the input cannot be read as a table of feature rows")


def _json_frame(payload: dict[str, Any]) -> pd.DataFrame | None:
    """The usual JSON layouts as a DataFrame of the values as sent: `dataframe_split`, rows as objects
    (`dataframe_records`, `instances`, `inputs`) or columns as lists (`inputs`); None for anything else."""
    (key, value), *_ = payload.items()
    if key == "dataframe_split":
        return _split_frame(value)
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value)
    if key == "inputs" and isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        if len({len(v) for v in value.values()}) != 1:
            raise InvocationError("`inputs`: the columns have different lengths")
        return pd.DataFrame(value)
    return None


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
    except json.JSONDecodeError as exc:  # its message gives a position, never the text
        raise InvocationError(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvocationError("the body is not valid JSON: not UTF-8") from None
    except RecursionError:  # e.g. 100,000 `[`: json.loads recurses once per level
        raise InvocationError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict):
        raise InvocationError(f"the body must be a JSON object with exactly one of {', '.join(FORMATS)}")
    keys = [k for k in FORMATS if k in payload]
    if len(keys) != 1:
        found = f"{len(keys)} of them" if keys else "none of them"
        raise InvocationError(
            f"the body must have exactly one of {', '.join(FORMATS)}; it has {found}",
            field=keys[1] if len(keys) > 1 else None,
        )
    return {keys[0]: payload[keys[0]]}


def check_features(frame: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """The model's feature columns of `frame`, numbers as float64; a 400 naming the column for a missing one, a
    category that is not a string, or a number that is not one (a boolean, text, a list, beyond float64)."""
    spec = scorer.spec
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InvocationError(f"missing feature column(s): {shown}", field=missing[0])
    out: dict[str, Any] = {}
    for c in spec.columns:
        values = frame[c]
        if c in spec.category_levels:
            kind = pd.api.types.infer_dtype(values, skipna=True)
            if isinstance(values.dtype, pd.CategoricalDtype):
                kind = (
                    pd.api.types.infer_dtype(values.cat.categories, skipna=True)
                    if len(values.cat.categories)
                    else "empty"
                )
            if kind not in CATEGORY_VALUE_KINDS:
                raise InvocationError(f"feature {c!r}: categorical values must be strings (got {kind})", field=c)
            out[c] = values
        else:
            out[c] = _numbers(values, c)
    return pd.DataFrame(out, index=frame.index, columns=spec.columns)


def _numbers(values: pd.Series, column: str) -> np.ndarray:
    """One numeric feature as float64 (missing as NaN), or an InvocationError saying what is wrong with it."""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise InvocationError(f"feature {column!r}: booleans are not numbers", field=column)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numbers = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values.tolist()):  # an unusual body: judged value by value, as sent
            numbers[i] = _number(v, column)
    if np.isinf(numbers).any():
        raise InvocationError(f"feature {column!r}: values must be finite numbers", field=column)
    return numbers


def _number(value: Any, column: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise InvocationError(f"feature {column!r}: booleans are not numbers", field=column)
    try:
        if isinstance(value, int | float | np.integer | np.floating | str):
            return float(value)
    except OverflowError:
        raise InvocationError(f"feature {column!r}: values must be finite numbers", field=column) from None
    except ValueError:
        pass
    raise InvocationError(f"feature {column!r}: values must be numbers", field=column)


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
