"""/v1/score and /v1/worklist: a posted book fragment through the same code path as `payrank score/worklist`."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.deps import ApiKey, LimiterDep, MetricsDep, ModelDep, PolicyDep, SettingsDep, ThreadsDep
from serving.api.logging import note
from serving.api.schemas import ScoreRequest, ScoreResponse, WorklistRequest, WorklistResponse, responses
from serving.api.service import run_cpu, score_response, worklist_response

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[ApiKey], responses=responses(401, 503))


@router.post("/score", response_model=ScoreResponse)
async def score(
    body: ScoreRequest,
    model: ModelDep,
    policy: PolicyDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    threads: ThreadsDep,
    m: MetricsDep,
) -> ScoreResponse:
    """Score every open account of the fragment as of `as_of`, for work on the next day."""
    note(model_version=model.label)
    out = await run_cpu(limiter, score_response, body, model, policy, threads, settings.channel_costs)
    note(rows=len(out.rows))
    m.rows.labels("/v1/score").inc(len(out.rows))
    return out


@router.post("/worklist", response_model=WorklistResponse)
async def worklist(
    body: WorklistRequest,
    model: ModelDep,
    policy: PolicyDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    threads: ThreadsDep,
    m: MetricsDep,
) -> WorklistResponse:
    """The call list for the day after `as_of` (one row per guarantor) and every account left off, with why."""
    note(model_version=model.label)
    out, scored = await run_cpu(limiter, worklist_response, body, model, policy, threads, settings.channel_costs)
    note(rows=scored, listed=len(out.rows))
    m.rows.labels("/v1/worklist").inc(scored)
    return out
