"""GET /metrics in the Prometheus text format (behind the API key unless PAYRANK_METRICS_PUBLIC=true)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.api.deps import ApiKey, MetricsDep
from serving.api.schemas import responses


def metrics_router(public: bool) -> APIRouter:
    router = APIRouter(
        tags=["metrics"], dependencies=[] if public else [ApiKey], responses={} if public else responses(401)
    )

    @router.get("/metrics", response_class=Response)
    async def metrics(m: MetricsDep) -> Response:
        """Request latency and counts per route, rows scored, the served model."""
        return Response(m.render(), media_type=m.content_type)

    return router
