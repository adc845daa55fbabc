"""The model being served, loaded once at start and swapped atomically on reload.

A request takes `holder.current` once and uses that object to the end, so a reload never mixes two models in
one response; a failed reload leaves `current` untouched. Every load first proves, in a separate process that
opens the registry afresh, that the model's files are the registered ones and that its boosters load
(serving.model_store.load_model_checked): a corrupted bundle fails that process, never this one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from serving.api.metrics import Metrics
from serving.api.settings import ApiSettings
from serving.model_store import LoadedModel, load_model_checked
from training.tracking import resolve_tracking_uri

log = logging.getLogger("payrank.api")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ReloadInProgress(RuntimeError):
    """Another reload is running."""


@dataclass(frozen=True)
class ServedModel:
    """A loaded bundle plus what the MLflow protocol needs: the model's input schema (None when unknown)."""

    loaded: LoadedModel
    input_schema: Any
    loaded_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        return self.loaded.label

    def describe(self) -> dict[str, Any]:
        return {**self.loaded.describe(), "label": self.label, "loaded_at": self.loaded_at}


def load_served(settings: ApiSettings) -> ServedModel:
    """Check the configured model in a separate process, then load it with its signature's input schema
    (blocking; run it off the event loop). Raises ValueError with a one-line reason."""
    tracking_uri = resolve_tracking_uri(settings.tracking_uri, settings)
    loaded, schema = load_model_checked(settings.resolved_model_uri, tracking_uri)
    if schema is None:
        log.warning("no input schema for the served model; /invocations parses untyped")
    return ServedModel(loaded=loaded, input_schema=schema)


class ModelHolder:
    """Holds the current ServedModel; `load()` loads the configured model off the event loop and swaps it in."""

    def __init__(self, settings: ApiSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.current: ServedModel | None = None
        self._lock = asyncio.Lock()

    def adopt(self, served: ServedModel) -> None:
        """Serve a model loaded before the app started (`payrank serve` loads it before binding the port)."""
        self.current = served
        self.metrics.reloads.labels("ok").inc()
        loaded = served.loaded
        self.metrics.set_model(loaded.name, loaded.version, served.label, served.loaded_at)
        log.info("model loaded", extra={"model_version": served.label, "uri": loaded.uri})

    async def load(self) -> ServedModel:
        """Load the configured model and serve it; raises (ValueError with a readable message) on failure."""
        if self._lock.locked():
            raise ReloadInProgress("a reload is already in progress")
        async with self._lock:
            try:
                served = await run_in_threadpool(load_served, self.settings)
            except Exception:  # the caller says why, in one log line
                self.metrics.reloads.labels("failed").inc()
                raise
            self.adopt(served)
            return served
