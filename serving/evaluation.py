"""`payrank evaluate`: the generator's scenarios as a test matrix, judged by the truth in dollars.

For each scenario: generate a book, train exactly as `payrank train` does (without MLflow), score the as-of day
as `payrank worklist` does, and compare with the truth the generator wrote (training.truth_metrics). The same
code runs in the tests (a reduced matrix), in `make eval` (all of it) and in docs/modeling.md's table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import ACTIONS, CHANNELS, Book
from serving.policy_config import PolicyConfig
from serving.scoring import score_book
from serving.worklist import build_worklist
from training.channel_models import CHANNEL_LEARNERS
from training.scorer import Scorer
from training.train import TrainConfig, Trained, train_bundle
from training.truth_metrics import call_list_capture, payment_ratios, policy_value_ratio, true_action_values

EVAL_END = date(2026, 9, 30)
EVAL_GUARANTORS = 10_000
EVAL_SEED = 11
CALL_SHARE = 0.05  # the call list's capacity: 5% of the open accounts
Progress = Callable[[str, int, int], None]


@dataclass
class ScenarioResult:
    """One cell row of the matrix: a scenario trained with some candidate learners, judged by the truth."""

    scenario: str
    learners: tuple[str, ...]
    metrics: dict[str, float | str]
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    trained: Trained | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "learners": list(self.learners),
            "metrics": self.metrics,
            "comparison": self.comparison.to_dict(orient="records"),
        }


def evaluate_scenario(
    scenario: str,
    guarantors: int = EVAL_GUARANTORS,
    seed: int = EVAL_SEED,
    learners: Sequence[str] = tuple(CHANNEL_LEARNERS),
    num_threads: int = 0,
    progress: Progress | None = None,
) -> ScenarioResult:
    """Generate, train, score and compare with the truth (see the module docstring)."""
    from features.generate import generate_book

    book, truth = generate_book(guarantors, seed, EVAL_END, scenario=scenario)
    cfg = TrainConfig(as_of=EVAL_END, seed=seed, num_threads=num_threads, channel_learners=tuple(learners))
    trained = train_bundle(book, cfg, progress)
    metrics = truth_metrics(book, truth, trained.scorer, cfg.as_of, cfg.num_threads, trained.metrics)
    metrics["scenario"] = scenario
    return ScenarioResult(scenario, tuple(learners), metrics, trained.tables["channel_learners"], trained)


def truth_metrics(
    book: Book,
    truth: pd.DataFrame,
    scorer: Scorer,
    as_of: date,
    num_threads: int = 0,
    holdout_metrics: dict[str, float] | None = None,
) -> dict[str, float | str]:
    """Score `as_of` with `scorer` and the default contact rules as the worklist does; compare with the truth."""
    policy = PolicyConfig()
    scored = score_book(book, as_of, scorer, policy, "evaluation", num_threads=num_threads, reasons=False)
    s = scored.scores
    t = s[["account_id"]].merge(truth, on="account_id", how="left")
    if t["p_pay_30d"].isna().any():
        raise ValueError("the truth does not cover every open account of the as-of day")
    learner = scorer.meta.get("channel_learner", "offset")  # bundles from before the comparison had only that one
    out: dict[str, float | str] = {"open_accounts": float(len(s)), "channel_learner": learner}
    out |= {f"pay_{k}": v for k, v in payment_ratios(s["p_pay"].to_numpy(), t["p_pay_30d"].to_numpy()).items()}
    values = true_action_values(t, scorer.costs)
    allowed = scored.policy.allowed[list(CHANNELS)].to_numpy(dtype=bool)
    allowed = np.column_stack([np.ones(len(s), bool), allowed])
    ratio = policy_value_ratio(s["best_channel"].to_numpy(), values, allowed)
    out |= {f"policy_{k}": v for k, v in ratio.items()}
    logged = t[[f"policy_{a}" for a in ACTIONS]].to_numpy()
    out["policy_logged"] = float((logged * values).sum())
    out["policy_logged_normalised"] = (out["policy_logged"] - ratio["random"]) / (ratio["oracle"] - ratio["random"])
    k = max(1, int(round(CALL_SHARE * len(s))))
    listed, _ = build_worklist(scored, k, policy)
    position = pd.Series(np.arange(len(s)), index=s["account_id"].to_numpy())
    rows = position.loc[listed["account_id"].to_numpy()].to_numpy()
    capture = call_list_capture(rows, values, allowed, s["guarantor_id"].to_numpy(), k)
    out |= {f"calls_{key}": v for key, v in capture.items()}
    out["calls_listed"] = float(len(listed))
    out["calls_paying_for_themselves"] = float((~listed["below_break_even"].astype(bool)).sum())
    pred = scorer.predict(scored.features, num_threads=num_threads)
    uplift = np.column_stack([(pred[f"p14_{a}"] - pred["p14_none"]).to_numpy() for a in CHANNELS])
    out["mean_abs_uplift"] = float(np.abs(uplift[allowed[:, 1:]]).mean())
    m = holdout_metrics or {}
    for key in ("holdout_auc", "policy_value", "policy_dr_lo", "policy_logged_value"):
        out[key] = float(m.get(key, float("nan")))
    return out


MATRIX_COLUMNS = {
    "pay_auc_ratio": "AUC ÷ truth's",
    "pay_brier_ratio": "Brier ÷ truth's",
    "policy_normalised": "policy value (normalised)",
    "policy_logged_normalised": "logged policy (normalised)",
    "calls_capture": "top-5% calls capture",
    "calls_paying_for_themselves": "listed calls expected to pay",
    "mean_abs_uplift": "mean |uplift|",
    "channel_learner": "learner chosen",
}


def matrix_markdown(results: Sequence[dict[str, object]]) -> str:
    """One row per (scenario, candidate set): the headline truth metrics."""
    head = "| scenario | candidates | " + " | ".join(MATRIX_COLUMNS.values()) + " |"
    lines = [head, "|" + "---|" * (len(MATRIX_COLUMNS) + 2)]
    for r in results:
        m = r["metrics"]
        assert isinstance(m, dict)
        cells = []
        for key in MATRIX_COLUMNS:
            v = m.get(key, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append(f"| {r['scenario']} | {','.join(r['learners'])} | " + " | ".join(cells) + " |")  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[ScenarioResult], path: Path) -> None:
    """The matrix as JSON (every metric) next to a markdown table of the headline ones; whole or absent."""
    from features.io import atomic_write_text

    records = [r.to_dict() for r in results]
    atomic_write_text(path, json.dumps(records, indent=1, default=float))
    atomic_write_text(path.with_suffix(".md"), matrix_markdown(records))
