"""Feature build benchmark: `load_book` + `build_features` for the book's last day, per book size.

    python -m benchmarks.features [--sizes 10000,100000,1000000] [--repeats 3] [--quick]

Each repeat is a fresh process that imports payrank, then times `load_book` (read Parquet + validate) and
`build_features` (prepare + point-in-time features at the last day) separately. Peak RSS is the process's
own, after the load and at the end. Goal: 1M accounts in <= 60 s and <= 6 GB.
"""

from __future__ import annotations

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
    summarise_runs,
    write_results,
)

GOAL = {"accounts": 1_000_000, "max_total_s": 60.0, "max_peak_rss_gib": 6.0}
KEYS = ("load_s", "build_s", "total_s", "peak_rss_mib", "vm_hwm_mib", "load_peak_rss_mib", "import_rss_mib", "cpu_s")


def measure(book: str, as_of: str) -> dict[str, Any]:
    """Child side: time load_book and build_features once."""
    from features.build import build_features
    from features.load import load_book

    import_rss = ru_maxrss_mib()
    clock = Clock()
    loaded = load_book(book)
    clock.lap("load_s")
    load_peak = ru_maxrss_mib()
    frame = build_features(loaded, as_of)
    clock.lap("build_s")
    return {
        **clock.laps,
        "total_s": clock.laps["load_s"] + clock.laps["build_s"],
        "load_peak_rss_mib": load_peak,
        "import_rss_mib": import_rss,
        "open_accounts": len(frame),
        "book_accounts": len(loaded.accounts),
        "feature_columns": frame.shape[1],
    }


def run(sizes: list[int], repeats: int, results_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Measure every size, write features.json, return its content."""
    payload: dict[str, Any] = {
        "benchmark": "features",
        "machine": machine_info(),
        "config": {"as_of": BOOK_END.isoformat(), "repeats": repeats, "format": "parquet"},
        "goal": GOAL,
        "sizes": [],
    }
    for accounts in sizes:
        meta = ensure_book(work_dir, accounts, log)
        runs = []
        for i in range(repeats):
            r = run_child("benchmarks.features:measure", {"book": meta["path"], "as_of": BOOK_END.isoformat()})
            runs.append(r)
            log(
                f"features {accounts:>9,} accounts, run {i + 1}/{repeats}: load {r['load_s']:.2f} s, "
                f"build {r['build_s']:.2f} s, peak {r['peak_rss_mib']:.0f} MiB ({r['open_accounts']:,} open)"
            )
        entry = {
            "accounts": accounts,
            "book_accounts": meta["accounts"],
            "guarantors": meta["guarantors"],
            "book_rows": meta["rows"],
            "open_accounts": runs[0]["open_accounts"],
            "repeats": repeats,
            **summarise_runs(runs, KEYS),
            "runs": runs,
        }
        total = entry["total_s"]["median"]
        entry["accounts_per_s"] = meta["accounts"] / total if total > 0 else None
        payload["sizes"].append(entry)
        write_results(results_dir, "features", payload)  # partial results survive an interrupted run
    return payload


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    sizes, repeats = sizes_and_repeats(args)
    run(sizes, repeats, args.results_dir, args.work_dir)
    log(f"wrote {args.results_dir / 'features.json'}")


if __name__ == "__main__":
    main()
