"""Plot the benchmark results: time and peak memory against book size (log-log), from the JSON files.

    python -m benchmarks.plot [--results-dir benchmarks/results]

Writes `scaling.png` beside the JSON (medians with min-max bars, goals at 1M accounts as crosses) and prints
the results as the markdown table of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, log, read_results

Series = tuple[str, list[float], list[dict[str, Any]]]


def _series(results: dict[str, Any] | None, path: tuple[str, ...], label: str) -> Series | None:
    """(label, book accounts, summaries) of one measurement across sizes; None when absent."""
    if not results or not results.get("sizes"):
        return None
    xs, ys = [], []
    for entry in results["sizes"]:
        node: Any = entry
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and "median" in node:
            xs.append(float(entry["book_accounts"]))
            ys.append(node)
    return (label, xs, ys) if xs else None


def _draw(ax: Any, series: list[Series | None], scale: float = 1.0) -> None:
    for s in series:
        if s is None:
            continue
        label, xs, ys = s
        med = [y["median"] * scale for y in ys]
        lo = [max(m - y["min"] * scale, 0.0) for m, y in zip(med, ys, strict=True)]
        hi = [max(y["max"] * scale - m, 0.0) for m, y in zip(med, ys, strict=True)]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=label)
    from matplotlib.ticker import FormatStrFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter(""))
    ax.set_xlabel("book size (accounts)")
    ax.grid(True, which="both", alpha=0.3)


def plot(results_dir: Path = RESULTS_DIR) -> Path:
    """Draw scaling.png from features.json, training.json and scoring.json (whichever exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats, train, score = (read_results(results_dir, n) for n in ("features", "training", "scoring"))
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5.5))
    _draw(
        ax_t,
        [
            _series(feats, ("total_s",), "features: load_book + build_features"),
            _series(feats, ("load_s",), "features: load_book (read + validate)"),
            _series(feats, ("build_s",), "features: build_features"),
            _series(train, ("train_s",), "training: train_bundle"),
            _series(score, ("e2e", "wall_s"), "scoring: payrank score, end to end"),
            _series(score, ("e2e_reasons", "wall_s"), "scoring: payrank score --reasons"),
            _series(score, ("predict", "predict_full_s"), "scoring: Scorer.predict (open accounts)"),
            _series(score, ("predict", "raw_all_s"), "scoring: raw Booster.predict, all boosters"),
        ],
    )
    goals = [(60.0, "features goal 60 s"), (900.0, "training goal 15 min"), (20.0, "scoring goal 50k acc/s")]
    for secs, text in goals:
        ax_t.plot([1e6], [secs], "kx", markersize=9)
        ax_t.annotate(text, (1e6, secs), textcoords="offset points", xytext=(6, -3), fontsize=7)
    ax_t.set_ylabel("seconds (median, min-max)")
    ax_t.set_title("time")
    ax_t.legend(fontsize=7, loc="upper left")
    gib = 1 / 1024
    _draw(
        ax_m,
        [
            _series(feats, ("peak_rss_mib",), "features: load + build"),
            _series(train, ("peak_rss_mib",), "training: load + train_bundle"),
            _series(score, ("e2e", "peak_rss_mib"), "scoring: payrank score"),
        ],
        scale=gib,
    )
    ax_m.plot([1e6], [6.0], "kx", markersize=9)
    ax_m.annotate("features goal 6 GB", (1e6, 6.0), textcoords="offset points", xytext=(6, -3), fontsize=7)
    ax_m.set_ylabel("peak RSS, GiB (fresh process each)")
    ax_m.set_title("peak memory")
    ax_m.legend(fontsize=7, loc="upper left")
    machine = (feats or train or score or {}).get("machine", {})
    fig.suptitle(
        f"payrank scaling — {machine.get('nproc', '?')} cores, {machine.get('memory_gib', '?')} GiB, "
        f"{machine.get('cpu', '?')}, {str(machine.get('date', ''))[:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    out = Path(results_dir) / "scaling.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _med(node: Any, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
    """'median (min–max)' of a summary, or '–'."""
    if not isinstance(node, dict) or "median" not in node:
        return "–"
    if node["n"] == 1:
        return fmt.format(node["median"] * scale)
    return f"{fmt.format(node['median'] * scale)} ({fmt.format(node['min'] * scale)}–{fmt.format(node['max'] * scale)})"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_table(results_dir: Path = RESULTS_DIR) -> str:
    """The results as markdown tables (medians, min–max in brackets), one per benchmark, one row per size."""
    feats, train, score = (read_results(results_dir, n) for n in ("features", "training", "scoring"))
    gib = 1 / 1024
    out = []
    if feats:
        rows = [
            [
                f"{e['accounts']:,} ({e['book_accounts']:,})",
                f"{e['open_accounts']:,}",
                _med(e.get("load_s")),
                _med(e.get("build_s"), fmt="{:.2f}"),
                _med(e.get("total_s")),
                _med(e.get("peak_rss_mib"), gib, "{:.2f}"),
                f"{e['accounts_per_s']:,.0f}",
            ]
            for e in feats["sizes"]
        ]
        head = ["accounts (in book)", "open", "load_book s", "build_features s", "total s", "peak GiB", "accounts/s"]
        out.append("**Features** (`load_book` + `build_features`, last day)\n\n" + _table(head, rows))
    if train:
        rows = []
        for e in train["sizes"]:
            r = e["runs"][0]
            rows.append(
                [
                    f"{e['accounts']:,} ({e['book_accounts']:,})",
                    str(e["repeats"]),
                    _med(e.get("train_s"), fmt="{:.0f}"),
                    _med(e.get("peak_rss_mib"), gib, "{:.2f}"),
                    f"{r['snapshot_rows']:,} ({r.get('snapshot_days', '?')} days)",
                    _med(e.get("snapshots_s"), fmt="{:.0f}"),
                    _med(e.get("payment_model_s"), fmt="{:.0f}"),
                    _med(e.get("channel_candidates_s"), fmt="{:.0f}"),
                    _med(e.get("channel_comparison_s"), fmt="{:.0f}"),
                    _med(e.get("channel_refit_s"), fmt="{:.0f}"),
                    _med(e.get("evaluate_s"), fmt="{:.0f}"),
                ]
            )
        head = [
            "accounts (in book)",
            "runs",
            "train_bundle s",
            "peak GiB",
            "snapshot rows kept",
            "snapshots s",
            "payment models s",
            "channel candidates s",
            "comparing learners s",
            "channel refit s",
            "evaluate s",
        ]
        out.append(
            f"**Training** (`train_bundle`, num_threads={train['config']['num_threads']})\n\n" + _table(head, rows)
        )
    if score:
        rows = []
        for e in score["sizes"]:
            e2e, nr, pr = e["e2e"], e.get("e2e_reasons") or {}, e["predict"]
            rows.append(
                [
                    f"{e['accounts']:,} ({e['book_accounts']:,})",
                    f"{e['open_accounts']:,}",
                    _med(e2e.get("wall_s")) + f" ({e['repeats']}×)" if e["repeats"] == 1 else _med(e2e.get("wall_s")),
                    _med(e2e.get("book_accounts_per_s"), fmt="{:,.0f}"),
                    _med(e2e.get("peak_rss_mib"), gib, "{:.2f}"),
                    _med(nr.get("wall_s")),
                    _med(nr.get("book_accounts_per_s"), fmt="{:,.0f}"),
                    _med(pr.get("predict_full_s"), fmt="{:.3f}"),
                    _med(pr.get("raw_all_s"), fmt="{:.3f}"),
                    _med(pr.get("ratio_full_bundle"), fmt="{:.2f}"),
                    _med(pr.get("payment_path_s"), fmt="{:.3f}"),
                    _med(pr.get("raw_payment_s"), fmt="{:.3f}"),
                    _med(pr.get("ratio_payment_path"), fmt="{:.2f}"),
                ]
            )
        head = [
            "accounts (in book)",
            "open",
            "score e2e s",
            "book acc/s",
            "peak GiB",
            "--reasons s",
            "book acc/s",
            "Scorer.predict s",
            "raw all boosters s",
            "× full/raw",
            "payment path s",
            "raw payment s",
            "× payment/raw",
        ]
        out.append(
            f"**Scoring** (`payrank score` end to end, LightGBM threads "
            f"{score['config'].get('score_threads', score['config']['num_threads'])}; prediction step "
            "on the open accounts)\n\n" + _table(head, rows)
        )
    spark = read_results(results_dir, "spark")
    if spark:
        out.append(spark_table(spark))
    return "\n\n".join(out)


def spark_table(spark: dict[str, Any]) -> str:
    """Spark local[2] next to pandas: seconds and peak memory (driver Python, driver JVM, workers) per task."""
    gib = 1 / 1024
    rows = []
    for e in spark.get("sizes", []):
        for task in ("features", "score"):
            for engine in ("pandas", "spark"):
                m = e.get(f"{task}_{engine}", {})
                rows.append(
                    [
                        f"{e['accounts']:,} ({e['book_accounts']:,})",
                        task,
                        engine,
                        _med(m.get("seconds")),
                        _med(m.get("driver_python_mib"), gib, "{:.2f}"),
                        _med(m.get("driver_jvm_mib"), gib, "{:.2f}"),
                        _med(m.get("workers_mib"), gib, "{:.2f}"),
                    ]
                )
    head = ["accounts (book)", "task", "engine", "seconds", "driver Python GiB", "driver JVM GiB", "workers GiB"]
    return "**Spark** (local[2] beside pandas, same run)\n\n" + _table(head, rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--quick", action="store_true", help="accepted for symmetry with the other benchmarks")
    args = p.parse_args(argv)
    log(f"wrote {plot(args.results_dir)}")
    log(markdown_table(args.results_dir))


if __name__ == "__main__":
    main()
