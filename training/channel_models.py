"""The channel-response models a bundle can carry, and how each is read back from its JSON form.

Every one answers `logit_arrays(X, num_threads) -> {action: log-odds of payment in 14 days}` and `to_dict()`;
the bundle and the API need nothing else. `CHANNEL_LEARNERS` names the candidates a training run compares.
"""

from __future__ import annotations

from typing import Any

from training.uplift import FORMAT as OFFSET_FORMAT
from training.uplift import OffsetUpliftLearner
from training.uplift_dr import FORMAT as DR_FORMAT
from training.uplift_dr import DRLearner
from training.uplift_outcomes import FORMAT as OUTCOME_FORMAT
from training.uplift_outcomes import OutcomeUpliftLearner

ChannelModel = OffsetUpliftLearner | OutcomeUpliftLearner | DRLearner
CHANNEL_LEARNERS: dict[str, str] = {
    "offset": "offset T-learner: the no-contact response plus each channel's log-odds shift on its own rows",
    "outcome": "outcome-decomposed offset learner: P(outcome | contact) × the shift of each contact outcome",
    "dr": "cross-fitted multi-action DR-learner, effects shrunk by their cross-fit variance",
}
_READERS = {
    OFFSET_FORMAT: OffsetUpliftLearner.from_dict,
    OUTCOME_FORMAT: OutcomeUpliftLearner.from_dict,
    DR_FORMAT: DRLearner.from_dict,
}


def channel_from_dict(d: dict[str, Any]) -> ChannelModel:
    """Rebuild a fitted channel model from its `to_dict()` form, whichever learner made it."""
    reader = _READERS.get(d.get("format", ""))
    if reader is None:
        raise ValueError(f"unknown channel model format {d.get('format')!r}: one of {sorted(_READERS)}")
    return reader(d)
