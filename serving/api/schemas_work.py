"""Request bodies of the /v1/work routes. Errors name the field and never echo what was sent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from features.schema import CHANNELS, OUTCOMES
from serving.store.work import OutcomeIn, ResultIn

MAX_AMOUNT = 10_000_000.0


def _day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


def _moment(value: Any) -> datetime:
    """An ISO 8601 time; naive means UTC; returned as naive UTC (the store's convention)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and 10 < len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 time, e.g. 2026-10-01T14:30:00Z") from None
    else:
        raise ValueError("must be an ISO 8601 time, e.g. 2026-10-01T14:30:00Z")
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


Day = Annotated[date, BeforeValidator(_day)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
Amount = Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromiseToPay(_Strict):
    """The guarantor promised to pay `amount` by `date`."""

    kind: Literal["promise_to_pay"]
    amount: Amount
    date: Day


class PaymentPlan(_Strict):
    """A plan of `instalments` payments of `amount`, every 30 days from `date`."""

    kind: Literal["payment_plan"]
    amount: Amount
    date: Day
    instalments: int = Field(ge=2, le=120)


class HoldRequest(_Strict):
    """A dispute, a request to cease contact or for financial assistance: places the hold at once."""

    kind: Literal["dispute", "cease_contact", "financial_assistance"]


class Callback(_Strict):
    """Call back at `at` (inside the guarantor's calling window); only the same specialist, or anyone."""

    kind: Literal["callback"]
    at: Moment
    owner_only: bool = True


RESULT_KINDS = ("promise_to_pay", "payment_plan", "dispute", "cease_contact", "financial_assistance", "callback")


def _known_kind(value: Any) -> Any:
    """A result must be an object with a known `kind` (checked first: pydantic's own message quotes the input)."""
    if not isinstance(value, dict) or value.get("kind") not in RESULT_KINDS:
        raise ValueError(f"must be an object whose kind is one of {', '.join(RESULT_KINDS)}")
    return value


_Tagged = Annotated[PromiseToPay | PaymentPlan | HoldRequest | Callback, Field(discriminator="kind")]
ResultBody = Annotated[_Tagged, BeforeValidator(_known_kind)]


class OutcomeBody(_Strict):
    """One attempt on an item: its channel and outcome (the data contract's), when placed (default: now), the
    results of a right-party conversation and a free-text note (stored, never logged)."""

    channel: Literal[CHANNELS] = "call"  # type: ignore[valid-type]
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    placed_at: Moment | None = None
    results: list[ResultBody] = Field(default_factory=list, max_length=6)
    note: str | None = Field(None, max_length=4000)

    def to_store(self) -> OutcomeIn:
        """The store's form of this attempt (the API and the workspace's forms both record through it)."""
        results = tuple(
            ResultIn(
                kind=r.kind,
                amount=getattr(r, "amount", None),
                date=getattr(r, "date", None),
                instalments=getattr(r, "instalments", None),
                at=getattr(r, "at", None),
                owner_only=getattr(r, "owner_only", True),
            )
            for r in self.results
        )
        return OutcomeIn(self.channel, self.outcome, self.placed_at, results, self.note)


class ReassignBody(_Strict):
    to: str = Field(min_length=1, max_length=64, description="the specialist's id")


class LoginBody(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
