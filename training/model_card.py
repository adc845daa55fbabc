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
    feats = "\n".join(f"- `{c}`: {FEATURE_DESCRIPTIONS.get(c, '')}" for c in s.spec.columns)
    return f"""# payrank model card

## What it predicts
- `p_pay`: calibrated probability of any patient payment in the 30 days after the as-of day.
- `p14_<action>`: probability of a payment in 14 days if that single action is taken the next day
  (offset T-learner on LightGBM; see docs/modeling.md).
- `expected_payment`: balance × predicted share paid, given a payment.

## Data window
- trained as of {cfg.as_of}; fit days {min(w.fit)} … {max(w.fit)} ({len(w.fit)} days), early stopping
  {min(w.valid)} … {max(w.valid)}, calibration {min(w.calib)} … {max(w.calib)},
  holdout {min(w.holdout)} … {max(w.holdout)} (never used for fitting or calibration).
- rows: {s.meta["rows"]}

## Holdout metrics
{_table(headline)}

## Calibration (deciles)
{_table(trained.tables["calibration"])}

## Channel policy value (14-day payment rate on logged contacts with propensities)
{_table(trained.tables["policy_value"])}

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
