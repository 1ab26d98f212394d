"""The ingress deployment: one FastAPI app with a router per API, in front of the providers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from deployments.errors import install_error_handlers
from deployments.gateway import Gateway
from deployments.routers import inference, inspect, models
from providers.resources.models import ModelRegistry
from providers.run_config import RunConfig
from providers.storage import Storage

INGRESS_DEFAULTS: dict[str, Any] = {
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
    "max_ongoing_requests": 256,
    "ray_actor_options": {"num_cpus": 0.25},
}


def build_fastapi_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="raystack", docs_url="/docs", openapi_url="/openapi.json")
    for module in (inference, models, inspect):
        app.include_router(module.router)
    install_error_handlers(app)
    app.state.gateway = gateway
    return app


class Ingress:
    """Validates requests, routes them by resource through the registry to provider handles."""

    async def __init__(self, run_config: dict[str, Any], handles: dict[str, Any]):
        config = RunConfig.model_validate(run_config)
        self.storage = Storage(config.storage)
        self.gateway = Gateway(config, handles, ModelRegistry(self.storage.kv("metadata")))
        await self.gateway.seed_models()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi_app(self.gateway)

    async def __del__(self):
        await self.storage.close()
