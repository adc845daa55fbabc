"""The Spark engine (local[2]) against the pandas path: the same features, scores, worklist and refusals.

One SparkSession for the whole test session, few shuffle partitions; the book and bundle are the session's shared
ones (tests/conftest.py). The 20k-guarantor equality runs in benchmarks/spark.py (docs/scale-out.md).
Skipped when pyspark or Java is missing (`make test` installs pyspark; the Makefile says how to install Java).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17+ (apt-get install openjdk-17-jre-headless)", allow_module_level=True)

from features.build import build_features  # noqa: E402
from features.load import load_book  # noqa: E402
from features.validate import BookError  # noqa: E402
from serving.policy_config import load_policy  # noqa: E402
from serving.scoring import score_book  # noqa: E402
from serving.worklist import build_worklist  # noqa: E402
from tests.store_helpers import postgres_url  # noqa: E402, F401 (a fixture)

AS_OF = "2026-09-15"
CALLS = 150
GROUPS = 4


POSTGRES = os.environ.get("PAYRANK_TEST_POSTGRES_URL")
JDBC_JARS = sorted(Path.home().glob(".m2/repository/org/postgresql/postgresql/*/postgresql-*.jar"))


@pytest.fixture(scope="session")
def spark():
    from serving.spark.session import get_spark

    jars = {"spark.jars": str(JDBC_JARS[-1])} if JDBC_JARS else {}
    session = get_spark("local[2]", GROUPS, **jars)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def shared(trained_session):
    """(the session's book folder, its validated book, its bundle)."""
    return trained_session.book_dir, load_book(trained_session.book_dir), trained_session.trained.scorer


def _packed(spark, folder: Path | str, groups: int):
    from serving.spark.book import pack, read_tables

    return pack(read_tables(spark, str(folder)), groups)


def _features(spark, folder: Path | str, groups: int) -> pd.DataFrame:
    from serving.spark.features import features_frame, typed_features

    packed, schemas = _packed(spark, folder, groups)
    return typed_features(features_frame(packed, schemas, AS_OF).toPandas())


@pytest.fixture(scope="module")
def one_group(spark, shared) -> pd.DataFrame:
    """The Spark features with every guarantor in one group."""
    return _features(spark, shared[0], 1)


def test_features_equal_pandas(one_group, shared) -> None:
    want = build_features(shared[1], AS_OF)
    assert len(one_group) == len(want) > 2000
    pd.testing.assert_frame_equal(one_group, want, check_exact=False, rtol=0, atol=1e-12)


def test_many_partitions_equal_one(spark, shared, one_group) -> None:
    spark.conf.set("spark.sql.shuffle.partitions", "64")
    try:
        many = _features(spark, shared[0], 64)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", str(GROUPS))
    pd.testing.assert_frame_equal(many, one_group, check_exact=True)


def test_scores_and_worklist_equal_pandas(spark, shared) -> None:
    from serving.spark.scoring import broadcast_scorer, policy_frame, score_frame, typed_scores
    from serving.spark.worklist import global_worklist, partition_lists

    folder, book, scorer = shared
    config = load_policy(None)
    scored = score_book(book, AS_OF, scorer, config, "m/1", reasons=False)
    listed, excluded = build_worklist(scored, CALLS, config)

    packed, schemas = _packed(spark, folder, GROUPS)
    stage_a = policy_frame(packed, schemas, AS_OF, config)
    bundle = broadcast_scorer(spark, scorer, "test")
    scores = typed_scores(score_frame(stage_a, bundle, {}, "m/1", False).toPandas())
    pd.testing.assert_frame_equal(scores, scored.scores.reset_index(drop=True), check_dtype=False, check_exact=True)

    long = partition_lists(stage_a, bundle, {}, "m/1", CALLS, config, False)
    got_listed, got_excluded = global_worklist(long, CALLS)
    assert len(got_listed) == CALLS
    pd.testing.assert_frame_equal(got_listed, listed, check_dtype=False, check_exact=True)
    got_excluded = got_excluded.toPandas()
    pd.testing.assert_frame_equal(got_excluded, excluded, check_dtype=False, check_exact=True)


def _broken(folder: Path, out: Path) -> Path:
    shutil.copytree(folder, out)
    tx = pd.read_parquet(out / "transactions.parquet")
    tx.loc[[5, 900, 1500, 30_000], "kind"] = "bogus"
    charge = tx.index[tx["kind"] == "charge"][[3, 4000]]
    tx.loc[charge, "amount"] = -tx.loc[charge, "amount"].abs()
    tx.loc[[11, 26_000], "account_id"] = "nobody"
    tx.to_parquet(out / "transactions.parquet", index=False)
    g = pd.read_parquet(out / "guarantors.parquet")
    g.loc[[3, 4000], "zip3"] = "12345"
    g.loc[[8], "state"] = "XX"
    g.to_parquet(out / "guarantors.parquet", index=False)
    a = pd.read_parquet(out / "accounts.parquet")
    a.loc[10, "account_id"] = a.loc[9000, "account_id"]
    a.loc[[12, 7000], "service_date"] = None
    a.to_parquet(out / "accounts.parquet", index=False)
    return out


def test_broken_book_refused_with_the_same_lines(spark, shared, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    folder, _, _ = shared
    broken = _broken(folder, tmp_path / "broken")
    with pytest.raises(BookError) as pandas_error:
        load_book(broken)
    want = [str(p) for p in pandas_error.value.problems]
    assert len(want) >= 7
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "3000")  # many slices to merge
    try:
        out = tmp_path / "features.parquet"
        result = CliRunner().invoke(
            app, ["features", "--data", str(broken), "--as-of", AS_OF, "--out", str(out), "--engine", "spark"]
        )
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())  # the console wraps long lines
    assert f"({len(want)} problem(s))" in flat
    where = [flat.find(" ".join(line.split())) for line in want]
    assert -1 not in where and where == sorted(where), (flat, want)
    assert not out.exists()


def test_cli_score_spark_writes_parquet_folder(spark, trained_session, shared, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    folder, book, scorer = shared
    out = tmp_path / "s.parquet"
    args = ["score", "--data", str(folder), "--as-of", AS_OF, "--tracking-uri", trained_session.tracking_uri]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], env={"PAYRANK_ENGINE": "spark"})
    assert result.exit_code == 0, result.output
    assert out.is_dir() and list(out.glob("part-*.parquet"))
    got = pd.read_parquet(out)
    label = got["model_version"].iloc[0]  # the session's champion: the session's bundle
    want = score_book(book, AS_OF, scorer, load_policy(None), label, reasons=False).scores
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)


def test_training_snapshots_on_spark(spark, shared) -> None:
    """The Spark builder's frame holds the pandas builder's rows (unsampled), and samples per day when asked."""
    from datetime import date

    from serving.spark.book import pack, read_tables
    from serving.spark.training import spark_frames
    from training.train import TrainConfig, build_training_frame

    folder, book, _ = shared
    cfg = TrainConfig(as_of=date(2026, 8, 20), snapshot_step_days=90, max_rows_per_day=None)
    tables = read_tables(spark, str(folder))
    packed, schemas = pack(tables, GROUPS)
    got, w = spark_frames(tables, packed, schemas)(cfg, None)
    want, w2 = build_training_frame(book, cfg)
    assert w.days() == w2.days()
    want = want.sort_values(["as_of", "account_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, check_exact=False, atol=1e-9)

    sampled, _ = spark_frames(tables, packed, schemas)(
        TrainConfig(as_of=date(2026, 8, 20), snapshot_step_days=90, max_rows_per_day=500), None
    )
    per_day = sampled.groupby("as_of").size()
    assert per_day.max() == 500 and np.all(per_day <= 500)


def test_partitioned_parquet_folders(spark, shared, tmp_path: Path) -> None:
    """Tables as folders of part files, one of them partitioned by a column: the same features."""
    folder, book, _ = shared
    out = tmp_path / "lake"
    shutil.copytree(folder, out)
    tx = pd.read_parquet(out / "transactions.parquet")
    (out / "transactions.parquet").unlink()
    tx.to_parquet(out / "transactions", partition_cols=["kind"], index=False)
    contacts = pd.read_parquet(out / "contacts.parquet")
    (out / "contacts.parquet").unlink()
    (out / "contacts.parquet").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(contacts)), 3)):
        contacts.iloc[part].to_parquet(out / "contacts.parquet" / f"part-{i}.parquet", index=False)
    got = _features(spark, out, GROUPS)
    pd.testing.assert_frame_equal(got, build_features(book, AS_OF), check_exact=False, rtol=0, atol=1e-12)


@pytest.mark.skipif(not (POSTGRES and JDBC_JARS), reason="needs PAYRANK_TEST_POSTGRES_URL and PostgreSQL's JDBC jar")
def test_jdbc_book(spark, shared, postgres_url: str) -> None:  # noqa: F811
    """A book in PostgreSQL read over JDBC: the same features."""
    import sqlalchemy as sa

    _, book, _ = shared
    engine = sa.create_engine(postgres_url)
    for name, frame in book.tables().items():
        plain = frame.copy()
        for col in plain.columns:
            if isinstance(plain[col].dtype, pd.CategoricalDtype):
                plain[col] = plain[col].astype(object)
        plain.to_sql(name, engine, index=False, chunksize=20_000)
    engine.dispose()
    url = sa.make_url(postgres_url)
    jdbc = f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}?user={url.username}"
    if url.password:
        jdbc += f"&password={url.password}"
    got = _features(spark, jdbc, GROUPS)
    pd.testing.assert_frame_equal(got, build_features(book, AS_OF), check_exact=False, rtol=0, atol=1e-12)
