"""Generator scenarios: each world differs from the default exactly as docs/synthetic-book.md says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import generate as gen
from features.build import open_accounts
from features.scenarios import SCENARIOS, get_scenario
from features.schema import Book

N = 3000
SEED = 5
END = pd.Timestamp("2026-09-30")
DAYS = 450
START = END - pd.Timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def worlds() -> dict[str, tuple[Book, pd.DataFrame]]:
    return {name: gen.generate_book(N, seed=SEED, end_date=END.date(), scenario=name) for name in SCENARIOS}


def call_uplift(truth: pd.DataFrame) -> pd.Series:
    return truth["p_pay_14d_call"] - truth["p_pay_14d_none"]


def test_every_scenario_shares_the_default_population(worlds) -> None:
    base = worlds["default"][0]
    for name, (book, _) in worlds.items():
        assert book.guarantors.equals(base.guarantors), name
        assert book.accounts.equals(base.accounts), name
    assert not worlds["null"][0].transactions.equals(base.transactions)


def test_null_no_contact_changes_payment(worlds) -> None:
    truth = worlds["null"][1]
    for action in ("call", "sms", "email", "letter", "portal"):
        assert np.array_equal(truth[f"p_pay_14d_{action}"], truth["p_pay_14d_none"]), action
    assert call_uplift(worlds["default"][1]).max() > 0.05  # while by default they do


def test_call_heavy_concentrates_a_large_call_effect_in_a_minority(worlds) -> None:
    def top_tenth_share(truth: pd.DataFrame) -> float:
        u = np.sort(call_uplift(truth).to_numpy())[::-1]
        return float(u[: len(u) // 10].sum() / u.sum())

    heavy, default = worlds["call-heavy"][1], worlds["default"][1]
    assert top_tenth_share(heavy) > 0.85 and top_tenth_share(default) < 0.8
    assert call_uplift(heavy).quantile(0.97) > 1.5 * call_uplift(default).quantile(0.97)
    assert call_uplift(heavy).quantile(0.7) < 0.5 * call_uplift(default).quantile(0.7)  # most gain next to nothing


def _weekly_call_share(book: Book, threshold: float) -> tuple[float, float]:
    """Share of open accounts (billed, no hold) on a day that get a call in the next 7 days, above / below threshold."""
    calls = book.contacts[book.contacts["channel"] == "call"]
    call_day = calls["contacted_at"].dt.normalize()
    above, below = [], []
    for day in pd.date_range(END - pd.Timedelta(days=120), END - pd.Timedelta(days=8), freq="14D"):
        acc = open_accounts(book, day)
        holds = book.holds[(book.holds["start_date"] <= day)]
        acc = acc[~acc["account_id"].isin(holds["account_id"])]
        week = (call_day > day) & (call_day <= day + pd.Timedelta(days=7))
        called = acc["account_id"].isin(calls.loc[week, "account_id"]).to_numpy()
        big = (acc["balance"] >= threshold).to_numpy()
        above.append(called[big])
        below.append(called[~big])
    return float(np.concatenate(above).mean()), float(np.concatenate(below).mean())


def test_weak_overlap_calls_nearly_every_large_balance_and_almost_no_small_one(worlds) -> None:
    threshold = get_scenario("weak-overlap").threshold_policy_dollars
    above, below = _weekly_call_share(worlds["weak-overlap"][0], threshold)
    assert above > 0.75 and below < 0.04, (above, below)
    d_above, d_below = _weekly_call_share(worlds["default"][0], threshold)
    assert d_above < 0.5 and d_below > below, (d_above, d_below)  # the default policy overlaps far more


def test_late_logging_logs_propensities_only_in_the_last_quarter(worlds) -> None:
    contacts = worlds["late-logging"][0].contacts
    day = contacts["contacted_at"].dt.normalize()
    first_logged = day[contacts["propensity"].notna()].min()
    assert first_logged >= START + pd.Timedelta(days=int(DAYS * 0.75) - 1)
    default = worlds["default"][0].contacts
    assert default["propensity"].notna().mean() > contacts["propensity"].notna().mean() + 0.1


def _payment_rate(book: Book, start: pd.Timestamp, days: int) -> float:
    tx = book.transactions
    window = (tx["posted_date"] > start) & (tx["posted_date"] <= start + pd.Timedelta(days=days))
    return float((tx.loc[window, "kind"] == "patient_payment").sum())


def test_drift_payment_rates_fall_by_about_a_third_over_the_last_four_months(worlds) -> None:
    drift, default = worlds["drift"], worlds["default"]
    last = END - pd.Timedelta(days=30)
    ratio_drift = _payment_rate(drift[0], last, 30) / _payment_rate(drift[0], END - pd.Timedelta(days=150), 30)
    ratio_default = _payment_rate(default[0], last, 30) / _payment_rate(default[0], END - pd.Timedelta(days=150), 30)
    assert ratio_drift < 0.85 * ratio_default, (ratio_drift, ratio_default)
    assert drift[1]["p_pay_30d"].mean() < 0.8 * default[1]["p_pay_30d"].mean()


def test_the_truth_file_records_its_scenario(tmp_path, worlds) -> None:
    book, truth = worlds["weak-overlap"]
    gen.write_book(book, tmp_path / "book", "parquet", truth)
    frame, meta = gen.read_truth(tmp_path / "book" / "truth.parquet")
    assert meta["name"] == "weak-overlap" and meta["threshold_policy_dollars"] == 750.0
    assert len(frame) == len(truth)


def test_cli_generates_a_scenario_and_refuses_an_unknown_one(tmp_path) -> None:
    from serving.cli import app

    runner = CliRunner()
    out = tmp_path / "null-book"
    result = runner.invoke(app, ["generate", "--out", str(out), "--guarantors", "300", "--scenario", "null"])
    assert result.exit_code == 0, result.output
    assert "null scenario" in result.output
    assert json.loads(json.dumps(gen.read_truth(out / "truth.parquet")[1]))["effect_scale"] == 0.0
    bad = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "--scenario", "nul"])
    assert bad.exit_code == 2 and "unknown scenario 'nul'" in bad.output and "weak-overlap" in bad.output
    assert not (tmp_path / "x").exists()
