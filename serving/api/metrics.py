"""Prometheus metrics, one registry per app (so several apps in one process, as in tests, never collide)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "<unmatched>"


class Metrics:
    """The service's metrics: request latency and counts per route, rows scored, the model being served."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "payrank_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "payrank_http_request_duration_seconds",
            "Request latency by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "payrank_rows_scored",
            "Rows scored: open accounts (/v1/*) or feature rows (/invocations).",
            ["route"],
            registry=self.registry,
        )
        self.model = Info("payrank_model", "The model being served.", registry=self.registry)
        self.model_loaded = Gauge(
            "payrank_model_loaded_timestamp_seconds", "When the served model was loaded.", registry=self.registry
        )
        self.reloads = Counter("payrank_model_reloads", "Model reloads by result.", ["result"], registry=self.registry)

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        route = route or UNMATCHED
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def set_model(self, name: str | None, version: str | None, label: str, loaded_at: float) -> None:
        self.model.info({"name": name or "", "version": version or "", "label": label})
        self.model_loaded.set(loaded_at)

    def render(self) -> bytes:
        return generate_latest(self.registry)
