"""`make demo`: generate → validate → features → train → score → print the top of the worklist.

Everything lands under PAYRANK_HOME (default `.payrank/`): the demo book, the MLflow store, the outputs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from serving.config import Settings
from serving.progress import progress_bars

DEMO_END = date(2026, 9, 30)
TOP = 20


def run_demo(guarantors: int, seed: int, console: Console, settings: Settings | None = None) -> Path:
    """Run the main job end to end on a generated book; returns the worklist path."""
    from features.build import build_features
    from features.generate import generate_book, write_book
    from features.io import write_frame
    from features.load import load_book
    from features.summary import book_summary
    from serving.model_store import default_uri, load_model
    from serving.policy_config import load_policy
    from serving.scoring import score_book
    from serving.worklist import build_worklist, summary_text, worklist_summary
    from training.tracking import use_tracking
    from training.train import TrainConfig, log_and_register, train_bundle

    settings = settings or Settings()
    home = Path(settings.home)
    book_dir, out = home / "demo-book", home / "demo-output"
    with progress_bars(console) as update:
        book, truth = generate_book(guarantors, seed, DEMO_END, progress=lambda d, n: update("generating a book", d, n))
        write_book(book, book_dir, "parquet", truth)
        book = load_book(book_dir)  # read back through the loader and validator, like any real book
        features = build_features(book, DEMO_END)
        write_frame(features, out / "features.parquet")
        cfg = TrainConfig(
            as_of=DEMO_END,
            model_name=settings.model_name,
            experiment=settings.experiment,
            costs=dict(settings.channel_costs),
        )
        trained = train_bundle(book, cfg, update)
        update("logging to MLflow", 0, 1)
        result = log_and_register(trained, cfg)
        update("logging to MLflow", 1, 1)
    console.print(book_summary(book))
    console.print(f"features for {DEMO_END}: {len(features):,} open accounts × {features.shape[1] - 3} features")
    m = result.metrics
    console.print(
        f"trained version {result.version} (run {result.run_id[:8]}): holdout AUC {m['holdout_auc']:.3f} "
        f"(balance alone {m['holdout_auc_balance_only']:.3f}), mean predicted {m['holdout_mean_predicted']:.3f} vs "
        f"observed {m['holdout_observed_rate']:.3f}; {'champion' if result.promoted else 'challenger'}: {result.reason}"
    )
    use_tracking(cfg.tracking_uri)
    loaded = load_model(default_uri(settings.model_name))
    policy = load_policy(None)
    scored = score_book(book, DEMO_END, loaded.scorer, policy, loaded.label, costs=settings.channel_costs)
    write_frame(scored.scores, out / "scores.csv")
    listed, excluded = build_worklist(scored, 100, policy)
    write_frame(listed, out / "worklist.csv")
    write_frame(excluded, out / "exclusions.csv")
    console.print(_worklist_table(listed.head(TOP), scored.policy.day))
    console.print(summary_text(worklist_summary(listed, 100)), highlight=False)
    _publish_demo_day(book, scored, policy, loaded.label, settings, console)
    console.print(
        f"outputs in [bold]{out}[/]: features.parquet, scores.csv, worklist.csv (100 calls), exclusions.csv "
        f"({excluded['account_id'].nunique():,} accounts left out, each with why)\n"
        "Serve the champion:  [bold]PAYRANK_API_KEYS=demo-key .venv/bin/payrank serve[/]\n"
        "Try it:              [bold]curl -s -H 'X-API-Key: demo-key' localhost:8000/v1/model[/]\n"
        "Explain an account:  [bold].venv/bin/payrank worklist --data .payrank/demo-book --as-of 2026-09-30 "
        "--explain ACCOUNT_ID[/]"
    )
    return out / "worklist.csv"


def _publish_demo_day(
    book: object, scored: object, policy: object, label: str, settings: Settings, console: Console
) -> None:
    """The demo day in the workspace store, for two demo specialists; prints how to log in."""
    from serving.store.demo import publish_demo_day

    report, passwords = publish_demo_day(book, scored, 100, policy, label, settings)
    who = ", ".join(f"{pid} {int(v['items'])} calls" for pid, v in sorted(report.per_specialist.items()))
    console.print(
        f"published {report.day} to the workspace store ({who}); {report.decisions:,} decisions logged, "
        f"exploration costs ${report.cost:,.2f} expected\n"
        f"Serve it on the demo day's clock:  [bold]PAYRANK_WORK_CLOCK_START={report.day}T15:00:00Z "
        "PAYRANK_API_KEYS=demo-key .venv/bin/payrank serve[/]\n"
        "In a browser: [bold]http://127.0.0.1:8000/app/login[/] (the workspace; docs/workspace.md), as:\n"
        + "\n".join(f"  [bold]{pid}[/] / [bold]{pw}[/]" for pid, pw in passwords.items())
        + "\nOr log in to the JSON API as a specialist:\n"
        + "\n".join(
            f"  [bold]curl -s -X POST localhost:8000/v1/work/login -H 'Content-Type: application/json' "
            f'-d \'{{"username": "{pid}", "password": "{pw}"}}\'[/]'
            for pid, pw in passwords.items()
        )
        + "\n  then: [bold]curl -s -X POST -H 'Authorization: Bearer TOKEN' -H \"Idempotency-Key: next-$(date +%s%N)\" "
        "localhost:8000/v1/work/next[/] (docs/workspace-store.md)",
        highlight=False,
        soft_wrap=True,
    )


def _worklist_table(rows: object, day: object) -> Table:
    table = Table(title=f"worklist for {getattr(day, 'date', lambda: day)()} — top {TOP} calls")
    for col, justify in [
        ("rank", "right"),
        ("account", "left"),
        ("balance", "right"),
        ("p_pay", "right"),
        ("call adds", "right"),
        ("else", "left"),
        ("reasons", "left"),
        ("window", "left"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for _, r in rows.iterrows():  # type: ignore[attr-defined]  # twenty rows for display
        table.add_row(
            str(r["rank"]),
            str(r["account_id"]),
            f"${r['balance']:,.0f}",
            f"{r['p_pay']:.2f}",
            f"${r['expected_value']:,.2f}",
            str(r["best_alternative"]),
            str(r["reasons"]),
            str(r["call_window_local"]),
        )
    return table
