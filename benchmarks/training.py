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
KEYS = ("load_s", "train_s", "peak_rss_mib", "vm_hwm_mib", "load_peak_rss_mib", "snapshot_rows")
SPANS = ("cpu_s",)
PHASE_OF = {  # train_bundle's progress steps → the phases reported
    "snapshots": "snapshots",
    "payment model": "payment_model",
    "channel candidates": "channel_candidates",
    "comparing channel learners": "channel_comparison",
    "channel model": "channel_refit",
    "holdout evaluation": "evaluate",
}
PHASES = tuple(dict.fromkeys(PHASE_OF.values()))


def measure(book: str, as_of: str, num_threads: int) -> dict[str, Any]:
    """Child side: load the book, then time train_bundle once; its progress callback times each step."""
    from datetime import date

    import training.train as tt
    from features.load import load_book

    clock = Clock()
    loaded = load_book(book)
    clock.lap("load_s")
    load_peak = ru_maxrss_mib()
    marks: list[tuple[str, float]] = []

    def progress(name: str, done: int, total: int) -> None:  # the timing hook: a step starts, or snapshots end
        if (name != "snapshots" or done == total) and not (name == "holdout evaluation" and done == total):
            marks.append((name, time.perf_counter()))

    cfg = tt.TrainConfig(as_of=date.fromisoformat(as_of), num_threads=num_threads)
    t0 = time.perf_counter()
    trained = tt.train_bundle(loaded, cfg, progress)
    t1 = time.perf_counter()
    phases = dict.fromkeys((f"{p}_s" for p in PHASES), 0.0)
    steps = marks[1:]  # marks[0] is the end of the snapshots; each later step runs until the next one starts
    for (name, a), b in zip(steps, [*(t for _, t in steps[1:]), t1], strict=True):
        phases[PHASE_OF[name.split(" (")[0]] + "_s"] += b - a
    phases["snapshots_s"] = marks[0][1] - t0
    rows = trained.scorer.meta["rows"]
    return {
        "load_s": clock.laps["load_s"],
        "train_s": t1 - t0,
        **phases,
        "load_peak_rss_mib": load_peak,
        "snapshot_rows": rows["channel_final"],
        "snapshot_days": len(trained.windows.days()),
        "rows": rows,
        "holdout_auc": trained.metrics.get("holdout_auc"),
        "channel_learner": trained.scorer.meta.get("channel_learner"),
        "book_accounts": len(loaded.accounts),
        "max_rows_per_day": cfg.max_rows_per_day,
        "snapshot_step_days": tt.auto_step(len(loaded.accounts)),
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
                f"(snapshots {r.get('snapshots_s', float('nan')):.1f} s, {r['snapshot_rows']:,} snapshot rows, "
                f"learner {r['channel_learner']}), peak {r['peak_rss_mib']:.0f} MiB"
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
