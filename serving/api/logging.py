"""Structured logs: one JSON object per line through stdlib logging, with the request id on every line.

What may be logged at INFO: request id, method, path, status, row counts, latency, model version, and the
*names* of tables and columns. Never names, balances, birth years or account ids (they arrive in bodies and in
validation messages, which go to the client only). A genuine bug's traceback is logged at ERROR with its frames
but without the exception's message, which may quote request data.

Everything the process writes to stderr is one of these lines: Python warnings (numpy's RuntimeWarnings) are
routed into logging, and LightGBM's messages too, instead of printing their own.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
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

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        """The traceback's frames and the exception's type, not its message (it may quote request data)."""
        exc_type, exc, tb = ei
        frames = "".join(traceback.format_list(traceback.extract_tb(tb)))
        name = getattr(exc_type, "__qualname__", str(exc_type))
        return f"Traceback (most recent call last):\n{frames}{name} (message withheld: it may quote request data)"


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
    logging.captureWarnings(True)  # numpy's RuntimeWarnings and the like: logger "py.warnings", not raw stderr
    import lightgbm

    lightgbm.register_logger(logging.getLogger("lightgbm"))  # "[LightGBM] [Warning] …" lines become JSON too
