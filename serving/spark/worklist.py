"""The worklist on Spark: per-partition lists of whole guarantors, then a distributed top-N.

Stage C (`mapInPandas` over stage A's partitions, each holding whole guarantor groups): the bundle scores the
partition and `rank_calls` — the pandas path's own ranking, one call per guarantor and exclusions — keeps the
partition's best `calls` candidates. The day's list is the global top `calls` of those lists by (increment desc,
account_id): any call in it is in its partition's top `calls`, so nothing is lost. Local candidates below the
global cut become `over_capacity` exclusions, with the pandas path's detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from serving.policy_config import PolicyConfig
from serving.spark.features import plain
from serving.spark.scoring import scored_part, worker_scorer
from serving.worklist import EXCLUSION_COLUMNS, WORKLIST_COLUMNS, rank_calls

KIND = "_kind"  # "listed" (a partition's candidate) or "excluded"
LISTED_TYPES = {
    "balance": "double",
    "p_pay": "double",
    "expected_value": "double",
    "below_break_even": "boolean",
    "call_window_start_utc": "timestamp",
    "call_window_end_utc": "timestamp",
    "increment": "double",
}


def long_schema() -> Any:
    """Stage C's rows: a kind, the list's columns (rank excluded, increment added), an exclusion's rule and detail."""
    from pyspark.sql import types as T

    kinds = {
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
        "timestamp": T.TimestampType(),
    }
    names = [KIND, *(c for c in WORKLIST_COLUMNS if c != "rank"), "increment", "rule", "detail"]
    return T.StructType([T.StructField(c, kinds.get(LISTED_TYPES.get(c, ""), T.StringType())) for c in names])


def partition_lists(
    stage_a: Any, bundle: Any, costs: dict, label: str, calls: int, config: PolicyConfig, profitable_only: bool
) -> Any:
    """Stage C: each partition's candidates (at most `calls`) and exclusions, as one long frame."""
    names = long_schema().names

    def per_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frames = [b for b in batches if len(b)]
        if not frames:
            return
        scorer = worker_scorer(bundle)
        rows = pd.concat(frames, ignore_index=True)
        scored = scored_part(rows, scorer, {**scorer.costs, **costs}, label, False, None)
        listed, excluded = rank_calls(scored, calls, config, profitable_only)
        listed = listed.drop(columns="rank").assign(**{KIND: "listed"})
        excluded = excluded.assign(**{KIND: "excluded"})
        out = pd.concat([listed, excluded], ignore_index=True)
        for col in names:
            if col not in out.columns:
                out[col] = None
        yield plain(out[names])

    return stage_a.mapInPandas(per_partition, schema=long_schema())


def global_worklist(long: Any, calls: int) -> tuple[pd.DataFrame, Any]:
    """(the day's list, collected: at most `calls` rows; the exclusions as a Spark frame sorted by account_id, rule).

    The list is Spark's distributed top-N (`orderBy(...).limit`: each partition sends only its best rows).
    """
    from pyspark.sql import functions as F

    long = long.persist()
    candidates = long.filter(F.col(KIND) == "listed")
    top = candidates.orderBy(F.desc("increment"), F.asc("account_id")).limit(calls).toPandas()
    listed = top.assign(rank=range(1, len(top) + 1))
    for col in ("call_window_start_utc", "call_window_end_utc"):
        listed[col] = pd.to_datetime(listed[col]).dt.tz_localize("UTC")
    listed = listed[WORKLIST_COLUMNS].reset_index(drop=True)
    chosen = long.sparkSession.createDataFrame(pd.DataFrame({"account_id": top["account_id"].astype(str)}))
    over = (
        candidates.join(F.broadcast(chosen), on="account_id", how="left_anti")
        .withColumn("rule", F.lit("over_capacity"))
        .withColumn("detail", F.lit(f"ranked below today's {calls} calls"))
    )
    excluded = long.filter(F.col(KIND) == "excluded").select(*EXCLUSION_COLUMNS)
    exclusions = excluded.unionByName(over.select(*EXCLUSION_COLUMNS)).orderBy("account_id", "rule")
    return listed, exclusions
