"""Structured logs: one JSON object per line through stdlib logging, with the request id on every line.

What may be logged at INFO: request id, method, path, status, row counts, latency, model version, and the
*names* of tables and columns. Never names, balances, birth years or account ids (they arrive in bodies and in
validation messages, which go to the client only).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "payrank.api"
log = logging.getLogger(LOGGER_NAME)

# attributes every LogRecord has; anything else on a record came in through `extra=` and is emitted as a field
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


@dataclass
class RequestInfo:
    """Per-request facts the routes add for the access log and metrics."""

    request_id: str
    route: str | None = None
    rows: int | None = None
    model_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


current_request: ContextVar[RequestInfo | None] = ContextVar("payrank_request", default=None)


def note(**facts: Any) -> None:
    """Record facts about the current request (rows=..., model_version=..., or anything for the access line)."""
    info = current_request.get()
    if info is None:
        return
    for key, value in facts.items():
        if hasattr(info, key) and key != "extra":
            setattr(info, key, value)
        else:
            info.extra[key] = value


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id", ...extra fields, "exc"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        info = current_request.get()
        if info is not None and "request_id" not in record.__dict__:
            out["request_id"] = info.request_id
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the whole process (payrank, uvicorn, mlflow); used by `payrank serve`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "mlflow"):  # they bring their own plain handlers
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
