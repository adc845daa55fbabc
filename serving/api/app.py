"""The FastAPI application: `create_app(settings)`; the model is loaded once, at start, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI

from serving.api import routes_health, routes_mlflow, routes_model, routes_score
from serving.api.errors import add_exception_handlers
from serving.api.metrics import Metrics
from serving.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serving.api.model_holder import ModelHolder
from serving.api.routes_metrics import metrics_router
from serving.api.routes_mlflow import payrank_version
from serving.api.security import key_digests, require_api_key
from serving.api.settings import ApiSettings
from serving.policy_config import load_policy

log = logging.getLogger("payrank.api")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app; raises AuthConfigError without an API key (unless allowed) and PolicyConfigError for a bad policy."""
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
        try:
            await holder.load()
        except Exception as exc:  # no model, no service: say why in one line, then let the start fail
            log.error("cannot start: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        yield

    app = FastAPI(
        title="payrank",
        version=payrank_version(),
        summary="Ranks overdue patient balances: scores, call worklists, MLflow-compatible /invocations.",
        lifespan=lifespan,
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

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_api_key)])
    async def openapi() -> dict:
        return app.openapi()

    # added last = outermost: the request context sees every answer, including 413s and 500s
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
