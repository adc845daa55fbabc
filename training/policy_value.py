"""The action policy the bundle induces, and its off-policy value on logged account-days.

The learned policy picks, among the actions a guarantor can receive (consent and enrolment from the
features; "none" always), the one with the largest expected incremental dollars net of cost ("none" = 0).
Its value is estimated with IPS, SNIPS and DR on holdout account-days, in net dollars per account-day:
the dollars paid in the 14 days after the action minus the action's cost.

A book logs the deciding policy's propensity for the contacts it made, not for the days it chose to do
nothing. For those days the propensity of "none" is estimated as 1 − P̂(any contact | features), from a
classifier fit on the earlier (fit and early-stopping) slices; account-days whose logged contact carries no
propensity are left out.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.schema import ACTIONS, CHANNELS
from training.ope import compare_policies, deterministic_pi, evaluate_policy
from training.scorer import channel_values

CONSENT_FEATURES: dict[str, list[str]] = {
    "none": [],
    "call": [],
    "letter": [],
    "sms": ["has_mobile", "sms_consent"],
    "email": ["has_email", "email_consent"],
    "portal": ["portal_enrolled"],
}
MIN_NONE_PROPENSITY = 0.05


def receivable_actions(features: pd.DataFrame) -> pd.DataFrame:
    """Boolean frame over ACTIONS: can this guarantor receive it (number, address, consent, enrolment)?"""
    out = {}
    for a in ACTIONS:
        ok = np.ones(len(features), dtype=bool)
        for col in CONSENT_FEATURES[a]:
            ok &= features[col].to_numpy(dtype=float) > 0.5
        out[a] = ok
    return pd.DataFrame(out, index=features.index)


def action_values(pred: pd.DataFrame, costs: dict[str, float]) -> pd.DataFrame:
    """Expected incremental net dollars per action; "none" is the reference at 0."""
    values = channel_values(pred, costs)
    values.insert(0, "none", 0.0)
    return values


def best_action(values: pd.DataFrame, allowed: pd.DataFrame) -> pd.Series:
    """The allowed action with the largest value (ties go to the earlier action in ACTIONS, "none" first)."""
    masked = values[list(ACTIONS)].where(allowed[list(ACTIONS)].to_numpy(), -np.inf)
    return masked.idxmax(axis=1)


def crossfit_reward_model(
    X: pd.DataFrame,
    action: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    groups: np.ndarray,
    costs: dict[str, float],
    seed: int = 0,
    num_threads: int = 0,
    folds: int = 2,
) -> np.ndarray:
    """(n, ACTIONS) expected net dollars per action, each row predicted by a model fit on the other folds.

    The response P(pay | x, a) is an offset learner fit on the evaluation rows themselves (cross-fitted by
    `groups`), so it shares no data with the candidates it helps to compare; `amount` is the expected payment.
    """
    from training.uplift import OffsetUpliftLearner

    X = X.reset_index(drop=True)
    fold = np.asarray(pd.factorize(np.asarray(groups))[0]) % folds
    p = np.zeros((len(X), len(ACTIONS)))
    a = np.asarray(action).astype(str)
    for k in range(folds):
        tr, te = fold != k, fold == k
        learner = OffsetUpliftLearner(ACTIONS, seed=seed, num_threads=num_threads, backfit_passes=0)
        p[te] = learner.fit(X[tr], a[tr], np.asarray(y)[tr]).predict(X[te])[list(ACTIONS)].to_numpy()
    cost = np.array([costs.get(act, 0.0) for act in ACTIONS])
    return p * np.asarray(amount, dtype=float)[:, None] - cost


def fit_contact_propensity(X: pd.DataFrame, contacted: np.ndarray, seed: int = 0, num_threads: int = 0) -> lgb.Booster:
    """P(any contact on the next day | features): the logging policy's propensity of not contacting is 1 − this."""
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 50,
        "verbose": -1,
        "seed": seed,
        "num_threads": num_threads,
    }
    return lgb.train(params, lgb.Dataset(X, label=contacted.astype(int)), num_boost_round=150)


def logged_propensity(action: np.ndarray, logged: np.ndarray, p_contact: np.ndarray) -> np.ndarray:
    """Logged propensity where there is one ("none" too, from a decisions log); else 1 − P̂(contact) (floored) for
    "none"; NaN where unknown."""
    p = np.asarray(logged, dtype=float).copy()
    none = (np.asarray(action) == "none") & ~np.isfinite(p)
    p[none] = np.maximum(1.0 - np.asarray(p_contact, dtype=float)[none], MIN_NONE_PROPENSITY)
    return p


def learned_policy_value(
    pred: pd.DataFrame,
    features: pd.DataFrame,
    logged_action: np.ndarray,
    propensity: np.ndarray,
    reward_dollars: np.ndarray,
    costs: dict[str, float],
    n_boot: int = 200,
    seed: int = 0,
    reward_model: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """IPS/SNIPS/DR value in net dollars per account-day of the learned policy, and the logged policy's value.

    DR's reward model is the bundle's own prediction (p14_a × expected payment − cost) unless `reward_model`,
    an (n, ACTIONS) array of expected net dollars, is given: comparing several bundles with one shared reward
    model keeps each from being judged by its own optimism.
    """
    logged = np.asarray(logged_action).astype(str)
    prop = np.asarray(propensity, dtype=float)
    rows = np.isin(logged, ACTIONS) & np.isfinite(prop) & (prop > 0)
    if rows.sum() < 50:
        return {}
    p, f, acts = pred.loc[rows], features.loc[rows], logged[rows]
    cost = pd.Series(acts).map(costs).fillna(0.0).to_numpy(dtype=float)
    r = np.asarray(reward_dollars, dtype=float)[rows] - cost
    values = action_values(p, costs)
    target = best_action(values, receivable_actions(f)).to_numpy().astype(str)
    # reward model: expected net dollars of each action = p14_a × expected payment − cost_a
    q = (
        np.column_stack(
            [p[f"p14_{a}"].to_numpy() * p["expected_payment"].to_numpy() - costs.get(a, 0.0) for a in ACTIONS]
        )
        if reward_model is None
        else np.asarray(reward_model, dtype=float)[rows]
    )
    col = pd.Index(list(ACTIONS))
    idx = np.arange(len(q))
    result = evaluate_policy(
        reward=r,
        propensity=prop[rows],
        pi_logged=deterministic_pi(target, acts),
        q_logged=q[idx, col.get_indexer(acts)],
        q_target=q[idx, col.get_indexer(target)],
        n_boot=n_boot,
        seed=seed,
    )
    result["logged"] = {"value": float(r.mean()), "lo": float("nan"), "hi": float("nan"), "se": float("nan")}
    result["share_contacted"] = {
        "value": float(np.mean(target != "none")),
        "lo": float("nan"),
        "hi": float("nan"),
        "se": float("nan"),
    }
    return result


def compare_learned_policies(
    preds: dict[str, pd.DataFrame],
    features: pd.DataFrame,
    logged_action: np.ndarray,
    propensity: np.ndarray,
    reward_dollars: np.ndarray,
    costs: dict[str, float],
    reward_model: np.ndarray,
    reference: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per bundle's policy: DR and SNIPS value with intervals, and the DR gain over `reference`'s policy
    with a paired interval, in net dollars per account-day on the same logged rows (one shared reward model)."""
    logged = np.asarray(logged_action).astype(str)
    prop = np.asarray(propensity, dtype=float)
    rows = np.isin(logged, ACTIONS) & np.isfinite(prop) & (prop > 0)
    if rows.sum() < 50:
        raise ValueError("fewer than 50 holdout rows carry a propensity: the channel learners cannot be compared")
    acts = logged[rows]
    cost = pd.Series(acts).map(costs).fillna(0.0).to_numpy(dtype=float)
    r = np.asarray(reward_dollars, dtype=float)[rows] - cost
    q = np.asarray(reward_model, dtype=float)[rows]
    col, idx = pd.Index(list(ACTIONS)), np.arange(int(rows.sum()))
    allowed = receivable_actions(features.loc[rows])
    pi, q_target, contacted = {}, {}, {}
    for name, pred in preds.items():
        target = best_action(action_values(pred.loc[rows], costs), allowed).to_numpy().astype(str)
        pi[name] = deterministic_pi(target, acts)
        q_target[name] = q[idx, col.get_indexer(target)]
        contacted[name] = float(np.mean(target != "none"))
    result = compare_policies(r, prop[rows], pi, q[idx, col.get_indexer(acts)], q_target, reference, n_boot, seed=seed)
    table = pd.DataFrame([{"learner": name, **vals} for name, vals in result.items()])
    table["logged_value"] = float(r.mean())
    table["share_contacted"] = table["learner"].map(contacted)
    return table


__all__ = ["CHANNELS", "best_action", "learned_policy_value", "receivable_actions"]
