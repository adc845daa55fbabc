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
    assert "transactions.amount" in result.output and "12.x" not in result.output
    assert "contacts.channel" in result.output and "pigeon" not in result.output
    assert "transaction_id=" in result.output and "contact_id=" in result.output  # rows by key, never values


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
        (["features", "--as-of", "2026-13-01", "--out", "x.csv"], "--as-of: expected a date YYYY-MM-DD"),
        (["features", "--as-of", "9999-12-31", "--out", "x.csv"], "--as-of: must be between 1900-01-01 and"),
        (["score", "--as-of", "9999-12-31", "--out", "x.csv"], "--as-of: must be between 1900-01-01 and"),
        (["score", "--as-of", "1600-01-01", "--out", "x.csv"], "--as-of: must be between 1900-01-01 and"),
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
    assert "9999" not in result.output and "1600" not in result.output and "2026-13" not in result.output
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
    paying = int((~listed["below_break_even"]).sum())
    assert f"25 of 25 calls listed; {paying:,} expected to pay for themselves" in " ".join(r.output.split())
    assert f"${listed['expected_value'].iloc[-1]:,.2f} at the cut" in " ".join(r.output.split())
    r = runner.invoke(app, ["worklist", *common, *uri, "--calls", "5000", "--profitable-only", "--out", str(wl)])
    assert r.exit_code == 0, r.output
    profitable = pd.read_csv(wl)
    assert len(profitable) < 5000 and not profitable["below_break_even"].any()
    assert listed["reasons"].str.len().gt(0).all()
    blocked = excluded.loc[excluded["rule"].str.startswith("hold_"), "account_id"].iloc[0]
    r = runner.invoke(app, ["worklist", *common, *uri, "--explain", blocked])
    assert r.exit_code == 0 and "hold_" in r.output and blocked in r.output

    r = runner.invoke(app, ["models", *uri], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "champion" in r.output
    assert "policy_interval" in r.output and "logged_value" in r.output
    lo, hi = (trained_session.result.metrics[k] for k in ("policy_dr_lo", "policy_dr_hi"))
    assert f"[{lo:.2f}, {hi:.2f}]" in r.output
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
    # the demo day is published for two demo specialists, who are told how to log in
    assert "published 2026-10-01 to the workspace store" in result.output and "/v1/work/login" in result.output
    assert '"username": "demo-ana"' in result.output and '"username": "demo-ben"' in result.output
    r = runner.invoke(app, ["specialists", "list"], env={"PAYRANK_HOME": str(tmp_path / "home")})
    assert "demo-ana" in r.output and "demo-ben" in r.output
    assert "/app/login" in result.output and "demo-sue" in r.output and "supervisor" in r.output  # the workspace


# ---- issue 10: bad values, policy files, output paths, missing stores --------------------------------------------


def _edited_book(csv_book: Path, folder: Path, table: str, column: str, value: str) -> tuple[Path, str]:
    """A copy of the CSV book with one value replaced in row 0 of a table; the row's key label."""
    folder.mkdir()
    for f in csv_book.glob("*.csv"):
        (folder / f.name).write_text(f.read_text())
    frame = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
    frame.loc[0, column] = value
    frame.to_csv(folder / f"{table}.csv", index=False)
    key = {"guarantors": "guarantor_id", "transactions": "transaction_id", "contacts": "contact_id"}.get(
        table, "account_id"
    )
    return folder, f"{key}={frame.loc[0, key]}"


@pytest.mark.parametrize(
    ("table", "column", "value", "kind"),
    [
        ("transactions", "posted_date", "9999-12-31", "out of range"),
        ("accounts", "service_date", "0001-01-01", "out of range"),
        ("contacts", "contacted_at", "4321", "unparseable timestamp"),
        ("contacts", "contacted_at", "today", "unparseable timestamp"),
        ("transactions", "amount", "1e308", "out of range"),
        ("guarantors", "birth_year", "3000", "out of range"),
        ("guarantors", "zip3", "02139", "never a full ZIP"),
    ],
)
def test_bad_values_are_one_line_naming_table_column_and_row_not_the_value(
    csv_book, tmp_path, table, column, value, kind
):
    """Far dates ended in `Out of bounds nanosecond timestamp` naming nothing, 1e308 was written as inf."""
    book, key = _edited_book(csv_book, tmp_path / "book", table, column, value)
    out = tmp_path / "features.csv"
    result = runner.invoke(app, ["features", "--data", str(book), "--as-of", "2026-09-30", "--out", str(out)])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    flat = " ".join(result.output.split())  # the console wraps long lines
    problem = flat[flat.index(f"{table}.{column}:") :]
    assert kind in problem and key in problem and value not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "how"), [("score", "option"), ("worklist", "option"), ("serve", "option"), ("serve", "environment")]
)
def test_a_missing_policy_file_is_an_error_in_every_command(csv_book, tmp_path, monkeypatch, command, how):
    """A typo in --policy used to fall back to the defaults silently (717 vs 313 accounts allowed a call)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYRANK_API_KEYS", "a-key-for-this-test")
    missing = tmp_path / "policy-typo.toml"
    args = {
        "score": ["score", "--data", str(csv_book), "--as-of", "2026-09-30", "--out", "scores.csv"],
        "worklist": ["worklist", "--data", str(csv_book), "--as-of", "2026-09-30", "--out", "list.csv"],
        "serve": ["serve", "--port", "1"],
    }[command]
    if how == "option":
        args += ["--policy", str(missing)]
    else:  # PAYRANK_POLICY configures the server; the batch commands take --policy
        monkeypatch.setenv("PAYRANK_POLICY", str(missing))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    flat = "".join(result.output.split())  # the console wraps long paths
    assert "policy-typo.toml" in flat and "nosuchfile" in flat
    assert not list(tmp_path.glob("*.csv"))


def test_out_at_a_directory_or_a_symlink_is_refused_before_any_work(csv_book, tmp_path):
    """A directory named like a file used to fail with a traceback after all the work; a symlink was replaced."""
    folder = tmp_path / "scores.csv"
    folder.mkdir()
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for out, words in ((folder, "is a directory"), (link, "is a symbolic link")):
        result = runner.invoke(app, ["features", "--data", str(csv_book), "--as-of", "2026-09-30", "--out", str(out)])
        assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
        assert "wrote" not in result.output
    assert link.is_symlink() and target.read_text() == "keep me\n" and not list(folder.iterdir())


def test_outputs_get_normal_permissions_and_keep_an_overwritten_files_mode(csv_book, tmp_path):
    """Outputs were created 0600 (tempfile's mode), and overwriting a 0644 file left 0600."""
    import os
    import stat

    out = tmp_path / "features.csv"
    args = ["features", "--data", str(csv_book), "--as-of", "2026-09-30", "--out", str(out)]
    old = os.umask(0o022)
    try:
        assert runner.invoke(app, args).exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        out.chmod(0o664)
        os.umask(0o077)
        assert runner.invoke(app, args).exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o664  # the target's mode, not the umask's
    finally:
        os.umask(old)


def test_a_sqlite_url_to_a_missing_file_is_an_error_not_a_new_empty_database(tmp_path):
    book, store = tmp_path / "book.db", tmp_path / "mlflow.db"
    result = runner.invoke(app, ["validate", "--data", f"sqlite:///{book}"])
    assert result.exit_code == 2 and "no SQLite database file" in " ".join(result.output.split())
    result = runner.invoke(app, ["models", "--tracking-uri", f"sqlite:///{store}"])
    assert result.exit_code == 2 and "no MLflow store" in " ".join(result.output.split())
    assert not book.exists() and not store.exists()


def test_the_cli_offers_exactly_the_channel_learners_training_knows():
    from serving.cli import LEARNER_NAMES
    from training.channel_models import CHANNEL_LEARNERS

    assert list(CHANNEL_LEARNERS) == LEARNER_NAMES
    r = runner.invoke(app, ["evaluate", "--learners", "offset,magic"])
    assert r.exit_code == 2 and "choose one or more of offset, outcome, dr" in r.output
    r = runner.invoke(app, ["evaluate", "--scenario", "sunny"])
    assert r.exit_code == 2 and "unknown scenario 'sunny'" in r.output
