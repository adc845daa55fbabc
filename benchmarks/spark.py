"""Spark benchmark: features and scoring on Spark (local[N]) next to the pandas path, in the same run.

    python -m benchmarks.spark [--sizes 1000000,2000000] [--repeats 1] [--quick] [--equality-guarantors 20000]
                               [--model-accounts 30000] [--groups 8]

Per book size, each in a fresh process: the pandas path (`load_book` + `build_features`; `load_book` +
`score_book`) and the Spark path on local[2] (read + validate + grouped features + write Parquet; the same plus
policy and `mapInPandas` scoring). Seconds, and peak memory of the driver (its Python process and its JVM) and of
the Python workers (sampled every 0.2 s, summed over live workers). A bundle is trained once on a small book.

Also: the equality check on a 20k-guarantor book (features to 1e-12, scores, worklist rows and order: Spark
local[2] against pandas), and a time model — the features stage at local[1] and local[2] on the smallest size,
giving the fixed cost and the per-account cost per core, projected over partitions and executor cores.
Results: results/spark.json (tables in benchmarks/README.md).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BOOK_END,
    Clock,
    ensure_book,
    log,
    machine_info,
    parser,
    run_child,
    sizes_and_repeats,
    summarise_runs,
    write_results,
)

FULL_SIZES = (1_000_000, 2_000_000)
MODEL_NAME = "payrank-bench-spark"
KEYS = ("seconds", "driver_python_mib", "driver_jvm_mib", "workers_mib", "peak_rss_mib", "vm_hwm_mib")


class TreeSampler:
    """Peak RSS of this process's JVM children and their Python workers, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.jvm, self.workers = every, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.every):
            jvm = workers = 0.0
            try:
                for p in me.children(recursive=True):
                    rss = p.memory_info().rss / 2**20
                    if "java" in p.name():
                        jvm += rss
                    else:
                        workers += rss
            except psutil.Error:
                continue
            self.jvm, self.workers = max(self.jvm, jvm), max(self.workers, workers)


def pandas_child(book: str, task: str, model_uri: str, tracking_uri: str) -> dict[str, Any]:
    """Child side: the pandas path, features or score."""
    from benchmarks.common import vm_hwm_mib
    from features.build import build_features
    from features.load import load_book

    clock = Clock()
    loaded = load_book(book)
    if task == "features":
        rows = len(build_features(loaded, BOOK_END))
    else:
        from serving.model_store import load_model
        from serving.policy_config import load_policy
        from serving.scoring import score_book
        from training.tracking import use_tracking

        use_tracking(tracking_uri, must_exist=True)
        model = load_model(model_uri)
        rows = len(score_book(loaded, BOOK_END, model.scorer, load_policy(None), model.label, reasons=False).scores)
    clock.lap("seconds")
    return {**clock.laps, "rows": rows, "driver_python_mib": vm_hwm_mib(), "driver_jvm_mib": 0.0, "workers_mib": 0.0}


def spark_child(book: str, task: str, model_uri: str, tracking_uri: str, master: str, groups: int) -> dict[str, Any]:
    """Child side: the Spark path (session start excluded, reported apart), features or score, output to Parquet."""
    from benchmarks.common import vm_hwm_mib
    from serving.spark.jobs import SparkJob, run_features, run_score

    clock = Clock()
    job = SparkJob(master=master, groups=groups)
    with TreeSampler() as sampler:
        job.session()
        clock.lap("session_s")
        out = Path(tempfile.mkdtemp(prefix="payrank-bench-spark-")) / "out.parquet"
        if task == "features":
            rows = run_features(job, book, BOOK_END, out)
        else:
            from serving.model_store import load_model
            from serving.policy_config import load_policy
            from training.tracking import use_tracking

            use_tracking(tracking_uri, must_exist=True)
            model = load_model(model_uri)
            rows = sum(run_score(job, book, BOOK_END, out, model, load_policy(None), {}, False).values())
        clock.lap("seconds")
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        **clock.laps,
        "rows": rows,
        "driver_python_mib": vm_hwm_mib(),
        "driver_jvm_mib": sampler.jvm,
        "workers_mib": sampler.workers,
    }


def equality_child(book: str, model_uri: str, tracking_uri: str, calls: int) -> dict[str, Any]:
    """Child side: Spark local[2] against pandas on one book — features, scores, worklist and exclusions."""
    import pandas as pd

    from features.build import build_features
    from features.load import load_book
    from serving.model_store import load_model
    from serving.policy_config import load_policy
    from serving.scoring import score_book
    from serving.spark.book import pack, read_tables
    from serving.spark.features import features_frame, typed_features
    from serving.spark.scoring import broadcast_scorer, policy_frame, score_frame, typed_scores
    from serving.spark.session import get_spark
    from serving.spark.validate import validate_on_spark
    from serving.spark.worklist import global_worklist, partition_lists
    from serving.worklist import build_worklist
    from training.tracking import use_tracking

    use_tracking(tracking_uri, must_exist=True)
    model, config, clock = load_model(model_uri), load_policy(None), Clock()
    loaded = load_book(book)
    want_f = build_features(loaded, BOOK_END)
    scored = score_book(loaded, BOOK_END, model.scorer, config, model.label, reasons=False)
    want_l, want_e = build_worklist(scored, calls, config)
    clock.lap("pandas_s")
    spark = get_spark("local[2]", 8)
    clock.lap("session_s")
    tables = read_tables(spark, book)
    validate_on_spark(tables)
    packed, schemas = pack(tables, 8)
    got_f = typed_features(features_frame(packed, schemas, BOOK_END).toPandas())
    stage_a = policy_frame(packed, schemas, BOOK_END, config)
    bundle = broadcast_scorer(spark, model.scorer, model.label)
    got_s = typed_scores(score_frame(stage_a, bundle, {}, model.label, False).toPandas())
    got_l, got_e = global_worklist(partition_lists(stage_a, bundle, {}, model.label, calls, config, False), calls)
    got_e = got_e.toPandas()
    clock.lap("spark_s")
    numeric = [c for c in want_f.columns if want_f[c].dtype == "float64"]
    return {
        **clock.laps,
        "open_accounts": len(want_f),
        "features_equal": bool(
            len(got_f) == len(want_f) and got_f.drop(columns=numeric).equals(want_f.drop(columns=numeric))
        ),
        "features_max_abs_diff": float((got_f[numeric] - want_f[numeric]).abs().max().max()),
        "scores_equal": _equal(got_s, scored.scores.reset_index(drop=True)),
        "worklist_equal": _equal(got_l, want_l),
        "exclusions_equal": _equal(got_e, want_e),
        "calls": calls,
        "pd": pd.__version__,
    }


def _equal(a: Any, b: Any) -> bool:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
        return True
    except AssertionError:
        return False


def time_model(fixed_s: float, per_account_core_s: float, accounts: int, cores: int, partitions: int) -> float:
    """Projected seconds: the fixed cost, plus waves of partitions over the cores, each partition's share of the
    per-account work (one core per partition)."""
    waves = math.ceil(partitions / cores)
    return fixed_s + waves * (accounts / partitions) * per_account_core_s


def measure_time_model(work_dir: Path, accounts: int, model: dict, groups: int) -> dict[str, Any]:
    """Fixed cost F (features on local[1], a ~3k-account book: sessions, jobs, workers) and per-account cost c per
    core (features on local[1] at `accounts`), then T(N, E cores, P partitions) = F + ceil(P/E)·(N/P)·c, checked
    against a local[2] run of the same book. One-core runs are the least disturbed by a busy machine."""
    runs: dict[str, float] = {}
    for name, size, cores in (("fixed", 3_000, 1), ("one_core", accounts, 1), ("two_cores", accounts, 2)):
        meta = ensure_book(work_dir, size, log)
        kw = {"book": meta["path"], "task": "features", **model, "master": f"local[{cores}]", "groups": groups}
        r = run_child("benchmarks.spark:spark_child", kw, timeout=4 * 3600)
        runs[name], runs[f"{name}_accounts"] = r["seconds"], meta["accounts"]
        log(
            f"time model: features on local[{cores}], {meta['accounts']:,} accounts, {groups} groups: "
            f"{r['seconds']:.1f} s"
        )
    fixed, n = runs["fixed"], runs["one_core_accounts"]
    per_account = max(runs["one_core"] - fixed, 0.0) / n
    projection = [
        {"accounts": a, "cores": c, "partitions": max(c, math.ceil(a / 250_000)), "seconds": None}
        for a in (1_000_000, 10_000_000, 50_000_000)
        for c in (2, 8, 32, 128)
    ]
    for p in projection:
        p["seconds"] = round(time_model(fixed, per_account, p["accounts"], p["cores"], p["partitions"]), 1)
    return {
        "runs": runs,
        "fixed_s": fixed,
        "per_account_core_us": per_account * 1e6,
        "two_cores_predicted_s": time_model(fixed, per_account, n, 2, groups),
        "two_cores_measured_s": runs["two_cores"],
        "projection": projection,
    }


def run(sizes: list[int], repeats: int, results_dir: Path, work_dir: Path, args: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "benchmark": "spark",
        "machine": machine_info(),
        "config": {"as_of": BOOK_END.isoformat(), "repeats": repeats, "groups": args.groups, "master": "local[2]"},
        "sizes": [],
    }
    if args.model_uri and args.tracking_uri:  # a bundle registered elsewhere (training it here takes minutes)
        model = {"model_uri": args.model_uri, "tracking_uri": args.tracking_uri}
    else:
        home = Path(tempfile.mkdtemp(prefix="payrank-bench-spark-home-"))
        model_book = ensure_book(work_dir, args.model_accounts, log)
        log(f"training the bench bundle on {model_book['accounts']:,} accounts ...")
        trained = run_child(
            "benchmarks.scoring:train_model", {"book": model_book["path"], "home": str(home), "num_threads": 0}
        )
        model = {"model_uri": trained["model_uri"], "tracking_uri": trained["tracking_uri"]}
    payload["config"]["model"] = model
    eq_book = ensure_book(work_dir, round(args.equality_guarantors * 1.5), log)
    eq = run_child("benchmarks.spark:equality_child", {"book": eq_book["path"], **model, "calls": 500}, timeout=7200)
    payload["equality"] = {"guarantors": eq_book["guarantors"], "accounts": eq_book["accounts"], **eq}
    log(f"equality on {eq_book['guarantors']:,} guarantors: {payload['equality']}")
    write_results(results_dir, "spark", payload)
    for accounts in sizes:
        meta = ensure_book(work_dir, accounts, log)
        entry: dict[str, Any] = {
            "accounts": accounts,
            "book_accounts": meta["accounts"],
            "guarantors": meta["guarantors"],
        }
        for task in ("features", "score"):
            for engine in ("pandas", "spark"):
                runs = []
                for _ in range(repeats):
                    kw = {"book": meta["path"], "task": task, **model}
                    if engine == "spark":
                        kw |= {"master": "local[2]", "groups": args.groups}
                    r = run_child(f"benchmarks.spark:{engine}_child", kw, timeout=4 * 3600)
                    runs.append(r)
                    log(
                        f"{task} {engine:>6} {accounts:>9,} accounts: {r['seconds']:.1f} s, driver python "
                        f"{r['driver_python_mib']:.0f} MiB, JVM {r['driver_jvm_mib']:.0f} MiB, workers "
                        f"{r['workers_mib']:.0f} MiB"
                    )
                entry[f"{task}_{engine}"] = {**summarise_runs(runs, KEYS + ("session_s",)), "runs": runs}
        payload["sizes"].append(entry)
        write_results(results_dir, "spark", payload)
    payload["time_model"] = measure_time_model(work_dir, min(sizes), model, args.groups)
    write_results(results_dir, "spark", payload)
    return payload


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0], default_repeats=1)
    p.add_argument("--equality-guarantors", type=int, default=20_000)
    p.add_argument("--model-accounts", type=int, default=30_000)
    p.add_argument("--groups", type=int, default=8, help="guarantor groups (shuffle partitions) per stage")
    p.add_argument("--model-uri", help="score with this registered bundle (with --tracking-uri), not a new one")
    p.add_argument("--tracking-uri", help="the MLflow store of --model-uri")
    args = p.parse_args(argv)
    sizes, repeats = sizes_and_repeats(args)
    if not args.sizes and not args.quick:
        sizes = list(FULL_SIZES)
    if args.quick:
        args.equality_guarantors, args.model_accounts = 2_000, 3_000
    run(sizes, repeats, args.results_dir, args.work_dir, args)
    log(f"wrote {args.results_dir / 'spark.json'}")


if __name__ == "__main__":
    main()
