"""The SparkSession payrank runs on: one per process, with the settings every stage relies on.

Workers must run the same Python as the driver (the venv's), timestamps are read in UTC (a book's times are naive
UTC), and Arrow carries the pandas batches. `local[N]` runs the same code paths as a cluster.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import Any

DEFAULT_MASTER = "local[2]"
DEFAULT_PARTITIONS = 8
ARROW_BATCH_ROWS = 10_000


class SparkUnavailable(RuntimeError):
    """pyspark or Java is missing; the message says how to install them."""


def check_spark() -> None:
    """Raise SparkUnavailable with the fix when pyspark or Java cannot run."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(
            "--engine spark needs pyspark: pip install 'payrank[spark]' (make test installs it)"
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable(
            "--engine spark needs Java 17 or newer: as root, apt-get install openjdk-17-jre-headless"
        )


def get_spark(master: str = DEFAULT_MASTER, partitions: int = DEFAULT_PARTITIONS, **conf: Any) -> Any:
    """The process's SparkSession (created on first use; a later call reuses it, whatever its master).

    `partitions` is the shuffle width (spark.sql.shuffle.partitions): how many groups of guarantors a stage makes.
    """
    check_spark()
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("payrank")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        .config("spark.sql.adaptive.enabled", "false")  # keep the asked-for number of guarantor groups
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.python.worker.reuse", "true")  # a worker keeps its loaded bundle between tasks
    )
    if os.environ.get("PAYRANK_SPARK_JARS") and "spark.jars" not in conf:  # e.g. a JDBC driver's jar
        builder = builder.config("spark.jars", os.environ["PAYRANK_SPARK_JARS"])
    for key, value in conf.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    spark.sparkContext.setLogLevel("ERROR")
    return spark
