"""MLflow's scoring protocol: POST /invocations on feature rows, GET /version (see serving.api.invocations)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import mlflow
from fastapi import APIRouter, Request, Response

from serving.api.deps import ApiKey, HolderDep, LimiterDep, MetricsDep, ModelDep, ThreadsDep
from serving.api.invocations import check_features, fast_invoke, parse_input, predict, predictions_json
from serving.api.logging import note
from serving.api.model_holder import ServedModel
from serving.api.schemas import ErrorMessage, InvocationErrorBody, VersionInfo, responses
from serving.api.service import ThreadsFor, run_cpu

router = APIRouter(tags=["mlflow"], dependencies=[ApiKey], responses=responses(401))
INVOCATION_ERRORS = {
    **responses(415, 503),
    400: {
        "model": InvocationErrorBody | ErrorMessage,
        "description": "Input that cannot be scored (MLflow's shape), or a malformed request",
    },
}

INVOCATIONS_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "description": "dataframe_split | dataframe_records"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


def _invoke(body: bytes, content_type: str | None, model: ServedModel, threads: ThreadsFor) -> tuple[str, int]:
    fast = fast_invoke(body, content_type, model.loaded.scorer, threads)
    if fast is not None:
        return fast
    frame = parse_input(body, content_type, model.input_schema)
    features = check_features(frame, model.loaded.scorer)
    return predictions_json(predict(features, model.loaded.scorer, threads(len(features)))), len(features)


@router.post("/invocations", response_class=Response, openapi_extra=INVOCATIONS_DOC, responses=INVOCATION_ERRORS)
async def invocations(
    request: Request, model: ModelDep, limiter: LimiterDep, threads: ThreadsDep, m: MetricsDep
) -> Response:
    """Predict p_pay, p14_<action> and expected_payment for feature rows: `{"predictions": [{...}, ...]}`."""
    note(model_version=model.label)
    body = await request.body()
    content_type = request.headers.get("content-type")
    text, rows = await run_cpu(limiter, _invoke, body, content_type, model, threads)
    note(rows=rows)
    m.rows.labels("/invocations").inc(rows)
    return Response(text, media_type="application/json")


def payrank_version() -> str:
    try:
        return version("payrank")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


@router.get("/version", response_model=VersionInfo)
async def version_info(holder: HolderDep) -> VersionInfo:
    """payrank's and MLflow's versions and the served model's (`name/version`)."""
    label = holder.current.label if holder.current is not None else None
    return VersionInfo(payrank=payrank_version(), mlflow=mlflow.__version__, model_version=label)
