"""The contact policy's rules, one vectorised function each, evaluated for contacts made on day `day` (D).

Every rule returns a verdict frame indexed like `accounts` with `blocked` (bool) and `detail` (plain language,
no PHI beyond dates and counts; "" where not blocked). Day counts use the guarantor's local calendar day
(their state's time zone), because the limits protect the person called; contacts on D or later never count.
`accounts` needs account_id and guarantor_id (unique account ids), or may be `prepare_accounts`' output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from serving.policy_accounts import account_positions, local_calls, prepare_accounts
from serving.policy_config import PolicyConfig

RULE_NAMES = (
    "call_frequency",
    "right_party_cooldown",
    "consent_autodialled_call",
    "hold_dispute",
    "hold_bankruptcy",
    "hold_cease_contact",
    "hold_financial_assistance",
    "hold_deceased",
    "consent_sms",
    "consent_email",
    "consent_portal",
    "call_hours",
    "one_call_per_guarantor",
)


def verdict(index: pd.Index, blocked: np.ndarray, detail: pd.Series | np.ndarray | str) -> pd.DataFrame:
    """A rule's verdict; `detail` is one text for all, or the texts of the blocked rows only, in row order."""
    blocked = np.asarray(blocked, dtype=bool)
    text = np.full(len(blocked), "", dtype=object)
    text[blocked] = detail if isinstance(detail, str) else np.asarray(detail, dtype=object)
    return pd.DataFrame({"blocked": blocked, "detail": text}, index=index)


def _iso(days: np.ndarray) -> pd.Series:
    return pd.Series(np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D"), dtype=object)


def _num(values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values).astype(str), dtype=object)


def rule_call_frequency(
    contacts: pd.DataFrame,
    accounts: pd.DataFrame,
    guarantors: pd.DataFrame,
    day: pd.Timestamp,
    config: PolicyConfig,
    *,
    include_day: bool = False,
) -> pd.DataFrame:
    """Reg F 7-in-7: a call on D is allowed iff the calls (any outcome) on D-6 … D-1 number below the max.

    `include_day`: the calls already made on D count too (re-evaluating during D, after a call is recorded).
    """
    acc = prepare_accounts(accounts, guarantors, config)
    calls = local_calls(contacts, acc)
    first, until = day - pd.Timedelta(days=6), day + pd.Timedelta(days=1) if include_day else day
    recent = (calls["local_day"] >= first) & (calls["local_day"] < until)
    n = np.bincount(calls["pos"][recent], minlength=len(acc))
    limit = acc["max_calls_per_7_days"].to_numpy()
    hit = n >= limit
    noun = pd.Series(np.where(n[hit] == 1, " call", " calls"), dtype=object)
    when = f"from {first:%Y-%m-%d} to {day:%Y-%m-%d}" if include_day else f"in the 6 days before {day:%Y-%m-%d}"
    before = f" {when} (limit "
    return verdict(acc.index, hit, _num(n[hit]) + noun + before + _num(limit[hit]) + " in 7 days)")


def rule_right_party_cooldown(
    contacts: pd.DataFrame,
    accounts: pd.DataFrame,
    guarantors: pd.DataFrame,
    day: pd.Timestamp,
    config: PolicyConfig,
    *,
    include_day: bool = False,
) -> pd.DataFrame:
    """Reg F: a right-party conversation on day R blocks calls on R+1 … R+k (k = cooldown days).

    `include_day`: a conversation on D itself blocks further calls on D too (re-evaluating during D).
    """
    acc = prepare_accounts(accounts, guarantors, config)
    calls = local_calls(contacts, acc)
    until = day + pd.Timedelta(days=1) if include_day else day
    talks = calls[(calls["outcome"] == "right_party") & (calls["local_day"] < until)]
    last = talks.groupby("pos")["local_day"].max().reindex(np.arange(len(acc))).to_numpy("datetime64[ns]")
    k = acc["right_party_cooldown_days"].to_numpy()
    since = (np.datetime64(pd.Timestamp(day).normalize()) - last) / np.timedelta64(1, "D")  # NaN: never
    hit = since <= k
    again = last[hit] + (k[hit] + 1).astype("timedelta64[D]")
    detail = (
        "right-party conversation on " + _iso(last[hit]) + "; no calls for " + _num(k[hit])
        + " days after a conversation (calls allowed again from " + _iso(again) + ")"
    )  # fmt: skip
    return verdict(acc.index, hit, detail)


def rule_hold(holds: pd.DataFrame, accounts: pd.DataFrame, day: pd.Timestamp, kind: str) -> pd.DataFrame:
    """Holds of one kind: active on D iff start_date <= D and (end_date missing or D < end_date)."""
    return _hold_verdicts(holds, accounts, day, [kind])[f"hold_{kind}"]


def rule_holds(
    holds: pd.DataFrame, accounts: pd.DataFrame, day: pd.Timestamp, config: PolicyConfig
) -> dict[str, pd.DataFrame]:
    """One verdict per blocking hold kind, keyed by rule name `hold_<kind>`; each blocks every channel."""
    return _hold_verdicts(holds, accounts, day, config.blocking_holds)


def _hold_verdicts(
    holds: pd.DataFrame, accounts: pd.DataFrame, day: pd.Timestamp, kinds: list[str]
) -> dict[str, pd.DataFrame]:
    pos = account_positions(accounts, holds["account_id"])
    end = holds["end_date"]
    active = (pos >= 0) & (holds["kind"].isin(kinds) & (holds["start_date"] <= day) & (end.isna() | (end > day)))
    h = pd.DataFrame(
        {
            "pos": pos,
            "kind": holds["kind"].astype(object).to_numpy(),
            "start": holds["start_date"].to_numpy("datetime64[ns]"),
            "end": end.to_numpy("datetime64[ns]"),
            "open": end.isna().to_numpy(),
        }
    )[active.to_numpy()]
    rows = np.arange(len(accounts))
    out = {}
    for kind in kinds:  # a handful of hold kinds, each vectorised over accounts
        per = h[h["kind"] == kind].groupby("pos").agg(start=("start", "min"), end=("end", "max"), open=("open", "any"))
        per = per.reindex(rows)
        hit = per["start"].notna().to_numpy()
        start, until = per["start"].to_numpy()[hit], per["end"].to_numpy()[hit]
        is_open = per["open"].to_numpy()[hit].astype(bool)
        ending = np.where(is_open, " (open-ended)", " (lifted on " + _iso(until) + ")")
        label = kind.replace("_", " ")
        out[f"hold_{kind}"] = verdict(accounts.index, hit, f"{label} hold since " + _iso(start) + ending)
    return out


def _missing(index: pd.Index, parts: list[tuple[np.ndarray, str]]) -> pd.DataFrame:
    """Blocked where any flag is False; the detail lists what is missing, joined by " and "."""
    lacking = [pd.Series(np.where(flag, "", text), dtype=object) for flag, text in parts]
    joined = lacking[0]
    for more in lacking[1:]:
        joined = joined + np.where((joined != "") & (more != ""), " and ", "") + more
    hit = (joined != "").to_numpy()
    return verdict(index, hit, joined[hit])


def rule_consent_sms(accounts: pd.DataFrame, guarantors: pd.DataFrame, config: PolicyConfig) -> pd.DataFrame:
    """TCPA: texts only to a mobile number on file with prior express consent to texts."""
    acc = prepare_accounts(accounts, guarantors, config)
    return _missing(
        acc.index,
        [
            (acc["has_mobile"].to_numpy(), "no mobile number on file"),
            (acc["sms_consent"].to_numpy(), "no consent to texts"),
        ],
    )


def rule_consent_email(accounts: pd.DataFrame, guarantors: pd.DataFrame, config: PolicyConfig) -> pd.DataFrame:
    """E-mail only to an address on file with consent to e-mail about the bill."""
    acc = prepare_accounts(accounts, guarantors, config)
    return _missing(
        acc.index,
        [
            (acc["has_email"].to_numpy(), "no e-mail address on file"),
            (acc["email_consent"].to_numpy(), "no consent to e-mail"),
        ],
    )


def rule_consent_portal(accounts: pd.DataFrame, guarantors: pd.DataFrame, config: PolicyConfig) -> pd.DataFrame:
    """Portal messages only to guarantors enrolled in the patient portal."""
    acc = prepare_accounts(accounts, guarantors, config)
    return _missing(acc.index, [(acc["portal_enrolled"].to_numpy(), "not enrolled in the patient portal")])


def rule_consent_autodialled_call(
    accounts: pd.DataFrame, guarantors: pd.DataFrame, config: PolicyConfig
) -> pd.DataFrame:
    """TCPA: when calls are autodialled (config), they need prior express consent, recorded as sms_consent."""
    acc = prepare_accounts(accounts, guarantors, config)
    hit = ~acc["sms_consent"].to_numpy() & config.calls_autodialled
    return verdict(acc.index, hit, "calls are autodialled and there is no prior express consent to automated calls")
