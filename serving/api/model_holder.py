"""The model being served, loaded once at start and swapped atomically on reload.

A request takes `holder.current` once and uses that object to the end, so a reload never mixes two models in
one response; a failed reload leaves `current` untouched.
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
from serving.model_store import LoadedModel, load_model
from training.tracking import use_tracking

log = logging.getLogger("payrank.api")


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
    """Resolve the tracking URI, load the bundle and its signature (blocking; run it off the event loop)."""
    use_tracking(settings.tracking_uri, settings)
    loaded = load_model(settings.resolved_model_uri)
    return ServedModel(loaded=loaded, input_schema=_input_schema(loaded))


def _input_schema(loaded: LoadedModel) -> Any:
    """The signature's input schema of exactly the version loaded (an alias may have moved meanwhile)."""
    import mlflow

    uri = f"models:/{loaded.name}/{loaded.version}" if loaded.name and loaded.version else loaded.uri
    try:
        signature = mlflow.models.get_model_info(uri).signature
    except Exception as exc:  # a model without readable metadata still scores; /invocations parses untyped
        log.warning("no input schema for the served model", extra={"error": type(exc).__name__})
        return None
    return signature.inputs if signature is not None else None


class ModelHolder:
    """Holds the current ServedModel; `load()` loads the configured model off the event loop and swaps it in."""

    def __init__(self, settings: ApiSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.current: ServedModel | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> ServedModel:
        """Load the configured model and serve it; raises (ValueError with a readable message) on failure."""
        if self._lock.locked():
            raise ReloadInProgress("a reload is already in progress")
        async with self._lock:
            try:
                served = await run_in_threadpool(load_served, self.settings)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            self.current = served
            self.metrics.reloads.labels("ok").inc()
            loaded = served.loaded
            self.metrics.set_model(loaded.name, loaded.version, served.label, served.loaded_at)
            log.info("model loaded", extra={"model_version": served.label, "uri": loaded.uri})
            return served
