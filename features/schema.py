"""The book's data contract: the single source of truth for tables, columns, types and enums.

The loader, the validator, the generator and docs/data-contract.md all read this module;
nothing else in the project names a column of the contract by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["string", "int", "float", "money", "date", "timestamp", "bool", "enum"]

SERVICE_LINES = ("emergency", "inpatient", "outpatient", "clinic", "lab", "imaging", "other")
PAYER_CLASSES = ("commercial", "medicare", "medicaid", "self_pay", "other")
TRANSACTION_KINDS = ("charge", "insurance_payment", "patient_payment", "adjustment", "refund")
CHANNELS = ("call", "sms", "email", "letter", "portal")
ACTIONS = ("none", *CHANNELS)
OUTCOMES_BY_CHANNEL: dict[str, tuple[str, ...]] = {
    "call": ("no_answer", "voicemail", "right_party", "wrong_number"),
    "sms": ("delivered", "failed"),
    "email": ("delivered", "failed"),
    "letter": ("sent", "returned"),
    "portal": ("sent",),
}
OUTCOMES = tuple(dict.fromkeys(o for outs in OUTCOMES_BY_CHANNEL.values() for o in outs))
HOLD_KINDS = ("dispute", "bankruptcy", "cease_contact", "financial_assistance", "deceased")
PROMISE_KINDS = ("promise_to_pay", "payment_plan")
PLAN_INTERVAL_DAYS = 30
"""A payment plan's instalments fall due every this many days from its first due date."""
US_STATES = (
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "PR",
)

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2200, 12, 31)
"""Every date and timestamp of a book, and every as-of day, lies within these days (inclusive).

Far outside them a value is a typo or a sentinel (`9999-12-31`, `0001-01-01`), and pandas' nanosecond timestamps
cannot even hold it."""
MAX_AMOUNT = 1_000_000_000
"""Dollars: no single transaction moves a balance by more (a larger one is a unit or sentinel error)."""
THIS_YEAR = "this year"
"""An upper bound that is the current calendar year (UTC) when the book is checked."""

# Signed effect on the balance that each transaction kind may have: +1 raises, -1 lowers, 0 either.
AMOUNT_SIGN = {"charge": 1, "refund": 1, "insurance_payment": -1, "patient_payment": -1, "adjustment": 0}


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    nullable: bool = False
    values: tuple[str, ...] | None = None
    key: bool = False
    references: str | None = None  # "table.column"
    note: str = ""
    bounds: tuple[float, float | str] | None = None  # inclusive; numbers only; THIS_YEAR: the current year


@dataclass(frozen=True)
class Table:
    """One table of a book; `optional` tables may be absent (then empty)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    optional: bool = False
    checks: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str | None:
        return next((c.name for c in self.columns if c.key), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "guarantors",
            "the person responsible for the bill",
            (
                Column("guarantor_id", "string", key=True, note="key"),
                Column("birth_year", "int", nullable=True, bounds=(1900, THIS_YEAR)),
                Column(
                    "state",
                    "enum",
                    values=US_STATES,
                    note="2-letter US state; drives local time and state rules",
                ),
                Column(
                    "zip3",
                    "string",
                    nullable=True,
                    note="first 3 digits of the ZIP (HIPAA safe-harbor level, never the full ZIP)",
                ),
                Column("language", "string", nullable=True, note="ISO 639-1 (`en`, `es`, …); missing means `en`"),
                Column("has_mobile", "bool", note="a mobile number is on file"),
                Column("has_email", "bool", note="an e-mail address is on file"),
                Column("sms_consent", "bool", note="prior express consent to texts about the bill"),
                Column("email_consent", "bool", note="prior express consent to e-mail about the bill"),
                Column("portal_enrolled", "bool", note="uses the patient portal"),
            ),
            checks=("zip3 is exactly three digits",),
        ),
        Table(
            "accounts",
            "one hospital account (an encounter's bill)",
            (
                Column("account_id", "string", key=True, note="key"),
                Column("guarantor_id", "string", references="guarantors.guarantor_id"),
                Column("service_date", "date"),
                Column("service_line", "enum", values=SERVICE_LINES),
                Column("payer_class", "enum", values=PAYER_CLASSES),
                Column("facility_id", "string", nullable=True),
            ),
        ),
        Table(
            "transactions",
            "the account ledger; the balance on day T is the sum of amounts posted on or before T",
            (
                Column("transaction_id", "string", key=True, note="key"),
                Column("account_id", "string", references="accounts.account_id"),
                Column("posted_date", "date"),
                Column("kind", "enum", values=TRANSACTION_KINDS),
                Column(
                    "amount",
                    "money",
                    note="signed effect on the balance: charge and refund > 0; insurance_payment and "
                    "patient_payment < 0; adjustment either sign",
                    bounds=(-MAX_AMOUNT, MAX_AMOUNT),
                ),
            ),
            checks=("amount's sign agrees with kind",),
        ),
        Table(
            "contacts",
            "outreach attempts",
            (
                Column("contact_id", "string", key=True, note="key"),
                Column("account_id", "string", references="accounts.account_id"),
                Column("contacted_at", "timestamp", note="naive timestamps mean UTC"),
                Column("channel", "enum", values=CHANNELS),
                Column(
                    "outcome",
                    "enum",
                    values=OUTCOMES,
                    note="call: no_answer, voicemail, right_party, wrong_number; sms/email: delivered, failed; "
                    "letter: sent, returned; portal: sent",
                ),
                Column(
                    "propensity",
                    "float",
                    nullable=True,
                    note="probability with which the deciding policy chose this channel for this account that "
                    "day; in (0, 1]; missing for history logged without it",
                ),
            ),
            checks=("outcome belongs to channel", "propensity in (0, 1]"),
        ),
        Table(
            "holds",
            "periods in which the account must not be worked (optional table; absent means none)",
            (
                Column("account_id", "string", references="accounts.account_id"),
                Column("kind", "enum", values=HOLD_KINDS),
                Column("start_date", "date"),
                Column("end_date", "date", nullable=True, note="open-ended when missing"),
            ),
            optional=True,
            checks=("end_date on or after start_date",),
        ),
        Table(
            "promises",
            "promises to pay and payment plans made on a right-party call (optional table; payrank's workspace "
            "records them, `payrank export` writes them)",
            (
                Column("promise_id", "string", key=True, note="key"),
                Column("account_id", "string", references="accounts.account_id"),
                Column("made_at", "timestamp", note="when the guarantor made it; naive timestamps mean UTC"),
                Column("kind", "enum", values=PROMISE_KINDS),
                Column("amount", "money", note="dollars promised, or each instalment of a plan; > 0"),
                Column("first_due_date", "date", note="the promised day, or a plan's first instalment"),
                Column(
                    "instalments",
                    "int",
                    note=f"1 for a promise to pay; a plan's number of instalments, due every {PLAN_INTERVAL_DAYS} days",
                ),
            ),
            optional=True,
            checks=(
                "amount > 0",
                "instalments between 1 and 120 (1 for a promise to pay)",
                "first_due_date on or after the day made_at falls on",
            ),
        ),
        Table(
            "decisions",
            "the action payrank's deciding policy chose for each open account on a worked day, with the probability "
            "it gave that action (optional table; payrank's workspace logs them, `payrank export` writes them)",
            (
                Column("decision_id", "string", key=True, note="key"),
                Column("account_id", "string", references="accounts.account_id"),
                Column("decided_for", "date", note="the day D the action is for"),
                Column("action", "enum", values=ACTIONS, note="`none` is a decision too"),
                Column(
                    "propensity",
                    "float",
                    note="probability with which the deciding policy (exploration included) chose this action; "
                    "in (0, 1]",
                ),
                Column("explored", "bool", note="true when the action differs from the policy's greedy choice"),
                Column("policy_version", "string", nullable=True, note="model, contact policy and exploration used"),
            ),
            optional=True,
            checks=("propensity in (0, 1]", "one decision per account and day"),
        ),
    )
}

TABLE_ORDER = tuple(TABLES)
HOSPITAL_TABLES = ("guarantors", "accounts", "transactions", "contacts", "holds")
"""The tables a hospital's extract holds."""
WORKSPACE_TABLES = ("promises", "decisions")
"""Optional tables that payrank's operational store adds (see docs/workspace-store.md)."""


def empty_frame(table: str) -> pd.DataFrame:
    """A zero-row frame of the table with its typed columns (used for an absent optional table)."""
    return pd.DataFrame({c.name: pd.Series(dtype=pandas_dtype(c)) for c in TABLES[table].columns})


def pandas_dtype(col: Column) -> object:
    """The in-memory dtype a validated column has."""
    return {
        "string": "string",
        "int": "Int64",
        "float": "float64",
        "money": "float64",
        "date": "datetime64[ns]",
        "timestamp": "datetime64[ns]",
        "bool": "bool",
        "enum": pd.CategoricalDtype(list(col.values or ())),
    }[col.kind]


@dataclass
class Book:
    """A validated book: one typed DataFrame per contract table."""

    guarantors: pd.DataFrame
    accounts: pd.DataFrame
    transactions: pd.DataFrame
    contacts: pd.DataFrame
    holds: pd.DataFrame
    promises: pd.DataFrame = field(default_factory=lambda: empty_frame("promises"))
    decisions: pd.DataFrame = field(default_factory=lambda: empty_frame("decisions"))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLE_ORDER}

    def remember_key_positions(self, found: dict[tuple[str, str], np.ndarray]) -> None:
        """Keep the foreign-key lookups validation made — (table, column) → each row's position in the
        referenced table (-1: none) — so feature building does not hash millions of ids a second time."""
        self._key_positions = {
            (table, column): (getattr(self, table), getattr(self, _referenced_table(table, column)), pos)
            for (table, column), pos in found.items()
        }

    def key_positions(self, table: str, column: str) -> np.ndarray | None:
        """Positions remembered by validation, or None (not validated, or a frame replaced since)."""
        entry = getattr(self, "_key_positions", {}).get((table, column))
        if entry is None:
            return None
        frame, referenced, pos = entry
        current = getattr(self, table)
        if frame is not current or referenced is not getattr(self, _referenced_table(table, column)):
            return None
        return pos if len(pos) == len(current) else None

    def subset_guarantors(self, guarantor_ids: pd.Index | list[str]) -> Book:
        """The part of the book that belongs to the given guarantors (all of their accounts)."""
        g = self.guarantors[self.guarantors["guarantor_id"].isin(guarantor_ids)]
        a = self.accounts[self.accounts["guarantor_id"].isin(guarantor_ids)]
        ids = a["account_id"]
        return Book(
            guarantors=g,
            accounts=a,
            transactions=self.transactions[self.transactions["account_id"].isin(ids)],
            contacts=self.contacts[self.contacts["account_id"].isin(ids)],
            holds=self.holds[self.holds["account_id"].isin(ids)],
            promises=self.promises[self.promises["account_id"].isin(ids)],
            decisions=self.decisions[self.decisions["account_id"].isin(ids)],
        )


def _referenced_table(table: str, column: str) -> str:
    ref = next(c.references for c in TABLES[table].columns if c.name == column)
    if not ref:
        raise ValueError(f"{table}.{column} references no table")
    return ref.split(".")[0]
