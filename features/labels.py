"""Training targets after an as-of day T, and training snapshots (features at T + targets after T).

Labels deliberately look past T; `build_snapshots` refuses any label window the book has not fully
observed yet, so an unfinished window is never read as "did not pay".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import pandas as pd

from features.build import features_at
from features.history_prepared import PreparedBook, as_of_timestamp, day_number, prepare_book
from features.schema import ACTIONS, CHANNELS, OUTCOMES, Book

AsOf = str | date | pd.Timestamp
CHANNEL_TO_ACTION = np.array([ACTIONS.index(ch) for ch in CHANNELS])
NO_ACTION = ACTIONS.index("none")


def payment_labels_at(prep: PreparedBook, t: int, horizon_days: int, rows: np.ndarray) -> np.ndarray:
    """1 where the account at position `rows` (-1: unknown) had a patient payment posted in (t, t + h]."""
    window = (prep.pay_day > t) & (prep.pay_day <= t + horizon_days)
    paid = np.append(np.bincount(prep.pay_account[window], minlength=prep.n_accounts) > 0, False)
    return paid[rows].astype(np.int64)  # row -1 picks the appended False


def next_day_actions_at(
    prep: PreparedBook, t: int, rows: np.ndarray
) -> tuple[pd.Categorical, np.ndarray, pd.Categorical]:
    """Action, propensity and outcome of the first contact on day t + 1 of the accounts at `rows`
    ("none"/NaN/NaN if none).

    "First" is by contacted_at, ties broken by contact_id, so the result does not depend on row order. A logged
    decision (the optional decisions table) for t + 1 gives the propensity of the action when it was the one taken,
    "none" included.
    """
    sel = np.flatnonzero(prep.ct_day == t + 1)
    day = pd.DataFrame({"acc": prep.ct_account[sel], "at": prep.ct_time[sel], "id": prep.contact_ids(sel), "row": sel})
    first = day.sort_values(["acc", "at", "id"]).drop_duplicates("acc")
    action = np.full(prep.n_accounts + 1, NO_ACTION)  # the extra last slot serves rows == -1
    propensity = np.full(prep.n_accounts + 1, np.nan)
    outcome = np.full(prep.n_accounts + 1, -1, dtype=np.int64)
    acc, row = first["acc"].to_numpy(), first["row"].to_numpy()
    action[acc] = CHANNEL_TO_ACTION[prep.ct_channel[row]]
    propensity[acc] = prep.ct_propensity[row]
    outcome[acc] = prep.ct_outcome[row]
    # a logged decision for t + 1 supplies the propensity where the action taken is the one decided and the
    # contact carries none; it is the only source for "none" (a book logs no contact for doing nothing)
    dec = np.flatnonzero(prep.dc_day == t + 1)
    d_acc = prep.dc_account[dec]
    same = (prep.dc_action[dec] == action[d_acc]) & np.isnan(propensity[d_acc])
    propensity[d_acc[same]] = prep.dc_propensity[dec[same]]
    return (
        pd.Categorical.from_codes(action[rows], categories=list(ACTIONS)),
        propensity[rows],
        pd.Categorical.from_codes(outcome[rows], categories=list(OUTCOMES)),
    )


def payment_labels(book: Book, as_of: AsOf, horizon_days: int, account_ids: pd.Series) -> np.ndarray:
    """Per account of `account_ids` (in order): 1 if any patient_payment posted in (T, T + horizon_days]."""
    prep = prepare_book(book)
    return payment_labels_at(
        prep, day_number(as_of_timestamp(as_of)), horizon_days, prep.account_positions(account_ids)
    )


def next_day_actions(book: Book, as_of: AsOf, account_ids: pd.Series) -> pd.DataFrame:
    """Per account in `account_ids`: the action taken on T + 1 and its logged propensity.

    Columns account_id, action_next (Categorical over schema.ACTIONS; "none" without a contact that day),
    action_propensity (NaN when there is no contact or it was logged without one) and outcome_next (Categorical
    over schema.OUTCOMES; NaN without a contact). Days are UTC days.
    """
    prep = prepare_book(book)
    action, propensity, outcome = next_day_actions_at(
        prep, day_number(as_of_timestamp(as_of)), prep.account_positions(account_ids)
    )
    return pd.DataFrame(
        {
            "account_id": pd.Series(account_ids).reset_index(drop=True),
            "action_next": action,
            "action_propensity": propensity,
            "outcome_next": outcome,
        }
    )


def build_snapshots(
    book: Book,
    as_of_days: Sequence[AsOf],
    horizons: Sequence[int] = (30, 14),
    progress: Callable[[int, int], None] | None = None,
    max_rows_per_day: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Features at each as-of day with its labels: paid_{h}d per horizon, action_next, action_propensity, outcome_next.

    With `max_rows_per_day`, each day keeps a uniform sample of at most that many accounts (seeded by `seed` and
    the day, so the sample does not depend on the other days asked for), taken before the days are joined: at
    scale, memory stays that of the sample, not of every open account on every day.

    Raises ValueError when a label window (T, T + h] reaches past the book's last observed day (the
    latest posted_date or contacted_at), because the book cannot yet tell whether that account paid.
    `progress(done, total)` is called after each day.
    """
    if not len(as_of_days) or not len(horizons):
        raise ValueError("build_snapshots needs at least one as-of day and one horizon")
    if min(horizons) < 1:
        raise ValueError(f"horizons must be at least 1 day, got {list(horizons)}")
    prep = prepare_book(book)
    stamps = [as_of_timestamp(d) for d in as_of_days]
    last = prep.last_observed_day
    latest = max(day_number(ts) for ts in stamps) + max(horizons)
    if last is None or latest > last:
        seen = "nothing" if last is None else str(np.datetime64(last, "D"))
        raise ValueError(
            f"label window up to {np.datetime64(latest, 'D')} ({max(stamps).date()} + {max(horizons)} days) "
            f"reaches past the book's last observed day ({seen}): those labels would leak unfinished windows"
        )
    frames = []
    for i, ts in enumerate(stamps):
        frame, rows = features_at(prep, ts)
        t = day_number(ts)
        for h in horizons:
            frame[f"paid_{h}d"] = payment_labels_at(prep, t, h, rows)
        frame["action_next"], frame["action_propensity"], frame["outcome_next"] = next_day_actions_at(prep, t, rows)
        if max_rows_per_day is not None and len(frame) > max_rows_per_day:
            keep = np.random.default_rng([seed, t]).choice(len(frame), max_rows_per_day, replace=False)
            frame = frame.iloc[np.sort(keep)].reset_index(drop=True)
        frames.append(frame)
        if progress is not None:
            progress(i + 1, len(stamps))
    return pd.concat(frames, ignore_index=True)
