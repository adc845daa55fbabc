"""A tiny valid book as raw strings, the way a CSV export arrives; broken-book tests mutate a copy."""

from __future__ import annotations

import pandas as pd


def raw_tables() -> dict[str, pd.DataFrame]:
    """Two guarantors, three accounts, a small ledger, contacts and a hold — all text, as read from CSV."""
    return {
        "guarantors": pd.DataFrame(
            {
                "guarantor_id": ["g1", "g2"],
                "birth_year": ["1960", ""],
                "state": ["MA", "TX"],
                "zip3": ["021", ""],
                "language": ["en", "es"],
                "has_mobile": ["true", "0"],
                "has_email": ["TRUE", "1"],
                "sms_consent": ["1", "false"],
                "email_consent": ["False", "true"],
                "portal_enrolled": ["0", "1"],
                "extra_column": ["ignored", "ignored"],
            }
        ),
        "accounts": pd.DataFrame(
            {
                "account_id": ["a1", "a2", "a3"],
                "guarantor_id": ["g1", "g1", "g2"],
                "service_date": ["2026-01-05", "2026-02-10", "2026-03-01"],
                "service_line": ["emergency", "lab", "clinic"],
                "payer_class": ["commercial", "self_pay", "medicaid"],
                "facility_id": ["f1", "", "f2"],
            }
        ),
        "transactions": pd.DataFrame(
            {
                "transaction_id": ["t1", "t2", "t3", "t4", "t5", "t6"],
                "account_id": ["a1", "a1", "a1", "a2", "a2", "a3"],
                "posted_date": [
                    "2026-01-05",
                    "2026-02-01",
                    "2026-02-01",
                    "2026-02-10",
                    "2026-03-01",
                    "2026-03-01",
                ],
                "kind": ["charge", "insurance_payment", "adjustment", "charge", "patient_payment", "charge"],
                "amount": ["1200.00", "-800.00", "-250.50", "90.00", "-40.00", "310.25"],
            }
        ),
        "contacts": pd.DataFrame(
            {
                "contact_id": ["c1", "c2", "c3"],
                "account_id": ["a1", "a1", "a2"],
                "contacted_at": ["2026-02-15T14:00:00", "2026-02-20 15:30:00", "2026-03-02T09:00:00-05:00"],
                "channel": ["call", "letter", "sms"],
                "outcome": ["right_party", "sent", "delivered"],
                "propensity": ["0.25", "", "1"],
            }
        ),
        "holds": pd.DataFrame(
            {
                "account_id": ["a3"],
                "kind": ["dispute"],
                "start_date": ["2026-03-05"],
                "end_date": [""],
            }
        ),
    }
