"""The contact policy: each rule alone at its boundaries, their combination, the config file and invariants.

Books are tiny and hand-built with the in-memory dtypes of a validated book. As-of DATE = 2026-09-30, so
every rule is evaluated for a contact on D = 2026-10-01. Calls are placed at 17:00 UTC (midday in the US).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.schema import CHANNELS, HOLD_KINDS, TABLES, Book, empty_frame, pandas_dtype
from features.states import STATE_TZ
from serving.policy import (
    PolicyConfig,
    PolicyConfigError,
    PolicyResult,
    block_calls_outside_hours,
    evaluate_policy,
    load_policy,
    one_call_per_guarantor,
)
from serving.policy_accounts import call_windows
from serving.policy_rules import (
    rule_call_frequency,
    rule_consent_autodialled_call,
    rule_hold,
    rule_right_party_cooldown,
)

DATE = "2026-09-30"
D = pd.Timestamp("2026-10-01")
EXAMPLE_TOML = Path(__file__).resolve().parents[1] / "docs" / "contact-policy.example.toml"
FLAGS = ("has_mobile", "has_email", "sms_consent", "email_consent", "portal_enrolled")


def typed(table: str, rows: list[dict]) -> pd.DataFrame:
    """A frame of a contract table with a validated book's in-memory dtypes (missing columns are null)."""
    cols = TABLES[table].columns
    if not rows:
        return empty_frame(table)
    return pd.DataFrame(
        {c.name: pd.Series([r.get(c.name) for r in rows], dtype=object).astype(pandas_dtype(c)) for c in cols}
    )


def guarantor(gid: str, state: str = "IL", **flags: bool) -> dict:
    return {"guarantor_id": gid, "state": state, **{f: flags.get(f, True) for f in FLAGS}}


def at(offset_days: int, hour: float = 17.0) -> pd.Timestamp:
    """A naive UTC instant `offset_days` after D at `hour` UTC."""
    return D + pd.Timedelta(days=offset_days) + pd.Timedelta(hours=hour)


def call(account: str, when: pd.Timestamp, outcome: str = "no_answer", channel: str = "call") -> dict:
    return {"account_id": account, "contacted_at": when, "channel": channel, "outcome": outcome}


def make_book(
    guarantors: list[dict],
    accounts: list[tuple[str, str]],
    contacts: Sequence[dict] = (),
    holds: Sequence[dict] = (),
) -> Book:
    acc = [
        {
            "account_id": a,
            "guarantor_id": g,
            "service_date": "2026-01-01",
            "service_line": "lab",
            "payer_class": "self_pay",
        }
        for a, g in accounts
    ]
    ct = [{"contact_id": f"c{i}", **c} for i, c in enumerate(contacts)]
    return Book(
        guarantors=typed("guarantors", guarantors),
        accounts=typed("accounts", acc),
        transactions=empty_frame("transactions"),
        contacts=typed("contacts", ct),
        holds=typed("holds", list(holds)),
    )


def evaluate(book: Book, config: PolicyConfig | None = None, as_of: str = DATE) -> PolicyResult:
    return evaluate_policy(book, as_of, book.accounts[["account_id", "guarantor_id"]], config or PolicyConfig())


def blocked_channels(result: PolicyResult, account: str) -> set[str]:
    row = result.allowed.set_index("account_id").loc[account]
    return {c for c in CHANNELS if not row[c]}


def rules_for(result: PolicyResult, account: str, channel: str) -> set[str]:
    b = result.blocks
    return set(b.loc[(b["account_id"] == account) & (b["channel"] == channel), "rule"])


# --- call frequency (Regulation F 7-in-7, Massachusetts 2-in-7) -------------------------------------------


@pytest.mark.parametrize(
    ("state", "prior_calls", "blocked"),
    [("IL", 6, False), ("IL", 7, True), ("MA", 1, False), ("MA", 2, True), ("MA", 0, False)],
    ids=["7th-allowed", "8th-blocked", "MA-2nd-allowed", "MA-3rd-blocked", "MA-first"],
)
def test_call_frequency_boundary(state: str, prior_calls: int, blocked: bool) -> None:
    outcomes = ["no_answer", "voicemail", "wrong_number", "right_party"]
    contacts = [call("a1", at(-1 - i % 6), outcomes[i % 3]) for i in range(prior_calls)]
    book = make_book([guarantor("g1", state)], [("a1", "g1")], contacts)
    v = rule_call_frequency(book.contacts, book.accounts, book.guarantors, D, PolicyConfig())
    assert v["blocked"].tolist() == [blocked]
    if blocked:
        limit = 2 if state == "MA" else 7
        assert v["detail"].iloc[0] == f"{prior_calls} calls in the 6 days before 2026-10-01 (limit {limit} in 7 days)"


def test_call_seven_days_before_d_and_other_channels_not_counted() -> None:
    contacts = [call("a1", at(-1 - i)) for i in range(6)] + [
        call("a1", at(-7)),
        call("a1", at(-2), "delivered", "sms"),
        call("a1", at(-2), "sent", "letter"),
        call("a2", at(-1)),  # another account of the same guarantor
    ]
    book = make_book([guarantor("g1")], [("a1", "g1"), ("a2", "g1")], contacts)
    result = evaluate(book)
    assert "call" not in blocked_channels(result, "a1")
    assert rules_for(result, "a1", "call") == set()


def test_call_frequency_counts_the_guarantors_local_day() -> None:
    """02:00 UTC on D-6 is 21:00 on D-7 in Chicago: not counted; 01:30 UTC on D is 20:30 on DATE: counted."""
    base = [call("a1", at(-2 - i)) for i in range(5)]
    early = make_book([guarantor("g1", "IL")], [("a1", "g1")], [*base, call("a1", at(-6, 2.0))])
    late = make_book([guarantor("g1", "IL")], [("a1", "g1")], [*base, call("a1", at(-6, 2.0)), call("a1", at(0, 1.5))])
    assert "call" not in blocked_channels(evaluate(early, PolicyConfig(max_calls_per_7_days=6)), "a1")
    assert "call" in blocked_channels(evaluate(late, PolicyConfig(max_calls_per_7_days=6)), "a1")


def test_calls_on_or_after_d_are_not_known_at_date() -> None:
    book = make_book([guarantor("g1", "MA")], [("a1", "g1")], [call("a1", at(0)), call("a1", at(1)), call("a1", at(2))])
    assert blocked_channels(evaluate(book), "a1") == set()


# --- right-party cooldown ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_before_d", "outcome", "blocked"),
    [(7, "right_party", True), (8, "right_party", False), (1, "right_party", True), (1, "voicemail", False)],
    ids=["D=R+7-blocked", "D=R+8-allowed", "D=R+1-blocked", "voicemail-no-cooldown"],
)
def test_right_party_cooldown(days_before_d: int, outcome: str, blocked: bool) -> None:
    book = make_book([guarantor("g1")], [("a1", "g1")], [call("a1", at(-days_before_d), outcome)])
    v = rule_right_party_cooldown(book.contacts, book.accounts, book.guarantors, D, PolicyConfig())
    assert v["blocked"].tolist() == [blocked]
    assert (v["detail"].iloc[0] != "") == blocked


def test_right_party_cooldown_detail_and_state_override() -> None:
    book = make_book([guarantor("g1", "TX")], [("a1", "g1")], [call("a1", at(-8), "right_party")])
    config = PolicyConfig.model_validate({"state_overrides": {"TX": {"right_party_cooldown_days": 10}}})
    result = evaluate(book, config)
    assert rules_for(result, "a1", "call") == {"right_party_cooldown"}
    detail = result.blocks["detail"].iloc[0]
    assert detail == (
        "right-party conversation on 2026-09-23; no calls for 10 days after a conversation "
        "(calls allowed again from 2026-10-04)"
    )


def test_right_party_on_another_account_does_not_block() -> None:
    book = make_book([guarantor("g1")], [("a1", "g1"), ("a2", "g1")], [call("a2", at(-1), "right_party")])
    result = evaluate(book)
    assert "call" not in blocked_channels(result, "a1")
    assert "call" in blocked_channels(result, "a2")


# --- holds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", HOLD_KINDS)
def test_each_hold_kind_blocks_every_channel(kind: str) -> None:
    holds = [{"account_id": "a1", "kind": kind, "start_date": "2026-09-12"}]
    book = make_book([guarantor("g1")], [("a1", "g1"), ("a2", "g1")], holds=holds)
    result = evaluate(book)
    assert blocked_channels(result, "a1") == set(CHANNELS)
    assert all(rules_for(result, "a1", c) == {f"hold_{kind}"} for c in CHANNELS)
    assert blocked_channels(result, "a2") == set()  # holds of other accounts don't leak
    label = kind.replace("_", " ")
    assert set(result.blocks["detail"]) == {f"{label} hold since 2026-09-12 (open-ended)"}


@pytest.mark.parametrize(
    ("start", "end", "blocked"),
    [
        ("2026-09-01", None, True),
        ("2026-09-01", "2026-09-30", False),  # lifted today (DATE)
        ("2026-09-01", "2026-10-01", False),  # lifted on D
        ("2026-09-01", "2026-10-02", True),  # lifted the day after D
        ("2026-10-01", None, True),  # starts on D
        ("2026-10-02", None, False),  # starts after D
        ("2026-10-01", "2026-10-01", False),  # empty period
    ],
    ids=["open-ended", "ended-today", "ends-on-D", "ends-D+1", "starts-D", "starts-D+1", "empty"],
)
def test_hold_active_boundaries(start: str, end: str | None, blocked: bool) -> None:
    holds = [{"account_id": "a1", "kind": "dispute", "start_date": start, "end_date": end}]
    book = make_book([guarantor("g1")], [("a1", "g1")], holds=holds)
    v = rule_hold(book.holds, book.accounts, D, "dispute")
    assert v["blocked"].tolist() == [blocked]


def test_hold_detail_and_configurable_kinds() -> None:
    holds = [
        {
            "account_id": "a1",
            "kind": "financial_assistance",
            "start_date": "2026-09-20",
            "end_date": "2026-10-15",
        },
        {
            "account_id": "a1",
            "kind": "financial_assistance",
            "start_date": "2026-09-25",
            "end_date": "2026-10-20",
        },
        {"account_id": "a1", "kind": "dispute", "start_date": "2026-08-01", "end_date": "2026-09-01"},  # over
    ]
    book = make_book([guarantor("g1")], [("a1", "g1")], holds=holds)
    result = evaluate(book)
    assert set(result.blocks["rule"]) == {"hold_financial_assistance"}
    assert set(result.blocks["detail"]) == {"financial assistance hold since 2026-09-20 (lifted on 2026-10-20)"}
    relaxed = evaluate(book, PolicyConfig(blocking_holds=["dispute", "bankruptcy"]))
    assert blocked_channels(relaxed, "a1") == set()


# --- consent ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "channel", "rule", "detail"),
    [
        ({"has_mobile": False}, "sms", "consent_sms", "no mobile number on file"),
        ({"sms_consent": False}, "sms", "consent_sms", "no consent to texts"),
        (
            {"has_mobile": False, "sms_consent": False},
            "sms",
            "consent_sms",
            "no mobile number on file and no consent to texts",
        ),
        ({"has_email": False}, "email", "consent_email", "no e-mail address on file"),
        ({"email_consent": False}, "email", "consent_email", "no consent to e-mail"),
        ({"portal_enrolled": False}, "portal", "consent_portal", "not enrolled in the patient portal"),
    ],
)
def test_consent_rules(flags: dict, channel: str, rule: str, detail: str) -> None:
    book = make_book([guarantor("g1", **flags), guarantor("g2")], [("a1", "g1"), ("a2", "g2")])
    result = evaluate(book)
    assert blocked_channels(result, "a1") == {channel}
    assert result.blocks[["account_id", "channel", "rule", "detail"]].values.tolist() == [["a1", channel, rule, detail]]
    assert blocked_channels(result, "a2") == set()


def test_letters_need_nothing() -> None:
    book = make_book([guarantor("g1", **dict.fromkeys(FLAGS, False))], [("a1", "g1")])
    assert blocked_channels(evaluate(book), "a1") == {"sms", "email", "portal"}


@pytest.mark.parametrize(
    ("autodialled", "sms_consent", "blocked"),
    [(False, False, False), (True, False, True), (True, True, False)],
)
def test_autodialled_calls_need_consent(autodialled: bool, sms_consent: bool, blocked: bool) -> None:
    book = make_book([guarantor("g1", sms_consent=sms_consent)], [("a1", "g1")])
    config = PolicyConfig(calls_autodialled=autodialled)
    v = rule_consent_autodialled_call(book.accounts, book.guarantors, config)
    assert v["blocked"].tolist() == [blocked]
    assert ("call" in blocked_channels(evaluate(book, config), "a1")) == blocked


# --- calling hours ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "state", "text", "start", "end"),
    [
        ("2026-10-30", "IL", "08:00-21:00 America/Chicago", "2026-10-31 13:00", "2026-11-01 02:00"),  # CDT
        (
            "2026-10-31",
            "IL",
            "08:00-21:00 America/Chicago",
            "2026-11-01 14:00",
            "2026-11-02 03:00",
        ),  # DST ends
        ("2026-11-01", "IL", "08:00-21:00 America/Chicago", "2026-11-02 14:00", "2026-11-03 03:00"),  # CST
        ("2026-10-30", "HI", "08:00-21:00 Pacific/Honolulu", "2026-10-31 18:00", "2026-11-01 07:00"),
        ("2026-10-31", "HI", "08:00-21:00 Pacific/Honolulu", "2026-11-01 18:00", "2026-11-02 07:00"),
        ("2026-10-30", "WA", "08:00-20:00 America/Los_Angeles", "2026-10-31 15:00", "2026-11-01 03:00"),
    ],
)
def test_call_window(as_of: str, state: str, text: str, start: str, end: str) -> None:
    book = make_book([guarantor("g1", state)], [("a1", "g1")])
    config = load_policy(EXAMPLE_TOML)  # WA: 8-20 in the example file
    w = evaluate(book, config, as_of=as_of).allowed.iloc[0]
    assert w["call_window_local"] == text
    assert w["call_window_start_utc"] == pd.Timestamp(start, tz="UTC")
    assert w["call_window_end_utc"] == pd.Timestamp(end, tz="UTC")


def test_call_windows_keep_row_order_and_index() -> None:
    book = make_book([guarantor("g1", "HI"), guarantor("g2", "NY")], [("a1", "g1"), ("a2", "g2"), ("a3", "g1")])
    accounts = book.accounts[["account_id", "guarantor_id"]].set_axis([30, 10, 20])
    w = call_windows(accounts, book.guarantors, D, PolicyConfig())
    assert w.index.tolist() == [30, 10, 20]
    assert w["call_window_local"].str.split().str[-1].tolist() == [
        "Pacific/Honolulu",
        "America/New_York",
        "Pacific/Honolulu",
    ]


@pytest.mark.parametrize(
    ("now", "call_allowed"),
    [
        ("2026-10-01 12:59", False),  # 07:59 in Chicago
        ("2026-10-01 13:00", True),  # 08:00
        ("2026-10-02 01:59", True),  # 20:59
        ("2026-10-02 02:00", False),  # 21:00: the end is exclusive
        ("2026-10-02 15:00", False),  # the next day: not D's window
    ],
)
def test_now_outside_window_blocks_calls(now: str, call_allowed: bool) -> None:
    book = make_book([guarantor("g1", "IL")], [("a1", "g1")])
    result = evaluate(book)
    now_result = block_calls_outside_hours(result, pd.Timestamp(now))
    assert isinstance(now_result, PolicyResult)
    assert now_result.allowed["call"].tolist() == [call_allowed]
    assert rules_for(now_result, "a1", "call") == (set() if call_allowed else {"call_hours"})
    assert result.allowed["call"].tolist() == [True]  # the input is left unchanged
    frame = block_calls_outside_hours(result.allowed, pd.Timestamp(now, tz="UTC"))
    assert isinstance(frame, pd.DataFrame) and frame["call"].tolist() == [call_allowed]


def test_now_detail_and_calls_blocked_otherwise_stay_blocked() -> None:
    book = make_book([guarantor("g1", "IL"), guarantor("g2", "HI")], [("a1", "g1"), ("a2", "g2")])
    book.holds = typed("holds", [{"account_id": "a2", "kind": "deceased", "start_date": "2026-01-01"}])
    now_result = block_calls_outside_hours(evaluate(book), pd.Timestamp("2026-10-01 17:00"))  # 12:00 IL, 07:00 HI
    assert now_result.allowed["call"].tolist() == [True, False]
    assert rules_for(now_result, "a2", "call") == {"hold_deceased", "call_hours"}
    detail = now_result.blocks.loc[now_result.blocks["rule"] == "call_hours", "detail"].tolist()
    assert detail == ["now is 2026-10-01 07:00 local time, outside the calling window 08:00-21:00 Pacific/Honolulu"]


# --- one call per guarantor -------------------------------------------------------------------------------


def test_one_call_per_guarantor_keeps_the_best_ranked() -> None:
    ranked = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5"],
            "guarantor_id": ["g1", "g1", "g2", "g1", "g3"],
            "score": [0.2, 0.9, 0.5, 0.9, np.nan],
        },
        index=[5, 4, 3, 2, 1],
    )
    kept, excluded = one_call_per_guarantor(ranked, PolicyConfig())
    assert kept["account_id"].tolist() == ["a2", "a3", "a5"]  # a2 beats a4 on the tie by row order
    assert kept.index.tolist() == [4, 3, 1]
    assert excluded["account_id"].tolist() == ["a1", "a4"]
    assert set(excluded["rule"]) == {"one_call_per_guarantor"}
    assert set(excluded["detail"]) == {"another account of this guarantor is called today"}

    by_order, _ = one_call_per_guarantor(ranked, PolicyConfig(), score=None)
    assert by_order["account_id"].tolist() == ["a1", "a3", "a5"]
    all_kept, none = one_call_per_guarantor(ranked, PolicyConfig(one_call_per_guarantor_per_day=False))
    assert all_kept["account_id"].tolist() == ranked["account_id"].tolist() and none.empty


# --- configuration ----------------------------------------------------------------------------------------


def test_defaults_when_no_file(tmp_path: Path) -> None:
    assert load_policy(None) == PolicyConfig()
    c = PolicyConfig()
    assert (c.max_calls_per_7_days, c.right_party_cooldown_days, c.call_hours_local) == (7, 7, [8, 21])
    assert (c.calls_autodialled, c.one_call_per_guarantor_per_day) == (False, True)
    assert c.blocking_holds == list(HOLD_KINDS)
    assert c.state_overrides["MA"].max_calls_per_7_days == 2


@pytest.mark.parametrize("kind", ["missing", "directory", "not utf-8"])
def test_a_policy_file_that_is_not_there_is_an_error(tmp_path: Path, kind: str) -> None:
    """A compliance configuration that cannot be read stops the job; it never falls back to the defaults."""
    path = tmp_path / "policy.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "not utf-8":
        path.write_bytes(b"max_calls_per_7_days = \xff\n")
    with pytest.raises(PolicyConfigError) as info:
        load_policy(path)
    assert "policy.toml" in str(info.value)


def test_example_file_loads() -> None:
    c = load_policy(EXAMPLE_TOML)
    assert c.state_overrides["MA"].max_calls_per_7_days == 2
    assert c.state_overrides["WA"].call_hours_local == [8, 20]


def test_overrides_merge_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        "max_calls_per_7_days = 5\ncalls_autodialled = true\nblocking_holds = ['dispute']\n"
        "[state_overrides.MA]\nright_party_cooldown_days = 10\n"
        "[state_overrides.TX]\nmax_calls_per_7_days = 3\n"
    )
    c = load_policy(path)
    assert (c.max_calls_per_7_days, c.calls_autodialled, c.blocking_holds) == (5, True, ["dispute"])
    rules = c.call_rules(pd.Series(["MA", "TX", "IL"]))
    assert rules["max_calls_per_7_days"].tolist() == [2, 3, 5]
    assert rules["right_party_cooldown_days"].tolist() == [10, 7, 7]
    assert rules[["call_start_hour", "call_end_hour"]].values.tolist() == [[8, 21]] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_calls = 5", "unknown key 'max_calls' (value 5)"),
        ("[state_overrides.TX]\ncooldown = 3", "unknown key 'state_overrides.TX.cooldown' (value 3)"),
        ("max_calls_per_7_days = 8", "max_calls_per_7_days = 8: "),
        ("max_calls_per_7_days = '7'", "max_calls_per_7_days = '7': "),
        ("right_party_cooldown_days = 3", "right_party_cooldown_days = 3: "),
        ("call_hours_local = [7, 21]", "call_hours_local = [7, 21]: "),
        ("calls_autodialled = 'yes'", "calls_autodialled = 'yes': "),
        ("blocking_holds = ['dispute', 'vacation']", "unknown hold kind(s) ['vacation']"),
        ("[state_overrides.XX]\nmax_calls_per_7_days = 1", "state_overrides.XX"),
        ("[state_overrides.MA]\nmax_calls_per_7_days = 9", "state_overrides.MA.max_calls_per_7_days = 9: "),
        ("max_calls_per_7_days = ", "not valid TOML"),
    ],
)
def test_bad_config_names_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text + "\n")
    with pytest.raises(PolicyConfigError, match="policy.toml") as info:
        load_policy(path)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


# --- combination and explanations -------------------------------------------------------------------------


def test_explain_lines() -> None:
    contacts = [call("a1", at(-1 - i % 6)) for i in range(7)]
    holds = [{"account_id": "a2", "kind": "bankruptcy", "start_date": "2026-09-12"}]
    g1 = guarantor("g1", "IL", sms_consent=False, portal_enrolled=False)
    g3 = guarantor("g3", "HI", has_email=False)
    accounts = [("a1", "g1"), ("a2", "g1"), ("a3", "g2"), ("a4", "g3")]
    book = make_book([g1, guarantor("g2", "NY"), g3], accounts, contacts, holds)
    result = evaluate(book)
    assert result.explain("a1") == [
        "call blocked by call_frequency: 7 calls in the 6 days before 2026-10-01 (limit 7 in 7 days)",
        "sms blocked by consent_sms: no consent to texts",
        "portal blocked by consent_portal: not enrolled in the patient portal",
        "allowed: email, letter",
    ]
    assert result.explain("a2") == [
        "all channels blocked by hold_bankruptcy: bankruptcy hold since 2026-09-12 (open-ended)",
        "sms blocked by consent_sms: no consent to texts",
        "portal blocked by consent_portal: not enrolled in the patient portal",
        "no channel allowed",
    ]
    assert result.explain("a3") == ["all channels allowed"]
    assert result.explain("a4") == [
        "email blocked by consent_email: no e-mail address on file",
        "allowed: call (08:00-21:00 Pacific/Honolulu), sms, letter, portal",
    ]
    with pytest.raises(KeyError):
        result.explain("nope")


def test_result_follows_the_accounts_row_order() -> None:
    book = make_book([guarantor("g1"), guarantor("g2", sms_consent=False)], [("a1", "g1"), ("a2", "g2")])
    accounts = book.accounts[["account_id", "guarantor_id"]].iloc[::-1].set_axis(["x", "y"])
    result = evaluate_policy(book, DATE, accounts, PolicyConfig())
    assert result.allowed.index.tolist() == ["x", "y"]
    assert result.allowed["account_id"].tolist() == ["a2", "a1"]
    assert result.allowed["sms"].tolist() == [False, True]
    assert result.day == D
    assert [c for c in result.allowed.columns if c in CHANNELS] == list(CHANNELS)
    assert all(result.allowed[c].dtype == bool for c in CHANNELS)


def test_bad_accounts_are_refused() -> None:
    book = make_book([guarantor("g1")], [("a1", "g1")])
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_policy(book, DATE, pd.concat([book.accounts, book.accounts]), PolicyConfig())
    with pytest.raises(ValueError, match="guarantor not in the book"):
        evaluate_policy(book, DATE, pd.DataFrame({"account_id": ["a9"], "guarantor_id": ["g9"]}), PolicyConfig())


# --- invariants on random books ---------------------------------------------------------------------------

STATES = ("IL", "MA", "HI", "NY", "AZ", "CA")


def random_book(seed: int) -> Book:
    rng = np.random.default_rng(seed)
    n_g = int(rng.integers(1, 5))
    guarantors = [
        {
            "guarantor_id": f"g{i}",
            "state": str(rng.choice(STATES)),
            **{f: bool(rng.random() < 0.6) for f in FLAGS},
        }
        for i in range(n_g)
    ]
    accounts = [(f"a{i}", f"g{int(rng.integers(0, n_g))}") for i in range(int(rng.integers(1, 7)))]
    contacts = [
        call(
            f"a{int(rng.integers(0, len(accounts)))}",
            at(int(rng.integers(-12, 2)), float(rng.integers(0, 24))),
            str(rng.choice(["no_answer", "voicemail", "right_party", "wrong_number"])),
        )
        for _ in range(int(rng.integers(0, 40)))
    ]
    holds = []
    for _ in range(int(rng.integers(0, 4))):
        start = D + pd.Timedelta(days=int(rng.integers(-5, 3)))
        end = None if rng.random() < 0.3 else start + pd.Timedelta(days=int(rng.integers(0, 5)))
        kind = str(rng.choice(HOLD_KINDS))
        holds.append(
            {
                "account_id": f"a{int(rng.integers(0, len(accounts)))}",
                "kind": kind,
                "start_date": start,
                "end_date": end,
            }
        )
    return make_book(guarantors, accounts, contacts, holds)


def oracle_calls_in_window(book: Book, account: str) -> tuple[int, pd.Timestamp | None]:
    """Brute force: calls on local days D-6 … D-1 and the last right-party local day before D."""
    state = book.guarantors.set_index("guarantor_id").loc[
        book.accounts.set_index("account_id").loc[account, "guarantor_id"], "state"
    ]
    zone = ZoneInfo(STATE_TZ[state])
    n, last = 0, None
    for c in book.contacts[book.contacts["account_id"] == account].itertuples():
        day = pd.Timestamp(c.contacted_at.tz_localize("UTC").astimezone(zone).date())
        if D - pd.Timedelta(days=6) <= day < D:
            n += 1
        if c.outcome == "right_party" and day < D and (last is None or day > last):
            last = day
    return n, last


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    autodialled=st.booleans(),
    holds=st.sets(st.sampled_from(HOLD_KINDS)),
    max_calls=st.integers(0, 7),
    now_hour=st.integers(0, 47),
)
def test_blocks_and_allowed_agree_on_random_books(
    seed: int, autodialled: bool, holds: set[str], max_calls: int, now_hour: int
) -> None:
    book = random_book(seed)
    config = PolicyConfig(calls_autodialled=autodialled, blocking_holds=sorted(holds), max_calls_per_7_days=max_calls)
    result = evaluate(book, config)
    for r in (result, block_calls_outside_hours(result, D + pd.Timedelta(hours=now_hour))):
        long = r.allowed.melt(id_vars="account_id", value_vars=list(CHANNELS), var_name="channel", value_name="ok")
        not_allowed = set(map(tuple, long.loc[~long["ok"], ["account_id", "channel"]].values.tolist()))
        blocked = set(map(tuple, r.blocks[["account_id", "channel"]].astype(str).values.tolist()))
        assert not_allowed == blocked
        assert not r.blocks.duplicated(["account_id", "channel", "rule"]).any()
    for account in book.accounts["account_id"]:
        n, last = oracle_calls_in_window(book, account)
        state = book.guarantors.set_index("guarantor_id").loc[
            book.accounts.set_index("account_id").loc[account, "guarantor_id"], "state"
        ]
        limit = 2 if state == "MA" else max_calls  # the MA override wins
        assert ("call_frequency" in rules_for(result, account, "call")) == (n >= limit)
        cooling = last is not None and (D - last).days <= 7
        assert ("right_party_cooldown" in rules_for(result, account, "call")) == cooling
