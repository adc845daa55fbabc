"""The time layout of a training run: which as-of days select, evaluate and finally fit the models.

Training on as-of DATE uses only what the book knew on DATE: every snapshot's label window (T, T+h] ends on or
before DATE. Two uses of the days, one after the other:

* **Selection and evaluation**, ordered in time with a gap of one label horizon between slices, so no label
  window of an earlier slice overlaps a later slice:

      fit days  <  valid days (iterations, calibration)  <  holdout days (the latest labelled days: evaluation only)

* **The served model**, refit with the chosen settings on the most recent labelled window (`final`: as-of days
  up to DATE − horizon, `final_days` long) and calibrated, cross-fitted, on its last `calib_days` (`recent`).
  The channel model is refit on every labelled day: contacts are scarce, and it needs all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Windows:
    """As-of days per use, oldest first; `horizon` is the longest label window in days."""

    fit: tuple[date, ...]
    valid: tuple[date, ...]
    holdout: tuple[date, ...]
    final: tuple[date, ...]
    recent: tuple[date, ...]
    horizon: int
    as_of: date

    def slices(self) -> dict[str, tuple[date, ...]]:
        """The time-ordered selection slices."""
        return {"fit": self.fit, "valid": self.valid, "holdout": self.holdout}

    def days(self) -> list[date]:
        """Every as-of day any part uses, oldest first."""
        return sorted(set(self.fit) | set(self.valid) | set(self.holdout) | set(self.final))

    def to_dict(self) -> dict[str, object]:
        """First and last day and the count per use (the days themselves are one every `step` days)."""
        out: dict[str, object] = {"horizon": self.horizon, "as_of": self.as_of.isoformat()}
        for name, value in asdict(self).items():
            if isinstance(value, tuple):
                out[name] = {"first": min(value).isoformat(), "last": max(value).isoformat(), "days": len(value)}
        return out


def _days(first: date, last: date, step: int) -> tuple[date, ...]:
    """Days from `last` back to `first`, every `step` days (so `last` is always in), oldest first."""
    if last < first:
        return ()
    n = (last - first).days // step + 1
    return tuple(sorted(last - timedelta(days=step * i) for i in range(n)))


def plan_windows(
    as_of: date,
    first_day: date,
    horizon: int = 30,
    step: int = 1,
    holdout_days: int = 14,
    valid_days: int = 14,
    final_days: int = 180,
    calib_days: int = 30,
    warmup_days: int = 60,
) -> Windows:
    """Lay out the uses backwards from `as_of`; nothing starts before `first_day + warmup_days` (young books)."""
    if step < 1:
        raise ValueError(f"the snapshot step must be at least 1 day, got {step}")
    earliest = first_day + timedelta(days=warmup_days)
    last_labelled = as_of - timedelta(days=horizon)
    holdout = _days(last_labelled - timedelta(days=holdout_days - 1), last_labelled, step)
    valid_last = holdout[0] - timedelta(days=horizon)
    valid = _days(valid_last - timedelta(days=valid_days - 1), valid_last, step)
    fit = _days(earliest, valid[0] - timedelta(days=horizon), step)
    if not fit or valid[0] < earliest:
        need = (as_of - valid[0]).days + horizon + warmup_days + step
        raise ValueError(
            f"--as-of {as_of}: the book starts {first_day}, too late for a fit slice before {valid[0]} "
            f"(needs about {need} days of history)"
        )
    final = _days(max(earliest, last_labelled - timedelta(days=final_days - 1)), last_labelled, step)
    recent = tuple(d for d in final if d > last_labelled - timedelta(days=calib_days))
    return Windows(fit=fit, valid=valid, holdout=holdout, final=final, recent=recent, horizon=horizon, as_of=as_of)


def check_no_overlap(w: Windows) -> None:
    """Raise if a label window of one selection slice reaches into a later one, or any passes the as-of day."""
    order = [w.fit, w.valid, w.holdout]
    for earlier, later in zip(order, order[1:], strict=False):
        if max(earlier) + timedelta(days=w.horizon) > min(later):
            raise ValueError(f"label window of {max(earlier)} overlaps the later slice starting {min(later)}")
    for name, days in (("holdout", w.holdout), ("final", w.final)):
        if max(days) + timedelta(days=w.horizon) > w.as_of:
            raise ValueError(f"{name} label window past as-of {w.as_of}")
