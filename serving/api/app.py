"""The FastAPI application: `create_app(settings)`; the model is loaded once, at start, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI

from serving import web
from serving.api import routes_health, routes_mlflow, routes_model, routes_score, routes_work
from serving.api.errors import add_exception_handlers
from serving.api.metrics import Metrics
from serving.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serving.api.model_holder import ModelHolder, ServedModel, one_line
from serving.api.routes_metrics import metrics_router
from serving.api.routes_mlflow import payrank_version
from serving.api.schemas import responses
from serving.api.security import ApiKeyMiddleware, key_digests, require_api_key
from serving.api.settings import ApiSettings
from serving.policy_config import load_policy

log = logging.getLogger("payrank.api")
OWN_AUTH_PREFIXES = ("/v1/work/", "/app/")  # the specialists' routes check their own tokens / session cookies


def create_app(settings: ApiSettings | None = None, served: ServedModel | None = None) -> FastAPI:
    """The app; raises AuthConfigError without an API key (unless allowed) and PolicyConfigError for a bad policy.

    `served`: a model already loaded (as `payrank serve` does before binding its port); otherwise the lifespan
    loads the configured one at start.
    """
    settings = settings or ApiSettings()
    digests = key_digests(settings)
    if not digests:
        log.warning("serving WITHOUT authentication (PAYRANK_ALLOW_NO_AUTH=true): for local experiments only")
    policy = load_policy(settings.policy)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder = ModelHolder(settings, metrics)
        app.state.holder = holder
        app.state.limiter = anyio.CapacityLimiter(settings.max_concurrency)
        if served is not None:
            holder.adopt(served)
        else:
            try:
                await holder.load()
            except Exception as exc:  # no model, no service: say why in one line, then let the start fail
                log.error("cannot start: %s", one_line(exc))
                raise
        yield

    app = FastAPI(
        title="payrank",
        version=payrank_version(),
        summary="Ranks overdue patient balances: scores, call worklists, MLflow-compatible /invocations.",
        lifespan=lifespan,
        responses=responses(400, 413, 500),  # any route: a bad Content-Length, a body too large, a bug
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.metrics = metrics
    app.state.key_digests = digests
    app.state.holder = ModelHolder(settings, metrics)  # empty until the lifespan loads the model

    add_exception_handlers(app)
    for module in (routes_health, routes_mlflow, routes_model, routes_score):
        app.include_router(module.router)
    app.include_router(metrics_router(public=settings.metrics_public))
    routes_work.register(app)  # the specialist's day: its own bearer-token auth (docs/workspace-store.md)
    web.register(app)  # the workspace in the browser, /app: its own cookie sign-in (docs/workspace.md)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_api_key)])
    async def openapi() -> dict:
        return app.openapi()

    # added last = outermost: the request context sees every answer, including 401s, 413s and 500s; the key is
    # checked before the body is counted or read
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    open_paths = {"/ping", "/health", "/app", *(["/metrics"] if settings.metrics_public else [])}
    app.add_middleware(ApiKeyMiddleware, digests=digests, open_paths=open_paths, own_auth_prefixes=OWN_AUTH_PREFIXES)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
