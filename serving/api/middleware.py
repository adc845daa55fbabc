"""Pure ASGI middleware: request id + access log + metrics + last-resort 500, and the request body limit."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.logging import RequestInfo, current_request
from serving.api.metrics import Metrics

log = logging.getLogger("payrank.api")
REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _header(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key.decode("latin-1").lower() == name:
            return value.decode("latin-1")
    return None


def _route_of(scope: Scope) -> str | None:
    """The matched route's path template (set by the router), or the one that would match (for early answers)."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", None)
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return getattr(candidate, "path", None)
    return None


async def _send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]]) -> None:
    payload = json.dumps(body).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + headers})
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Gives every request an id (client's X-Request-ID if sane, else a new one), echoes it, logs one JSON line
    (no bodies, no query strings), records latency per route, and turns an unhandled exception into a JSON 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given if given and _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        info = RequestInfo(request_id=request_id)
        token = current_request.set(info)
        status = 500
        started = time.perf_counter()
        response_started = False
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if not response_started:
                status = 500
                body = {"detail": "internal error; the request id identifies it in the logs", "request_id": request_id}
                await _send_json(send, 500, body, [id_header])
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            self.metrics.observe_request(scope["method"], route, status, elapsed)
            fields = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope.get("path"),
                "route": route,
                "status": status,
                "latency_ms": round(elapsed * 1000, 1),
                "rows": info.rows,
                "model_version": info.model_version,
                **info.extra,
            }
            log.info("request", extra={k: v for k, v in fields.items() if v is not None})
            current_request.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`: at once from Content-Length, or while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = {"detail": f"request body larger than {self.max_bytes} bytes"}
        declared = _header(scope, "content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _send_json(send, 400, {"detail": "invalid Content-Length header"}, [])
                return
            if int(declared) > self.max_bytes:
                await _send_json(send, 413, too_large, [])
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, detail=too_large["detail"])
            return message

        await self.app(scope, counting_receive, send)
