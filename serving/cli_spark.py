"""`--engine spark` for `payrank features | score | worklist | train`: the options and the dispatch.

The engine and master default to PAYRANK_ENGINE and PAYRANK_SPARK_MASTER (serving.config). pyspark is imported
only when Spark is chosen.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from serving.config import Settings


class Engine(StrEnum):
    pandas = "pandas"
    spark = "spark"


EngineOpt = Annotated[
    Engine | None,
    typer.Option("--engine", help="pandas (one machine, default) or spark (PAYRANK_ENGINE; docs/scale-out.md)."),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option("--spark-master", help="Spark master URL, e.g. local[2] (PAYRANK_SPARK_MASTER)."),
]


def spark_job(engine: Engine | None, master: str | None, with_store: bool = False) -> Any:
    """The SparkJob to run when Spark is chosen (option, else environment), None for the pandas engine."""
    settings = Settings()
    chosen = engine.value if engine is not None else settings.engine
    if chosen != "spark":
        return None
    if with_store:
        raise ValueError("--with-store works with --engine pandas only (the store is one machine's database)")
    from serving.spark.jobs import SparkJob
    from serving.spark.session import SparkUnavailable, check_spark

    try:
        check_spark()
    except SparkUnavailable as exc:
        raise ValueError(str(exc)) from None
    return SparkJob(master=master or settings.spark_master, groups=settings.spark_partitions)


def features(job: Any, data: str, day: Any, out: Path) -> int:
    from serving.spark.jobs import check_spark_output, run_features

    check_spark_output(out)
    return run_features(job, data, day, out)


def score(job: Any, data: str, day: Any, out: Path, loaded: Any, config: Any, reasons: bool) -> dict[str, int]:
    from serving.spark.jobs import check_spark_output, run_score

    check_spark_output(out)
    return run_score(job, data, day, out, loaded, config, dict(Settings().channel_costs), reasons)


def worklist(
    job: Any, data: str, day: Any, calls: int, loaded: Any, config: Any, profitable_only: bool, exclusions: Any
) -> tuple[Any, int]:
    from serving.spark.jobs import run_worklist

    costs = dict(Settings().channel_costs)
    return run_worklist(job, data, day, calls, loaded, config, costs, profitable_only, exclusions)
