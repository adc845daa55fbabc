"""Training snapshots on Spark: features and labels for every as-of day per guarantor group, sampled per day, then
collected to the driver, which fits (`training.train.train_bundle(frames=...)`).

Each group computes what `build_snapshots` computes for its guarantors (the same `features_at` and label
functions) and the paid amounts; each day keeps at most `max_rows_per_day` rows, a uniform sample drawn by a seeded
hash of (seed, day, account) — not the pandas path's draw, but as uniform and as independent of the other days.
Only the sample reaches the driver.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.build import features_at
from features.history_prepared import as_of_timestamp, day_number, prepare_book
from features.labels import next_day_actions_at, payment_labels_at
from features.schema import ACTIONS, OUTCOMES
from serving.spark.book import PART, unpack_book
from serving.spark.features import feature_schema, plain, typed_features
from training.amounts import paid_amounts
from training.train import TrainConfig, Windows, mark_uses, training_windows

HORIZONS = (30, 14)


def snapshot_schema() -> Any:
    from pyspark.sql import types as T

    fields = list(feature_schema().fields)
    fields += [T.StructField(f"paid_{h}d", T.LongType()) for h in HORIZONS]
    fields += [
        T.StructField("action_next", T.StringType()),
        T.StructField("action_propensity", T.DoubleType()),
        T.StructField("outcome_next", T.StringType()),
    ]
    fields += [T.StructField(f"paid_amount_{h}d", T.DoubleType()) for h in HORIZONS]
    return T.StructType(fields)


def group_snapshots(book: Any, days: list) -> pd.DataFrame:
    """Every day's features and labels for one group's book (build_snapshots' loop, without sampling)."""
    prep = prepare_book(book)
    frames = []
    for day in days:
        ts = as_of_timestamp(day)
        frame, rows = features_at(prep, ts)
        t = day_number(ts)
        for h in HORIZONS:
            frame[f"paid_{h}d"] = payment_labels_at(prep, t, h, rows)
        frame["action_next"], frame["action_propensity"], frame["outcome_next"] = next_day_actions_at(prep, t, rows)
        frames.append(frame)
    snaps = pd.concat(frames, ignore_index=True)
    for h in HORIZONS:
        snaps[f"paid_amount_{h}d"] = paid_amounts(book, snaps["account_id"], snaps["as_of"], h)
    return snaps


def _book_facts(tables: dict[str, Any]) -> tuple[Any, int, int | None]:
    """(first service day, number of accounts, last observed day number) of the book on Spark."""
    from pyspark.sql import functions as F

    acc = tables["accounts"].agg(F.min("service_date").alias("first"), F.count("*").alias("n")).first()
    last = [tables["transactions"].agg(F.max(F.to_date("posted_date"))).first()[0]]
    if tables.get("contacts") is not None:
        last.append(tables["contacts"].agg(F.max(F.to_date("contacted_at"))).first()[0])
    seen = [d for d in last if d is not None]
    last_day = int(np.datetime64(max(seen), "D").astype(np.int64)) if seen else None
    return pd.Timestamp(acc["first"]).date(), int(acc["n"]), last_day


def spark_frames(tables: dict[str, Any], packed: Any, schemas: dict) -> Any:
    """A `FramesBuilder` for `train_bundle`: the training frame built on Spark, sampled, collected."""

    def frames(cfg: TrainConfig, progress: Any = None) -> tuple[pd.DataFrame, Windows]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        first_day, n_accounts, last = _book_facts(tables)
        w = training_windows(first_day, n_accounts, cfg)
        days = w.days()
        latest = day_number(as_of_timestamp(max(days))) + max(HORIZONS)
        if last is None or latest > last:
            seen = "nothing" if last is None else str(np.datetime64(last, "D"))
            raise ValueError(
                f"label window up to {np.datetime64(latest, 'D')} ({max(days)} + {max(HORIZONS)} days) "
                f"reaches past the book's last observed day ({seen}): those labels would leak unfinished windows"
            )
        if progress:
            progress("snapshots on Spark", 0, 1)

        def per_group(pdf: pd.DataFrame) -> pd.DataFrame:
            return plain(group_snapshots(unpack_book(pdf, schemas), days))

        snaps = packed.groupBy(PART).applyInPandas(per_group, schema=snapshot_schema())
        if cfg.max_rows_per_day is not None:
            draw = F.xxhash64(F.lit(cfg.seed), F.col("as_of"), F.col("account_id"))
            order = Window.partitionBy("as_of").orderBy(draw, F.col("account_id"))
            snaps = snaps.withColumn("_n", F.row_number().over(order)).filter(F.col("_n") <= cfg.max_rows_per_day)
            snaps = snaps.drop("_n")
        frame = snaps.toPandas()
        frame = typed_features(frame).sort_values(["as_of", "account_id"], kind="stable").reset_index(drop=True)
        frame["action_next"] = pd.Categorical(frame["action_next"], categories=list(ACTIONS))
        frame["outcome_next"] = pd.Categorical(frame["outcome_next"], categories=list(OUTCOMES))
        if progress:
            progress("snapshots on Spark", 1, 1)
        return mark_uses(frame, w), w

    return frames
