"""Scoring benchmark: `payrank score` end to end, and the prediction step against raw LightGBM predict.

    python -m benchmarks.scoring [--sizes 10000,100000,1000000] [--repeats 3] [--threads 1] [--score-threads 0]
                                 [--repeats-reasons 1] [--quick]

A bundle is trained once on the 100k-account book (the smallest book under --quick) with `train_bundle` and
registered by `log_and_register` in a temporary MLflow SQLite store. Then, per book size:

* end to end: the real CLI (`payrank score --data BOOK --as-of END --out scores.parquet --model URI`) in a
  fresh process per repeat; wall seconds from spawn to exit (interpreter start, imports, read + validate,
  model load, features, predict, policy, write), peak RSS from wait4. Rates: book accounts/s
  (the goal: >= 50k/s at 1M) and scored (open) accounts/s. `payrank score --reasons` (reason codes for
  every row, exact TreeSHAP) is timed too, `--repeats-reasons` times (default once).
* prediction step, in one process on the feature frame of the last day, interleaved inner repeats after a
  warm-up: `Scorer.predict` (full bundle), the payment-model path alone (`encode` + payment booster +
  calibration), raw `Booster.predict` of the payment booster on the matrix `Scorer.predict` feeds it
  (`scorer.encode(features)`, float codes; `scorer.matrix(features)` where there is no `encode`) and on the
  DataFrame `scorer.matrix(features)`, and raw predict of every booster `Scorer.predict` runs (payment,
  amount, channel control and shift models) on the same matrix. Ratios per inner repeat, then the median:
  payment path / raw payment booster, full bundle / raw all boosters (goal <= 1.5). Also the other stages of
  `score_book` (features, policy, contributions).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BOOK_END,
    Clock,
    child_env,
    ensure_book,
    log,
    machine_info,
    parser,
    run_child,
    run_command,
    sizes_and_repeats,
    summarise,
    summarise_runs,
    write_results,
)

GOAL = {"accounts": 1_000_000, "min_book_accounts_per_s": 50_000.0, "max_predict_over_raw": 1.5}
MODEL_BOOK_ACCOUNTS = 100_000
E2E_KEYS = ("wall_s", "peak_rss_mib", "book_accounts_per_s", "scored_accounts_per_s", "cpu_s")
MODEL_NAME = "payrank-bench"
PREDICT_KEYS = (
    "predict_full_s",
    "payment_path_s",
    "encode_s",
    "raw_payment_s",
    "raw_payment_frame_s",
    "raw_all_s",
    "ratio_payment_path",
    "ratio_payment_path_vs_frame",
    "ratio_full_bundle",
    "ratio_full_over_raw_payment",
)


def train_model(book: str, home: str, num_threads: int) -> dict[str, Any]:
    """Child side: train on `book` and register the bundle as champion in a SQLite store under `home`."""
    from datetime import date

    from features.load import load_book
    from training.train import TrainConfig, log_and_register, train_bundle

    uri = f"sqlite:///{Path(home) / 'mlflow.db'}"
    cfg = TrainConfig(as_of=date.fromisoformat(BOOK_END.isoformat()), tracking_uri=uri, model_name=MODEL_NAME)
    cfg.num_threads = num_threads
    clock = Clock()
    trained = train_bundle(load_book(book), cfg)
    clock.lap("train_s")
    result = log_and_register(trained, cfg)
    clock.lap("register_s")
    return {
        **clock.laps,
        "tracking_uri": uri,
        "model_uri": f"models:/{MODEL_NAME}/{result.version}",
        "promoted": result.promoted,
        "holdout_auc": result.metrics.get("holdout_auc"),
        "payment_trees": trained.scorer._payment.num_trees(),
        "amount_trees": trained.scorer._amount.num_trees() if trained.scorer._amount is not None else 0,
        "channel_learner": trained.scorer.meta.get("channel_learner"),
    }


def channel_booster_list(model: object) -> list[Any]:
    """Every LightGBM booster inside a channel learner (offset, outcome or DR), nested learners included."""
    import lightgbm as lgb

    found: list[lgb.Booster] = []
    for value in vars(model).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        for item in items:
            for leaf in item if isinstance(item, list) else [item]:
                if isinstance(leaf, lgb.Booster):
                    found.append(leaf)
                elif hasattr(leaf, "__dict__") and type(leaf).__module__.startswith("training."):
                    found += channel_booster_list(leaf)
    return found


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_predict(book: str, model_uri: str, tracking_uri: str, num_threads: int, inner: int) -> dict[str, Any]:
    """Child side: the stages of score_book once, then the prediction step vs raw boosters, `inner` times."""
    import numpy as np

    from features.build import build_features
    from features.load import load_book
    from serving.model_store import load_model
    from serving.policy import evaluate_policy
    from serving.policy_config import load_policy
    from training.tracking import use_tracking

    clock = Clock()
    loaded_book = load_book(book)
    clock.lap("load_s")
    use_tracking(tracking_uri)
    scorer = load_model(model_uri).scorer
    clock.lap("model_load_s")
    feats = build_features(loaded_book, BOOK_END)
    clock.lap("features_s")
    evaluate_policy(loaded_book, BOOK_END, feats[["account_id", "guarantor_id"]], load_policy(None))
    clock.lap("policy_s")
    scorer.contributions(feats, num_threads=num_threads)
    clock.lap("contributions_s")
    stages = dict(clock.laps)

    encode = getattr(scorer, "encode", scorer.matrix)  # what Scorer.predict feeds every booster
    E = encode(feats)
    X = scorer.matrix(feats)  # the brief's "feature matrix": a DataFrame LightGBM converts on every call
    channel = scorer.channel
    Ec = E if isinstance(E, np.ndarray) else E[channel.features_]
    channel_boosters = channel_booster_list(channel)
    boosters = [scorer._payment, *channel_boosters, *([scorer._amount] if scorer._amount is not None else [])]

    def raw_all() -> object:
        out = [scorer._payment.predict(E, raw_score=True, num_threads=num_threads)]
        out += [b.predict(Ec, raw_score=True, num_threads=num_threads) for b in channel_boosters]
        if scorer._amount is not None:
            out.append(scorer._amount.predict(E, num_threads=num_threads))
        return out

    jobs: dict[str, Callable[[], object]] = {
        "predict_full_s": lambda: scorer.predict(feats, num_threads=num_threads),
        "payment_path_s": lambda: scorer.p_pay(encode(feats), num_threads),
        "encode_s": lambda: encode(feats),
        "raw_payment_s": lambda: scorer._payment.predict(E, raw_score=True, num_threads=num_threads),
        "raw_payment_frame_s": lambda: scorer._payment.predict(X, raw_score=True, num_threads=num_threads),
        "raw_all_s": raw_all,
    }
    for fn in jobs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(inner):
        for k, fn in jobs.items():
            times[k].append(_timed(fn))

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(times[a], times[b], strict=True)]

    ratios = {
        "ratio_payment_path": ratio("payment_path_s", "raw_payment_s"),
        "ratio_payment_path_vs_frame": ratio("payment_path_s", "raw_payment_frame_s"),
        "ratio_full_bundle": ratio("predict_full_s", "raw_all_s"),
        "ratio_full_over_raw_payment": ratio("predict_full_s", "raw_payment_s"),
    }
    same = np.allclose(scorer.p_pay(X, num_threads), scorer.predict(feats, num_threads)["p_pay"].to_numpy())
    same = same and np.allclose(scorer._payment.predict(X), scorer._payment.predict(E))  # frame and codes agree
    return {
        **stages,
        **{k: statistics.median(v) for k, v in {**times, **ratios}.items()},
        "inner_times": {**times, **ratios},
        "inner_repeats": inner,
        "open_accounts": len(feats),
        "book_accounts": len(loaded_book.accounts),
        "boosters": len(boosters),
        "trees_total": int(sum(b.num_trees() for b in boosters)),
        "trees_payment": int(scorer._payment.num_trees()),
        "p_pay_consistent": bool(same),
    }


def cli_base() -> list[str]:
    """The installed `payrank` entry point, or `python -m serving.cli`."""
    script = Path(sys.executable).with_name("payrank")
    return [str(script)] if script.exists() else [sys.executable, "-m", "serving.cli"]


def cli_command(book: str, out: Path, model_uri: str, tracking_uri: str, num_threads: int) -> list[str]:
    """The real `payrank score` command line."""
    base = cli_base()
    return [
        *base,
        "score",
        "--data",
        book,
        "--as-of",
        BOOK_END.isoformat(),
        "--out",
        str(out),
        "--model",
        model_uri,
        "--tracking-uri",
        tracking_uri,
        "--threads",
        str(num_threads),
    ]


def run(
    sizes: list[int],
    repeats: int,
    results_dir: Path,
    work_dir: Path,
    num_threads: int,
    inner: int,
    model_accounts: int,
    repeats_1m: int = 3,
    score_threads: int = 0,
    repeats_reasons: int = 1,
) -> dict[str, Any]:
    """Train and register once, measure every size, write scoring.json, return its content."""
    help_text = subprocess.run(
        [*cli_base(), "score", "--help"], capture_output=True, text=True, env=child_env({"COLUMNS": "200"})
    ).stdout
    with_reasons = "--reasons" in help_text  # then also time `payrank score --reasons`
    Path(work_dir).mkdir(parents=True, exist_ok=True)  # a fresh checkout has no .payrank/bench yet
    home = Path(tempfile.mkdtemp(prefix="mlflow-", dir=Path(work_dir).resolve()))
    env = {"PAYRANK_HOME": str(home)}
    try:
        model_book = ensure_book(work_dir, model_accounts, log)
        log(f"training the bundle on the {model_accounts:,}-account book and registering it in {home} ...")
        model = run_child(
            "benchmarks.scoring:train_model",
            {"book": model_book["path"], "home": str(home), "num_threads": num_threads},
            timeout=3 * 3600,
            env=env,
        )
        log(f"  trained in {model['train_s']:.1f} s, registered as {model['model_uri']}")
        payload: dict[str, Any] = {
            "benchmark": "scoring",
            "machine": machine_info(),
            "config": {
                "as_of": BOOK_END.isoformat(),
                "repeats": repeats,
                "num_threads": num_threads,
                "score_threads": score_threads,
                "repeats_reasons": repeats_reasons,
                "inner_repeats": inner,
                "model_book_accounts": model_book["accounts"],
            },
            "model": {k: v for k, v in model.items() if k not in {"tracking_uri"}},
            "goal": GOAL,
            "sizes": [],
        }
        for accounts in sizes:
            meta = ensure_book(work_dir, accounts, log)
            args = {
                "book": meta["path"],
                "model_uri": model["model_uri"],
                "tracking_uri": model["tracking_uri"],
                "num_threads": score_threads,
                "inner": inner,
            }
            pred = run_child("benchmarks.scoring:measure_predict", args, env=env)
            p = pred
            log(
                f"predict  {accounts:>9,} accounts ({p['open_accounts']:,} open): full {p['predict_full_s']:.3f} s"
                f" vs raw all {p['raw_all_s']:.3f} s (x{p['ratio_full_bundle']:.2f}); payment path "
                f"{p['payment_path_s']:.3f} s vs raw {p['raw_payment_s']:.3f} s (x{p['ratio_payment_path']:.2f})"
            )
            n = min(repeats, repeats_1m) if accounts >= 1_000_000 else repeats
            runs: list[dict[str, Any]] = []
            runs_reasons: list[dict[str, Any]] = []
            variants = [("", [], runs, n)]
            if with_reasons:
                variants.append(("--reasons", ["--reasons"], runs_reasons, min(n, repeats_reasons)))
            for i in range(n):
                for label, extra, into, times in variants:
                    if i >= times:
                        continue
                    out = home / f"scores-{accounts}.parquet"
                    cmd = cli_command(meta["path"], out, model["model_uri"], model["tracking_uri"], score_threads)
                    r = run_command([*cmd, *extra], timeout=3600, env=env)
                    out.unlink(missing_ok=True)
                    r["book_accounts_per_s"] = meta["accounts"] / r["wall_s"]
                    r["scored_accounts_per_s"] = pred["open_accounts"] / r["wall_s"]
                    into.append(r)
                    log(
                        f"score{label:>10} {accounts:>9,} accounts, run {i + 1}/{times}: {r['wall_s']:.2f} s "
                        f"({r['book_accounts_per_s']:,.0f} book accounts/s), peak {r['peak_rss_mib']:.0f} MiB"
                    )
            entry = {
                "accounts": accounts,
                "book_accounts": meta["accounts"],
                "open_accounts": pred["open_accounts"],
                "repeats": n,
                "e2e": summarise_runs(runs, E2E_KEYS),
                "e2e_runs": runs,
                "e2e_reasons": summarise_runs(runs_reasons, E2E_KEYS) if with_reasons else None,
                "e2e_reasons_runs": runs_reasons if with_reasons else [],
                "predict": {
                    **{k: summarise(pred["inner_times"][k]) for k in PREDICT_KEYS},
                    "rows_per_s_full": pred["open_accounts"] / pred["predict_full_s"],
                    "rows_per_s_raw_payment": pred["open_accounts"] / pred["raw_payment_s"],
                },
                "stages": {k: pred[k] for k in ("load_s", "model_load_s", "features_s", "policy_s", "contributions_s")},
                "predict_child": {k: v for k, v in pred.items() if k != "inner_times"},
            }
            payload["sizes"].append(entry)
            write_results(results_dir, "scoring", payload)
        return payload
    finally:
        if not os.environ.get("PAYRANK_BENCH_KEEP_MLFLOW"):
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="LightGBM num_threads for training the bundle")
    p.add_argument(
        "--score-threads", type=int, default=0, help="LightGBM threads when scoring (0, the CLI's default: all cores)"
    )
    p.add_argument("--repeats-reasons", type=int, default=1, help="end-to-end repeats of `score --reasons`")
    p.add_argument("--inner", type=int, default=7, help="inner repeats of the prediction-step timings")
    p.add_argument("--model-accounts", type=int, help="book size the bundle is trained on (default 100000)")
    p.add_argument("--repeats-1m", type=int, default=3, help="end-to-end repeats at >= 1M accounts")
    args = p.parse_args(argv)
    sizes, repeats = sizes_and_repeats(args)
    model_accounts = args.model_accounts or (min(sizes) if args.quick else MODEL_BOOK_ACCOUNTS)
    inner = 2 if args.quick else max(1, args.inner)
    run(
        sizes,
        repeats,
        args.results_dir,
        args.work_dir,
        args.threads,
        inner,
        model_accounts,
        args.repeats_1m,
        score_threads=args.score_threads,
        repeats_reasons=args.repeats_reasons,
    )
    log(f"wrote {args.results_dir / 'scoring.json'}")


if __name__ == "__main__":
    main()
