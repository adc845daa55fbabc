"""What every policy rule needs per account: the guarantor's state, time zone, consent flags, the call rules
in effect there, each call's local calendar day, and the local calling window on day D.

Lookups are positional (an account's row number in `accounts`), so nothing is looked up per row in Python.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.states import STATE_TZ
from serving.policy_config import CALL_RULE_COLUMNS, PolicyConfig

GUARANTOR_FLAGS = ("has_mobile", "has_email", "sms_consent", "email_consent", "portal_enrolled")
PREPARED_COLUMNS = ("account_id", "guarantor_id", "state", "tz", *GUARANTOR_FLAGS, *CALL_RULE_COLUMNS)


def prepare_accounts(accounts: pd.DataFrame, guarantors: pd.DataFrame, config: PolicyConfig) -> pd.DataFrame:
    """`accounts` (account_id, guarantor_id) with their guarantor's state, time zone, flags and call rules.

    A frame that already has PREPARED_COLUMNS is returned as is (evaluate_policy prepares once, with the same
    config, and hands the result to every rule). An account naming an unknown guarantor is an error.
    """
    if set(PREPARED_COLUMNS) <= set(accounts.columns):
        return accounts
    g = guarantors.drop_duplicates("guarantor_id")
    gid = accounts["guarantor_id"].astype(object).to_numpy()
    pos = pd.Index(g["guarantor_id"].astype(object)).get_indexer(gid)
    if (pos < 0).any():
        bad = gid[pos < 0]
        raise ValueError(f"{len(bad)} account(s) name a guarantor not in the book, e.g. {bad[0]!r}")
    state = g["state"].astype(object).to_numpy()[pos]
    out = pd.DataFrame(
        {
            "account_id": accounts["account_id"].astype(object).to_numpy(),
            "guarantor_id": gid,
            "state": state,
            "tz": lookup(pd.Series(state), STATE_TZ),
            **{f: g[f].to_numpy(dtype=bool)[pos] for f in GUARANTOR_FLAGS},
        },
        index=accounts.index,
    )
    out[list(CALL_RULE_COLUMNS)] = config.call_rules(out["state"]).to_numpy()
    return out


def lookup(values: pd.Series, mapping: dict, default: object = None) -> np.ndarray:
    """`mapping[v]` for every value (looked up once per distinct value), `default` where absent or missing."""
    codes, uniques = pd.factorize(values)
    table = np.array([mapping.get(u, default) for u in uniques] + [default], dtype=object)
    return table[np.where(codes < 0, len(uniques), codes)]


def account_positions(accounts: pd.DataFrame, account_ids: pd.Series) -> np.ndarray:
    """Row number in `accounts` of each id (-1 for ids not among them); `accounts` ids must be unique."""
    return pd.Index(accounts["account_id"].astype(object)).get_indexer(account_ids.astype(object))


def local_calls(contacts: pd.DataFrame, acc: pd.DataFrame) -> pd.DataFrame:
    """The calls on the prepared accounts: `pos` (row in `acc`), `local_day` (the guarantor's calendar day of
    `contacted_at`, naive UTC converted to their state's zone) and `outcome`."""
    pos = account_positions(acc, contacts["account_id"])
    keep = (contacts["channel"] == "call").to_numpy() & (pos >= 0)
    calls, pos = contacts[keep], pos[keep]
    at = pd.to_datetime(calls["contacted_at"])
    utc = at.dt.tz_convert("UTC") if at.dt.tz is not None else at.dt.tz_localize("UTC")
    tz = acc["tz"].to_numpy()[pos]
    local_day = np.full(len(calls), np.datetime64("NaT"), dtype="datetime64[ns]")
    for zone in pd.unique(tz):  # a handful of time zones, each converted in one vectorised pass
        mask = tz == zone
        local_day[mask] = utc[mask].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize().to_numpy("datetime64[ns]")
    return pd.DataFrame({"pos": pos, "local_day": local_day, "outcome": calls["outcome"].astype(object).to_numpy()})


def call_windows(
    accounts: pd.DataFrame, guarantors: pd.DataFrame, day: pd.Timestamp, config: PolicyConfig
) -> pd.DataFrame:
    """Each account's calling window on D in its guarantor's local time (DST-aware via zoneinfo):
    `call_window_local` ("08:00-21:00 America/Chicago") and tz-aware UTC bounds (the end is exclusive)."""
    acc = prepare_accounts(accounts, guarantors, config)
    key = acc[["tz", "call_start_hour", "call_end_hour"]]
    codes = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    combos = key.drop_duplicates()  # in first-appearance order, like ngroup(sort=False)
    base = pd.Timestamp(day).normalize()

    def bound(tz: str, hour: int) -> pd.Timestamp:
        return (base + pd.Timedelta(hours=int(hour))).tz_localize(tz).tz_convert("UTC")

    rows = combos.to_numpy().tolist()  # one entry per distinct (zone, hours), not per account
    text = np.array([f"{lo:02d}:00-{hi:02d}:00 {tz}" for tz, lo, hi in rows], dtype=object)
    start = pd.DatetimeIndex([bound(tz, lo) for tz, lo, _ in rows], dtype="datetime64[ns, UTC]")
    end = pd.DatetimeIndex([bound(tz, hi) for tz, _, hi in rows], dtype="datetime64[ns, UTC]")
    return pd.DataFrame(
        {"call_window_local": text[codes], "call_window_start_utc": start[codes], "call_window_end_utc": end[codes]},
        index=accounts.index,
    )
