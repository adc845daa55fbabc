"""Training benchmark: `train_bundle` (snapshots → fit → holdout evaluation, no MLflow) per book size.

    python -m benchmarks.training [--sizes 10000,100000,1000000] [--repeats 3] [--threads 1] [--quick]
                                  [--compare-threads 10000,100000]

Each repeat is a fresh process: load the Parquet book (timed apart), then `train_bundle` with the default
TrainConfig (as of the book's last day, snapshot_step_days=3, max_rows_per_day=40,000) and LightGBM
`num_threads` = --threads. The default is 1, not the CLI's 0 (all cores): on a shared 2-core machine
OpenMP's spinning threads make 0 several times slower and very noisy; --compare-threads measures that
(1, 0, and 0 with OMP_WAIT_POLICY=passive) at the given sizes. Phases are timed from the progress
callback. At 1M accounts the default is one repeat (--repeats-1m). Goal: 1M accounts in <= 15 min.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BOOK_END,
    Clock,
    ensure_book,
    log,
    machine_info,
    parser,
    ru_maxrss_mib,
    run_child,
    sizes_and_repeats,
    summarise,
    summarise_runs,
    write_results,
)

GOAL = {"accounts": 1_000_000, "max_train_s": 900.0}
KEYS = ("load_s", "train_s", "peak_rss_mib", "vm_hwm_mib", "load_peak_rss_mib", "snapshot_rows", "sampled_rows")
SPANS = ("evaluate_s", "evaluate_policy_value_s", "cpu_s")  # evaluate_*: inside channel_and_evaluate
PHASES = ("snapshots", "amounts", "payment_model", "calibration", "share_model", "channel_and_evaluate")


def measure(book: str, as_of: str, num_threads: int) -> dict[str, Any]:
    """Child side: load the book, then time train_bundle once, with its phases."""
    from datetime import date

    import features.labels as fl
    import training.train as tt
    from features.load import load_book

    clock = Clock()
    loaded = load_book(book)
    clock.lap("load_s")
    load_peak = ru_maxrss_mib()
    built: list[int] = []
    features_at = fl.features_at

    def counted(prep: Any, ts: Any) -> Any:  # open accounts per snapshot day, before any sampling
        frame, rows = features_at(prep, ts)
        built.append(len(frame))
        return frame, rows

    fl.features_at = counted
    spans: dict[str, float] = {}
    evaluate, policy_value = tt.evaluate_holdout, tt.holdout_policy_value

    def timed(name: str, fn: Any) -> Any:  # time a train_bundle step without touching training's code
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            spans[name] = spans.get(name, 0.0) + time.perf_counter() - t
            return out

        return wrapper

    tt.evaluate_holdout = timed("evaluate_s", evaluate)
    tt.holdout_policy_value = timed("evaluate_policy_value_s", policy_value)
    marks: list[tuple[str, float]] = []
    snapshot_done: list[float] = []

    def progress(name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if name == "snapshots":
            if done == total:
                snapshot_done.append(now)
        else:
            marks.append((name, now))

    cfg = tt.TrainConfig(as_of=date.fromisoformat(as_of), num_threads=num_threads)
    t0 = time.perf_counter()
    trained = tt.train_bundle(loaded, cfg, progress)
    t1 = time.perf_counter()
    fl.features_at, tt.evaluate_holdout, tt.holdout_policy_value = features_at, evaluate, policy_value
    points = [t0, *snapshot_done[:1], *(t for _, t in marks), t1]
    phases = {f"{p}_s": b - a for p, a, b in zip(PHASES, points, points[1:], strict=False)}
    rows = trained.scorer.meta["rows"]
    return {
        "load_s": clock.laps["load_s"],
        "train_s": t1 - t0,
        **phases,
        **spans,
        "load_peak_rss_mib": load_peak,
        "snapshot_rows": sum(built),
        "snapshot_days": len(built),
        "sampled_rows": rows["fit"] + rows["valid"] + rows["calib"] + len(trained.holdout),
        "rows_fit": rows["fit"],
        "rows_valid": rows["valid"],
        "rows_calib": rows["calib"],
        "rows_holdout": len(trained.holdout),
        "payment_trees": trained.scorer._payment.num_trees(),
        "holdout_auc": trained.metrics.get("holdout_auc"),
        "book_accounts": len(loaded.accounts),
        "max_rows_per_day": cfg.max_rows_per_day,
        "snapshot_step_days": cfg.snapshot_step_days,
    }


THREAD_SETTINGS = {"1": (1, {}), "0": (0, {}), "0_passive": (0, {"OMP_WAIT_POLICY": "passive"})}


def compare_threads(sizes: list[int], repeats: int, work_dir: Path) -> list[dict[str, Any]]:
    """train_s of num_threads 1, 0 and 0 with passive OpenMP waiting, interleaved, per size."""
    out = []
    for accounts in sizes:
        meta = ensure_book(work_dir, accounts, log)
        times: dict[str, list[float]] = {k: [] for k in THREAD_SETTINGS}
        for _ in range(repeats):
            for name, (threads, env) in THREAD_SETTINGS.items():
                args = {"book": meta["path"], "as_of": BOOK_END.isoformat(), "num_threads": threads}
                r = run_child("benchmarks.training:measure", args, timeout=4 * 3600, env=env)
                times[name].append(r["train_s"])
                log(f"threads  {accounts:>9,} accounts, {name:>10}: train {r['train_s']:.1f} s")
        out.append({"accounts": accounts, "train_s": {k: summarise(v) for k, v in times.items()}})
    return out


def run(
    sizes: list[int],
    repeats: int,
    results_dir: Path,
    work_dir: Path,
    num_threads: int,
    repeats_1m: int,
    thread_sizes: list[int] | None = None,
) -> dict[str, Any]:
    """Measure every size, write training.json, return its content."""
    payload: dict[str, Any] = {
        "benchmark": "training",
        "machine": machine_info(),
        "config": {"as_of": BOOK_END.isoformat(), "repeats": repeats, "num_threads": num_threads},
        "goal": GOAL,
        "sizes": [],
    }
    for accounts in sizes:
        meta = ensure_book(work_dir, accounts, log)
        n = min(repeats, repeats_1m) if accounts >= 1_000_000 else repeats
        runs = []
        for i in range(n):
            args = {"book": meta["path"], "as_of": BOOK_END.isoformat(), "num_threads": num_threads}
            r = run_child("benchmarks.training:measure", args, timeout=4 * 3600)
            runs.append(r)
            log(
                f"training {accounts:>9,} accounts, run {i + 1}/{n}: train {r['train_s']:.1f} s "
                f"(snapshots {r.get('snapshots_s', float('nan')):.1f} s, {r['sampled_rows']:,} of "
                f"{r['snapshot_rows']:,} snapshot rows), peak {r['peak_rss_mib']:.0f} MiB"
            )
        phase_keys = [f"{p}_s" for p in PHASES]
        entry = {
            "accounts": accounts,
            "book_accounts": meta["accounts"],
            "guarantors": meta["guarantors"],
            "repeats": n,
            **summarise_runs(runs, (*KEYS, *phase_keys, *SPANS)),
            "snapshot_days": runs[0].get("snapshot_days"),
            "runs": runs,
        }
        payload["sizes"].append(entry)
        write_results(results_dir, "training", payload)
    if thread_sizes:
        payload["thread_comparison"] = compare_threads(thread_sizes, repeats, work_dir)
        write_results(results_dir, "training", payload)
    return payload


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="LightGBM num_threads (0: all cores, the CLI default)")
    p.add_argument("--compare-threads", help="sizes (accounts) at which to compare num_threads 1, 0, 0+passive")
    p.add_argument("--repeats-1m", type=int, default=1, help="repeats at >= 1M accounts (each takes minutes)")
    args = p.parse_args(argv)
    sizes, repeats = sizes_and_repeats(args)
    thread_sizes = [int(x) for x in args.compare_threads.split(",")] if args.compare_threads else None
    run(sizes, repeats, args.results_dir, args.work_dir, args.threads, args.repeats_1m, thread_sizes)
    log(f"wrote {args.results_dir / 'training.json'}")


if __name__ == "__main__":
    main()
