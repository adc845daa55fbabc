"""Features on Spark: `groupBy(group).applyInPandas` calling the pandas path's own `features_at` on whole guarantors.

`features.build` is pure and partition-safe: an account's features read only its own and its guarantor's rows, so
the union of the groups' frames, sorted by account_id, is the pandas path's frame.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.build import ID_COLUMNS, features_at
from features.history_prepared import as_of_timestamp, prepare_book
from features.schema import Book
from features.spec import CATEGORY_LEVELS, FEATURE_COLUMNS
from serving.spark.book import PART, unpack_book


def feature_schema() -> Any:
    """The Spark schema of a feature frame: ids, as_of, then FEATURE_COLUMNS (categoricals as strings)."""
    from pyspark.sql import types as T

    fields = [
        T.StructField("account_id", T.StringType()),
        T.StructField("guarantor_id", T.StringType()),
        T.StructField("as_of", T.TimestampNTZType()),
    ]
    for col in FEATURE_COLUMNS:
        kind = T.StringType() if col in CATEGORY_LEVELS else T.DoubleType()
        fields.append(T.StructField(col, kind))
    return T.StructType(fields)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings (what Spark carries); other columns as they are."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype | pd.StringDtype):  # Arrow text: objects for Spark
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def typed_features(frame: pd.DataFrame) -> pd.DataFrame:
    """A feature frame read back from Spark, typed as `build_features` types it (sorted by account_id)."""
    out = frame.sort_values("account_id", kind="stable").reset_index(drop=True)
    for col, levels in CATEGORY_LEVELS.items():
        if col in out.columns:
            out[col] = pd.Categorical(out[col], categories=list(levels))
    for col in ("account_id", "guarantor_id"):
        if col in out.columns:
            out[col] = out[col].astype("string")
    if "as_of" in out.columns:
        out["as_of"] = out["as_of"].astype("datetime64[ns]")
    return out


def group_features(book: Book, as_of: pd.Timestamp) -> pd.DataFrame:
    """The features of one group's book (the pandas path's function, on fewer guarantors)."""
    frame, _ = features_at(prepare_book(book), as_of)
    return frame


def features_frame(packed: Any, schemas: dict, as_of: object) -> Any:
    """The Spark frame of features at `as_of`: one grouped map over the guarantor groups of a packed book."""
    ts = as_of_timestamp(as_of)

    def per_group(pdf: pd.DataFrame) -> pd.DataFrame:
        return plain(group_features(unpack_book(pdf, schemas), ts))

    return packed.groupBy(PART).applyInPandas(per_group, schema=feature_schema())


__all__ = ["ID_COLUMNS", "feature_schema", "features_frame", "group_features", "plain", "typed_features"]
