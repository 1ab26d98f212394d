"""The graph's own metrics, through `ray.serve.metrics`: Ray adds the deployment, replica and
application tags, exports them on every node's metrics port (Prometheus text, `ray_` prefix) and
shows them in the dashboard's Metrics view. Names are listed in METRIC_NAMES; the Grafana
dashboard in cluster/ is built on them.

Each process makes its metrics once, inside its replica (Ray reads the replica context then).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any, Iterator

from ray.serve import metrics

from providers.api.errors import APIError

logger = logging.getLogger("ray.serve")

_LATENCY_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000]


class ServiceMetrics:
    """Metrics of the services the ingress (and the agents deployment) run: HTTP, stores, ingestion, eval."""

    def __init__(self):
        self.requests = metrics.Counter(
            "raystack_http_requests", "HTTP requests the ingress answered", tag_keys=("route", "method", "status"))
        self.latency_ms = metrics.Histogram(
            "raystack_http_request_latency_ms", "Time from request to the end of the response body",
            boundaries=_LATENCY_MS, tag_keys=("route", "method"))
        self.store_queue_depth = metrics.Gauge(
            "raystack_store_queue_depth", "Records waiting to be written to a store", tag_keys=("store",))
        self.store_dead_letters = metrics.Gauge(
            "raystack_store_dead_letters", "Records a store could never insert since the replica started, "
            "each logged with its id", tag_keys=("store",))
        self.ingested_files = metrics.Counter(
            "raystack_ingestion_files", "Files that finished ingesting into a vector store, by outcome",
            tag_keys=("status",))
        self.ingested_chunks = metrics.Counter(
            "raystack_ingestion_chunks", "Chunks embedded and written to vector stores")
        self.eval_rows = metrics.Counter(
            "raystack_eval_rows_generated", "Rows an evaluation job generated answers for", tag_keys=("benchmark_id",))
        self.batch_requests = metrics.Counter(
            "raystack_batch_requests", "Requests of batches answered (or refused) and stored")
        self.batches = metrics.Counter(
            "raystack_batches", "Batches ended, by how they ended", tag_keys=("status",))


class ProviderMetrics:
    """Metrics of one provider deployment's calls (also the agents deployment's turns)."""

    def __init__(self, provider_id: str):
        self.requests = metrics.Counter(
            "raystack_provider_requests", "Calls a provider replica served", tag_keys=("provider", "method"))
        self.errors = metrics.Counter(
            "raystack_provider_errors", "Calls that raised, by the HTTP status the client got",
            tag_keys=("provider", "method", "status"))
        self.latency_ms = metrics.Histogram(
            "raystack_provider_latency_ms", "Time a call (or a whole stream) took in the provider",
            boundaries=_LATENCY_MS, tag_keys=("provider", "method"))
        self.time_to_first_token_ms = metrics.Histogram(
            "raystack_time_to_first_token_ms", "Time from a stream's call to its first chunk",
            boundaries=_LATENCY_MS, tag_keys=("provider", "model"))
        self.tokens = metrics.Counter(
            "raystack_tokens", "Tokens in (prompt) and out (completion) per model",
            tag_keys=("provider", "model", "direction"))
        for metric in (self.requests, self.errors, self.latency_ms, self.time_to_first_token_ms, self.tokens):
            metric.set_default_tags({"provider": provider_id})

    @contextlib.contextmanager
    def call(self, method: str) -> Iterator[float]:
        """Count and time one call (yields its start, a perf_counter reading); a failure is counted by
        the status its client gets, and a server-side one is logged as an error with the request id
        (Serve's throughput mode buffers lesser records, errors are written at once)."""
        started = time.perf_counter()
        self.requests.inc(tags={"method": method})
        try:
            yield started
        except Exception as exc:
            status = exc.status_code if isinstance(exc, APIError) else 500
            self.errors.inc(tags={"method": method, "status": str(status)})
            if status >= 500:
                logger.error("%s failed: %s: %s", method, type(exc).__name__, exc)
            raise
        finally:
            self.latency_ms.observe((time.perf_counter() - started) * 1000, tags={"method": method})

    def count_usage(self, model: str, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        for direction, key in (("in", "prompt_tokens"), ("out", "completion_tokens")):
            if usage.get(key):
                self.tokens.inc(usage[key], tags={"model": model, "direction": direction})


METRIC_NAMES = (
    "raystack_http_requests", "raystack_http_request_latency_ms", "raystack_store_queue_depth",
    "raystack_store_dead_letters",
    "raystack_ingestion_files", "raystack_ingestion_chunks", "raystack_eval_rows_generated",
    "raystack_batch_requests", "raystack_batches",
    "raystack_provider_requests", "raystack_provider_errors", "raystack_provider_latency_ms",
    "raystack_time_to_first_token_ms", "raystack_tokens",
    # Set by each post-training job's actor (providers/inline/torchtune/provider.py).
    "raystack_training_step", "raystack_training_loss", "raystack_training_tokens_per_second",
)


@functools.cache
def service_metrics() -> ServiceMetrics:
    return ServiceMetrics()


class RequestMetrics:
    """ASGI middleware: counts each request by route template, method and status, and times it to
    the end of its body (streams included); a server error is logged with its request id."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            if status >= 500:
                logger.error("%s %s answered %d", scope["method"], scope["path"], status)
            recorded = service_metrics()
            recorded.requests.inc(tags={"route": route, "method": scope["method"], "status": str(status)})
            recorded.latency_ms.observe((time.perf_counter() - started) * 1000, tags={"route": route, "method": scope["method"]})


async def sample_queue_depths(queues: dict[str, Any], period_s: float = 1.0) -> None:
    """Set the queue-depth and dead-letter gauges of each write queue (by store) every `period_s`."""
    metrics = service_metrics()
    while True:
        for store, queue in queues.items():
            metrics.store_queue_depth.set(queue.depth, tags={"store": store})
            metrics.store_dead_letters.set(getattr(queue, "dead_letters", 0), tags={"store": store})
        await asyncio.sleep(period_s)
