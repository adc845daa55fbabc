"""Request and response bodies of the /v1 routes.

A book fragment is the data contract's tables as lists of JSON records; values are strings, finite numbers,
booleans or null, and are checked against the contract by the same validator as `payrank validate`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictInt,
)
from pydantic_core import core_schema as cs

from features.schema import FIRST_DAY, LAST_DAY
from features.validate import parse_day

MIN_DAY, MAX_DAY = FIRST_DAY, LAST_DAY
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
    """The validator's own as-of check (features.validate.parse_day), so the API and `--as-of` agree."""
    if not isinstance(value, str):
        raise ValueError("must be a date string YYYY-MM-DD")
    return parse_day(value)


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class BookFragment(BaseModel):
    """The contract's tables as records (column → value); `holds`, `promises` and `decisions` are optional, the other
    tables are required."""

    model_config = ConfigDict(extra="forbid")

    guarantors: list[Record]
    accounts: list[Record]
    transactions: list[Record]
    contacts: list[Record]
    holds: list[Record] | None = None
    promises: list[Record] | None = None  # optional tables of the contract that payrank's store adds
    decisions: list[Record] | None = None


class ScoreRequest(BaseModel):
    """Score every open account of the fragment as of the end of `as_of` (for work on the next day)."""

    model_config = ConfigDict(extra="forbid")

    as_of: IsoDay = Field(examples=["2026-09-30"])
    book: BookFragment


class WorklistRequest(ScoreRequest):
    """The call list for the day after `as_of`: the `calls` best allowed calls (fewer only if fewer are allowed)."""

    calls: StrictInt = Field(100, ge=0, le=MAX_CALLS, description="How many calls the team can make (an integer).")
    profitable_only: StrictBool = Field(
        False, description="List only calls expected to pay for themselves, even when capacity remains."
    )


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
    below_break_even: bool
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
    digest: str | None = Field(None, description="SHA-256 digest of the bundle and its entry file, as registered")
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


# ---- error bodies, as the OpenAPI schema documents them ------------------------------------------------------


class ErrorMessage(BaseModel):
    """An error about the request as a whole (401, 409, 413, 503, a malformed request's 400)."""

    detail: str


class InvocationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str


class InvocationErrorBody(BaseModel):
    """/invocations' 400 and 415: MLflow's `{"error_code", "message"}` plus `detail` naming the field."""

    error_code: str
    message: str
    detail: list[InvocationErrorItem]


class InternalError(BaseModel):
    """A bug: the request id finds the traceback in the server's log."""

    detail: str
    request_id: str


RESPONSES: dict[int, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "A malformed request: an invalid Content-Length, an unreadable body"},
    401: {"model": ErrorMessage, "description": "No or wrong API key in the X-API-Key header"},
    403: {"model": ErrorMessage, "description": "Signed in, but the item or page belongs to someone else"},
    404: {"model": ErrorMessage, "description": "No such item"},
    409: {"model": ErrorMessage, "description": "A reload is already running, or the item changed meanwhile"},
    413: {"model": ErrorMessage, "description": "The body is larger than PAYRANK_MAX_BODY_BYTES"},
    415: {"model": InvocationErrorBody, "description": "A content type (or charset) the scoring protocol lacks"},
    500: {"model": InternalError, "description": "A bug (never bad input): the request id finds it in the log"},
    503: {"model": ErrorMessage, "description": "No model is loaded, or the reload failed (the old model serves on)"},
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given error statuses, so the schema declares every status a route returns."""
    return {code: RESPONSES[code] for code in codes}
