"""The feature contract: the names, order and category levels of the model's inputs.

`FEATURE_COLUMNS` is what `features.build.build_features` emits; `FeatureSpec` is the fitted copy of it
that travels with a trained model, so that serving casts incoming frames exactly as training saw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.schema import CHANNELS, HOLD_KINDS, PAYER_CLASSES, SERVICE_LINES, TABLES, US_STATES

LANGUAGE_LEVELS = ["en", "es", "zh", "vi", "ko", "ru", "other"]
"""Languages kept as their own level; a missing language means `en`, any other one is `other`."""

CATEGORY_LEVELS: dict[str, list[str]] = {
    "state": list(US_STATES),
    "language": LANGUAGE_LEVELS,
    "service_line": list(SERVICE_LINES),
    "payer_class": list(PAYER_CLASSES),
}

OUTREACH_WINDOWS_DAYS = (7, 30, 90)
"""A window of N days at T covers days T-N+1 .. T (the as-of day included)."""


def _channel_features() -> dict[str, str]:
    out: dict[str, str] = {}
    for ch in CHANNELS:
        for w in OUTREACH_WINDOWS_DAYS:
            out[f"n_{ch}_{w}d"] = f"{ch} contacts in the last {w} days"
        out[f"days_since_last_{ch}"] = f"days since the last {ch} contact (NaN: never)"
    return out


FEATURE_DESCRIPTIONS: dict[str, str] = {
    # balance and its make-up (dollars, as of the end of day T)
    "balance": "sum of all amounts posted on or before T",
    "total_charges": "sum of charges",
    "refunds": "sum of refunds (raise the balance)",
    "insurance_paid": "sum of insurance payments, as a positive amount",
    "adjustments": "sum of adjustments, signed as posted (negative lowers the balance)",
    "patient_paid": "sum of patient payments, as a positive amount",
    "patient_responsibility": "balance + patient_paid: what the patient owed before paying anything",
    "share_paid": "patient_paid / patient_responsibility",
    "balance_change_30d": "balance now minus balance 30 days ago",
    "balance_change_since_adjudication": "balance now minus balance after the adjudication day (NaN: none)",
    "balance_grew_since_adjudication": "1 if the balance rose after adjudication, else 0 (NaN: none)",
    # ages (days)
    "days_since_service": "days since the service date",
    "days_since_adjudication": "days since the first insurance payment or adjustment (NaN: none)",
    "days_since_first_statement": "days since the first letter (NaN: none)",
    # patient payments on this account
    "n_payments": "patient payments ever",
    "n_payments_90d": "patient payments in the last 90 days",
    "days_since_last_payment": "days since the last patient payment (NaN: never)",
    "mean_payment_amount": "mean patient payment, positive dollars (NaN: never)",
    "last_payment_amount": "total paid on the day of the last patient payment (NaN: never)",
    "mean_days_between_payments": "mean gap between distinct payment days (NaN: fewer than 2)",
    "payment_interval_cv": "std / mean of the gaps between payment days; low: a plan (NaN: fewer than 3)",
    "days_since_last_payment_over_interval": "days_since_last_payment / mean_days_between_payments",
    # outreach on this account
    **_channel_features(),
    "n_contacts_30d": "contacts of any channel in the last 30 days",
    "n_right_party_calls_90d": "calls that reached the guarantor in the last 90 days",
    "days_since_last_right_party": "days since the last right-party call (NaN: never)",
    "n_failed_deliveries": "failed sms/e-mail and returned letters ever",
    "n_wrong_number_calls": "calls that reached a wrong number ever",
    "n_calls_ever": "calls on this account ever",
    "guarantor_calls_365d": "calls on any of the guarantor's accounts in the last 365 days",
    "guarantor_right_party_rate_365d": "share of those calls that reached the guarantor (NaN: no calls)",
    # the guarantor's other accounts (existing at T, i.e. service_date <= T)
    "other_open_accounts": "the guarantor's other open accounts",
    "other_open_balance": "total balance of the guarantor's other open accounts",
    "other_accounts_ever": "the guarantor's other accounts, open or not",
    "other_payments_365d": "patient payments on the guarantor's other accounts in the last 365 days",
    "other_paid_amount_365d": "dollars paid on the guarantor's other accounts in the last 365 days",
    "guarantor_ever_paid": "1 if the guarantor ever paid on any account",
    # guarantor attributes
    "guarantor_age_years": "T's year minus birth year (NaN: unknown)",
    "state": "guarantor's state (categorical)",
    "language": "guarantor's language (categorical; missing means en)",
    **{c.name: f"1 if {c.note}" for c in TABLES["guarantors"].columns if c.kind == "bool"},
    # account attributes
    "service_line": "account's service line (categorical)",
    "payer_class": "account's payer class (categorical)",
    # holds active at T
    **{f"hold_{k}": f"1 if a {k} hold is active at T" for k in HOLD_KINDS},
    "any_hold_active": "1 if any hold is active at T",
    # promises made on calls (the optional promises table; features.history_promises)
    "promise_open": "1 if a promise or plan instalment is open at T (not yet kept, its due day + grace not passed)",
    "promise_open_amount": "dollars of the open promise instalments",
    "days_to_promise_due": "days from T to the next open instalment's due day (NaN: none open)",
    "promises_kept": "promise and plan instalments kept so far",
    "promises_broken": "promise and plan instalments broken so far",
}

FEATURE_COLUMNS: list[str] = list(FEATURE_DESCRIPTIONS)
NUMERIC_FEATURES: list[str] = [c for c in FEATURE_COLUMNS if c not in CATEGORY_LEVELS]
CATEGORICAL_FEATURES: list[str] = [c for c in FEATURE_COLUMNS if c in CATEGORY_LEVELS]


def category_codes(values: pd.Series | pd.Categorical | np.ndarray, levels: Sequence[str]) -> np.ndarray:
    """Codes of `values` (strings or categoricals) in `levels`; -1 for missing or unseen values."""
    index = pd.Index(list(levels))
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        remap = np.append(index.get_indexer(values.categories), -1)
        return remap[values.codes].astype(np.int16)
    return index.get_indexer(pd.Index(values, dtype=object)).astype(np.int16)


def as_category(values: pd.Series | pd.Categorical | np.ndarray, levels: Sequence[str]) -> pd.Categorical:
    """`values` as a Categorical with exactly `levels` (unseen and missing values become NaN)."""
    return pd.Categorical.from_codes(category_codes(values, levels), categories=list(levels))


@dataclass
class FeatureSpec:
    """The fitted feature contract saved with a model: column order, dtypes and category levels."""

    columns: list[str]
    dtypes: dict[str, str]
    category_levels: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, columns: Sequence[str] | None = None) -> FeatureSpec:
        """The spec of `df`'s feature columns (default: those of FEATURE_COLUMNS present, in df's order)."""
        cols = list(columns) if columns is not None else [c for c in df.columns if c in FEATURE_DESCRIPTIONS]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"feature columns missing from the frame: {missing}")
        dtypes: dict[str, str] = {}
        levels: dict[str, list[str]] = {}
        for c in cols:
            s = df[c]
            if isinstance(s.dtype, pd.CategoricalDtype):
                dtypes[c], levels[c] = "category", [str(v) for v in s.cat.categories]
            elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                dtypes[c] = "float64"
            else:
                dtypes[c], levels[c] = "category", sorted({str(v) for v in s.dropna().unique()})
        return cls(columns=cols, dtypes=dtypes, category_levels=levels)

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return {
            "columns": list(self.columns),
            "dtypes": dict(self.dtypes),
            "category_levels": {k: list(v) for k, v in self.category_levels.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        """Inverse of `to_dict`."""
        spec = cls(
            columns=list(d["columns"]),
            dtypes=dict(d["dtypes"]),
            category_levels={k: list(v) for k, v in d.get("category_levels", {}).items()},
        )
        untyped = [c for c in spec.columns if c not in spec.dtypes]
        no_levels = [c for c in spec.columns if spec.dtypes.get(c) == "category" and c not in spec.category_levels]
        if untyped or no_levels:
            raise ValueError(f"feature spec incomplete: no dtype for {untyped}, no levels for {no_levels}")
        return spec

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df`'s feature columns in the saved order and dtypes (keeps df's index).

        Numerics become float64; categoricals (given as strings or categoricals) get the saved levels, and
        a level unseen in training becomes NaN, which the model treats as missing.
        """
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ValueError(f"feature columns missing from the frame: {missing}")
        out: dict[str, object] = {}
        for c in self.columns:
            if self.dtypes[c] == "category":
                out[c] = as_category(df[c], self.category_levels[c])
            else:
                out[c] = pd.to_numeric(df[c], errors="raise").astype("float64").to_numpy()
        return pd.DataFrame(out, index=df.index, columns=self.columns)

    def encode_rows(self, columns: Sequence[object], rows: Sequence[object]) -> np.ndarray | None:
        """The model matrix straight from row lists (MLflow's `dataframe_split`), with no DataFrame in between.

        Gives exactly `encode(pd.DataFrame(rows, columns=columns))` for plain JSON values (numbers, strings, null);
        returns None when the rows need pandas' parsing (a missing column, ragged rows, a value that is not a
        finite number), so the caller can take the slow path and its precise error message. A single row costs tens of
        microseconds here against milliseconds of per-column pandas work.
        """
        where = {c: i for i, c in enumerate(columns)}
        if len(where) != len(columns) or any(c not in where for c in self.columns) or not rows:
            return None
        try:
            table = np.array(rows, dtype=object)
            if table.shape != (len(rows), len(columns)):
                return None
            out = np.empty((len(rows), len(self.columns)), dtype=np.float64)
            numeric = [j for j, c in enumerate(self.columns) if self.dtypes[c] != "category"]
            block = table[:, [where[self.columns[j]] for j in numeric]]
            kinds = set(map(type, block.ravel().tolist()))
            if not kinds <= {int, float, type(None)}:  # strings, booleans, lists: pandas decides
                return None
            block[np.equal(block, None)] = np.nan
            out[:, numeric] = block.astype(np.float64)
            for j, c in enumerate(self.columns):
                if self.dtypes[c] == "category":
                    lookup = {level: float(k) for k, level in enumerate(self.category_levels[c])}
                    values = table[:, where[c]].tolist()
                    if not all(v is None or isinstance(v, str) for v in values):
                        return None
                    out[:, j] = [lookup.get(v, np.nan) for v in values]
        except (TypeError, ValueError, OverflowError):
            return None
        if np.isinf(out).any():  # JSON's `Infinity` or 1e400: the caller's checks refuse it by name
            return None
        return out

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The model matrix as float64: numerics as given, categoricals as codes of the saved levels (NaN: missing
        or unseen) — exactly what LightGBM makes of `apply(df)`, without building a DataFrame (the fast path)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ValueError(f"feature columns missing from the frame: {missing}")
        out = np.empty((len(df), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):  # one vectorised cast per column
            if self.dtypes[c] == "category":
                codes = category_codes(df[c], self.category_levels[c]).astype(np.float64)
                codes[codes < 0] = np.nan
                out[:, j] = codes
            else:
                out[:, j] = pd.to_numeric(df[c], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        return out
