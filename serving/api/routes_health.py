"""Open endpoints for load balancers and orchestrators: /ping (MLflow's) and /health."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from serving.api.deps import HolderDep
from serving.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/ping", response_class=Response, responses={503: {"description": "No model is loaded"}})
async def ping(holder: HolderDep) -> Response:
    """200 with "\\n" when a model is loaded (as MLflow's scoring server answers), else 503."""
    ok = holder.current is not None
    return Response("\n", status_code=status.HTTP_200_OK if ok else 503, media_type="application/json")


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "No model is loaded"}})
async def health(holder: HolderDep, response: Response) -> Health:
    """`{"status": "ok"}` when a model is loaded; 503 `{"status": "no model"}` otherwise."""
    if holder.current is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="no model")
    return Health(status="ok")
