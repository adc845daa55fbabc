"""Decisions with exploration: every propensity known ("none" included), never against a contact rule, its price
in expected dollars right on average, and a second training round on logs made this way closer to the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.generate import generate_book
from features.generate_logged import generate_logged_book
from features.labels import build_snapshots
from features.schema import CHANNELS
from features.spec import FEATURE_COLUMNS, FeatureSpec
from serving.exploration import Exploration, check_allowed, decide_day
from serving.policy_config import PolicyConfig
from serving.scoring import score_book
from serving.worklist import build_worklist
from tests.conftest import BOOK_END
from training.channel_fit import channel_rows, fit_candidate
from training.policy_value import receivable_actions

CAPACITY = 60
DAY = (pd.Timestamp(BOOK_END) + pd.Timedelta(days=1)).date()


@pytest.fixture(scope="module")
def scored(trained_session):
    s = trained_session
    return score_book(s.book, BOOK_END, s.trained.scorer, PolicyConfig(), "payrank/test", reasons=False)


def decide(scored, share=0.05, band=0.1, seed=0):
    exploration = Exploration(share, band, seed)
    candidates, _ = build_worklist(scored, CAPACITY + exploration.band(CAPACITY), PolicyConfig())
    return decide_day(scored, candidates, CAPACITY, exploration, DAY), candidates


def test_every_open_account_gets_a_decision_with_its_probability(scored):
    d, candidates = decide(scored)
    dec = d.decisions
    assert len(dec) == len(scored.scores) and dec["account_id"].is_unique
    assert ((dec["propensity"] > 0) & (dec["propensity"] <= 1)).all()
    assert set(dec["action"]) <= {"none", *CHANNELS} and (dec["action"] == "none").any()
    check_allowed(dec, scored, candidates)  # exploration never picks what a contact rule forbids
    # calls: exactly the capacity; the sure top with propensity 1, the band drawn with b/m
    calls = dec[dec["action"] == "call"]
    assert len(calls) == CAPACITY == len(d.calls)
    b = d.band
    band_accounts = candidates["account_id"].iloc[CAPACITY - b :]
    assert b == 6 and set(calls["propensity"].round(9)) == {1.0, round(b / len(band_accounts), 9)}
    assert set(calls.loc[calls["propensity"] < 1, "account_id"]) <= set(band_accounts)
    # the others: (1 - share) 1[greedy] + share / |allowed| (times P(not called) in the band)
    others = dec[~dec["account_id"].isin(candidates["account_id"])].set_index("account_id")
    allowed = scored.policy.allowed.set_index("account_id").loc[others.index]
    n_allowed = 1 + allowed[["sms", "email", "letter", "portal"]].sum(axis=1).to_numpy()
    want = 0.95 * (others["action"] == others["greedy_action"]).to_numpy() + 0.05 / n_allowed
    np.testing.assert_allclose(others["propensity"].to_numpy(), want, rtol=1e-12)
    explored = others["explored"].mean()
    assert 0.02 < explored < 0.05, explored  # share × (1 - 1/|allowed|)


def test_no_exploration_is_the_greedy_policy_and_costs_nothing(scored):
    d, candidates = decide(scored, share=0.0, band=0.0)
    assert not d.decisions["explored"].any() and (d.decisions["propensity"] == 1).all()
    assert d.cost == 0.0
    assert list(d.calls["account_id"]) == list(candidates["account_id"].head(CAPACITY))


def test_the_reported_cost_is_the_expected_dollars_given_up(scored):
    """The expected price matches the average realised one over many days' draws (model dollars)."""
    first, _ = decide(scored, seed=0)
    assert first.cost > 0 and first.cost_calls > 0 and first.cost_other > 0
    realised = []
    for seed in range(60):
        d, _ = decide(scored, seed=seed)
        assert d.cost == pytest.approx(first.cost)  # the expectation does not depend on the draw
        realised.append(float((d.decisions["greedy_value"] - d.decisions["value"]).sum()))
    mean, se = np.mean(realised), np.std(realised) / np.sqrt(len(realised))
    assert abs(mean - first.cost) < 4 * se + 0.01 * first.cost, (mean, se, first.cost)
    total = float(first.decisions["greedy_value"].sum())
    assert first.cost < 0.1 * total  # a small price next to the day's expected value


def test_the_same_day_decides_the_same_way_again(scored):
    a, _ = decide(scored, seed=3)
    b, _ = decide(scored, seed=3)
    c, _ = decide(scored, seed=4)
    pd.testing.assert_frame_equal(a.decisions, b.decisions)
    assert not a.decisions["action"].equals(c.decisions["action"])


# ---- learning from logs made this way ------------------------------------------------------------------------

SIM_GUARANTORS, SIM_DAYS, EXPLORE_DAYS, SIM_SHARE, SIM_SEED = 8000, 300, 150, 0.2, 22
SIM_END = pd.Timestamp("2026-09-30")


def channel_model(book):
    """The channel model as training fits it (training.channel_fit: every contacted row, a sample of the others,
    the default outcome learner) on snapshots every 3 days of the explored stretch."""
    days = [SIM_END - pd.Timedelta(days=d) for d in range(15, EXPLORE_DAYS - 1, 3)]
    snaps = build_snapshots(book, days, horizons=(14,))
    act = snaps["action_next"].astype(str).to_numpy()
    prop = snaps["action_propensity"].to_numpy()
    spec = FeatureSpec.from_frame(snaps, FEATURE_COLUMNS)
    rows = channel_rows(snaps, spec.apply(snaps), np.ones(len(snaps), dtype=bool), seed=0)
    return spec, fit_candidate("outcome", rows, seed=0, threads=1), float(np.isfinite(prop[act == "none"]).mean())


@pytest.mark.slow
def test_a_second_round_on_explored_logs_estimates_channel_effects_closer_to_the_truth():
    """Same population and history; the last 150 days decided by the book's own policy (round 1: the historic logs)
    or by it with exploration and every decision logged, "none" included (round 2). Both channel models are fit the
    same way and judged on the same accounts against the generator's true per-channel effects."""
    historic, _ = generate_book(SIM_GUARANTORS, seed=SIM_SEED, end_date=SIM_END, days=SIM_DAYS)
    logged, truth = generate_logged_book(
        SIM_GUARANTORS, seed=SIM_SEED, end_date=SIM_END, days=SIM_DAYS, explore_days=EXPLORE_DAYS, share=SIM_SHARE
    )
    assert logged.decisions["propensity"].between(0, 1, inclusive="right").all() and len(logged.decisions) > 1e5
    rounds = {"historic": channel_model(historic), "explored": channel_model(logged)}
    assert rounds["historic"][2] == 0.0 and rounds["explored"][2] > 0.85  # "none" propensities: unknown / logged
    ev = build_features(logged, SIM_END).merge(truth, on="account_id", suffixes=("", "_true"))
    ok = receivable_actions(ev)
    error = {}
    for name, (spec, model, _) in rounds.items():
        p = model.predict(spec.apply(ev), num_threads=1)
        error[name] = {}
        for ch in CHANNELS:
            rows = ok[ch].to_numpy()
            predicted = (p[ch] - p["none"]).to_numpy()[rows].mean()
            true = (ev[f"p_pay_14d_{ch}"] - ev["p_pay_14d_none"]).to_numpy()[rows].mean()
            error[name][ch] = abs(predicted - true)
    mean = {name: float(np.mean(list(e.values()))) for name, e in error.items()}
    print("average channel-effect error (14-day payment probability):", mean, error)
    assert mean["explored"] < 0.6 * mean["historic"], error
    assert sum(error["explored"][ch] < error["historic"][ch] for ch in CHANNELS) >= 4, error
