"""Model behaviour against the generator's truth, per scenario: the reduced matrix `make test` runs.

`make eval` runs every scenario (docs/modeling.md holds the whole matrix, the old learner beside the new); here
the default world comes from the session's trained bundle and the null world is trained once more. The thresholds
are the matrix's numbers less a margin, and each is stated next to the issue's target where they differ.
"""

from __future__ import annotations

import pytest

from serving.evaluation import evaluate_scenario, truth_metrics
from tests.conftest import BOOK_END, TRAIN_THREADS


@pytest.fixture(scope="module")
def default_world(trained_session) -> dict:
    s = trained_session
    return truth_metrics(s.book, s.truth, s.trained.scorer, BOOK_END, 1, s.trained.metrics)


@pytest.fixture(scope="module")
def null_world() -> dict:
    # 5,000 guarantors (the matrix uses 10,000): half the training time, and a null world needs no precision
    return evaluate_scenario("null", guarantors=5_000, num_threads=TRAIN_THREADS).metrics


def test_payment_model_against_the_truth(default_world):
    m = default_world
    # issue target 0.95 × the truth's AUC; what the book's features allow is ≈0.945-0.97 (docs/modeling.md)
    assert m["pay_auc_ratio"] > 0.935, m["pay_auc_ratio"]
    assert m["pay_brier_ratio"] < 1.16, m["pay_brier_ratio"]  # issue target 1.10
    assert abs(m["pay_mean_predicted"] - m["pay_mean_true"]) < 0.03


def test_channel_policy_against_the_truth(default_world):
    m = default_world
    assert m["policy_normalised"] > 0.72, m["policy_normalised"]  # issue target 0.80; the old learner: 0.63
    assert m["policy_normalised"] > m["policy_logged_normalised"] + 0.3  # far better than the historic policy


def test_the_call_list_captures_true_incremental_dollars(default_world):
    m = default_world
    assert m["calls_listed"] == m["calls_k"]  # the list fills the capacity
    assert m["calls_capture"] > 0.45, m["calls_capture"]  # issue target 0.75; the old learner: 0.33


def test_null_world_no_uplift_and_no_call_pays_for_itself_beyond_chance(null_world):
    m = null_world
    assert m["mean_abs_uplift"] <= 0.005, m["mean_abs_uplift"]
    # Chance bound: nothing truly pays here, so every call flagged as paying for itself is a false positive. The
    # DR-learner zeroes an effect unless it stands two fold-standard-deviations clear of zero, which pure noise does
    # for at most ~2.5% of accounts (one-sided); the list picks the most extreme of them, so the bound is on the
    # open accounts, not on the list: at most 2.5% of them may be flagged (measured at 10,000 guarantors: 11 of ~3,300).
    assert m["calls_paying_for_themselves"] <= 0.025 * m["open_accounts"], (m["calls_paying_for_themselves"], m)
    assert m["policy_oracle"] == 0.0  # nothing truly pays in a null world, so any contact only costs
    assert m["policy_value"] >= m["policy_random"]
