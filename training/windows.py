"""The time layout of a training run: which as-of days feed fitting, early stopping, calibration and holdout.

Training on as-of DATE uses only what the book knew on DATE. Every snapshot's label window (T, T+h] must end on
or before DATE, and the slices are ordered in time with a gap of one label horizon between them, so no label
window of an earlier slice overlaps the as-of days of a later one:

    fit days  <  early-stopping days  <  calibration days  <  holdout days (the last 30 days of observed labels)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Windows:
    """As-of days per slice, oldest first; `horizon` is the longest label window in days."""

    fit: tuple[date, ...]
    valid: tuple[date, ...]
    calib: tuple[date, ...]
    holdout: tuple[date, ...]
    horizon: int
    as_of: date

    def slices(self) -> dict[str, tuple[date, ...]]:
        return {"fit": self.fit, "valid": self.valid, "calib": self.calib, "holdout": self.holdout}

    def to_dict(self) -> dict[str, object]:
        return {k: [d.isoformat() for d in v] if isinstance(v, tuple) else str(v) for k, v in asdict(self).items()}


def _days(last: date, count: int, step: int) -> tuple[date, ...]:
    return tuple(sorted(last - timedelta(days=step * i) for i in range(count)))


def plan_windows(
    as_of: date,
    first_day: date,
    horizon: int = 30,
    step: int = 7,
    n_fit: int = 16,
    n_valid: int = 2,
    n_calib: int = 3,
    n_holdout: int = 3,
    warmup_days: int = 60,
) -> Windows:
    """Lay out the slices backwards from `as_of`; fit days stop at `first_day + warmup_days` (young books)."""
    holdout_last = as_of - timedelta(days=horizon)
    holdout = _days(holdout_last, n_holdout, max(1, (horizon - 1) // max(1, n_holdout)))
    calib_last = holdout[0] - timedelta(days=horizon)
    calib = _days(calib_last, n_calib, step)
    valid_last = calib[0] - timedelta(days=horizon)
    valid = _days(valid_last, n_valid, step)
    fit_last = valid[0] - timedelta(days=horizon)
    earliest = first_day + timedelta(days=warmup_days)
    fit = tuple(d for d in _days(fit_last, n_fit, step) if d >= earliest)
    if not fit:
        raise ValueError(
            f"--as-of {as_of}: the book starts {first_day}, too late for a fit slice before {fit_last} "
            f"(needs about {(as_of - fit_last).days + warmup_days} days of history)"
        )
    return Windows(fit=fit, valid=valid, calib=calib, holdout=holdout, horizon=horizon, as_of=as_of)


def check_no_overlap(w: Windows) -> None:
    """Raise if a label window of one slice reaches into a later slice or past the as-of day."""
    order = [w.fit, w.valid, w.calib, w.holdout]
    for earlier, later in zip(order, order[1:], strict=False):
        if max(earlier) + timedelta(days=w.horizon) > min(later):
            raise ValueError(f"label window of {max(earlier)} overlaps the later slice starting {min(later)}")
    if max(w.holdout) + timedelta(days=w.horizon) > w.as_of:
        raise ValueError(f"holdout label window past as-of {w.as_of}")
