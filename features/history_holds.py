"""Hold features of every account at day T: which hold kinds are active."""

from __future__ import annotations

import numpy as np

from features.history_prepared import PreparedBook
from features.schema import HOLD_KINDS


def hold_features(prep: PreparedBook, t: int) -> dict[str, np.ndarray]:
    """`hold_<kind>` = 1 if a hold of that kind is active at day t, and `any_hold_active`.

    A hold whose end_date is t itself has ended (active means end_date missing or after t).
    """
    n, k = prep.n_accounts, len(HOLD_KINDS)
    active = (prep.hold_start <= t) & (prep.hold_end > t)
    key = prep.hold_account[active] * k + prep.hold_kind[active]
    flags = (np.bincount(key, minlength=n * k).reshape(n, k) > 0).astype(np.float64)
    out = {f"hold_{kind}": flags[:, i] for i, kind in enumerate(HOLD_KINDS)}
    out["any_hold_active"] = flags.max(axis=1, initial=0.0)
    return out
