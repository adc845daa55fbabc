"""Outreach features of every account at day T, from contacts made before the end of day T (UTC)."""

from __future__ import annotations

import numpy as np

from features.history_prepared import PreparedBook, group_count, group_max, group_min
from features.schema import CHANNELS, OUTCOMES
from features.spec import OUTREACH_WINDOWS_DAYS

CALL, LETTER = CHANNELS.index("call"), CHANNELS.index("letter")
RIGHT_PARTY, WRONG_NUMBER = OUTCOMES.index("right_party"), OUTCOMES.index("wrong_number")
FAILED_DELIVERY = [OUTCOMES.index("failed"), OUTCOMES.index("returned")]


def outreach_features(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """Per-channel counts over the trailing windows and recency, right-party and failed-delivery history, and the
    guarantor's calls and right-party rate over the last year (on all of their accounts).

    "Days ago" of a contact is t minus its UTC day, so a window of N days holds the contacts N-1 days ago
    or later.
    """
    n, c = prep.n_accounts, len(CHANNELS)
    seen = prep.ct_day <= t
    acc, channel, outcome = prep.ct_account[seen], prep.ct_channel[seen], prep.ct_outcome[seen]
    ago = (t - prep.ct_day[seen]).astype(np.float64)
    key = acc * c + channel
    counts = {
        w: np.bincount(key[ago < w], minlength=n * c).reshape(n, c).astype(np.float64) for w in OUTREACH_WINDOWS_DAYS
    }
    last = group_min(key, ago, n * c).reshape(n, c)
    out: dict[str, np.ndarray] = {}
    for i, ch in enumerate(CHANNELS):
        for w in OUTREACH_WINDOWS_DAYS:
            out[f"n_{ch}_{w}d"] = counts[w][:, i]
        out[f"days_since_last_{ch}"] = last[:, i]
    right_party = (channel == CALL) & (outcome == RIGHT_PARTY)
    letter = channel == LETTER
    out |= {
        "n_contacts_30d": group_count(acc, n, ago < 30),
        "n_right_party_calls_90d": group_count(acc, n, right_party & (ago < 90)),
        "days_since_last_right_party": group_min(acc[right_party], ago[right_party], n),
        "n_failed_deliveries": group_count(acc, n, np.isin(outcome, FAILED_DELIVERY)),
        "n_wrong_number_calls": group_count(acc, n, (channel == CALL) & (outcome == WRONG_NUMBER)),
        "days_since_first_statement": group_max(acc[letter], ago[letter], n),
        "n_calls_ever": group_count(acc, n, channel == CALL),
    }
    # reachability is the person's, not the account's: the guarantor's calls on all their accounts in a year
    g = prep.guarantor_code
    year = ago < 365
    calls = np.bincount(g[acc[(channel == CALL) & year]], minlength=prep.n_guarantors)[g].astype(np.float64)
    reached = np.bincount(g[acc[right_party & year]], minlength=prep.n_guarantors)[g].astype(np.float64)
    out["guarantor_calls_365d"] = calls
    out["guarantor_right_party_rate_365d"] = np.where(calls > 0, reached / np.maximum(calls, 1.0), np.nan)
    return out
