"""The ingress deployment: one FastAPI app with a router per API, in front of the providers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI

from deployments.colocated import close_colocated, colocate
from deployments.errors import AnthropicErrorBodies, install_error_handlers
from deployments.guard import RequestGuard
from deployments.metrics import RequestMetrics, sample_queue_depths
from deployments.replicas import this_replica
from deployments.routes import (
    batches,
    console,
    conversations,
    datasets,
    eval,
    files,
    fine_tuning,
    inference,
    inspect,
    messages,
    models,
    post_training,
    prompts,
    responses,
    safety,
    scoring,
    stored_completions,
    tools,
    vector_stores,
)
from deployments.services.wiring import Services, open_services
from deployments.tracing import TracingMiddleware, start_tracing, stop_tracing
from providers.access.exposure import Exposure
from providers.run_config import RunConfig
from providers.storage import Storage

logger = logging.getLogger("ray.serve")

INGRESS_DEFAULTS: dict[str, Any] = {
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
    "max_ongoing_requests": 256,
    "ray_actor_options": {"num_cpus": 0.25},
    # Long enough for the inference store's queue to be written out (WriteBehindQueue.close: 20 s).
    "graceful_shutdown_timeout_s": 30,
}


def build_fastapi_app(services: Services, exposure: Exposure, *, traced: bool = False) -> FastAPI:
    app = FastAPI(title="raystack", docs_url="/docs", openapi_url="/openapi.json")
    for module in (inference, messages, stored_completions, models, files, vector_stores, prompts, safety, tools, conversations,
                   responses, batches, datasets, post_training, fine_tuning, eval, inspect):
        app.include_router(module.router)
    for router in scoring.routers:
        app.include_router(router)
    app.mount(console.PREFIX, console.ConsoleFiles(), name="console")
    install_error_handlers(app)
    app.add_middleware(RequestGuard, exposure=exposure, authenticator=services.authenticator)
    app.add_middleware(AnthropicErrorBodies)
    app.add_middleware(RequestMetrics)
    if traced:
        app.add_middleware(TracingMiddleware)
    app.state.services = services
    return app


class Ingress:
    """Validates requests and routes them by resource to the provider deployments, through the services."""

    async def __init__(self, run_config: dict[str, Any], handles: dict[str, Any]):
        config = RunConfig.model_validate(run_config)
        start_tracing(config.server.tracing, "ingress")
        self.traced = config.server.tracing is not None
        self.exposure = config.server
        self.storage = Storage(config.storage)
        self.handles = colocate(config, handles)
        self.services = await open_services(config, self.handles, self.storage, this_replica(), ingress=True)
        loop = asyncio.get_running_loop()
        self._queue_depths = loop.create_task(sample_queue_depths(self.services.write_queues()))
        self._orphan_watches: list[asyncio.Task] = []
        if self.services.vector_stores is not None:
            period_s = config.vector_stores.ingestion.resume_check_period_s
            self._orphan_watches.append(loop.create_task(self.services.vector_stores.watch_orphans(period_s)))
        if self.services.batches is not None:
            self._orphan_watches.append(loop.create_task(self.services.batches.watch_orphans()))
        await self.services.models.seed(config.registered_resources.models)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi_app(self.services, self.exposure, traced=self.traced)

    async def __del__(self):
        """Serve calls this when the replica stops (drain, `serve shutdown`, SIGTERM to `serve run`):
        stored records still queued are written before the connections close."""
        self._queue_depths.cancel()
        for watch in self._orphan_watches:
            watch.cancel()
        await self.services.close()
        await close_colocated(self.handles)
        store = self.services.inference_store
        if store is not None:
            logger.info("inference store closed: %d records written (%d of them from dead processes' outboxes), %d lost, "
                        "%d dead letters", store.queue.written, store.queue.recovered, store.queue.lost, store.queue.dead_letters)
        await self.storage.close()
        stop_tracing()
