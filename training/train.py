"""`payrank train`: snapshots → payment, share and channel models → holdout evaluation → MLflow → registry.

The run trains on everything the book knew on the as-of day and nothing after it (see training.windows).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.labels import build_snapshots
from features.schema import ACTIONS, CHANNELS, Book
from features.spec import FEATURE_COLUMNS, FeatureSpec
from training.amounts import paid_amounts
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
    fit_amount_model,
    fit_calibration,
    fit_channel_model,
    fit_payment_model,
    propensity_weights,
)
from training.policy_value import fit_contact_propensity, learned_policy_value, logged_propensity
from training.registry import Gate
from training.scorer import DEFAULT_COSTS, IsotonicMap, Scorer, sigmoid
from training.windows import Windows, check_no_overlap, plan_windows

Progress = Callable[[str, int, int], None]
CAPACITY_SHARE = 0.10  # "recovered dollars at capacity": the top 10% of holdout accounts


@dataclass
class TrainConfig:
    """What a training run needs beyond the book; defaults are the embedded ones."""

    as_of: date
    model_name: str = "payrank"
    experiment: str = "payrank"
    tracking_uri: str | None = None
    seed: int = 0
    num_threads: int = 0
    snapshot_step_days: int = 3
    max_rows_per_day: int = 40_000
    gate: Gate = field(default_factory=Gate)
    costs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    shuffle_labels: bool = False  # for tests of the promotion gate: a deliberately worse model


@dataclass
class Trained:
    """The fitted bundle and everything its evaluation produced."""

    scorer: Scorer
    windows: Windows
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]
    holdout: pd.DataFrame  # holdout feature rows with labels and predictions
    plots: dict[str, Path] = field(default_factory=dict)


def build_training_frame(
    book: Book, cfg: TrainConfig, progress: Progress | None = None
) -> tuple[pd.DataFrame, Windows]:
    """Snapshots on every slice's as-of days with 30/14-day labels, next-day actions and paid amounts."""
    first_day = pd.Timestamp(book.accounts["service_date"].min()).date()
    w = plan_windows(cfg.as_of, first_day, horizon=30, step=cfg.snapshot_step_days, n_fit=60, n_valid=4, n_calib=5)
    check_no_overlap(w)
    days = [d for s in w.slices().values() for d in s]
    cb = (lambda i, n: progress("snapshots", i, n)) if progress else None
    snaps = build_snapshots(
        book, days, horizons=(30, 14), progress=cb, max_rows_per_day=cfg.max_rows_per_day, seed=cfg.seed
    )
    snaps["paid_amount_30d"] = paid_amounts(book, snaps["account_id"], snaps["as_of"], 30)
    snaps["paid_amount_14d"] = paid_amounts(book, snaps["account_id"], snaps["as_of"], 14)
    slice_of = {pd.Timestamp(d): name for name, ds in w.slices().items() for d in ds}
    snaps["slice"] = pd.to_datetime(snaps["as_of"]).map(slice_of)  # one lookup per row, in C
    return snaps, w


def fit_bundle(snaps: pd.DataFrame, w: Windows, cfg: TrainConfig, progress: Progress | None = None) -> Scorer:
    """Fit the payment model (fit/valid), its calibration (calib), the share model and the channel model."""
    step = (lambda name, i: progress(name, i, 4)) if progress else (lambda name, i: None)
    spec = FeatureSpec.from_frame(snaps, FEATURE_COLUMNS)
    X = spec.apply(snaps)
    part = {s: (snaps["slice"] == s).to_numpy() for s in ("fit", "valid", "calib")}
    y30 = snaps["paid_30d"].to_numpy().astype(int)
    if cfg.shuffle_labels:
        y30 = np.random.default_rng(cfg.seed).permutation(y30)
    step("payment model", 0)
    booster = fit_payment_model(
        X[part["fit"]], y30[part["fit"]], X[part["valid"]], y30[part["valid"]], cfg.seed, cfg.num_threads
    )
    step("calibration", 1)
    raw_calib = sigmoid(booster.predict(X[part["calib"]], raw_score=True, num_threads=cfg.num_threads))
    calibration = (
        fit_calibration(raw_calib, y30[part["calib"]])
        if not cfg.shuffle_labels
        else IsotonicMap([0.0, 1.0], [float(y30.mean())] * 2)
    )
    step("share model", 2)
    fit_rows = part["fit"] | part["valid"]
    paid = fit_rows & (snaps["paid_30d"].to_numpy() == 1)
    share = snaps["paid_amount_30d"].to_numpy() / np.maximum(snaps["balance"].to_numpy(), 1.0)
    amount = fit_amount_model(X[paid], share[paid], cfg.seed, cfg.num_threads)
    step("channel model", 3)
    act = snaps["action_next"].astype(str).to_numpy()
    y14 = snaps["paid_14d"].to_numpy().astype(int)
    wts = propensity_weights(snaps["action_propensity"].to_numpy())
    wts = np.where(act == "none", 1.0, wts)
    # the channel model learns from fit and early-stopping days alike, with its own random validation split:
    # treated rows are scarce, and an effect model needs them more than a time-ordered stopping slice
    f = part["fit"] | part["valid"]
    channel = fit_channel_model(X[f], act[f], y14[f], wts[f], None, seed=cfg.seed, num_threads=cfg.num_threads)
    meta = {
        "as_of": cfg.as_of.isoformat(),
        "data_window": f"{min(w.fit)}..{cfg.as_of}",
        "windows": w.to_dict(),
        "rows": {s: int(m.sum()) for s, m in part.items()},
        "channel_fallbacks": dict(channel.fallback_),
    }
    return Scorer(
        spec=spec,
        payment_model=booster.model_to_string(),
        calibration=calibration,
        amount_model=amount.model_to_string() if amount is not None else None,
        channel=channel,
        costs=dict(cfg.costs),
        meta=meta,
    )


def evaluate_holdout(
    scorer: Scorer, snaps: pd.DataFrame, cfg: TrainConfig
) -> tuple[dict[str, float], dict, pd.DataFrame]:
    """Metrics, tables and the scored holdout, on rows never used for fitting or calibration."""
    hold = snaps[snaps["slice"] == "holdout"].reset_index(drop=True)
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
    ope = holdout_policy_value(scorer, snaps, hold, cfg)
    for est, vals in ope.items():
        for k, v in vals.items():
            metrics[f"policy_{est}_{k}"] = v
    metrics["policy_value"] = ope["dr"]["value"] if ope else float("nan")
    tables["policy_value"] = pd.DataFrame(ope).T.reset_index(names="estimator") if ope else pd.DataFrame()
    tables["uplift_by_decile"] = _uplift_deciles(hold)
    return metrics, tables, hold


def holdout_policy_value(
    scorer: Scorer, snaps: pd.DataFrame, hold: pd.DataFrame, cfg: TrainConfig
) -> dict[str, dict[str, float]]:
    """OPE of the bundle's policy on holdout account-days (propensity of "none" estimated on earlier slices)."""
    earlier = snaps["slice"].isin(["fit", "valid"]).to_numpy()
    X_all = scorer.matrix(snaps)
    contacted = snaps["action_next"].astype(str).to_numpy() != "none"
    prop_model = fit_contact_propensity(X_all[earlier], contacted[earlier], cfg.seed, cfg.num_threads)
    p_contact = prop_model.predict(scorer.matrix(hold), num_threads=cfg.num_threads)
    act = hold["action_next"].astype(str).to_numpy()
    prop = logged_propensity(act, hold["action_propensity"].to_numpy(), p_contact)
    hold["propensity_used"] = prop
    return learned_policy_value(hold, hold, act, prop, hold["paid_amount_14d"].to_numpy(), scorer.costs, seed=cfg.seed)


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


def train_bundle(book: Book, cfg: TrainConfig, progress: Progress | None = None) -> Trained:
    """Everything but MLflow: snapshots, fit, evaluate."""
    snaps, w = build_training_frame(book, cfg, progress)
    scorer = fit_bundle(snaps, w, cfg, progress)
    metrics, tables, hold = evaluate_holdout(scorer, snaps, cfg)
    scorer.meta["headline"] = {k: metrics[k] for k in ("holdout_auc", "holdout_brier", "policy_value") if k in metrics}
    return Trained(scorer=scorer, windows=w, metrics=metrics, tables=tables, holdout=hold)


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

    from training.model_card import model_card
    from training.plots import calibration_plot, gains_plot, importance_plot, uplift_decile_plot
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
        example = example_as_strings(s, hold.head(5))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
            artifacts={BUNDLE_ARTIFACT: str(bundle)},
            signature=signature_for(s, hold.head(50)),
            input_example=example,
            pip_requirements=_requirements(),
        )
        run_id = run.info.run_id
    client = MlflowClient()
    new = {"auc": m["holdout_auc"], "policy_value": m["policy_value"]}

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
        tags={"data_window": s.meta["data_window"], "as_of": cfg.as_of.isoformat()},
    )
    return TrainResult(run_id, version, decision.promoted, decision.reason, m, info.model_uri)


def _score_on_holdout(uri: str, hold: pd.DataFrame, costs: dict[str, float]) -> dict[str, float] | None:
    """Re-score the current champion on the challenger's holdout rows (None when it cannot be loaded)."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
        pred = model.scorer.predict(hold)
    except Exception:  # an incompatible or broken champion: the gate then treats it as absent
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
