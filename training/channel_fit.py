"""Fitting the channel-response candidates, comparing them by off-policy value, and refitting the winner.

Each candidate learner (training.channel_models.CHANNEL_LEARNERS) is fit on the account-days before the holdout
and scored on the holdout by the value of the policy it induces (DR and SNIPS, bootstrap intervals; see
training.policy_value). The run keeps the candidate with the best DR lower bound and refits it on every labelled
day. Contacts are a few percent of account-days, so the channel models keep every contacted row and a sample
of the no-contact rows (`none_per_contact` of them per contacted row), weighted by the inverse sampling rate
where a learner needs population shares (propensities).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schema import ACTIONS
from training.channel_models import CHANNEL_LEARNERS, ChannelModel
from training.uplift import OffsetUpliftLearner
from training.uplift_dr import DRLearner
from training.uplift_outcomes import OutcomeUpliftLearner

NONE_PER_CONTACT = 2.0
REFERENCE_ORDER = ("outcome", "offset", "dr")  # the default learner first: the one the scenario matrix favours
BACKFIT = 0  # no backfitting pass in the pipeline: the candidates share one no-contact model instead


@dataclass
class ChannelRows:
    """Aligned rows a channel learner fits on."""

    X: pd.DataFrame
    action: np.ndarray
    outcome: np.ndarray
    y: np.ndarray
    logged_propensity: np.ndarray
    groups: np.ndarray
    weight: np.ndarray  # 1 / the row's sampling rate


def channel_rows(
    snaps: pd.DataFrame, X: pd.DataFrame, mask: np.ndarray, seed: int, none_per_contact: float = NONE_PER_CONTACT
) -> ChannelRows:
    """The rows of `mask`: every contacted one, and a seeded sample of the no-contact ones."""
    action = snaps["action_next"].astype(str).to_numpy()
    contacted = mask & (action != "none")
    none = mask & (action == "none")
    rate = min(1.0, none_per_contact * max(int(contacted.sum()), 1) / max(int(none.sum()), 1))
    keep = contacted | (none & (np.random.default_rng([seed, 17]).random(len(action)) < rate))
    idx = np.flatnonzero(keep)
    return ChannelRows(
        X=X.iloc[idx].reset_index(drop=True),
        action=action[idx],
        outcome=snaps["outcome_next"].astype(object).to_numpy()[idx],
        y=snaps["paid_14d"].to_numpy(dtype=float)[idx],
        logged_propensity=snaps["action_propensity"].to_numpy(dtype=float)[idx],
        groups=snaps["guarantor_id"].to_numpy()[idx],
        weight=np.where(action[idx] == "none", 1.0 / rate, 1.0),
    )


def _outcome_learner(seed: int, threads: int) -> Callable[..., OutcomeUpliftLearner]:
    def fit(X: pd.DataFrame, a: np.ndarray, o: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> OutcomeUpliftLearner:
        return OutcomeUpliftLearner(ACTIONS, seed=seed, num_threads=threads, backfit_passes=BACKFIT).fit(X, a, o, y)

    return fit


def fit_candidate(
    name: str, rows: ChannelRows, seed: int, threads: int, fitted: dict[str, ChannelModel] | None = None
) -> ChannelModel:
    """Fit one candidate learner on `rows`. Candidates already `fitted` on the same rows lend their parts: the
    offset learner its no-contact model to the outcome learner, the outcome learner its response to the DR-learner.
    """
    fitted = fitted or {}
    if name == "offset":
        learner = OffsetUpliftLearner(ACTIONS, seed=seed, num_threads=threads, backfit_passes=BACKFIT)
        return learner.fit(rows.X, rows.action, rows.y)
    if name == "outcome":
        control = fitted.get("offset")
        learner = OutcomeUpliftLearner(ACTIONS, seed=seed, num_threads=threads, backfit_passes=BACKFIT)
        return learner.fit(rows.X, rows.action, rows.outcome, rows.y, control_from=control)  # type: ignore[arg-type]
    if name == "dr":
        base = fitted.get("outcome") or fit_candidate("outcome", rows, seed, threads, fitted)
        return DRLearner(ACTIONS, seed=seed, num_threads=threads).fit(
            rows.X,
            rows.action,
            rows.outcome,
            rows.y,
            rows.logged_propensity,
            rows.groups,
            base=base,
            fit_outcome_model=_outcome_learner(seed, threads),
            weight=rows.weight,
        )
    raise ValueError(f"unknown channel learner {name!r}: one of {', '.join(CHANNEL_LEARNERS)}")


def fit_candidates(
    names: list[str], rows: ChannelRows, seed: int, threads: int, progress: Callable[[str], None] | None = None
) -> dict[str, ChannelModel]:
    """Every named candidate on the same rows, in the order that lets them share parts (offset, outcome, dr)."""
    unknown = [n for n in names if n not in CHANNEL_LEARNERS]
    if unknown or not names:
        raise ValueError(f"channel learners {unknown or names}: choose from {', '.join(CHANNEL_LEARNERS)}")
    fitted: dict[str, ChannelModel] = {}
    for name in sorted(names, key=list(CHANNEL_LEARNERS).index):
        if progress is not None:
            progress(name)
        fitted[name] = fit_candidate(name, rows, seed, threads, fitted)
    return {n: fitted[n] for n in names}


def reference_learner(names: list[str]) -> str:
    """The learner others must beat: the first of REFERENCE_ORDER among the candidates."""
    return next(n for n in REFERENCE_ORDER if n in names)


def choose(comparison: pd.DataFrame) -> str:
    """The candidate with the best lower bound of its DR gain over the reference (whose gain is 0 by definition):
    another learner replaces the reference only when the holdout says, with confidence, that its policy is better.
    """
    ranked = comparison.sort_values(["gain_lo", "gain", "learner"], ascending=[False, False, True], kind="stable")
    return str(ranked["learner"].iloc[0])
