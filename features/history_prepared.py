"""A book turned into integer arrays once, so features and labels for many as-of days are cheap.

Every row is keyed by its account's position in the book's accounts sorted by `account_id`
(rows of unknown accounts are dropped); dates become day numbers (days since 1970-01-01), so an as-of day
T is an int and "dated on or before T" is `day <= T`. Group aggregates are `np.bincount` and
`ufunc.at` over those positions: linear in the rows, no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import (
    ACTIONS,
    CHANNELS,
    HOLD_KINDS,
    OUTCOMES,
    PAYER_CLASSES,
    SERVICE_LINES,
    TABLES,
    TRANSACTION_KINDS,
    Book,
)
from features.spec import CATEGORY_LEVELS, LANGUAGE_LEVELS, category_codes

GUARANTOR_FLAGS = tuple(c.name for c in TABLES["guarantors"].columns if c.kind == "bool")
"""The guarantor's yes/no attributes (has_mobile, sms_consent, ...), used as 0/1 features."""

NO_END_DAY = np.iinfo(np.int64).max
"""The end day of an open-ended hold."""


def as_of_timestamp(as_of: str | date | pd.Timestamp) -> pd.Timestamp:
    """The as-of day as a naive midnight Timestamp (an aware one is converted to UTC first)."""
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def day_number(ts: pd.Timestamp) -> int:
    """Days since 1970-01-01 of a Timestamp's date."""
    return int(np.datetime64(ts.date(), "D").astype(np.int64))


NS_PER_DAY = 86_400_000_000_000


def days(values: pd.Series) -> np.ndarray:
    """Day numbers of a datetime64 column (any unit; a timestamp counts on its UTC date); NaT: NO_END_DAY."""
    arr = values.to_numpy(dtype="datetime64[ns]")
    out = arr.view(np.int64) // NS_PER_DAY  # floor division: days before 1970 round down, as datetime64[D] does
    out[np.isnat(arr)] = NO_END_DAY
    return out


def positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in a unique index of strings (-1 if absent), via Arrow's hash kernel."""
    if len(values) == 0 or len(index) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    try:
        arr = pa.array(values)  # no copy for Arrow-backed strings; the (smaller) index is cast to match
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        found = pc.index_in(arr, value_set=pa.array(index).cast(arr.type))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowException, TypeError):  # ids that are not plain strings: pandas' slower hash lookup
        return index.get_indexer(values).astype(np.int64)


def sorted_order(ids: pd.Series) -> np.ndarray:
    """The stable sort order of string ids (Arrow's sort: UTF-8 byte order is code-point order, 3x numpy's)."""
    try:
        return pc.sort_indices(pa.array(ids, type=pa.large_string())).to_numpy().astype(np.int64)
    except (pa.ArrowException, TypeError):
        return np.argsort(ids.to_numpy(dtype=object), kind="stable")


def group_max(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-group maximum of float `values` over groups 0..n-1 (NaN for an empty group)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, codes, values.astype(np.float64))
    out[np.isneginf(out)] = np.nan
    return out


def group_min(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-group minimum of float `values` over groups 0..n-1 (NaN for an empty group)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, codes, values.astype(np.float64))
    out[np.isposinf(out)] = np.nan
    return out


def group_count(codes: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-group row count (float) over groups 0..n-1, optionally of masked rows only."""
    return np.bincount(codes if mask is None else codes[mask], minlength=n).astype(np.float64)


@dataclass(frozen=True)
class PreparedBook:
    """The book as aligned arrays; account arrays have one entry per account, sorted by account_id."""

    account_ids: pd.Series  # sorted, RangeIndex
    guarantor_ids: pd.Series  # of each account
    service_day: np.ndarray
    service_line: np.ndarray  # codes in SERVICE_LINES
    payer_class: np.ndarray  # codes in PAYER_CLASSES
    guarantor_code: np.ndarray  # 0..n_guarantors-1, factorized over the accounts
    n_guarantors: int
    guarantor: pd.DataFrame  # the account's guarantor's attributes (see guarantor_attributes)
    # transactions (in book order)
    tx_account: np.ndarray
    tx_day: np.ndarray
    tx_kind: np.ndarray  # codes in TRANSACTION_KINDS
    tx_amount: np.ndarray
    # patient payments, sorted by (account, day), amounts positive
    pay_account: np.ndarray
    pay_day: np.ndarray
    pay_amount: np.ndarray
    # contacts (in book order)
    ct_account: np.ndarray
    ct_day: np.ndarray
    ct_time: np.ndarray  # datetime64[ns], naive UTC
    ct_channel: np.ndarray  # codes in CHANNELS
    ct_outcome: np.ndarray  # codes in OUTCOMES
    ct_propensity: np.ndarray
    ct_id: pd.Series  # contact_id (RangeIndex), for a deterministic order of same-time contacts; see contact_ids
    # holds
    hold_account: np.ndarray
    hold_kind: np.ndarray  # codes in HOLD_KINDS
    hold_start: np.ndarray
    hold_end: np.ndarray  # NO_END_DAY when open-ended
    last_observed_day: int | None  # latest posted_date / contacted_at day in the book
    # promises (optional table): one entry per promise of a known account
    pr_account: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pr_made: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # day made (UTC)
    pr_first_due: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pr_amount: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pr_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # instalments
    pr_frame: pd.DataFrame = field(default_factory=pd.DataFrame)  # the promises' rows (ids, kinds)
    # decisions (optional table): the deciding policy's logged action and propensity per account and day
    dc_account: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dc_day: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dc_action: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # codes in ACTIONS
    dc_propensity: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_accounts(self) -> int:
        return len(self.account_ids)

    def contact_ids(self, rows: np.ndarray) -> np.ndarray:
        """contact_id of the contacts at `rows`, as Python strings (only these: millions of them cost seconds)."""
        return self.ct_id.take(rows).to_numpy(dtype=object)

    def account_positions(self, account_ids: pd.Series) -> np.ndarray:
        """Positions of the given ids in the sorted accounts (-1: unknown)."""
        return positions(pd.Series(account_ids), pd.Index(self.account_ids))


def _known_rows(
    df: pd.DataFrame, index: pd.Index, validated: np.ndarray | None = None, rank: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of `df` whose account is in `index`, and those accounts' positions.

    `validated` is validation's lookup of the same ids in the unsorted accounts table (Book.key_positions) and
    `rank` each unsorted row's position in `index`: then nothing is hashed again.
    """
    if validated is not None and rank is not None:
        pos = np.where(validated >= 0, rank[np.maximum(validated, 0)], -1) if len(rank) else validated
    else:
        pos = positions(df["account_id"], index)
    keep = pos >= 0
    if keep.all():
        return df, pos
    return df.iloc[np.flatnonzero(keep)], pos[keep]


def normalise_language(values: pd.Series) -> pd.Categorical:
    """ISO 639-1 codes to LANGUAGE_LEVELS, ignoring case and region (`es-MX`); blank: en; others: other."""
    codes, uniques = pd.factorize(values)
    base = pd.Series(uniques, dtype=object).astype(str).str.strip().str.lower().str.split(r"[-_]", regex=True).str[0]
    mapped = np.where(base.isin(LANGUAGE_LEVELS), base, np.where(base == "", "en", "other"))
    level = pd.Index(LANGUAGE_LEVELS).get_indexer(np.append(mapped, "en"))  # -1 (missing) -> "en"
    return pd.Categorical.from_codes(level[codes], categories=LANGUAGE_LEVELS)


def guarantor_attributes(guarantors: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Time-invariant guarantor attributes at `rows` of the table (-1: unknown guarantor, all missing)."""

    def at(values: np.ndarray, missing: float) -> np.ndarray:
        return np.append(values, missing)[rows]  # row -1 picks the appended `missing`

    out: dict[str, object] = {
        "birth_year": at(guarantors["birth_year"].to_numpy(dtype=np.float64, na_value=np.nan), np.nan),
        "state": pd.Categorical.from_codes(
            at(category_codes(guarantors["state"], CATEGORY_LEVELS["state"]), -1),
            categories=CATEGORY_LEVELS["state"],
        ),
        "language": pd.Categorical.from_codes(
            at(normalise_language(guarantors["language"]).codes, -1), categories=LANGUAGE_LEVELS
        ),
    }
    for col in GUARANTOR_FLAGS:
        out[col] = at(guarantors[col].to_numpy(dtype=np.float64), np.nan)
    return pd.DataFrame(out)


def prepare_book(book: Book) -> PreparedBook:
    """Encode a validated book once (ids to positions, dates to day numbers, enums to codes)."""
    order = sorted_order(book.accounts["account_id"])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    accounts = book.accounts.iloc[order]
    account_ids = accounts["account_id"].reset_index(drop=True)
    index = pd.Index(account_ids)
    guarantor_code, guarantor_uniques = pd.factorize(accounts["guarantor_id"])
    known_guarantor = book.key_positions("accounts", "guarantor_id")
    guarantor_row = (
        known_guarantor[order]
        if known_guarantor is not None
        else positions(accounts["guarantor_id"], pd.Index(book.guarantors["guarantor_id"]))
    )

    def known(table: str) -> tuple[pd.DataFrame, np.ndarray]:
        return _known_rows(getattr(book, table), index, book.key_positions(table, "account_id"), rank)

    tx, tx_account = known("transactions")
    tx_day = days(tx["posted_date"])
    tx_kind = category_codes(tx["kind"], TRANSACTION_KINDS)
    tx_amount = tx["amount"].to_numpy(dtype=np.float64)
    is_pay = tx_kind == TRANSACTION_KINDS.index("patient_payment")
    pay_order = np.flatnonzero(is_pay)[np.lexsort((tx_day[is_pay], tx_account[is_pay]))]

    ct, ct_account = known("contacts")
    ct_time = ct["contacted_at"].to_numpy(dtype="datetime64[ns]")
    holds, hold_account = known("holds")

    ct_day = days(ct["contacted_at"])
    observed = np.concatenate([tx_day, ct_day])
    promises, pr_account = known("promises")
    decisions, dc_account = known("decisions")
    return PreparedBook(
        account_ids=account_ids,
        guarantor_ids=accounts["guarantor_id"].reset_index(drop=True),
        service_day=days(accounts["service_date"]),
        service_line=category_codes(accounts["service_line"], SERVICE_LINES),
        payer_class=category_codes(accounts["payer_class"], PAYER_CLASSES),
        guarantor_code=guarantor_code.astype(np.int64),
        n_guarantors=len(guarantor_uniques),
        guarantor=guarantor_attributes(book.guarantors, guarantor_row),
        tx_account=tx_account,
        tx_day=tx_day,
        tx_kind=tx_kind,
        tx_amount=tx_amount,
        pay_account=tx_account[pay_order],
        pay_day=tx_day[pay_order],
        pay_amount=-tx_amount[pay_order],
        ct_account=ct_account,
        ct_day=ct_day,
        ct_time=ct_time,
        ct_channel=category_codes(ct["channel"], CHANNELS),
        ct_outcome=category_codes(ct["outcome"], OUTCOMES),
        ct_propensity=ct["propensity"].to_numpy(dtype=np.float64, na_value=np.nan),
        ct_id=ct["contact_id"].reset_index(drop=True),
        hold_account=hold_account,
        hold_kind=category_codes(holds["kind"], HOLD_KINDS),
        hold_start=days(holds["start_date"]),
        hold_end=days(holds["end_date"]),
        last_observed_day=int(observed.max()) if len(observed) else None,
        pr_account=pr_account,
        pr_made=days(promises["made_at"]),
        pr_first_due=days(promises["first_due_date"]),
        pr_amount=promises["amount"].to_numpy(dtype=np.float64),
        pr_count=promises["instalments"].to_numpy(dtype=np.int64, na_value=1),
        pr_frame=promises.reset_index(drop=True),
        dc_account=dc_account,
        dc_day=days(decisions["decided_for"]),
        dc_action=category_codes(decisions["action"], ACTIONS),
        dc_propensity=decisions["propensity"].to_numpy(dtype=np.float64, na_value=np.nan),
    )
