"""Scoring on Spark: features and the contact policy per guarantor group, then the bundle per partition.

Stage A (`groupBy(group).applyInPandas`): the group's book → `features_at` → `evaluate_policy` (both need the
book's rows of whole guarantors). Stage B (`mapInPandas`): the bundle, loaded once per Python worker from a
broadcast of its JSON document, predicts and `finish_scores` turns predictions into score rows — row by row, so
any batching gives the pandas path's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from features.history_prepared import as_of_timestamp
from features.schema import ACTIONS, CHANNELS
from serving.policy import PolicyResult, evaluate_policy
from serving.policy_config import PolicyConfig
from serving.scoring import SCORE_COLUMNS, Scored, finish_scores
from serving.spark.book import PART, unpack_book
from serving.spark.features import feature_schema, group_features, plain, typed_features
from training.scorer import Scorer

WINDOW_COLUMNS = ["call_window_local", "call_window_start_utc", "call_window_end_utc"]
CALL_BLOCKS = "call_blocks"  # the account's call blocks: "rule\x1fdetail" items joined by "\x1e"
ITEM, FIELD = "\x1e", "\x1f"
_SCORERS: dict[str, Scorer] = {}  # per Python worker: bundle key → loaded bundle


def policy_schema() -> Any:
    """Stage A's rows: the feature columns, then what the policy allows and the call blocks."""
    from pyspark.sql import types as T

    fields = list(feature_schema().fields)
    fields += [T.StructField(ch, T.BooleanType()) for ch in CHANNELS]
    fields += [
        T.StructField("call_window_local", T.StringType()),
        T.StructField("call_window_start_utc", T.TimestampType()),
        T.StructField("call_window_end_utc", T.TimestampType()),
        T.StructField(CALL_BLOCKS, T.StringType()),
    ]
    return T.StructType(fields)


def score_schema() -> Any:
    from pyspark.sql import types as T

    kinds = {"balance": T.DoubleType(), "p_pay": T.DoubleType(), "channel_uplift": T.DoubleType()}
    kinds["expected_value"] = T.DoubleType()
    return T.StructType([T.StructField(c, kinds.get(c, T.StringType())) for c in SCORE_COLUMNS])


def _encode_blocks(ids: pd.Series, blocks: pd.DataFrame) -> pd.Series:
    calls = blocks[blocks["channel"].astype(str) == "call"]
    items = calls["rule"].astype(str) + FIELD + calls["detail"].astype(str)
    joined = items.groupby(calls["account_id"].astype(object), sort=False).agg(ITEM.join)
    return ids.astype(object).map(joined).fillna("")


def decode_blocks(rows: pd.DataFrame) -> pd.DataFrame:
    """The call blocks (account_id, channel, rule, detail) of stage A's rows, in their order."""
    out = []
    for account, text in zip(rows["account_id"], rows[CALL_BLOCKS], strict=True):
        for item in text.split(ITEM) if text else ():
            rule, detail = item.split(FIELD, 1)
            out.append((account, "call", rule, detail))
    return pd.DataFrame(out, columns=["account_id", "channel", "rule", "detail"])


def policy_frame(packed: Any, schemas: dict, as_of: object, config: PolicyConfig) -> Any:
    """Stage A: per guarantor group, features and the contact policy's verdict on each open account."""
    ts = as_of_timestamp(as_of)

    def per_group(pdf: pd.DataFrame) -> pd.DataFrame:
        book = unpack_book(pdf, schemas)
        feats = group_features(book, ts)
        verdict = evaluate_policy(book, ts, feats[["account_id", "guarantor_id"]], config)
        out = plain(feats)
        for ch in CHANNELS:
            out[ch] = verdict.allowed[ch].to_numpy()
        for col in WINDOW_COLUMNS:
            out[col] = verdict.allowed[col].to_numpy()
        out[CALL_BLOCKS] = _encode_blocks(feats["account_id"], verdict.blocks).to_numpy()
        return out

    return packed.groupBy(PART).applyInPandas(per_group, schema=policy_schema())


def broadcast_scorer(spark: Any, scorer: Scorer, key: str) -> Any:
    """The bundle's JSON document as a broadcast variable (sent once to each executor)."""
    return spark.sparkContext.broadcast((key, json.dumps(scorer.to_dict())))


def worker_scorer(bundle: Any) -> Scorer:
    """The bundle in this Python worker, loaded on its first task and kept for the next ones."""
    key, text = bundle.value
    if key not in _SCORERS:
        _SCORERS.clear()
        _SCORERS[key] = Scorer.from_dict(json.loads(text))
    return _SCORERS[key]


def scored_part(pdf: pd.DataFrame, scorer: Scorer, costs: dict, label: str, reasons: bool, day: Any) -> Scored:
    """A `Scored` of stage A's rows (any subset of whole accounts), as `score_book` makes it for the whole book."""
    rows = typed_features(pdf)
    feats = rows[list(feature_schema().names)]
    allowed = rows[["account_id", *CHANNELS]].copy()
    allowed["account_id"] = allowed["account_id"].astype(object)
    for col in WINDOW_COLUMNS:
        values = rows[col]
        if col != "call_window_local":
            values = pd.to_datetime(values)
            values = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        allowed[col] = values
    pred = scorer.predict(feats, num_threads=1)
    scores, values = finish_scores(feats, pred, allowed, scorer, costs, label, 1, reasons)
    verdict = PolicyResult(allowed=allowed, blocks=decode_blocks(rows), day=day)
    return Scored(scores, values, verdict, feats, scorer=scorer, num_threads=1, has_reasons=reasons)


def score_frame(stage_a: Any, bundle: Any, costs: dict, label: str, reasons: bool) -> Any:
    """Stage B: SCORE_COLUMNS for stage A's rows, one `mapInPandas` batch at a time."""

    def per_batch(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = worker_scorer(bundle)
        full = {**scorer.costs, **costs}
        for pdf in batches:
            if len(pdf):
                yield scored_part(pdf, scorer, full, label, reasons, None).scores[SCORE_COLUMNS]

    return stage_a.mapInPandas(per_batch, schema=score_schema())


def typed_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Score rows read back from Spark, sorted by account_id as `score_book` sorts them."""
    return frame.sort_values("account_id", kind="stable").reset_index(drop=True)


__all__ = ["ACTIONS", "broadcast_scorer", "policy_frame", "score_frame", "scored_part", "worker_scorer"]
