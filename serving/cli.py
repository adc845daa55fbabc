"""The `payrank` command line: one Typer app, one sub-command per job.

Heavy imports (MLflow, LightGBM) happen inside the commands, so `payrank --help` stays fast.
Every error a user can cause ends in a one-line-per-problem message and a non-zero exit, never a traceback.
Messages name the option, table, column or row at fault, never the value given (docs/api.md, "Errors").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from features.scenarios import SCENARIOS
from features.validate import BookError
from serving import cli_spark
from serving.cli_spark import EngineOpt, SparkMasterOpt, spark_job
from serving.cli_store import WithStoreOpt, overlay_store, publish_scored
from serving.cli_store import register as register_store_commands
from serving.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="payrank: rank overdue patient balances.")
console = Console(stderr=False)
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

DataOpt = Annotated[str, typer.Option("--data", help="Book: a folder of CSV/Parquet files or a SQLAlchemy URL.")]
AsOfOpt = Annotated[str, typer.Option("--as-of", help="As-of day YYYY-MM-DD (the book at the end of that day).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output file, .csv or .parquet.")]


SCENARIO_NAMES = list(SCENARIOS)
LEARNER_NAMES = ["offset", "outcome", "dr"]  # training.channel_models.CHANNEL_LEARNERS (checked by a test)


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def friendly_errors(fn: F) -> F:
    """Turn BookError / UserError / ValueError into readable lines and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BookError as exc:
            err.print(f"[bold red]The book breaks the data contract ({len(exc.problems)} problem(s)):[/]")
            for p in exc.problems:
                err.print(f"  {p}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except (UserError, ValueError, FileNotFoundError, TimeoutError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def parse_day(text: str, option: str = "--as-of") -> date:
    """An ISO day in the contract's range (the validator's check, as the API's), or a UserError naming the option."""
    from features.validate import parse_day as contract_day

    try:
        return contract_day(text)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


class BookFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    sqlite = "sqlite"


@app.command()
@friendly_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the book into.")],
    guarantors: Annotated[int, typer.Option(min=1, help="Number of guarantors (≈1.5 accounts each).")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same book.")] = 0,
    fmt: Annotated[BookFormat, typer.Option("--format", help="csv, parquet or sqlite.")] = BookFormat.parquet,
    end_date: Annotated[str, typer.Option("--end-date", help="The book's last day.")] = "2026-09-30",
    days: Annotated[int, typer.Option(min=60, help="Days of history to simulate.")] = 450,
    scenario: Annotated[
        str,
        typer.Option(help="Mechanics of the simulated world (docs/synthetic-book.md): " + ", ".join(SCENARIO_NAMES)),
    ] = "default",
) -> None:
    """Write a synthetic book (and truth.parquet, the hidden truth) in the data contract."""
    from features.generate import generate_book, write_book
    from features.scenarios import get_scenario

    end = parse_day(end_date, "--end-date")
    world = get_scenario(scenario)
    book, truth = _with_progress(
        "simulating days", lambda cb: generate_book(guarantors, seed, end, days, cb, scenario=world)
    )
    path = write_book(book, out, fmt.value, truth)
    console.print(f"wrote a {fmt.value} book ({world.name} scenario) to [bold]{path}[/]")
    _print_summary(book)


@app.command()
@friendly_errors
def validate(data: DataOpt) -> None:
    """Check a book against the data contract and print a one-screen summary."""
    from features.load import load_book

    book = load_book(data)
    console.print("[bold green]valid book[/]")
    _print_summary(book)


@app.command()
@friendly_errors
def features(
    data: DataOpt,
    as_of: AsOfOpt,
    out: OutOpt,
    with_store: WithStoreOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Build point-in-time features for every open account on the as-of day."""
    from features.build import build_features
    from features.io import check_output_path, write_frame
    from features.load import load_book

    day = parse_day(as_of)
    if (job := spark_job(engine, spark_master, with_store)) is not None:
        rows = cli_spark.features(job, data, day, out)
        console.print(f"wrote {rows:,} open accounts to [bold]{out}[/] (Spark {job.master})")
        return
    check_output_path(out)
    book = load_book(data)
    book = overlay_store(book) if with_store else book
    frame = build_features(book, day)
    write_frame(frame, out)
    console.print(f"wrote {len(frame):,} open accounts × {frame.shape[1]} columns to [bold]{out}[/]")


TrackingOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (default: SQLite under PAYRANK_HOME)."),
]
ModelNameOpt = Annotated[str, typer.Option("--model-name", help="Registered model name.")]


@app.command()
@friendly_errors
def train(
    data: DataOpt,
    as_of: AsOfOpt,
    tracking_uri: TrackingOpt = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "payrank",
    model_name: ModelNameOpt = "payrank",
    seed: Annotated[int, typer.Option(help="Seed for LightGBM and sampling.")] = 0,
    threads: Annotated[int, typer.Option(help="LightGBM threads (0: all cores).")] = 0,
    max_auc_drop: Annotated[float, typer.Option(help="Promotion gate: allowed AUC drop vs champion.")] = 0.005,
    max_value_drop: Annotated[float, typer.Option(help="Promotion gate: allowed policy-value drop.")] = 0.0,
    final_window_days: Annotated[
        int, typer.Option(min=30, help="Days of the most recent labelled window the served payment model is fit on.")
    ] = 180,
    channel_learners: Annotated[
        str, typer.Option(help="Channel learners to compare, comma-separated: " + ", ".join(LEARNER_NAMES))
    ] = ",".join(LEARNER_NAMES),
    with_store: WithStoreOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Train on everything the book knew on the as-of day; log to MLflow; register; maybe promote."""
    from training.registry import Gate
    from training.train import TrainConfig, log_and_register, train_bundle

    day = parse_day(as_of)
    from features.load import load_book

    job = spark_job(engine, spark_master, with_store)
    if job is not None:  # snapshots on Spark, the fit here
        from serving.spark.jobs import run_train

        book = None
        train_bundle = lambda _book, cfg, update: run_train(job, data, cfg, update)  # noqa: E731
    else:
        book = load_book(data)
        book = overlay_store(book) if with_store else book
    cfg = TrainConfig(
        as_of=day,
        model_name=model_name,
        experiment=experiment,
        tracking_uri=tracking_uri,
        seed=seed,
        num_threads=threads,
        gate=Gate(max_auc_drop, max_value_drop),
        costs=dict(Settings().channel_costs),
        final_window_days=final_window_days,
        channel_learners=tuple(_learners(channel_learners, "--channel-learners")),
    )
    result = _train_with_progress(book, cfg, train_bundle, log_and_register)
    _print_train_result(result)


def _train_with_progress(book: Any, cfg: Any, train_bundle: Any, log_and_register: Any) -> Any:
    from serving.progress import progress_bars

    with progress_bars(err) as update:
        trained = train_bundle(book, cfg, update)
        update("logging to MLflow and registering", 0, 1)
        result = log_and_register(trained, cfg)
        update("logging to MLflow and registering", 1, 1)
    return result


def _print_train_result(result: Any) -> None:
    m = result.metrics
    console.print(f"run [bold]{result.run_id}[/] registered as version [bold]{result.version}[/]")
    console.print(
        f"holdout AUC {m['holdout_auc']:.3f} (balance only {m['holdout_auc_balance_only']:.3f}), "
        f"Brier {m['holdout_brier']:.4f}, mean predicted {m['holdout_mean_predicted']:.3f} "
        f"vs observed {m['holdout_observed_rate']:.3f}; channel policy value (DR) {m['policy_value']:.4f} "
        f"[{m.get('policy_dr_lo', float('nan')):.4f}, {m.get('policy_dr_hi', float('nan')):.4f}] "
        f"vs logged {m.get('policy_logged_value', float('nan')):.4f}"
    )
    if result.promoted and "warning" in result.reason:
        verdict = "[bold yellow]became champion, with a warning[/]"
    else:
        verdict = "[bold green]became champion[/]" if result.promoted else "[yellow]kept the champion[/]"
    console.print(f"{verdict}: {result.reason}", highlight=False)


@app.command()
@friendly_errors
def models(tracking_uri: TrackingOpt = None, model_name: ModelNameOpt = "payrank") -> None:
    """List registered versions with aliases, holdout metrics and data window."""
    from mlflow import MlflowClient
    from rich.table import Table

    from training.registry import list_versions
    from training.tracking import use_tracking

    use_tracking(tracking_uri, must_exist=True)
    rows = list_versions(MlflowClient(), model_name)
    if not rows:
        console.print(f"no versions of {model_name!r} registered yet")
        return
    table = Table(title=f"registered model {model_name}")
    columns = ("version", "aliases", "auc", "policy_value", "policy_interval", "logged_value", "data_window", "gate")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in columns))
    console.print(table)


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why; recorded as a tag on the version.")],
    tracking_uri: TrackingOpt = None,
    model_name: ModelNameOpt = "payrank",
) -> None:
    """Promote a version to champion by hand."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.registry import promote as do_promote
    from training.tracking import use_tracking

    use_tracking(tracking_uri, must_exist=True)
    try:
        do_promote(MlflowClient(), model_name, version, reason)
    except MlflowException:
        raise UserError(f"version {version!r} of model {model_name!r} does not exist") from None
    console.print(f"version {version} of {model_name} is now [bold]champion[/] ({reason})")


@app.command()
@friendly_errors
def evaluate(
    scenario: Annotated[
        list[str], typer.Option("--scenario", help="A scenario to evaluate (repeatable), or 'all'.")
    ] = ["default"],  # noqa: B006 (Typer reads the default, never mutates it)
    guarantors: Annotated[int, typer.Option(min=1000, help="Guarantors per scenario's book.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of every scenario's book and of training.")] = 11,
    learners: Annotated[
        str, typer.Option(help="Comma-separated channel learners to compare: " + ", ".join(LEARNER_NAMES))
    ] = ",".join(LEARNER_NAMES),
    threads: Annotated[int, typer.Option(help="LightGBM threads (0: all cores).")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the matrix as JSON (and a .md table).")] = None,
) -> None:
    """Judge the models on the generator's scenarios: train on each world, compare with its truth in dollars."""
    from features.scenarios import get_scenario
    from serving.evaluation import evaluate_scenario, matrix_markdown, write_results

    names = list(SCENARIOS) if scenario == ["all"] else [get_scenario(n).name for n in scenario]
    chosen = _learners(learners, "--learners")
    results = []
    for name in names:
        result = _with_progress_steps(
            f"{name}", lambda cb, n=name: evaluate_scenario(n, guarantors, seed, chosen, threads, cb)
        )
        results.append(result)
        console.print(matrix_markdown([r.to_dict() for r in results]), markup=False, highlight=False)
    if out is not None:
        write_results(results, out)
        console.print(f"wrote the matrix to [bold]{out}[/] and {out.with_suffix('.md')}")


def _learners(text: str, option: str) -> list[str]:
    """Comma-separated channel learner names, or a UserError naming the option and the choices."""
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    if not chosen or any(n not in LEARNER_NAMES for n in chosen):
        raise UserError(f"{option}: choose one or more of {', '.join(LEARNER_NAMES)}")
    return chosen


def _with_progress_steps(prefix: str, job: Callable[[Callable[[str, int, int], None]], Any]) -> Any:
    """Run `job(progress(step, done, total))` under rich progress bars labelled with `prefix`."""
    from serving.progress import progress_bars

    with progress_bars(err) as update:
        return job(lambda step, done, total: update(f"{prefix}: {step}", done, total))


ModelOpt = Annotated[str | None, typer.Option("--model", help="Model URI (default models:/<name>@champion).")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="Contact-policy TOML (default: built-in rules).")]


def _load_and_score(
    data: str,
    as_of: str,
    model: str | None,
    tracking_uri: str | None,
    model_name: str,
    config: Any,
    threads: int,
    reasons: bool,
    with_store: bool = False,
) -> tuple[Any, Any, Any]:
    """Validate the book (with the store laid over it if asked), load the model, score: the shared start of `score`
    and `worklist`. Returns (scored, loaded model, book).

    The model (importing MLflow and LightGBM, resolving the registry URI, reading the bundle) loads in a
    second thread while the book is read and validated: Parquet reading and Arrow's kernels release the GIL,
    so the two overlap by several seconds on a large book.
    """
    from concurrent.futures import ThreadPoolExecutor

    day = parse_day(as_of)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load") as pool:
        pending = pool.submit(_load_model, model, tracking_uri, model_name)
        from features.load import load_book

        book = load_book(data)
        book = overlay_store(book) if with_store else book
        loaded = pending.result()
    from serving.scoring import score_book  # LightGBM is imported by now, by the model's thread

    costs = Settings().channel_costs
    scored = score_book(book, day, loaded.scorer, config, loaded.label, costs, num_threads=threads, reasons=reasons)
    return scored, loaded, book


def _load_model(model: str | None, tracking_uri: str | None, model_name: str) -> Any:
    from serving.model_store import default_uri, load_model
    from training.tracking import use_tracking

    use_tracking(tracking_uri, must_exist=True)
    return load_model(model or default_uri(model_name))


@app.command()
@friendly_errors
def score(
    data: DataOpt,
    as_of: AsOfOpt,
    out: OutOpt,
    model: ModelOpt = None,
    policy: PolicyOpt = None,
    tracking_uri: TrackingOpt = None,
    model_name: ModelNameOpt = "payrank",
    threads: Annotated[int, typer.Option(help="LightGBM threads (0: all cores).")] = 0,
    reasons: Annotated[
        bool,
        typer.Option(
            "--reasons/--no-reasons",
            help="Reason codes for every row: exact TreeSHAP, about ten times everything else together. "
            "Worklists always carry them for the rows they list.",
        ),
    ] = False,
    with_store: WithStoreOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Score every open account for work on the day after the as-of day (machine-readable; no reasons unless
    asked: people read reasons on the worklist, which computes them for its rows)."""
    from features.io import check_output_path, write_frame
    from serving.policy_config import load_policy

    if (job := spark_job(engine, spark_master, with_store)) is not None:
        day, config = parse_day(as_of), load_policy(policy)
        loaded = _load_model(model, tracking_uri, model_name)
        counts = cli_spark.score(job, data, day, out, loaded, config, reasons)
        console.print(
            f"scored {sum(counts.values()):,} open accounts with {loaded.label} → [bold]{out}[/]; best: {counts}"
        )
        return
    check_output_path(out)
    config = load_policy(policy)
    scored, loaded, _ = _load_and_score(
        data, as_of, model, tracking_uri, model_name, config, threads, reasons, with_store
    )
    write_frame(scored.scores, out)
    counts = scored.scores["best_channel"].value_counts().to_dict()
    console.print(f"scored {len(scored.scores):,} open accounts with {loaded.label} → [bold]{out}[/]; best: {counts}")


@app.command()
@friendly_errors
def worklist(
    data: DataOpt,
    as_of: AsOfOpt,
    calls: Annotated[int, typer.Option("--calls", min=0, help="How many calls the team can make.")] = 100,
    out: Annotated[Path | None, typer.Option("--out", help="Worklist file, .csv or .parquet.")] = None,
    exclusions: Annotated[
        Path | None, typer.Option("--exclusions", help="Also write every left-out account with why.")
    ] = None,
    explain: Annotated[str | None, typer.Option("--explain", help="Say why one account is or is not listed.")] = None,
    model: ModelOpt = None,
    policy: PolicyOpt = None,
    tracking_uri: TrackingOpt = None,
    model_name: ModelNameOpt = "payrank",
    threads: Annotated[int, typer.Option(help="LightGBM threads (0: all cores).")] = 0,
    profitable_only: Annotated[
        bool,
        typer.Option(
            "--profitable-only", help="List only calls expected to pay for themselves, even when capacity remains."
        ),
    ] = False,
    publish: Annotated[
        bool, typer.Option("--publish", help="Publish the day to the store: decisions logged, calls assigned.")
    ] = False,
    on_shift: Annotated[
        str | None, typer.Option("--on-shift", help="With --publish: who works today (ids, comma-separated).")
    ] = None,
    with_store: WithStoreOpt = False,
    engine: EngineOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """The ordered call list for the day after the as-of day: the --calls best allowed calls, one per guarantor.
    Calls not expected to pay for themselves fill remaining capacity, flagged below_break_even."""
    from features.io import check_output_path, write_frame
    from serving.policy_config import load_policy
    from serving.worklist import build_worklist, summary_text, worklist_summary

    if out is None and explain is None and not publish:
        raise UserError("give --out FILE for the list, --publish, or --explain ACCOUNT_ID")
    job = spark_job(engine, spark_master, with_store)
    if job is not None and (publish or explain is not None):
        raise UserError("--publish and --explain work with --engine pandas only")
    for path, option in ((out, "--out"), (exclusions, "--exclusions")):
        if path is not None and (job is None or option == "--out"):  # Spark writes exclusions as a folder or file
            check_output_path(path, option)
    config = load_policy(policy)
    if job is not None:
        from serving.spark.jobs import check_spark_output

        if exclusions is not None:
            check_spark_output(exclusions, "--exclusions")
        loaded = _load_model(model, tracking_uri, model_name)
        listed, left_out = cli_spark.worklist(
            job, data, parse_day(as_of), calls, loaded, config, profitable_only, exclusions
        )
        if out is not None:
            write_frame(listed, out)
            console.print(f"{len(listed):,} calls → [bold]{out}[/]")
        console.print(summary_text(worklist_summary(listed, calls)), highlight=False)
        if exclusions is not None:
            console.print(f"{left_out:,} accounts left out, with why → [bold]{exclusions}[/]")
        return
    # reasons=False: build_worklist computes them for the listed rows only
    # --publish always reads the store: today's recorded outcomes and holds must reach the contact rules
    scored, loaded, book = _load_and_score(
        data, as_of, model, tracking_uri, model_name, config, threads, reasons=False, with_store=with_store or publish
    )
    listed, left_out = build_worklist(scored, calls, config, profitable_only)
    if publish:
        shift = [x.strip().lower() for x in on_shift.split(",") if x.strip()] if on_shift else None
        listed = publish_scored(
            book, scored, calls, config, loaded.label, shift, console, profitable_only=profitable_only
        )
    if explain is not None:
        for line in explain_account(explain, scored, listed, left_out):
            console.print(line, highlight=False, markup=False)
    if out is not None:
        write_frame(listed, out)
        console.print(f"{len(listed):,} calls for {scored.policy.day.date()} → [bold]{out}[/]")
    console.print(summary_text(worklist_summary(listed, calls)), highlight=False)
    if exclusions is not None:
        write_frame(left_out, exclusions, "--exclusions")
        console.print(f"{left_out['account_id'].nunique():,} accounts left out, with why → [bold]{exclusions}[/]")


def explain_account(account_id: str, scored: Any, listed: Any, left_out: Any) -> list[str]:
    """Plain lines: where the account stands on the list, and what the contact policy says of it."""
    if account_id not in set(scored.scores["account_id"]):
        return [f"{account_id}: not an open account on this day (paid off, under $5, or not yet billed)"]
    lines = [f"{account_id}:"]
    hit = listed[listed["account_id"] == account_id]
    if len(hit):
        lines.append(f"  on the list at rank {int(hit['rank'].iloc[0])}")
    for _, row in left_out[left_out["account_id"] == account_id].iterrows():  # a handful of rows, one account
        lines.append(f"  not called: {row['rule']}: {row['detail']}")
    lines += [f"  policy: {line}" for line in scored.policy.explain(account_id)]
    return lines


def _with_progress(label: str, job: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Run `job(progress_callback)` under a rich progress bar."""
    from serving.progress import progress_bars

    with progress_bars(err) as update:
        return job(lambda done, total: update(label, done, total))


def _print_summary(book: Any) -> None:
    from features.summary import book_summary

    console.print(book_summary(book))


@app.command()
@friendly_errors
def demo(
    guarantors: Annotated[int, typer.Option(min=100, help="Size of the demo book.")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed of the demo book.")] = 7,
) -> None:
    """The main job, end to end on a generated demo book under .payrank/."""
    from serving.demo import run_demo

    run_demo(guarantors=guarantors, seed=seed, console=console)


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1, or PAYRANK_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000, or PAYRANK_PORT).")] = None,
    model: ModelOpt = None,
    tracking_uri: TrackingOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Serve the model over HTTP (docs/api.md): /v1/score, /v1/worklist, MLflow's /invocations; needs an API key."""
    from serving.api.security import AuthConfigError
    from serving.api.server import ServeError, StartFailed
    from serving.api.server import serve as run_server

    try:
        run_server(host=host, port=port, model=model, tracking_uri=tracking_uri, policy=policy)
    except (AuthConfigError, ServeError) as exc:  # multi-line help with commands: print it unwrapped
        err.print(f"error: {exc}", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(2) from None
    except StartFailed:  # already one JSON log line saying why
        raise typer.Exit(1) from None


register_store_commands(app)

if __name__ == "__main__":  # pragma: no cover
    app()
