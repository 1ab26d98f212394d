"""The ingress deployment: one FastAPI app with a router per API, in front of the providers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI

from deployments.agents import AgentsClient
from deployments.errors import install_error_handlers
from deployments.services.gateway import Gateway
from deployments.services.wiring import open_gateway
from deployments.metrics import RequestMetrics, sample_queue_depths
from deployments.routes import (conversations, datasets, eval, files, inference, inspect, models, post_training,
                                 prompts, responses, safety, scoring, stored_completions, tools, vector_stores)
from providers.access.authenticators import build_authenticator
from providers.run_config import RunConfig
from providers.storage import Storage
from providers.storage.inference_store import InferenceStore

logger = logging.getLogger("ray.serve")

INGRESS_DEFAULTS: dict[str, Any] = {
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
    "max_ongoing_requests": 256,
    "ray_actor_options": {"num_cpus": 0.25},
    # Long enough for the inference store's queue to be written out (WriteBehindQueue.close: 20 s).
    "graceful_shutdown_timeout_s": 30,
}


def build_fastapi_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="raystack", docs_url="/docs", openapi_url="/openapi.json")
    for module in (inference, stored_completions, models, files, vector_stores, prompts, safety, tools, conversations,
                   responses, datasets, post_training, eval, inspect):
        app.include_router(module.router)
    for router in scoring.routers:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    app.state.gateway = gateway
    return app


class Ingress:
    """Validates requests, routes them by resource through the registry to provider handles."""

    async def __init__(self, run_config: dict[str, Any], handles: dict[str, Any]):
        config = RunConfig.model_validate(run_config)
        self.storage = Storage(config.storage)
        self.gateway = await open_gateway(config, handles, self.storage)
        self.gateway.authenticator = build_authenticator(config.server.auth)
        if "inference" in config.storage.stores:
            engine, _ = self.storage.sql("inference")
            self.gateway.inference_store = InferenceStore(engine, config.storage.stores["inference"], self.gateway.policy)
            await self.gateway.inference_store.create_table()
        if config.providers.get("agents"):
            self.gateway.agents = AgentsClient(handles[config.providers["agents"][0].provider_id])
        self._queue_depths = asyncio.get_running_loop().create_task(sample_queue_depths(self.gateway))
        self._orphan_watch: asyncio.Task | None = None
        if self.gateway.vector_stores is not None:
            period_s = config.vector_stores.ingestion.resume_check_period_s
            self._orphan_watch = asyncio.get_running_loop().create_task(self.gateway.vector_stores.watch_orphans(period_s))
        await self.gateway.seed_models()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi_app(self.gateway)

    async def __del__(self):
        """Serve calls this when the replica stops (drain, `serve shutdown`, SIGTERM to `serve run`):
        stored records still queued are written before the connections close."""
        self._queue_depths.cancel()
        if self._orphan_watch is not None:
            self._orphan_watch.cancel()
        if self.gateway.vector_stores is not None:
            await self.gateway.vector_stores.close()
        store = self.gateway.inference_store
        if store is not None:
            await store.close()
            logger.info("inference store closed: %d records written, %d lost", store.queue.written, store.queue.lost)
        if self.gateway.authenticator is not None:
            await self.gateway.authenticator.close()
        await self.storage.close()
