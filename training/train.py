"""`payrank train`: snapshots → payment, share and channel models → holdout evaluation → MLflow → registry.

The run trains on everything the book knew on the as-of day and nothing after it (see training.windows).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.labels import build_snapshots
from features.schema import ACTIONS, CHANNELS, Book
from features.spec import FEATURE_COLUMNS, FeatureSpec
from training.amounts import paid_amounts
from training.channel_fit import channel_rows, choose, fit_candidate, fit_candidates, reference_learner
from training.channel_models import CHANNEL_LEARNERS
from training.evaluate import (
    age_band,
    calibration_table,
    gains,
    payment_metrics,
    recovered_dollars,
    safe_auc,
    subgroup_table,
)
from training.fit import (
    crossfit_calibration,
    fit_amount_model,
    fit_calibration,
    fit_payment_model,
    refit_payment_model,
)
from training.policy_value import (
    compare_learned_policies,
    crossfit_reward_model,
    fit_contact_propensity,
    learned_policy_value,
    logged_propensity,
)
from training.registry import Gate
from training.scorer import DEFAULT_COSTS, IsotonicMap, Scorer, sigmoid
from training.windows import Windows, check_no_overlap, plan_windows

Progress = Callable[[str, int, int], None]
PROPENSITY_ROWS = 200_000  # rows sampled for the P̂(contact) model of the holdout's "none" propensity
N_BOOT = 1000  # bootstrap replicates of the channel learners' comparison
CAPACITY_SHARE = 0.10  # "recovered dollars at capacity": the top 10% of holdout accounts
AUTO_STEP_ACCOUNTS = 50_000  # auto snapshot step: one more day between snapshots per this many accounts ...
MAX_AUTO_STEP = 7  # ... up to a week


@dataclass
class TrainConfig:
    """What a training run needs beyond the book; defaults are the embedded ones."""

    as_of: date
    model_name: str = "payrank"
    experiment: str = "payrank"
    tracking_uri: str | None = None
    seed: int = 0
    num_threads: int = 0
    snapshot_step_days: int | None = None  # None: auto_step(accounts)
    max_rows_per_day: int = 40_000
    final_window_days: int = 180
    channel_learners: tuple[str, ...] = tuple(CHANNEL_LEARNERS)
    gate: Gate = field(default_factory=Gate)
    costs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    shuffle_labels: bool = False  # for tests of the promotion gate: a deliberately worse model


@dataclass
class Trained:
    """The served bundle, the bundle the holdout evaluated (same recipe, earlier data), and what it produced."""

    scorer: Scorer
    evaluation: Scorer
    windows: Windows
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    holdout: pd.DataFrame  # holdout feature rows with labels and the evaluation bundle's predictions
    plots: dict[str, Path] = field(default_factory=dict)


def auto_step(n_accounts: int) -> int:
    """Days between snapshots: every day for small books (contacts are scarce), up to a week for large ones."""
    return int(np.clip(np.ceil(n_accounts / AUTO_STEP_ACCOUNTS), 1, MAX_AUTO_STEP))


def training_windows(first_day: date, n_accounts: int, cfg: TrainConfig) -> Windows:
    """The as-of days of every use (fit, valid, holdout, final, recent), one every `step` days."""
    step = cfg.snapshot_step_days or auto_step(n_accounts)
    w = plan_windows(cfg.as_of, first_day, horizon=30, step=step, final_days=cfg.final_window_days)
    check_no_overlap(w)
    return w


def mark_uses(snaps: pd.DataFrame, w: Windows) -> pd.DataFrame:
    """Boolean columns in_fit, in_valid, in_holdout, in_final and in_recent: which uses a row's day serves."""
    as_of = pd.to_datetime(snaps["as_of"])
    for name in ("fit", "valid", "holdout", "final", "recent"):
        snaps[f"in_{name}"] = as_of.isin(pd.to_datetime(list(getattr(w, name)))).to_numpy()
    return snaps


def build_training_frame(
    book: Book, cfg: TrainConfig, progress: Progress | None = None
) -> tuple[pd.DataFrame, Windows]:
    """Snapshots on every as-of day any part uses, with 30/14-day labels, next-day actions and paid amounts.

    Boolean columns in_fit, in_valid, in_holdout, in_final and in_recent say which uses a row's day serves.
    """
    first_day = pd.Timestamp(book.accounts["service_date"].min()).date()
    w = training_windows(first_day, len(book.accounts), cfg)
    cb = (lambda i, n: progress("snapshots", i, n)) if progress else None
    snaps = build_snapshots(
        book, w.days(), horizons=(30, 14), progress=cb, max_rows_per_day=cfg.max_rows_per_day, seed=cfg.seed
    )
    snaps["paid_amount_30d"] = paid_amounts(book, snaps["account_id"], snaps["as_of"], 30)
    snaps["paid_amount_14d"] = paid_amounts(book, snaps["account_id"], snaps["as_of"], 14)
    return mark_uses(snaps, w), w


FramesBuilder = Callable[[TrainConfig, Progress | None], tuple[pd.DataFrame, Windows]]
"""Builds the training frame (as build_training_frame) from elsewhere: the Spark engine's snapshots."""


def fit_bundle(
    snaps: pd.DataFrame, w: Windows, cfg: TrainConfig, progress: Progress | None = None
) -> tuple[Scorer, Scorer, pd.DataFrame, np.ndarray]:
    """(served bundle, evaluation bundle, channel comparison table, P̂(contact) on the holdout rows).

    Selection: the payment model's iterations by early stopping on `valid`, its evaluation calibration on
    `valid`, the channel candidates on every day before the holdout, compared by policy value on the holdout.
    Served: the payment model refit on `final` with those iterations, calibrated cross-fitted on `recent`; the
    share model on `final`; the chosen channel learner refit on every labelled day.
    """
    total = 5
    step = (lambda name, i: progress(name, i, total)) if progress else (lambda name, i: None)
    spec = FeatureSpec.from_frame(snaps, FEATURE_COLUMNS)
    X = spec.apply(snaps)
    use = {s: snaps[f"in_{s}"].to_numpy() for s in ("fit", "valid", "holdout", "final", "recent")}
    y30 = snaps["paid_30d"].to_numpy().astype(int)
    if cfg.shuffle_labels:
        y30 = np.random.default_rng(cfg.seed).permutation(y30)
    seed, threads = cfg.seed, cfg.num_threads

    step("payment model (selection)", 0)
    booster = fit_payment_model(X[use["fit"]], y30[use["fit"]], X[use["valid"]], y30[use["valid"]], seed, threads)
    rounds = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    eval_payment = booster.model_to_string(num_iteration=rounds)
    raw_valid = sigmoid(booster.predict(X[use["valid"]], raw_score=True, num_iteration=rounds, num_threads=threads))
    eval_calibration = _calibration(raw_valid, y30[use["valid"]], cfg)
    eval_amount = _amount_model(snaps, X, use["fit"] | use["valid"], cfg)

    step("channel candidates", 1)
    before_holdout = pd.to_datetime(snaps["as_of"]).to_numpy() <= np.datetime64(
        min(w.holdout) - timedelta(days=w.horizon)
    )
    rows = channel_rows(snaps, X, before_holdout, seed)
    candidates = fit_candidates(list(cfg.channel_learners), rows, seed, threads)

    step("comparing channel learners", 2)
    meta_base = {"as_of": cfg.as_of.isoformat(), "windows": w.to_dict(), "payment_rounds": int(rounds)}
    evaluations = {
        name: Scorer(spec, eval_payment, eval_calibration, eval_amount, model, dict(cfg.costs), dict(meta_base))
        for name, model in candidates.items()
    }
    p_contact = _contact_propensity(snaps, X, before_holdout, use["holdout"], cfg)
    comparison = compare_channel_learners(evaluations, snaps[use["holdout"]].reset_index(drop=True), p_contact, cfg)
    chosen = choose(comparison)

    step("payment model (final window)", 3)
    final_booster = refit_payment_model(X[use["final"]], y30[use["final"]], rounds, seed, threads)
    groups = snaps["guarantor_id"].to_numpy()
    calibration = (
        crossfit_calibration(
            X[use["final"]], y30[use["final"]], groups[use["final"]], use["recent"][use["final"]], rounds, seed, threads
        )
        if not cfg.shuffle_labels
        else IsotonicMap([0.0, 1.0], [float(y30.mean())] * 2)
    )
    amount = _amount_model(snaps, X, use["final"], cfg)

    step("channel model (every labelled day)", 4)
    channel = fit_candidate(chosen, channel_rows(snaps, X, np.ones(len(snaps), bool), seed), seed, threads)
    labelled = pd.to_datetime(snaps["as_of"])
    meta = {
        **meta_base,
        "data_window": f"{labelled.min().date()}..{cfg.as_of}",
        "rows": {
            "payment_selection_fit": int(use["fit"].sum()),
            "payment_selection_valid": int(use["valid"].sum()),
            "holdout": int(use["holdout"].sum()),
            "payment_final": int(use["final"].sum()),
            "calibration_final": int(use["recent"].sum()),
            "channel_candidates": len(rows.y),
            "channel_final": int(len(snaps)),
        },
        "channel_learner": chosen,
        "channel_candidates": list(candidates),
        "channel_fallbacks": dict(channel.fallback_),
        "seen_by": {
            "payment_trees": f"as-of days {min(w.final)}..{max(w.final)} (labels to {max(w.final) + timedelta(30)})",
            "calibration": f"out-of-fold predictions on as-of days {min(w.recent)}..{max(w.recent)}",
            "share_model": f"paid rows of as-of days {min(w.final)}..{max(w.final)}",
            "channel_model": f"every labelled as-of day {labelled.min().date()}..{labelled.max().date()}",
            "holdout_metrics": f"a bundle fit before {min(w.holdout)} and scored on {min(w.holdout)}..{max(w.holdout)}",
        },
    }
    served = Scorer(spec, final_booster.model_to_string(), calibration, amount, channel, dict(cfg.costs), meta)
    evaluation = evaluations[chosen]
    evaluation.meta.update(channel_learner=chosen)
    return served, evaluation, comparison, p_contact


def _calibration(raw: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> IsotonicMap:
    if cfg.shuffle_labels:
        return IsotonicMap([0.0, 1.0], [float(y.mean())] * 2)
    return fit_calibration(raw, y)


def _amount_model(snaps: pd.DataFrame, X: pd.DataFrame, rows: np.ndarray, cfg: TrainConfig) -> str | None:
    """The share model on the paid rows of `rows`, as LightGBM text (None with too few payments)."""
    paid = rows & (snaps["paid_30d"].to_numpy() == 1)
    share = snaps["paid_amount_30d"].to_numpy() / np.maximum(snaps["balance"].to_numpy(), 1.0)
    model = fit_amount_model(X[paid], share[paid], cfg.seed, cfg.num_threads)
    return model.model_to_string() if model is not None else None


def _contact_propensity(
    snaps: pd.DataFrame, X: pd.DataFrame, earlier: np.ndarray, holdout: np.ndarray, cfg: TrainConfig
) -> np.ndarray:
    """P̂(any contact next day) on the holdout rows, from a classifier fit on (a sample of) the earlier days."""
    contacted = snaps["action_next"].astype(str).to_numpy() != "none"
    rows = np.flatnonzero(earlier)
    if len(rows) > PROPENSITY_ROWS:
        rows = np.sort(np.random.default_rng([cfg.seed, 29]).choice(rows, PROPENSITY_ROWS, replace=False))
    model = fit_contact_propensity(X.iloc[rows], contacted[rows], cfg.seed, cfg.num_threads)
    return model.predict(X[holdout], num_threads=cfg.num_threads)


def compare_channel_learners(
    evaluations: dict[str, Scorer], hold: pd.DataFrame, p_contact: np.ndarray, cfg: TrainConfig
) -> pd.DataFrame:
    """Policy value of each candidate on the holdout (DR and SNIPS with intervals) and its DR gain over the
    reference learner (paired interval), beside the logged policy's value.

    DR uses one reward model for every candidate, cross-fitted on the holdout itself (no candidate saw it).
    """
    act = hold["action_next"].astype(str).to_numpy()
    prop = logged_propensity(act, hold["action_propensity"].to_numpy(), p_contact)
    preds = {name: scorer.predict(hold, num_threads=cfg.num_threads) for name, scorer in evaluations.items()}
    any_scorer = next(iter(evaluations.values()))
    q = crossfit_reward_model(
        any_scorer.matrix(hold),
        act,
        hold["paid_14d"].to_numpy(),
        next(iter(preds.values()))["expected_payment"].to_numpy(),
        hold["guarantor_id"].to_numpy(),
        any_scorer.costs,
        cfg.seed,
        cfg.num_threads,
    )
    reference = reference_learner(list(evaluations))
    reward = hold["paid_amount_14d"].to_numpy()
    return compare_learned_policies(
        preds, hold, act, prop, reward, any_scorer.costs, q, reference, n_boot=N_BOOT, seed=cfg.seed
    )


def evaluate_holdout(
    scorer: Scorer, snaps: pd.DataFrame, cfg: TrainConfig, p_contact: np.ndarray
) -> tuple[dict[str, float], dict, pd.DataFrame]:
    """Metrics, tables and the scored holdout, from a bundle that never saw the holdout's labels.

    `p_contact` is P̂(any contact) on the holdout rows (the propensity of "none" is 1 − it; see policy_value).
    """
    hold = snaps[snaps["in_holdout"]].reset_index(drop=True)
    pred = scorer.predict(hold, num_threads=cfg.num_threads)
    hold = pd.concat([hold, pred], axis=1)
    y = hold["paid_30d"].to_numpy().astype(int)
    metrics = {f"holdout_{k}": v for k, v in payment_metrics(y, hold["p_pay"].to_numpy()).items()}
    metrics["holdout_auc_balance_only"] = safe_auc(y, hold["balance"].to_numpy())
    tables: dict[str, pd.DataFrame] = {"calibration": calibration_table(y, hold["p_pay"].to_numpy())}
    g = gains(y, hold["p_pay"].to_numpy())
    tables["gains"] = g
    for _, row in g.iterrows():
        metrics[f"holdout_lift_at_{int(row['fraction'] * 100)}pct"] = float(row["lift"])
    capacity = max(1, int(CAPACITY_SHARE * len(hold)))
    ev = hold["p_pay"] * hold["expected_payment"]
    metrics["holdout_recovered_dollars_at_capacity"] = recovered_dollars(hold["paid_amount_30d"], ev, capacity)
    metrics["holdout_recovered_dollars_at_capacity_by_balance"] = recovered_dollars(
        hold["paid_amount_30d"], hold["balance"], capacity
    )
    hold["age_band"] = age_band(hold["guarantor_age_years"])
    tables["subgroups"] = subgroup_table(
        hold, "paid_30d", "p_pay", ["payer_class", "service_line", "language", "age_band"]
    )
    act = hold["action_next"].astype(str).to_numpy()
    hold["propensity_used"] = logged_propensity(act, hold["action_propensity"].to_numpy(), p_contact)
    reward = hold["paid_amount_14d"].to_numpy()
    ope = learned_policy_value(hold, hold, act, hold["propensity_used"].to_numpy(), reward, scorer.costs, seed=cfg.seed)
    for est, vals in ope.items():
        for k, v in vals.items():
            metrics[f"policy_{est}_{k}"] = v
    metrics["policy_value"] = ope["dr"]["value"] if ope else float("nan")
    tables["policy_value"] = pd.DataFrame(ope).T.reset_index(names="estimator") if ope else pd.DataFrame()
    tables["uplift_by_decile"] = _uplift_deciles(hold)
    return metrics, tables, hold


def _uplift_deciles(hold: pd.DataFrame) -> pd.DataFrame:
    from training.qini import uplift_by_decile

    parts = []
    act = hold["action_next"].astype(str).to_numpy()
    for ch in CHANNELS:
        rows = np.isin(act, [ch, "none"])
        treated = act[rows] == ch
        if treated.sum() < 20:
            continue
        score = (hold[f"p14_{ch}"] - hold["p14_none"]).to_numpy()[rows]
        t = uplift_by_decile(score, treated, hold["paid_14d"].to_numpy()[rows], n_bins=5)
        t.insert(0, "channel", ch)
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def train_bundle(
    book: Book | None, cfg: TrainConfig, progress: Progress | None = None, frames: FramesBuilder | None = None
) -> Trained:
    """Everything but MLflow: snapshots (from `book`, or from `frames` when given), fit, evaluate."""
    if frames is not None:
        snaps, w = frames(cfg, progress)
    elif book is not None:
        snaps, w = build_training_frame(book, cfg, progress)
    else:
        raise ValueError("train_bundle needs a book or a frames builder")
    served, evaluation, comparison, p_contact = fit_bundle(snaps, w, cfg, progress)
    if progress:
        progress("holdout evaluation", 0, 1)
    metrics, tables, hold = evaluate_holdout(evaluation, snaps, cfg, p_contact)
    if progress:
        progress("holdout evaluation", 1, 1)
    tables["channel_learners"] = comparison
    headline = ("holdout_auc", "holdout_brier", "policy_value", "policy_dr_lo", "policy_dr_hi", "policy_logged_value")
    served.meta["headline"] = {k: metrics[k] for k in headline if k in metrics}
    return Trained(scorer=served, evaluation=evaluation, windows=w, metrics=metrics, tables=tables, holdout=hold)


@dataclass
class TrainResult:
    run_id: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    model_uri: str


def log_and_register(trained: Trained, cfg: TrainConfig) -> TrainResult:
    """Log params, metrics, plots, tables, model card and the pyfunc bundle; register; apply the gate."""
    import mlflow
    from mlflow import MlflowClient

    from training.bundle_store import DIGEST_ARTIFACT, DIGEST_FILE, DIGEST_TAG, ENTRY_SOURCE, write_digest_file
    from training.model_card import model_card
    from training.plots import (
        calibration_plot,
        channel_learners_plot,
        gains_plot,
        importance_plot,
        uplift_decile_plot,
    )
    from training.pyfunc_model import BUNDLE_ARTIFACT, example_as_strings, signature_for
    from training.registry import register_and_gate
    from training.tracking import ensure_experiment, use_tracking

    use_tracking(cfg.tracking_uri)
    exp_id = ensure_experiment(cfg.experiment)
    s, m, hold = trained.scorer, trained.metrics, trained.holdout
    with mlflow.start_run(experiment_id=exp_id) as run, tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        mlflow.log_params(
            {
                "as_of": cfg.as_of.isoformat(),
                "seed": cfg.seed,
                "snapshot_step_days": cfg.snapshot_step_days,
                "max_rows_per_day": cfg.max_rows_per_day,
                "n_features": len(s.spec.columns),
                "payment_trees": s._payment.num_trees(),
                "channel_learner": s.meta.get("channel_learner", ""),
                "final_window_days": cfg.final_window_days,
                "shuffle_labels": cfg.shuffle_labels,
                **{f"cost_{k}": v for k, v in s.costs.items()},
                **{f"rows_{k}": v for k, v in s.meta["rows"].items()},
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in m.items() if np.isfinite(v)})
        mlflow.set_tags({"data_window": s.meta["data_window"], "as_of": cfg.as_of.isoformat()})
        for name, table in trained.tables.items():
            table.to_csv(d / f"{name}.csv", index=False)
            mlflow.log_artifact(str(d / f"{name}.csv"), "evaluation")
        y = hold["paid_30d"].to_numpy()
        plots = [
            calibration_plot(trained.tables["calibration"], d / "calibration.png"),
            gains_plot(y, {"p_pay": hold["p_pay"].to_numpy(), "balance": hold["balance"].to_numpy()}, d / "gains.png"),
            importance_plot(s.spec.columns, s._payment.feature_importance("gain"), d / "feature_importance.png"),
        ]
        learners = trained.tables.get("channel_learners")
        if learners is not None and len(learners):
            chosen = str(s.meta.get("channel_learner", ""))
            plots.append(channel_learners_plot(learners, chosen, d / "channel_learners.png"))
        ud = trained.tables["uplift_by_decile"]
        if len(ud):
            plots.append(uplift_decile_plot({c: t for c, t in ud.groupby("channel")}, d / "uplift_by_decile.png"))
        for p in plots:
            mlflow.log_artifact(str(p), "plots")
            trained.plots[p.stem] = p
        (d / "model_card.md").write_text(model_card(trained, cfg))
        mlflow.log_artifact(str(d / "model_card.md"))
        bundle = d / "bundle.json"
        s.save(str(bundle))
        digest = write_digest_file(d / DIGEST_FILE, bundle, ENTRY_SOURCE)  # checked before every load
        mlflow.set_tag(DIGEST_TAG, digest)
        example = example_as_strings(s, hold.head(5))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_SOURCE),
            artifacts={BUNDLE_ARTIFACT: str(bundle), DIGEST_ARTIFACT: str(d / DIGEST_FILE)},
            signature=signature_for(s, hold.head(50)),
            input_example=example,
            pip_requirements=_requirements(),
        )
        run_id = run.info.run_id
    client = MlflowClient()
    new = {
        "auc": m["holdout_auc"],
        "policy_value": m["policy_value"],
        "policy_lo": m.get("policy_dr_lo", float("nan")),
        "policy_hi": m.get("policy_dr_hi", float("nan")),
        "logged_value": m.get("policy_logged_value", float("nan")),
    }

    def score_champion(uri: str) -> dict[str, float] | None:
        return _score_on_holdout(uri, hold, s.costs)

    version, decision = register_and_gate(
        client,
        cfg.model_name,
        info.model_uri,
        run_id,
        new,
        score_champion,
        cfg.gate,
        tags={"data_window": s.meta["data_window"], "as_of": cfg.as_of.isoformat(), DIGEST_TAG: digest},
    )
    return TrainResult(run_id, version, decision.promoted, decision.reason, m, info.model_uri)


def _score_on_holdout(uri: str, hold: pd.DataFrame, costs: dict[str, float]) -> dict[str, float] | None:
    """Re-score the current champion on the challenger's holdout rows (None when it cannot be loaded)."""
    from training.bundle_store import load_verified

    try:
        with tempfile.TemporaryDirectory() as tmp:  # verified before LightGBM reads a byte of it
            scorer, _ = load_verified(uri, tmp)
        pred = scorer.predict(hold)
    except Exception:  # an incompatible, broken or tampered champion: the gate then treats it as absent
        return None
    y = hold["paid_30d"].to_numpy().astype(int)
    ope = learned_policy_value(
        pred,
        hold,
        hold["action_next"].astype(str).to_numpy(),
        hold["propensity_used"].to_numpy(),
        hold["paid_amount_14d"].to_numpy(),
        costs,
    )
    return {
        "auc": safe_auc(y, pred["p_pay"].to_numpy()),
        "policy_value": ope["dr"]["value"] if ope else float("nan"),
    }


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["lightgbm", "pandas", "numpy", "scikit-learn", "mlflow", "pyarrow"]
    return [f"{p}=={version(p)}" for p in pkgs]


def summary_json(result: TrainResult) -> str:
    keys = [
        "holdout_auc",
        "holdout_auc_balance_only",
        "holdout_brier",
        "holdout_mean_predicted",
        "holdout_observed_rate",
        "policy_value",
        "policy_logged_value",
    ]
    return json.dumps({k: round(result.metrics[k], 4) for k in keys if k in result.metrics})


__all__ = ["ACTIONS", "TrainConfig", "Trained", "TrainResult", "train_bundle", "log_and_register", "Any"]
