"""The commands on Spark: read and validate the book, run the stages, write the output (nothing on a broken book).

Outputs: `.parquet` is a folder of part files (Spark's native output; pandas and Arrow read it as one table),
`.csv` one file with a header. Either is written beside the target first and renamed into place, so a failed run
never leaves half an output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.io import WRITABLE
from serving.policy_config import PolicyConfig
from serving.spark.book import pack, read_tables
from serving.spark.features import features_frame
from serving.spark.scoring import broadcast_scorer, policy_frame, score_frame
from serving.spark.session import DEFAULT_MASTER, DEFAULT_PARTITIONS, get_spark
from serving.spark.validate import validate_on_spark
from serving.spark.worklist import global_worklist, partition_lists


@dataclass(frozen=True)
class SparkJob:
    """Where the job runs: the master URL and how many guarantor groups (= shuffle partitions) a stage makes."""

    master: str = DEFAULT_MASTER
    groups: int = DEFAULT_PARTITIONS

    def session(self) -> Any:
        return get_spark(self.master, self.groups)


def check_spark_output(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output path before any work: .csv or .parquet (a folder is replaced), never a symbolic link."""
    out = Path(path)
    if out.suffix.lower() not in WRITABLE:
        raise ValueError(f"{option} {str(out)!r}: extension must be one of {', '.join(WRITABLE)}")
    if out.is_symlink():
        raise ValueError(f"{option} {str(out)!r}: is a symbolic link; give the path of a regular file or folder")
    if out.suffix.lower() == ".csv" and out.is_dir():
        raise ValueError(f"{option} {str(out)!r}: is a directory; give a file name ending in .csv")
    folder = out.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(out)!r}: cannot write in {str(folder)!r}")
    return out


def write_output(frame: Any, path: str | Path, option: str = "--out") -> Path:
    """Write a Spark frame (row order kept) to .parquet (a folder) or .csv (one file), whole or not at all."""
    out = check_spark_output(path, option)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = tmp / "data"
        if out.suffix.lower() == ".csv":
            frame.coalesce(1).write.csv(str(target), header=True, timestampFormat="yyyy-MM-dd HH:mm:ssXXX")
            part = next(target.glob("part-*"))
            os.replace(part, tmp / "file.csv")
            target = tmp / "file.csv"
        else:
            frame.write.parquet(str(target))
        check_spark_output(out, option)
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)  # the previous run's folder of part files
        elif out.exists() and target.is_dir():
            out.unlink()  # a single file (the pandas engine's output) becomes a folder
        os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def open_book(spark: Any, data: str, groups: int) -> tuple[dict[str, Any], Any, dict]:
    """(the tables, the packed book, the tables' Arrow schemas) of a validated book; BookError when broken."""
    tables = read_tables(spark, data)
    validate_on_spark(tables)
    packed, schemas = pack(tables, groups)
    return tables, packed, schemas


def run_features(job: SparkJob, data: str, as_of: object, out: Path) -> int:
    """`payrank features --engine spark`: the features of every open account, sorted by account_id."""
    spark = job.session()
    _, packed, schemas = open_book(spark, data, job.groups)
    frame = features_frame(packed, schemas, as_of).orderBy("account_id").persist()
    write_output(frame, out)
    rows = frame.count()
    frame.unpersist()
    return rows


def run_score(
    job: SparkJob, data: str, as_of: object, out: Path, loaded: Any, config: PolicyConfig, costs: dict, reasons: bool
) -> dict[str, int]:
    """`payrank score --engine spark`: score rows sorted by account_id; the count of each best channel."""
    spark = job.session()
    _, packed, schemas = open_book(spark, data, job.groups)
    bundle = broadcast_scorer(spark, loaded.scorer, loaded.digest or loaded.label)
    stage_a = policy_frame(packed, schemas, as_of, config)
    scores = score_frame(stage_a, bundle, costs, loaded.label, reasons).orderBy("account_id").persist()
    write_output(scores, out)
    counts = {r["best_channel"]: int(r["count"]) for r in scores.groupBy("best_channel").count().collect()}
    scores.unpersist()
    return counts


def run_worklist(
    job: SparkJob,
    data: str,
    as_of: object,
    calls: int,
    loaded: Any,
    config: PolicyConfig,
    costs: dict,
    profitable_only: bool,
    exclusions_out: Path | None,
) -> tuple[pd.DataFrame, int]:
    """`payrank worklist --engine spark`: (the day's list, how many accounts are left out); exclusions written."""
    spark = job.session()
    _, packed, schemas = open_book(spark, data, job.groups)
    bundle = broadcast_scorer(spark, loaded.scorer, loaded.digest or loaded.label)
    stage_a = policy_frame(packed, schemas, as_of, config)
    long = partition_lists(stage_a, bundle, costs, loaded.label, calls, config, profitable_only)
    listed, exclusions = global_worklist(long, calls)
    if exclusions_out is not None:
        write_output(exclusions, exclusions_out, "--exclusions")
    left_out = exclusions.select("account_id").distinct().count()
    long.unpersist()
    return listed, left_out


def run_train(job: SparkJob, data: str, cfg: Any, progress: Any = None) -> Any:
    """`payrank train --engine spark`: snapshots built and sampled on Spark, the fit on the driver (a `Trained`)."""
    from serving.spark.training import spark_frames
    from training.train import train_bundle

    spark = job.session()
    tables, packed, schemas = open_book(spark, data, job.groups)
    return train_bundle(None, cfg, progress, frames=spark_frames(tables, packed, schemas))
