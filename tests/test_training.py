"""Model behaviour against the generator's truth, calibration, leakage, the pyfunc bundle and the registry."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import build_features
from features.schema import CHANNELS
from tests.conftest import BOOK_END
from training.policy_value import action_values, best_action, receivable_actions
from training.registry import Gate, decide
from training.windows import check_no_overlap, plan_windows


@pytest.fixture(scope="module")
def on_truth(trained_session):
    """Features, predictions and truth for every account open on the book's last day."""
    s = trained_session
    feats = build_features(s.book, BOOK_END)
    pred = s.trained.scorer.predict(feats)
    frame = pd.concat([feats, pred], axis=1).merge(s.truth, on="account_id", suffixes=("", "_true"))
    assert len(frame) == len(feats) == len(s.truth)
    return frame


def expected_auc(score: np.ndarray, p_true: np.ndarray) -> float:
    """AUC of `score` expected over outcomes drawn from the true probabilities (each row twice, weighted)."""
    y = np.r_[np.ones(len(p_true)), np.zeros(len(p_true))]
    return float(roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p_true, 1 - p_true]))


def true_value(frame: pd.DataFrame, actions: np.ndarray, costs: dict[str, float]) -> float:
    """True expected incremental dollars net of cost of taking `actions` (one per row)."""
    total = 0.0
    for ch in CHANNELS:
        rows = actions == ch
        lift = frame[f"p_pay_14d_{ch}"] - frame["p_pay_14d_none"]
        total += float(((lift * frame["expected_payment_true"])[rows] - costs[ch]).sum())
    return total


def test_payment_model_beats_balance_and_nears_the_truth(trained_session, on_truth):
    m = trained_session.result.metrics
    assert m["holdout_auc"] > m["holdout_auc_balance_only"] + 0.15
    model = expected_auc(on_truth["p_pay"].to_numpy(), on_truth["p_pay_30d"].to_numpy())
    oracle = expected_auc(on_truth["p_pay_30d"].to_numpy(), on_truth["p_pay_30d"].to_numpy())
    balance = expected_auc(on_truth["balance"].to_numpy(), on_truth["p_pay_30d"].to_numpy())
    assert model / oracle > 0.93, (model, oracle)
    assert model - 0.5 > 2 * (balance - 0.5), (model, balance)


def test_calibrated_on_holdout_and_on_truth(trained_session, on_truth):
    m = trained_session.result.metrics
    assert abs(m["holdout_mean_predicted"] - m["holdout_observed_rate"]) < 0.03
    assert abs(on_truth["p_pay"].mean() - on_truth["p_pay_30d"].mean()) < 0.05
    cal = trained_session.trained.tables["calibration"]
    assert (cal["mean_predicted"] - cal["observed"]).abs().max() < 0.12


@pytest.mark.parametrize("channel", ["call", "sms", "letter"])
def test_predicted_uplift_tracks_true_uplift(on_truth, channel):
    ok = receivable_actions(on_truth)[channel].to_numpy()
    predicted = (on_truth[f"p14_{channel}"] - on_truth["p14_none"])[ok]
    truth = (on_truth[f"p_pay_14d_{channel}"] - on_truth["p_pay_14d_none"])[ok]
    assert np.corrcoef(predicted, truth)[0, 1] > 0.15


def test_learned_policy_beats_simple_policies_in_true_dollars(trained_session, on_truth):
    costs = trained_session.trained.scorer.costs
    allowed = receivable_actions(on_truth)
    learned = best_action(action_values(on_truth, costs), allowed).to_numpy()
    cheapest = np.select(
        [allowed["portal"], allowed["email"], allowed["sms"]], ["portal", "email", "sms"], default="letter"
    )
    by_balance = np.where(on_truth["balance"].rank(ascending=False) <= 0.2 * len(on_truth), "call", "none")
    v_learned = true_value(on_truth, learned, costs)
    v_cheap = true_value(on_truth, cheapest, costs)
    v_balance = true_value(on_truth, by_balance, costs)
    assert v_learned > 1.1 * v_cheap, (v_learned, v_cheap)
    assert v_learned > v_balance + 0.5 * abs(v_balance), (v_learned, v_balance)


def test_holdout_policy_value_is_estimated_with_intervals(trained_session):
    m = trained_session.result.metrics
    for est in ("ips", "snips", "dr"):
        assert m[f"policy_{est}_lo"] <= m[f"policy_{est}_value"] <= m[f"policy_{est}_hi"]
    assert np.isfinite(m["policy_value"])


def test_windows_never_overlap_and_stop_before_as_of():
    w = plan_windows(BOOK_END, BOOK_END - timedelta(days=449), horizon=30, step=1)
    check_no_overlap(w)
    assert max(w.holdout) + timedelta(days=30) == BOOK_END
    assert max(w.fit) + timedelta(days=30) <= min(w.valid)
    assert max(w.valid) + timedelta(days=30) <= min(w.holdout)
    # the served model's window is the most recent labelled one, and its calibration the latest days of it
    assert max(w.final) == max(w.holdout) and len(w.final) == 180
    assert set(w.recent) <= set(w.final) and min(w.recent) == max(w.final) - timedelta(days=29)
    assert len(w.holdout) == 14 and w.days() == sorted(set(w.fit) | set(w.valid) | set(w.holdout) | set(w.final))


def test_overlapping_label_windows_fail():
    w = plan_windows(BOOK_END, BOOK_END - timedelta(days=449))
    leaky = dataclasses.replace(w, fit=(*w.fit, min(w.valid) - timedelta(days=5)))
    with pytest.raises(ValueError, match="overlaps"):
        check_no_overlap(leaky)
    late = dataclasses.replace(w, final=(*w.final, BOOK_END - timedelta(days=10)))
    with pytest.raises(ValueError, match="final label window past"):
        check_no_overlap(late)


def test_too_short_a_book_is_refused_clearly():
    with pytest.raises(ValueError, match="too late"):
        plan_windows(date(2026, 9, 30), date(2026, 6, 1))


def test_training_ignores_everything_after_as_of():
    """The same model whether or not the book holds rows after the as-of day: no feature or label leaks."""
    from features.generate import generate_book
    from training.train import TrainConfig, train_bundle

    book, _ = generate_book(2500, seed=5, end_date=BOOK_END)
    as_of = BOOK_END - timedelta(days=45)
    cut = pd.Timestamp(as_of)
    accounts = book.accounts[book.accounts["service_date"] <= cut]
    truncated = type(book)(
        guarantors=book.guarantors,
        accounts=accounts,
        transactions=book.transactions[book.transactions["posted_date"] <= cut],
        contacts=book.contacts[book.contacts["contacted_at"] < cut + pd.Timedelta(days=1)],
        holds=book.holds[book.holds["start_date"] <= cut].assign(
            end_date=lambda h: h["end_date"].where(h["end_date"] <= cut)
        ),
    )
    cfg = TrainConfig(as_of=as_of, num_threads=1, channel_learners=("offset",))  # leakage is the rows', not a learner's
    full = train_bundle(book, cfg).scorer
    past = train_bundle(truncated, cfg).scorer
    assert full.payment_model == past.payment_model
    assert full.calibration == past.calibration


EVIDENCE = {"policy_lo": 11.0, "logged_value": 10.0}  # the challenger's policy beats the logged one


@pytest.mark.parametrize(
    ("new", "old", "promoted"),
    [
        ({"auc": 0.80, "policy_value": 10.0, **EVIDENCE}, None, True),
        ({"auc": 0.80, "policy_value": 10.0, **EVIDENCE}, {"auc": 0.80, "policy_value": 10.0}, True),
        ({"auc": 0.796, "policy_value": 10.0, **EVIDENCE}, {"auc": 0.80, "policy_value": 10.0}, True),
        ({"auc": 0.794, "policy_value": 11.0, **EVIDENCE}, {"auc": 0.80, "policy_value": 10.0}, False),
        ({"auc": 0.85, "policy_value": 9.9, **EVIDENCE}, {"auc": 0.80, "policy_value": 10.0}, False),
        ({"auc": float("nan"), "policy_value": 10.0, **EVIDENCE}, {"auc": 0.80, "policy_value": 10.0}, False),
        # better on every number, but its policy is not estimated to beat the logged policy: no replacement
        (
            {"auc": 0.90, "policy_value": 20.0, "policy_lo": 9.5, "logged_value": 10.0},
            {"auc": 0.8, "policy_value": 1},
            False,
        ),
        ({"auc": 0.90, "policy_value": 20.0}, {"auc": 0.80, "policy_value": 10.0}, False),  # no evidence at all
    ],
)
def test_promotion_gate(new, old, promoted):
    assert decide(new, old, Gate(max_auc_drop=0.005, max_value_drop=0.0))[0] is promoted


def test_a_first_model_without_policy_evidence_is_promoted_with_a_warning():
    ok, reason = decide({"auc": 0.8, "policy_value": 5.0, "policy_lo": 4.0, "logged_value": 6.0}, None, Gate())
    assert ok and "warning" in reason and "not estimated to beat the logged policy" in reason
    ok, reason = decide({"auc": 0.8, "policy_value": 5.0, "policy_lo": 7.0, "logged_value": 6.0}, None, Gate())
    assert ok and "warning" not in reason
    ok, reason = decide(
        {"auc": 0.8, "policy_value": 5.0, "policy_lo": 4.0, "logged_value": 6.0},
        {"auc": 0.7, "policy_value": 1.0},
        Gate(),
    )
    assert not ok and "DR lower bound 4.0000 vs logged 6.0000" in reason
