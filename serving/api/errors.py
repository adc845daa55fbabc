"""Exception handlers: every client error is a 4xx JSON body naming the field; logs get locations, not values.

No message echoes a submitted value (docs/api.md, "Errors"): pydantic's `input` is dropped, the validator names
rows by their key, /invocations rewrites MLflow's messages, and a client's over-long key in a location is cut.

- pydantic (bad shapes, bad `as_of`, malformed JSON): 422 `{"detail": [{"loc", "msg", "type"}]}`;
- a fragment that breaks the data contract (BookError): 422, one item per problem, loc ["book", table, column];
- /invocations: MLflow's `{"error_code", "message"}` plus `detail`.
Anything else is a genuine bug: RequestContextMiddleware answers 500 with the request id.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from features.schema import TABLES
from features.validate import BookError
from serving.api.books import book_error_detail
from serving.api.invocations import InvocationError
from serving.api.logging import note

log = logging.getLogger("payrank.api")
_LOGGABLE = {"body", "book", "as_of", "calls", *TABLES, *(c.name for t in TABLES.values() for c in t.columns)}


MAX_LOC_TEXT = 64


def _loc(loc: tuple | list) -> list[str | int]:
    """A location for the client: a key a client made up (an unknown table or column) is kept when short."""
    return [p if isinstance(p, int) or len(str(p)) <= MAX_LOC_TEXT else f"…({len(str(p))} characters)" for p in loc]


def _loggable(loc: tuple | list) -> str:
    """A location for the log: contract names and indices only (a record's unknown keys are client text)."""
    return ".".join(str(p) if isinstance(p, int) or p in _LOGGABLE else "*" for p in loc)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [
        {"loc": _loc(e["loc"]), "msg": str(e["msg"]).removeprefix("Value error, "), "type": e["type"]}
        for e in exc.errors()
    ]
    note(error="validation", error_fields=[_loggable(d["loc"]) for d in detail[:10]])
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def book_error(request: Request, exc: BookError) -> JSONResponse:
    detail = book_error_detail(exc)
    note(error="book_contract", error_fields=sorted({".".join(d["loc"][1:]) for d in detail}))
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def invocation_error(request: Request, exc: InvocationError) -> JSONResponse:
    note(error=exc.error_code.lower(), error_fields=[exc.field] if exc.field else None)
    return JSONResponse(exc.body(), status_code=exc.status)


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(BookError, book_error)  # type: ignore[arg-type]
    app.add_exception_handler(InvocationError, invocation_error)  # type: ignore[arg-type]
