"""Generator scenarios: worlds with other mechanics, so that a modelling choice is judged on more than one book.

Each scenario changes a few knobs of the simulation (who a contact helps and how much, how the historic policy
chooses, when propensities were logged, how payment rates move). The truth is computed by the same code as the
simulation in every scenario, so it stays exact. `payrank generate --scenario NAME` writes the scenario's name
and knobs into the truth file's metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Scenario:
    """The knobs a scenario turns; the defaults are the `default` world."""

    name: str
    description: str
    logged_share: float = 0.4  # the last share of the window whose contacts carry their logged propensity
    effect_scale: float = 1.0  # multiplies every contact's effect on the payment hazard (0: contacts do nothing)
    persuadable_share: float = 0.0  # > 0: only a minority responds to a right-party call, strongly
    persuadable_effect: float = 0.0  # logit lift of a right-party call for a persuadable guarantor
    threshold_policy_dollars: float = 0.0  # > 0: the historic policy calls nearly every balance above this
    drift_days: int = 0  # > 0: payment hazards fall linearly over the window's last `drift_days` days ...
    drift_factor: float = 1.0  # ... to this multiple of their level, and stay there afterwards

    def metadata(self) -> str:
        """The scenario as JSON, for the truth file's metadata."""
        return json.dumps(asdict(self), sort_keys=True)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "the mechanics described above"),
        Scenario(
            "call-heavy",
            "a right-party call lifts the payment logit by about 4 for a persuadable fifth of guarantors (likelier "
            "among English speakers and older guarantors) and by a tenth of the default effect for everyone else",
            persuadable_share=0.2,
            persuadable_effect=4.0,
        ),
        Scenario("null", "no contact changes payment at all: every contact effect is zero", effect_scale=0.0),
        Scenario(
            "weak-overlap",
            "the historic policy is nearly deterministic: an account with a balance of $750 or more is called on "
            "about 28% of its contactable days (about 90% are called within a week), one below it on about 0.3% "
            "(about 2% a week); the other channels are chosen as by default",
            threshold_policy_dollars=750.0,
        ),
        Scenario(
            "late-logging",
            "contacts carry their logged propensity only in the last quarter of the window (not the last 40%)",
            logged_share=0.25,
        ),
        Scenario(
            "drift",
            "payment hazards fall linearly by a third over the window's last 120 days and stay there afterwards "
            "(the truth's horizon included)",
            drift_days=120,
            drift_factor=2.0 / 3.0,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`, or a ValueError listing the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}") from None
