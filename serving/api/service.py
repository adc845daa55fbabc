"""The work behind the routes, as plain blocking functions run off the event loop (one CapacityLimiter).

`score_fragment` is `payrank score` for a posted fragment: validate_tables → score_book with the same arguments;
the response bodies are built here too, so validating thousands of rows also stays off the event loop.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from serving.api.books import fragment_book, frame_records
from serving.api.model_holder import ServedModel
from serving.api.schemas import ScoreRequest, ScoreResponse, WorklistRequest, WorklistResponse
from serving.policy_config import PolicyConfig
from serving.scoring import SCORE_COLUMNS, Scored, score_book
from serving.worklist import EXCLUSION_COLUMNS, WORKLIST_COLUMNS, build_worklist

T = TypeVar("T")


ThreadsFor = Callable[[int], int]
"""LightGBM threads for a batch of n rows (see lightgbm_threads)."""


def lightgbm_threads(limiter: anyio.CapacityLimiter, per_request: int, big_batch_rows: int, rows: int) -> int:
    """One LightGBM thread per request by default (concurrent requests' OpenMP teams would fight over the
    cores), but every core for a batch of at least `big_batch_rows` rows while no other request is computing."""
    if big_batch_rows and rows >= big_batch_rows and limiter.borrowed_tokens <= 1:
        return os.cpu_count() or 1
    return per_request


async def run_cpu(limiter: anyio.CapacityLimiter, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work in a worker thread; at most `limiter.total_tokens` such jobs run at once."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)


def score_fragment(
    request: ScoreRequest,
    model: ServedModel,
    policy: PolicyConfig,
    num_threads: int,
    costs: dict[str, float],
    reasons: bool = True,
) -> Scored:
    """Validate the fragment and score every open account (raises BookError for a broken fragment)."""
    book = request.book
    typed = fragment_book({name: getattr(book, name) for name in type(book).model_fields})
    return score_book(
        typed,
        request.as_of,
        model.loaded.scorer,
        policy,
        model.label,
        costs=costs,
        num_threads=num_threads,
        reasons=reasons,
    )


def score_response(
    request: ScoreRequest, model: ServedModel, policy: PolicyConfig, threads: ThreadsFor, costs: dict[str, float]
) -> ScoreResponse:
    """The /v1/score body: one row per open account (SCORE_COLUMNS)."""
    scored = score_fragment(request, model, policy, threads(len(request.book.accounts)), costs)
    rows = frame_records(scored.scores, SCORE_COLUMNS)
    return ScoreResponse(model_version=model.label, as_of=request.as_of, rows=rows)


def worklist_response(
    request: WorklistRequest, model: ServedModel, policy: PolicyConfig, threads: ThreadsFor, costs: dict[str, float]
) -> tuple[WorklistResponse, int]:
    """The /v1/worklist body and how many open accounts were scored for it."""
    threads_n = threads(len(request.book.accounts))
    scored = score_fragment(request, model, policy, threads_n, costs, reasons=False)  # listed rows get them
    listed, left_out = build_worklist(scored, request.calls, policy, request.profitable_only)
    body = WorklistResponse(
        model_version=model.label,
        as_of=request.as_of,
        rows=frame_records(listed, WORKLIST_COLUMNS),
        exclusions=frame_records(left_out, EXCLUSION_COLUMNS),
    )
    return body, len(scored.scores)
