"""The contact policy's configuration: defaults embedded here, optionally overridden by a TOML file.

Every rule is on by default. The numbers may tighten the federal limits (Regulation F, FDCPA calling hours)
but never loosen them, so a typo in a config file cannot make the gate non-compliant.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from features.schema import HOLD_KINDS, US_STATES

FEDERAL_CALL_HOURS = (8, 21)  # FDCPA: calls before 8:00 or after 21:00 local time are presumed inconvenient
CALL_RULE_COLUMNS = ("max_calls_per_7_days", "right_party_cooldown_days", "call_start_hour", "call_end_hour")
DEFAULT_STATE_OVERRIDES: dict[str, dict[str, Any]] = {"MA": {"max_calls_per_7_days": 2}}  # 940 CMR 7.04(1)(f)


class PolicyConfigError(ValueError):
    """A contact-policy config that cannot be used: names the key and the offending value."""


class CallRules(BaseModel):
    """The numeric call rules: the top-level defaults, and what a state may override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_calls_per_7_days: StrictInt = Field(7, ge=0, le=7, description="Reg F: at most 7 call attempts in 7 days")
    right_party_cooldown_days: StrictInt = Field(7, ge=7, le=365, description="Reg F: no call within 7 days after")
    call_hours_local: list[StrictInt] = Field(default_factory=lambda: list(FEDERAL_CALL_HOURS))

    @field_validator("call_hours_local")
    @classmethod
    def _hours(cls, v: list[int]) -> list[int]:
        lo, hi = FEDERAL_CALL_HOURS
        if len(v) != 2 or not (lo <= v[0] < v[1] <= hi):
            raise ValueError(f"must be [start, end] whole hours with {lo} <= start < end <= {hi}")
        return v


class StateOverride(BaseModel):
    """One state's overrides of the numeric call rules; keys left out keep the top-level value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_calls_per_7_days: StrictInt | None = Field(None, ge=0, le=7)
    right_party_cooldown_days: StrictInt | None = Field(None, ge=7, le=365)
    call_hours_local: list[StrictInt] | None = None

    @field_validator("call_hours_local")
    @classmethod
    def _hours(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else CallRules._hours(v)


class PolicyConfig(CallRules):
    """The whole contact policy. `state_overrides` is merged over the embedded defaults (MA: 2 calls)."""

    calls_autodialled: StrictBool = False
    one_call_per_guarantor_per_day: StrictBool = True
    blocking_holds: list[StrictStr] = Field(default_factory=lambda: list(HOLD_KINDS))
    state_overrides: dict[str, StateOverride] = Field(default_factory=dict)

    @field_validator("blocking_holds")
    @classmethod
    def _holds(cls, v: list[str]) -> list[str]:
        unknown = [k for k in v if k not in HOLD_KINDS]
        if unknown:
            raise ValueError(f"unknown hold kind(s) {unknown}; known: {list(HOLD_KINDS)}")
        return list(dict.fromkeys(v))

    @model_validator(mode="before")
    @classmethod
    def _merge_state_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = data.get("state_overrides", {})
        if not isinstance(given, dict):
            return data
        unknown = [s for s in given if s not in US_STATES]
        if unknown:
            raise PydanticCustomError("unknown_state", "unknown state {state!r}", {"state": unknown[0]})
        merged = {s: dict(v) for s, v in DEFAULT_STATE_OVERRIDES.items()}
        for state, over in given.items():
            merged[state] = {**merged.get(state, {}), **over} if isinstance(over, dict) else over
        return {**data, "state_overrides": merged}

    def rules_for_state(self, state: str | None) -> tuple[int, int, int, int]:
        """(max calls per 7 days, cooldown days, call start hour, call end hour) in effect for one state."""
        over = self.state_overrides.get(state) if state else None

        def pick(key: str) -> Any:
            value = getattr(over, key) if over is not None else None
            return getattr(self, key) if value is None else value

        hours = pick("call_hours_local")
        return pick("max_calls_per_7_days"), pick("right_party_cooldown_days"), hours[0], hours[1]

    def call_rules(self, states: pd.Series) -> pd.DataFrame:
        """Per row of `states` (2-letter codes): the effective numeric call rules (CALL_RULE_COLUMNS)."""
        codes, uniques = pd.factorize(states)
        table = np.array([self.rules_for_state(str(s)) for s in uniques] + [self.rules_for_state(None)], dtype=np.int64)
        return pd.DataFrame(
            table[np.where(codes < 0, len(uniques), codes)], columns=CALL_RULE_COLUMNS, index=states.index
        )


RANGE_ERRORS = {"less_than_equal", "greater_than_equal"}
RANGE_HINTS = {
    "max_calls_per_7_days": " (Regulation F: at most 7 call attempts in 7 days; the policy may only tighten it)",
    "right_party_cooldown_days": " (Regulation F: no call within 7 days after a conversation; may only be longer)",
}


def load_policy(path: Path | str | None) -> PolicyConfig:
    """The policy from a TOML file, or the embedded defaults when no file is given (None).

    A file that is given but missing or unreadable is an error, never a silent fall-back to the defaults: a
    compliance configuration that is not there must stop the job (a typo once let 717 accounts be called instead
    of 313).
    """
    if path is None:
        return PolicyConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyConfigError(f"contact policy {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise PolicyConfigError(f"contact policy {str(path)!r}: is a directory, not a TOML file") from None
    except PermissionError:
        raise PolicyConfigError(f"contact policy {str(path)!r}: permission denied") from None
    except UnicodeDecodeError:
        raise PolicyConfigError(f"contact policy {str(path)!r}: not UTF-8 text") from None
    except OSError as exc:
        raise PolicyConfigError(f"contact policy {str(path)!r}: cannot be read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_policy(data, source=str(path))


def parse_policy(data: dict[str, Any], source: str = "contact policy") -> PolicyConfig:
    """A PolicyConfig from already-parsed TOML data, turning validation errors into one clear message."""
    try:
        return PolicyConfig.model_validate(data)
    except ValidationError as exc:
        raise PolicyConfigError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _describe(error: Any) -> str:
    key = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    if error["type"] == "unknown_state":
        state = error["ctx"]["state"]
        return f"unknown state {state!r} in state_overrides.{state} (a 2-letter US state code)"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r} (value {value!r})"
    msg = str(error["msg"]).removeprefix("Value error, ")
    hint = RANGE_HINTS.get(str(error["loc"][-1]), "") if error["type"] in RANGE_ERRORS else ""
    return f"{key} = {value!r}: {msg}{hint}"
