"""The `payrank` command line: exit codes, one line per problem, no tracebacks, no half-written outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.generate import generate_book, write_book
from serving.cli import app
from tests.conftest import BOOK_END

runner = CliRunner()


@pytest.fixture(scope="module")
def csv_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    book, truth = generate_book(400, seed=2)
    return write_book(book, tmp_path_factory.mktemp("cli") / "book", "csv", truth)


@pytest.fixture()
def broken_book(csv_book: Path, tmp_path: Path) -> Path:
    """A copy of the CSV book with an unparseable amount and an unknown channel."""
    out = tmp_path / "broken"
    out.mkdir()
    for f in csv_book.glob("*.csv"):
        (out / f.name).write_text(f.read_text())
    tx = pd.read_csv(out / "transactions.csv", dtype=str)
    tx.loc[3, "amount"] = "12.x"
    tx.to_csv(out / "transactions.csv", index=False)
    ct = pd.read_csv(out / "contacts.csv", dtype=str)
    ct.loc[0, "channel"] = "pigeon"
    ct.to_csv(out / "contacts.csv", index=False)
    return out


def test_validate_a_good_book(csv_book: Path):
    result = runner.invoke(app, ["validate", "--data", str(csv_book)])
    assert result.exit_code == 0, result.output
    assert "valid book" in result.output and "transactions rows" in result.output


def test_validate_a_broken_book_names_table_and_column(broken_book: Path):
    result = runner.invoke(app, ["validate", "--data", str(broken_book)])
    assert result.exit_code == 2
    assert "transactions.amount" in result.output and "12.x" in result.output
    assert "contacts.channel" in result.output and "pigeon" in result.output


def test_no_traceback_and_no_output_file_on_a_broken_book(broken_book: Path, tmp_path: Path):
    """As a user runs it: a real process, its stderr, and no file left behind."""
    out = tmp_path / "features.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.cli",
            "features",
            "--data",
            str(broken_book),
            "--as-of",
            "2026-09-30",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "transactions.amount" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".features*"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["features", "--as-of", "2026-13-01", "--out", "x.csv"], "--as-of '2026-13-01'"),
        (["features", "--as-of", "2026-09-30", "--out", "x.xlsx"], "extension"),
        (["score", "--as-of", "2026-09-30", "--out", "x.json"], "extension"),
        (["worklist", "--as-of", "2026-09-30"], "--out"),
    ],
)
def test_bad_options_are_one_clear_line(csv_book: Path, args: list[str], words: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [args[0], "--data", str(csv_book), *args[1:]])
    assert result.exit_code == 2
    assert words in result.output
    assert not list(tmp_path.iterdir())


def test_features_command_writes_one_row_per_open_account(csv_book: Path, tmp_path: Path):
    out = tmp_path / "f.csv"
    result = runner.invoke(app, ["features", "--data", str(csv_book), "--as-of", "2026-09-30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    truth = pd.read_parquet(csv_book / "truth.parquet")
    assert set(frame["account_id"]) == set(truth["account_id"])


def test_score_worklist_models_and_promote_commands(trained_session, tmp_path: Path):
    """The batch commands against the session's registry, as a specialist's morning job runs them."""
    common = ["--data", str(trained_session.book_dir), "--as-of", BOOK_END.isoformat()]
    uri = ["--tracking-uri", trained_session.tracking_uri]
    scores = tmp_path / "scores.parquet"
    r = runner.invoke(app, ["score", *common, *uri, "--out", str(scores), "--threads", "1"])
    assert r.exit_code == 0, r.output
    s = pd.read_parquet(scores)
    assert (
        len(s) == len(trained_session.truth)
        and s["model_version"].eq(f"payrank/{trained_session.result.version}").all()
    )
    assert (s["reasons"] == "").all()  # machine-readable by default: reasons only when asked
    # reason codes on request, and the worklist carries them for its rows (checked below)
    few = tmp_path / "few"
    few.mkdir()
    for name in ("guarantors", "accounts", "transactions", "contacts", "holds"):
        table = pd.read_parquet(trained_session.book_dir / f"{name}.parquet")
        if name == "guarantors":
            keep = set(table["guarantor_id"].head(300))
            table = table[table["guarantor_id"].isin(keep)]
        elif name == "accounts":
            table = table[table["guarantor_id"].isin(keep)]
            accounts = set(table["account_id"])
        else:
            table = table[table["account_id"].isin(accounts)]
        table.to_parquet(few / f"{name}.parquet", index=False)
    r = runner.invoke(app, ["score", "--data", str(few), *common[2:], *uri, "--out", str(scores), "--reasons"])
    assert r.exit_code == 0, r.output
    with_reasons = pd.read_parquet(scores)
    assert len(with_reasons) > 50 and (with_reasons["reasons"].str.len() > 0).mean() > 0.99

    wl, ex = tmp_path / "list.csv", tmp_path / "excluded.csv"
    r = runner.invoke(app, ["worklist", *common, *uri, "--calls", "25", "--out", str(wl), "--exclusions", str(ex)])
    assert r.exit_code == 0, r.output
    listed, excluded = pd.read_csv(wl), pd.read_csv(ex)
    assert len(listed) == 25 and listed["rank"].tolist() == list(range(1, 26))
    assert listed["reasons"].str.len().gt(0).all()
    blocked = excluded.loc[excluded["rule"].str.startswith("hold_"), "account_id"].iloc[0]
    r = runner.invoke(app, ["worklist", *common, *uri, "--explain", blocked])
    assert r.exit_code == 0 and "hold_" in r.output and blocked in r.output

    r = runner.invoke(app, ["models", *uri])
    assert r.exit_code == 0 and "champion" in r.output
    r = runner.invoke(app, ["promote", "999", "--reason", "typo", *uri])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_demo_runs_end_to_end(tmp_path: Path, monkeypatch):
    """`make demo`'s job on a small book, in a throw-away PAYRANK_HOME."""
    monkeypatch.setenv("PAYRANK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(app, ["demo", "--guarantors", "2500", "--seed", "3"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "home" / "demo-output"
    listed, scores = pd.read_csv(out / "worklist.csv"), pd.read_csv(out / "scores.csv")
    assert 0 < len(listed) <= 100 and listed["guarantor_id"].is_unique
    assert set(listed["account_id"]) <= set(scores["account_id"])
    assert "worklist for 2026-10-01" in result.output and "payrank serve" in result.output
    assert (tmp_path / "home" / "mlflow.db").exists()
