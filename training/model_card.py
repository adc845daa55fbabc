"""The model card: a markdown artifact a reviewer reads before a model goes live."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.spec import FEATURE_DESCRIPTIONS


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():  # a handful of summary rows, for display only
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def model_card(trained: Any, cfg: Any) -> str:
    """Data window, features, metrics, subgroups, limits."""
    s, m, w = trained.scorer, trained.metrics, trained.windows
    headline = pd.DataFrame(
        [{"metric": k.removeprefix("holdout_"), "value": float(v)} for k, v in m.items() if k.startswith("holdout_")]
    )
    seen = "; ".join(f"{k}: {v}" for k, v in s.meta.get("seen_by", {}).items())
    feats = "\n".join(f"- `{c}`: {FEATURE_DESCRIPTIONS.get(c, '')}" for c in s.spec.columns)
    return f"""# payrank model card

## What it predicts
- `p_pay`: calibrated probability of any patient payment in the 30 days after the as-of day.
- `p14_<action>`: probability of a payment in 14 days if that single action is taken the next day
  (channel learner `{s.meta.get("channel_learner", "?")}`, chosen by policy value among
  {", ".join(s.meta.get("channel_candidates", []))}; see docs/modeling.md).
- `expected_payment`: balance × predicted share paid, given a payment.

## Data window: which rows each part saw
- trained as of {cfg.as_of}. Selection: payment trees on as-of days {min(w.fit)} … {max(w.fit)} ({len(w.fit)}
  days), iterations and the evaluation calibration on {min(w.valid)} … {max(w.valid)}; channel candidates on
  every day before the holdout; holdout {min(w.holdout)} … {max(w.holdout)} (evaluation only).
- Served bundle: {seen}
- rows: {s.meta["rows"]}

## Holdout metrics
{_table(headline)}

## Calibration (deciles)
{_table(trained.tables["calibration"])}

## Channel policy value (net dollars per account-day on the holdout, DR / SNIPS / IPS with 95% intervals)
{_table(trained.tables["policy_value"])}

## Channel learners compared (the run keeps the best DR lower bound)
{_table(trained.tables.get("channel_learners", pd.DataFrame()))}

## Subgroups (fairness review)
{_table(trained.tables["subgroups"])}

## Features
{feats}

## Known limits
- Trained on one hospital's history; a new book needs its own run and a look at the subgroup table.
- Channel effects are learned where a channel was used; where it never was (no consent), the contact policy
  forbids it anyway. Effects rest on the features carrying what drove past choices.
- The policy value covers contacted account-days with logged propensities only ("which channel, given a
  contact"), since a book logs no propensity for not contacting.
- No clinical detail (diagnosis, procedure) is used or produced; reason codes come from ledger and outreach
  history only.
"""
