"""The /invocations fast path (JSON rows → float matrix → boosters → JSON) answers exactly what the general path
(MLflow's parser → DataFrame → FeatureSpec.encode → MLflow's writer) answers, and steps aside for anything odd."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server import predictions_to_json

from serving.api.invocations import check_features, fast_invoke, parse_input, predict, predictions_json


@pytest.fixture(scope="module")
def scorer(trained_session):
    return trained_session.trained.scorer


@pytest.fixture(scope="module")
def split(trained_session, scorer) -> dict[str, Any]:
    """60 holdout rows as MLflow's client sends them, with a few awkward but legal values mixed in."""
    frame = trained_session.trained.holdout[scorer.spec.columns].head(60).copy()
    frame = frame.astype(object).where(frame.notna(), None)
    frame.loc[0, "balance"] = None  # a missing number
    frame.loc[1, "payer_class"] = "martian"  # a level never seen in training
    frame.loc[2, "state"] = None  # a missing category
    frame.loc[3, "n_payments"] = 3  # an int where floats are usual
    return {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}


def _mlflow_json(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    predictions_to_json(frame, out)
    return out.getvalue()


def test_encode_rows_equals_encode_of_the_frame(scorer, split):
    fast = scorer.spec.encode_rows(split["columns"], split["data"])
    slow = scorer.spec.encode(pd.DataFrame(split["data"], columns=split["columns"]))
    np.testing.assert_array_equal(fast, slow)  # NaNs in the same places, every number identical
    assert np.isnan(fast[0, scorer.spec.columns.index("balance")])
    assert np.isnan(fast[1, scorer.spec.columns.index("payer_class")])


@pytest.mark.parametrize("rows", [1, 7, 60])
def test_fast_invoke_answers_byte_for_byte_what_the_general_path_answers(scorer, split, rows):
    body = json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"][:rows]}}).encode()
    fast = fast_invoke(body, "application/json", scorer, lambda rows: 1)
    assert fast is not None and fast[1] == rows
    frame = parse_input(body, "application/json", None)
    slow = predict(check_features(frame, scorer), scorer, num_threads=1)
    assert fast[0] == _mlflow_json(slow)


def test_predictions_json_is_mlflows_writer():
    frame = pd.DataFrame({"p": [0.1, np.nan, 1 / 3], "q": [1e-17, 2.5, -0.0]})
    assert predictions_json(frame) == _mlflow_json(frame)
    assert predictions_json(frame.iloc[:0]) == _mlflow_json(frame.iloc[:0])


def _edited(split: dict[str, Any], column: str, value: Any) -> tuple[list, list]:
    data = [list(r) for r in split["data"][:3]]
    data[1][split["columns"].index(column)] = value
    return split["columns"], data


@pytest.mark.parametrize(
    ("column", "value"),
    [("balance", "12.5"), ("balance", True), ("balance", {"x": 1}), ("payer_class", 3), ("payer_class", ["a"])],
)
def test_values_pandas_must_judge_leave_the_fast_path(scorer, split, column, value):
    assert scorer.spec.encode_rows(*_edited(split, column, value)) is None


def test_odd_shapes_leave_the_fast_path(scorer, split):
    cols, data = split["columns"], split["data"][:3]
    assert scorer.spec.encode_rows(cols[1:], [r[1:] for r in data]) is None  # a feature missing
    assert scorer.spec.encode_rows([*cols, cols[0]], [[*r, r[0]] for r in data]) is None  # a column twice
    assert scorer.spec.encode_rows(cols, [data[0], data[1][:-1]]) is None  # a ragged row
    assert scorer.spec.encode_rows(cols, []) is None  # nothing to encode
    assert fast_invoke(b'{"dataframe_records": []}', "application/json", scorer, lambda rows: 1) is None
    assert fast_invoke(b"balance\n1\n", "text/csv", scorer, lambda rows: 1) is None


@pytest.mark.parametrize(
    ("rows", "busy", "big", "expected"),
    [(1, 1, 500, 1), (499, 1, 500, 1), (500, 1, 500, "all"), (5000, 2, 500, 1), (5000, 1, 0, 1)],
)
def test_only_a_big_batch_on_an_otherwise_idle_server_gets_every_core(rows, busy, big, expected):
    import os
    from types import SimpleNamespace

    from serving.api.service import lightgbm_threads

    limiter = SimpleNamespace(borrowed_tokens=busy)  # this request's own token counts as one
    want = (os.cpu_count() or 1) if expected == "all" else expected
    assert lightgbm_threads(limiter, 1, big, rows) == want
