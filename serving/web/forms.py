"""Reading the workspace's HTML forms: url-encoded bodies, CSRF checks, and an outcome form into the store's terms.

An outcome form is validated by the very schema of `POST /v1/work/items/{id}/outcome` (`OutcomeBody`), so the
browser and the JSON API accept and refuse the same things.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pandas as pd
from fastapi import Request
from pydantic import ValidationError

from serving.api.schemas_work import OutcomeBody
from serving.store.work import OutcomeIn

MAX_FORM_BYTES = 64 * 1024
QUICK_OUTCOMES = ("no_answer", "voicemail", "wrong_number")


class FormError(Exception):
    """A form the workspace refuses: HTTP status and a message to show (never quoting what was sent)."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.msg = status, msg


async def read_form(request: Request) -> dict[str, str]:
    """The url-encoded body as a dict (the last value of a repeated field wins); 415/413 otherwise."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise FormError(415, "this page accepts only its own forms")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormError(413, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _local_to_utc(value: str, tz: str) -> str:
    """A `datetime-local` value in the guarantor's zone → ISO naive UTC (what the API schema reads)."""
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise FormError(422, "callback: give a date and time") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    return ts.tz_convert("UTC").tz_localize(None).isoformat()


def outcome_from_form(form: dict[str, str], tz: str) -> OutcomeIn:
    """The attempt a card's form describes; results are read only for a right-party call."""
    outcome = form.get("outcome", "")
    body: dict[str, Any] = {"channel": "call", "outcome": outcome, "note": form.get("note", "").strip() or None}
    results: list[dict[str, Any]] = []
    if outcome == "right_party":
        if form.get("promise"):
            results.append({"kind": "promise_to_pay", "amount": form.get("promise_amount"),
                            "date": form.get("promise_date")})  # fmt: skip
        if form.get("plan"):
            results.append({"kind": "payment_plan", "amount": form.get("plan_amount"), "date": form.get("plan_date"),
                            "instalments": form.get("plan_count")})  # fmt: skip
        results += [{"kind": k} for k in ("dispute", "cease_contact", "financial_assistance") if form.get(k)]
        if form.get("callback"):
            results.append({"kind": "callback", "at": _local_to_utc(form.get("callback_at", ""), tz),
                            "owner_only": not form.get("callback_anyone")})  # fmt: skip
    body["results"] = results
    try:
        valid = OutcomeBody.model_validate(body)
    except ValidationError as exc:
        raise FormError(422, "; ".join(_where(e) for e in exc.errors())) from None
    return valid.to_store()


FIELD_NAMES = {"promise_to_pay": "promise", "payment_plan": "plan", "callback": "callback"}


def _where(error: dict[str, Any]) -> str:
    """A pydantic error as 'field: message', naming the form's field (never the value)."""
    loc = [str(x) for x in error.get("loc", ())]
    if loc[:1] == ["results"] and len(loc) >= 3:
        kind = loc[2] if loc[2] in FIELD_NAMES else ""
        field = loc[-1] if loc[-1] not in FIELD_NAMES else ""
        name = " ".join(x for x in (FIELD_NAMES.get(kind, "result"), field.replace("instalments", "payments")) if x)
    else:
        name = loc[-1] if loc else "form"
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{name}: {msg}"
