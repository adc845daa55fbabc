"""/v1/model (what is being served) and /v1/admin/reload (load the configured model again, e.g. a new champion)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status

from serving.api.deps import ApiKey, HolderDep, MetricsDep, ModelDep
from serving.api.logging import note
from serving.api.model_holder import ReloadInProgress, one_line
from serving.api.schemas import ModelInfo, ReloadResult, responses

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[ApiKey], responses=responses(401, 503))
log = logging.getLogger("payrank.api")


@router.get("/model", response_model=ModelInfo)
async def model_info(model: ModelDep) -> ModelInfo:
    """Registry name, version and alias, training data window, headline holdout metrics."""
    note(model_version=model.label)
    return ModelInfo(**model.describe())


@router.post("/admin/reload", response_model=ReloadResult, responses=responses(409))
async def reload_model(holder: HolderDep, m: MetricsDep) -> ReloadResult:
    """Load the configured model URI again; on failure the current model keeps serving (503, or 409 if busy)."""
    before = holder.current.label if holder.current is not None else None
    try:
        served = await holder.load()
    except ReloadInProgress as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{exc}; still serving {before}") from None
    except Exception as exc:
        note(model_version=before)
        message = one_line(exc)
        log.warning("model reload failed; keeping the current model", extra={"reason": message})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"reload failed: {message}; still serving {before}"
        ) from None
    note(model_version=served.label)
    return ReloadResult(previous=before, model=ModelInfo(**served.describe()), changed=before != served.label)
