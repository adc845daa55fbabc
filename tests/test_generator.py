"""The synthetic book: deterministic, on contract, obeying the contact rules, confounded, with a true truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import generate as gen
from features import generator_truth as gt
from features.schema import AMOUNT_SIGN, CHANNELS, OUTCOMES_BY_CHANNEL, TABLES, Book, pandas_dtype
from features.states import STATE_TZ

N = 2500
SEED = 3
END = pd.Timestamp("2026-09-30")
DAYS = 450
START = END - pd.Timedelta(days=DAYS - 1)
SNAPSHOTS = [END - pd.Timedelta(days=k) for k in (40, 80, 120)]  # earlier as-of days; the book shows what followed
ACTIONS = ("none", "call", "sms", "email", "letter", "portal")


@pytest.fixture(scope="module")
def generated() -> tuple[Book, dict[pd.Timestamp, pd.DataFrame]]:
    return gen.generate_with_snapshots(
        N, seed=SEED, end_date=END.date(), days=DAYS, snapshot_dates=[s.date() for s in SNAPSHOTS]
    )


@pytest.fixture(scope="module")
def book(generated) -> Book:
    return generated[0]


@pytest.fixture(scope="module")
def truth(generated) -> pd.DataFrame:
    return generated[1][END]


@pytest.fixture(scope="module")
def contacts(book: Book) -> pd.DataFrame:
    """Contacts with the guarantor's flags and the local time of the contact."""
    c = book.contacts.merge(book.accounts[["account_id", "guarantor_id"]], on="account_id").merge(
        book.guarantors, on="guarantor_id"
    )
    local = pd.Series(pd.NaT, index=c.index, dtype="datetime64[ns]")
    tz = c["state"].astype(object).map(STATE_TZ)
    for zone, rows in c.groupby(tz).groups.items():
        utc = pd.DatetimeIndex(c.loc[rows, "contacted_at"]).tz_localize("UTC")
        local[rows] = utc.tz_convert(zone).tz_localize(None)
    c["local"] = local
    c["day"] = local.dt.normalize()
    return c


def _balances(book: Book, day: pd.Timestamp) -> pd.Series:
    tx = book.transactions
    return tx[tx["posted_date"] <= day].groupby("account_id")["amount"].sum().round(2)


def _open_at(book: Book, day: pd.Timestamp) -> pd.Series:
    """Balance of the accounts open at `day` by the ledger definition (balance >= $5, self-pay or adjudicated)."""
    tx = book.transactions[book.transactions["posted_date"] <= day]
    bal = tx.groupby("account_id")["amount"].sum().round(2)
    adjudicated = set(tx.loc[tx["kind"].isin(["insurance_payment", "adjustment"]), "account_id"])
    self_pay = set(book.accounts.loc[book.accounts["payer_class"] == "self_pay", "account_id"])
    ok = bal.index.isin(list(adjudicated | self_pay)) & (bal >= 5.0)
    return bal[ok]


# ------------------------------------------------------------------ determinism


def test_same_seed_same_book_and_snapshots_do_not_change_it(generated) -> None:
    book, truths = generated
    again, truth = gen.generate_book(N, seed=SEED, end_date=END.date(), days=DAYS)
    for name, df in book.tables().items():
        pd.testing.assert_frame_equal(df, again.tables()[name], check_exact=True)
    pd.testing.assert_frame_equal(truths[END], truth, check_exact=True)


def test_different_seed_different_book() -> None:
    a, _ = gen.generate_book(300, seed=1, days=120)
    b, _ = gen.generate_book(300, seed=2, days=120)
    assert not a.guarantors.equals(b.guarantors)
    assert not a.transactions["amount"].equals(b.transactions["amount"])


def test_progress_is_called_once_per_day() -> None:
    calls: list[tuple[int, int]] = []
    gen.generate_book(50, seed=0, days=90, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(d, 90) for d in range(1, 91)]


# ------------------------------------------------------------------ contract


def test_tables_have_the_contract_columns_and_dtypes(book: Book) -> None:
    for name, df in book.tables().items():
        table = TABLES[name]
        assert list(df.columns) == table.names, name
        for col in table.columns:
            want = pandas_dtype(col)
            got = df[col.name].dtype
            if isinstance(want, pd.CategoricalDtype):
                assert isinstance(got, pd.CategoricalDtype) and list(got.categories) == list(want.categories)
                assert df[col.name].notna().all() or col.nullable, (name, col.name)
            else:
                assert got == want, (name, col.name, got)
            if col.kind == "string" and len(df):  # (the workspace's optional tables are empty in a generated book)
                present = df[col.name].dropna()
                assert present.map(type).eq(str).all(), (name, col.name)
            if not col.nullable:
                assert df[col.name].notna().all(), (name, col.name)
    for name in ("transactions", "contacts"):
        assert len(book.tables()[name]) > 5 * N


def test_dates_are_midnights_and_money_is_cents(book: Book) -> None:
    for name, df in book.tables().items():
        for col in TABLES[name].columns:
            if col.kind == "date":
                values = df[col.name].dropna()
                assert (values == values.dt.normalize()).all(), (name, col.name)
                assert values.between(START, END).all()
    amount = book.transactions["amount"]
    assert np.allclose(amount, amount.round(2), atol=1e-9, rtol=0)


def test_keys_unique_and_foreign_keys_resolve(book: Book) -> None:
    tables = book.tables()
    for name, table in TABLES.items():
        df = tables[name]
        if table.key:
            assert df[table.key].is_unique, name
        for col in table.columns:
            if col.references:
                ref_table, ref_col = col.references.split(".")
                assert df[col.name].isin(tables[ref_table][ref_col]).all(), (name, col.name)


def test_amount_signs_agree_with_kind(book: Book) -> None:
    tx = book.transactions
    sign = tx["kind"].astype(object).map(AMOUNT_SIGN)
    assert (np.sign(tx["amount"])[sign != 0] == sign[sign != 0]).all()
    assert (tx["amount"] != 0).all()
    assert set(tx["kind"].unique()) == set(AMOUNT_SIGN)  # every kind occurs, refunds included


def test_outcomes_belong_to_channel(book: Book) -> None:
    c = book.contacts
    for channel in CHANNELS:
        got = set(c.loc[c["channel"] == channel, "outcome"].astype(object))
        assert got and got <= set(OUTCOMES_BY_CHANNEL[channel]), channel


def test_enums_and_guarantor_fields_are_plausible(book: Book) -> None:
    g = book.guarantors
    zip3 = g["zip3"].dropna()
    assert zip3.str.fullmatch(r"\d{3}").all() and 0 < g["zip3"].isna().mean() < 0.05
    assert 0.2 < (g["state"] == "MA").mean() < 0.5
    age = END.year - g["birth_year"].dropna().astype(int)
    assert age.between(18, 90).all()
    lang = g["language"].fillna("missing").value_counts(normalize=True)
    assert 0.65 < lang["en"] < 0.85 and 0.08 < lang["es"] < 0.2 and lang["missing"] > 0.02
    assert not (g["sms_consent"] & ~g["has_mobile"]).any()
    assert not (g["email_consent"] & ~g["has_email"]).any()
    assert 0.15 < g["portal_enrolled"].mean() < 0.35
    young = age < 40
    assert g.loc[age.index[young], "has_mobile"].mean() > g.loc[age.index[~young], "has_mobile"].mean() + 0.1
    acc = book.accounts
    assert 1.3 < len(acc) / len(g) < 1.7
    assert 0.08 < (acc["payer_class"] == "self_pay").mean() < 0.16
    assert set(book.holds["kind"].astype(object)) >= {"dispute", "financial_assistance"}


def test_propensity_logged_only_late_and_in_unit_interval(contacts: pd.DataFrame) -> None:
    p = contacts["propensity"]
    assert ((p > 0) & (p <= 1) | p.isna()).all()
    logged_from = START + pd.Timedelta(days=round(DAYS * (1 - gt.LOGGED_SHARE)))
    late = contacts["day"] >= logged_from
    assert p[~late].isna().all() and p[late].notna().all()
    assert (p[late] < 1).mean() > 0.4  # policy choices, not just statements


# ------------------------------------------------------------------ contact rules


def test_channels_need_consent_or_enrolment(contacts: pd.DataFrame) -> None:
    ch = contacts["channel"]
    assert (contacts.loc[ch == "sms", ["has_mobile", "sms_consent"]]).all().all()
    assert (contacts.loc[ch == "email", ["has_email", "email_consent"]]).all().all()
    assert contacts.loc[ch == "portal", "portal_enrolled"].all()
    assert (ch == "sms").sum() > 50 and (ch == "portal").sum() > 50


def test_no_contact_during_a_hold(book: Book, contacts: pd.DataFrame) -> None:
    h = book.holds.assign(end=book.holds["end_date"].fillna(END))
    both = contacts[["account_id", "day"]].merge(h, on="account_id")
    inside = (both["day"] >= both["start_date"]) & (both["day"] <= both["end"])
    assert len(both) > 100 and not inside.any()


def test_no_call_within_seven_days_after_a_right_party_call(contacts: pd.DataFrame) -> None:
    calls = contacts[contacts["channel"] == "call"].sort_values(["account_id", "local"])
    rp_day = calls["day"].where(calls["outcome"] == "right_party")
    last_rp = rp_day.groupby(calls["account_id"]).shift().groupby(calls["account_id"]).ffill()
    gap = (calls["day"] - last_rp).dt.days.dropna()
    assert len(gap) > 20 and (gap > 7).all() and (gap <= 10).any()


def test_local_contact_time_between_8_and_21(contacts: pd.DataFrame) -> None:
    hour = contacts["local"].dt.hour
    assert hour.between(8, 20).all() and hour.nunique() == 13
    assert (contacts["contacted_at"] != contacts["local"]).mean() > 0.99  # stored in UTC, not local


def test_policy_is_confounded_calls_go_to_large_balances(book: Book, contacts: pd.DataFrame) -> None:
    called, uncalled = [], []
    calls = contacts.loc[contacts["channel"] == "call", ["account_id", "day"]]
    for day in pd.date_range(END - pd.Timedelta(days=150), END, freq="5D"):
        bal = _open_at(book, day - pd.Timedelta(days=1))
        hit = bal.index.isin(calls.loc[calls["day"] == day, "account_id"])
        called.append(bal[hit])
        uncalled.append(bal[~hit])
    called_mean, uncalled_mean = pd.concat(called).mean(), pd.concat(uncalled).mean()
    assert len(pd.concat(called)) > 30
    assert called_mean > 1.5 * uncalled_mean


# ------------------------------------------------------------------ truth


@pytest.mark.parametrize("as_of", [END, *SNAPSHOTS])
def test_truth_accounts_and_balances_match_the_ledger(generated, as_of: pd.Timestamp) -> None:
    book, truths = generated
    truth = truths[as_of]
    open_ = _open_at(book, as_of)
    assert truth["account_id"].is_unique
    assert set(truth["account_id"]) == set(open_.index)
    merged = truth.set_index("account_id")["balance"].sort_index()
    assert np.allclose(merged.to_numpy(), open_.sort_index().to_numpy(), atol=0.001, rtol=0)
    assert (truth["as_of"] == as_of).all()
    owners = book.accounts.set_index("account_id")["guarantor_id"]
    assert (truth["guarantor_id"].to_numpy() == owners[truth["account_id"]].to_numpy()).all()


def test_truth_probabilities_and_uplifts(book: Book, truth: pd.DataFrame) -> None:
    p_cols = ["p_pay_30d"] + [f"p_pay_14d_{a}" for a in ACTIONS]
    policy_cols = [f"policy_{a}" for a in ACTIONS]
    assert list(truth.columns) == [
        "account_id", "guarantor_id", "as_of", "balance", *p_cols, *policy_cols, "expected_payment", "ability",
        "willingness",
    ]  # fmt: skip
    assert np.allclose(truth[policy_cols].sum(axis=1), 1.0) and (truth[policy_cols] >= 0).all().all()
    assert truth[p_cols].apply(lambda s: s.between(0, 1)).all().all()
    none = truth["p_pay_14d_none"]
    for action in ACTIONS[1:]:
        uplift = truth[f"p_pay_14d_{action}"] - none
        assert (uplift >= -1e-12).all(), action
        assert uplift.std() > 0.008, action
    call_uplift = truth["p_pay_14d_call"] - none
    assert (call_uplift < 1e-9).mean() > 0.1 and (call_uplift > 0.05).mean() > 0.05
    flags = truth[["guarantor_id"]].merge(book.guarantors, on="guarantor_id", how="left")
    no_sms = ~flags["sms_consent"].to_numpy()
    assert np.array_equal(truth["p_pay_14d_sms"].to_numpy()[no_sms], none.to_numpy()[no_sms])
    assert (truth["policy_sms"].to_numpy()[no_sms] == 0).all()  # the historic policy texts only with consent
    age = END.year - flags["birth_year"].astype(float)
    sms_up = (truth["p_pay_14d_sms"] - none).to_numpy()
    assert sms_up[(age < 40) & ~no_sms].mean() > 3 * sms_up[(age > 65) & ~no_sms].mean()
    assert 0 < truth["expected_payment"].mean() < truth["balance"].mean()
    assert (truth["expected_payment"] <= truth["balance"] + 20.0 + 1e-9).all()


def test_truth_predicts_what_the_book_shows_next(generated) -> None:
    """Each snapshot's p_pay_30d against the payments the book then shows (disjoint 30-day windows)."""
    book, truths = generated
    tx = book.transactions
    paid, p = [], []
    for as_of in SNAPSHOTS:
        truth = truths[as_of]
        window = (tx["posted_date"] > as_of) & (tx["posted_date"] <= as_of + pd.Timedelta(days=30))
        payers = set(tx.loc[window & (tx["kind"] == "patient_payment"), "account_id"])
        paid.append(truth["account_id"].isin(payers).to_numpy())
        p.append(truth["p_pay_30d"].to_numpy())
    paid, p = np.concatenate(paid), np.concatenate(p)
    assert len(p) > 1500
    assert 0.15 < paid.mean() < 0.40  # labels are not rare
    assert abs(paid.sum() - p.sum()) < 3.5 * np.sqrt((p * (1 - p)).sum())  # a 10% bias would fail
    buckets = pd.qcut(p, 5, labels=False)
    observed = pd.Series(paid).groupby(buckets).mean().to_numpy()
    predicted = pd.Series(p).groupby(buckets).mean().to_numpy()
    assert (np.diff(observed) > 0).all(), observed
    assert np.abs(observed - predicted).max() < 0.06, (observed, predicted)
    assert np.mean((paid - p) ** 2) < 0.8 * np.mean((paid - paid.mean()) ** 2)  # far better than a constant


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize(
    "fmt, files",
    [
        ("csv", {f"{t}.csv" for t in TABLES}),
        ("parquet", {f"{t}.parquet" for t in TABLES}),
        ("sqlite", {"book.db"}),
    ],
)
def test_write_book_creates_the_files_and_no_temp_files(tmp_path, fmt: str, files: set[str]) -> None:
    book, truth = gen.generate_book(200, seed=5, days=120)
    out = tmp_path / "book"
    path = gen.write_book(book, out, fmt, truth)
    assert {p.name for p in out.iterdir()} == files | {"truth.parquet"}
    assert [p.name for p in tmp_path.iterdir()] == ["book"]
    assert path == (out / "book.db" if fmt == "sqlite" else out)
    gen.write_book(book, out, "parquet" if fmt != "parquet" else "csv")  # another format replaces the book
    assert "truth.parquet" not in {p.name for p in out.iterdir()}
    assert not files & {p.name for p in out.iterdir()}


def test_write_book_csv_uses_the_text_conventions(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gen, "WRITE_CHUNK", 97)  # written in many slices, one header
    book, _ = gen.generate_book(200, seed=5, days=120)
    gen.write_book(book, tmp_path, "csv")
    contacts = pd.read_csv(tmp_path / "contacts.csv", dtype=str)
    assert contacts["contact_id"].tolist() == book.contacts["contact_id"].tolist()
    assert contacts["contacted_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    holds = pd.read_csv(tmp_path / "holds.csv", dtype=str)
    assert holds["start_date"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    guarantors = pd.read_csv(tmp_path / "guarantors.csv", dtype=str, keep_default_na=False)
    assert set(guarantors["has_mobile"]) == {"true", "false"}
    assert guarantors["zip3"].str.fullmatch(r"\d{3}|").all()
    amount = pd.read_csv(tmp_path / "transactions.csv", dtype=str)["amount"]
    assert amount.str.fullmatch(r"-?\d+(\.\d{1,2})?").all()


def test_write_book_failure_leaves_no_half_book(tmp_path, monkeypatch) -> None:
    book, _ = gen.generate_book(100, seed=5, days=90)
    out = tmp_path / "book"
    gen.write_book(book, out, "csv")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def failing(df: pd.DataFrame, path, kinds) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        path.write_text("partial")

    monkeypatch.setattr(gen, "_write_csv", failing)
    with pytest.raises(OSError):
        gen.write_book(book, out, "csv")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["book"]
