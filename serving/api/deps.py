"""Dependencies and their `Annotated` aliases, as routes consume them."""

from __future__ import annotations

import functools
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request, status

from serving.api.metrics import Metrics
from serving.api.model_holder import ModelHolder, ServedModel
from serving.api.security import require_api_key
from serving.api.service import ThreadsFor, lightgbm_threads
from serving.api.settings import ApiSettings
from serving.policy_config import PolicyConfig


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


def get_model(holder: Annotated[ModelHolder, Depends(get_holder)]) -> ServedModel:
    """The model for this request (taken once, so a concurrent reload cannot change it mid-request)."""
    served = holder.current
    if served is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no model loaded")
    return served


def get_policy(request: Request) -> PolicyConfig:
    return request.app.state.policy


def get_limiter(request: Request) -> anyio.CapacityLimiter:
    return request.app.state.limiter


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_threads(
    settings: Annotated[ApiSettings, Depends(get_settings)],
    limiter: Annotated[anyio.CapacityLimiter, Depends(get_limiter)],
) -> ThreadsFor:
    """How many LightGBM threads a batch of n rows gets (see serving.api.service.lightgbm_threads)."""
    return functools.partial(lightgbm_threads, limiter, settings.num_threads, settings.big_batch_rows)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ModelDep = Annotated[ServedModel, Depends(get_model)]
PolicyDep = Annotated[PolicyConfig, Depends(get_policy)]
LimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_limiter)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ThreadsDep = Annotated[ThreadsFor, Depends(get_threads)]
ApiKey = Depends(require_api_key)
