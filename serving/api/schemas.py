"""Request and response bodies of the /v1 routes.

A book fragment is the data contract's tables as lists of JSON records; values are strings, finite numbers,
booleans or null, and are checked against the contract by the same validator as `payrank validate`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema as cs

MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2200, 12, 31)
MAX_CALLS = 1_000_000


class _ScalarMarker:
    """A JSON scalar: string, finite number, boolean or null (one clear error for anything else)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        return cs.union_schema(
            [
                cs.str_schema(strict=True),
                cs.bool_schema(strict=True),
                cs.int_schema(strict=True),
                cs.float_schema(strict=True, allow_inf_nan=False),
                cs.none_schema(),
            ],
            custom_error_type="scalar",
            custom_error_message="must be a string, a finite number, a boolean or null",
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": ["string", "number", "boolean", "null"]}


Scalar = Annotated[Any, _ScalarMarker]
Record = dict[str, Scalar]


def _iso_day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ValueError(f"must be a date YYYY-MM-DD, got {value[:40]!r}")
    if not MIN_DAY <= day <= MAX_DAY:
        raise ValueError(f"must be between {MIN_DAY} and {MAX_DAY}")
    return day


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class BookFragment(BaseModel):
    """The contract's tables as records (column → value); `holds` is optional, the other tables are required."""

    model_config = ConfigDict(extra="forbid")

    guarantors: list[Record]
    accounts: list[Record]
    transactions: list[Record]
    contacts: list[Record]
    holds: list[Record] | None = None


class ScoreRequest(BaseModel):
    """Score every open account of the fragment as of the end of `as_of` (for work on the next day)."""

    model_config = ConfigDict(extra="forbid")

    as_of: IsoDay = Field(examples=["2026-09-30"])
    book: BookFragment


class WorklistRequest(ScoreRequest):
    """The call list for the day after `as_of`, at most `calls` rows."""

    calls: int = Field(100, ge=0, le=MAX_CALLS, description="How many calls the team can make.")


class ScoreRow(BaseModel):
    """One open account: serving.scoring.SCORE_COLUMNS."""

    account_id: str
    guarantor_id: str
    balance: float
    p_pay: float
    best_channel: str
    channel_uplift: float
    expected_value: float
    reasons: str
    allowed_channels: str
    model_version: str


class ScoreResponse(BaseModel):
    model_version: str
    as_of: date
    rows: list[ScoreRow]


class WorklistRow(BaseModel):
    """One call: serving.worklist.WORKLIST_COLUMNS."""

    rank: int
    account_id: str
    guarantor_id: str
    balance: float
    p_pay: float
    expected_value: float
    best_alternative: str
    reasons: str
    other_accounts: str
    call_window_local: str | None
    call_window_start_utc: datetime | None
    call_window_end_utc: datetime | None
    model_version: str


class ExclusionRow(BaseModel):
    """One open account left off the list, with the rule that kept it off: serving.worklist.EXCLUSION_COLUMNS."""

    account_id: str
    guarantor_id: str
    rule: str
    detail: str


class WorklistResponse(BaseModel):
    model_version: str
    as_of: date
    rows: list[WorklistRow]
    exclusions: list[ExclusionRow]


class ModelInfo(BaseModel):
    """The served model: registry name, version and alias, training data window, headline holdout metrics."""

    name: str | None
    version: str | None
    alias: str | None
    uri: str
    run_id: str | None
    label: str
    as_of: str | None
    data_window: str | None
    metrics: dict[str, float]
    loaded_at: float


class VersionInfo(BaseModel):
    payrank: str
    mlflow: str
    model_version: str | None


class Health(BaseModel):
    status: str


class ReloadResult(BaseModel):
    previous: str | None
    changed: bool
    model: ModelInfo
