"""Prometheus metrics: HTTP requests by route and status, cloud calls by service and outcome, retries.

With several worker processes, PROMETHEUS_MULTIPROC_DIR (set by `stackyard serve`) makes every
worker write its samples there and /metrics report the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from stackyard.cloud.retry import RetryEvent
from stackyard.cloud.session import CallRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics, registered on a registry of their own (nothing global at import)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stackyard_http_requests_total",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stackyard_http_request_duration_seconds",
            "HTTP request latency, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cloud_calls = Counter(
            "stackyard_cloud_calls_total",
            "Cloud API calls (after retries), by service and outcome (ok or the error class).",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.cloud_latency = Histogram(
            "stackyard_cloud_call_duration_seconds",
            "Cloud API call latency including retries, by service.",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "stackyard_cloud_retries_total",
            "Retry-layer events (retrying, reauthenticating, paused), by service and kind.",
            ["service", "kind"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_cloud_call(self, record: CallRecord) -> None:
        self.cloud_calls.labels(record.service, record.outcome).inc()
        self.cloud_latency.labels(record.service).observe(record.seconds)

    def observe_retry(self, event: RetryEvent) -> None:
        self.retries.labels(event.service, event.kind.value).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format, summed over worker processes when running multi-process."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
