"""The ingress's view of the graph: the model routing table and a handle per provider."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.inference import ProviderModel
from providers.api.models import Model, RegisterModelRequest
from providers.resources.models import ModelRegistry
from providers.run_config import ProviderEntry, RunConfig

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class ProviderRoute:
    api: str
    entry: ProviderEntry
    handle: Any  # ray.serve.handle.DeploymentHandle


class Gateway:
    def __init__(self, run_config: RunConfig, handles: dict[str, Any], models: ModelRegistry):
        self.run_config = run_config
        self.models = models
        self.providers = {
            entry.provider_id: ProviderRoute(api, entry, handles[entry.provider_id])
            for api, entry in run_config.provider_entries()
        }

    def provider(self, provider_id: str) -> ProviderRoute:
        route = self.providers.get(provider_id)
        if route is None:
            raise NotFoundError(f"Provider '{provider_id}' not found", param="provider_id")
        return route

    async def call(self, provider_id: str, method: str, *args: Any) -> Any:
        return await self.provider(provider_id).handle.call.remote(method, *args)

    def stream(self, provider_id: str, method: str, *args: Any) -> AsyncIterator[str]:
        handle = self.provider(provider_id).handle.options(stream=True)
        return handle.stream.remote(method, *args)

    async def seed_models(self) -> None:
        """Register the run config's models, keeping ones already stored under the same id."""
        stored = {m.identifier: m for m in await self.models.list()}
        for entry in self.run_config.registered_resources.models:
            model = Model(
                identifier=entry.model_id,
                provider_id=entry.provider_id,
                provider_resource_id=entry.provider_model_id or entry.model_id,
                model_type=entry.model_type,
                metadata=entry.metadata,
            )
            existing = stored.get(model.identifier)
            if existing is None or existing.model_copy(update={"created": 0}) != model:
                await self.models.register(model, replace=True)

    async def register_model(self, request: RegisterModelRequest) -> Model:
        provider_id = request.provider_id or self._only_inference_provider()
        route = self.provider(provider_id)
        if route.api != "inference":
            raise InvalidRequestError(f"provider '{provider_id}' does not serve models", param="provider_id")
        provider_model_id = request.provider_model_id or request.model_id
        served: list[ProviderModel] = await self.call(provider_id, "list_models")
        model_type = request.model_type
        metadata = dict(request.metadata or {})
        if served:
            match = next((m for m in served if m.provider_model_id == provider_model_id), None)
            if match is None:
                names = ", ".join(m.provider_model_id for m in served)
                raise InvalidRequestError(
                    f"provider '{provider_id}' does not serve '{provider_model_id}' (it serves: {names})",
                    param="provider_model_id",
                )
            model_type = model_type or match.model_type
            metadata = {**match.metadata, **metadata}
        model = Model(
            identifier=request.model_id,
            provider_id=provider_id,
            provider_resource_id=provider_model_id,
            model_type=model_type or "llm",
            metadata=metadata,
        )
        return await self.models.register(model)

    def _only_inference_provider(self) -> str:
        ids = [pid for pid, route in self.providers.items() if route.api == "inference"]
        if len(ids) != 1:
            raise InvalidRequestError("provider_id is required when several inference providers exist", param="provider_id")
        return ids[0]

    async def provider_health(self, provider_id: str) -> dict[str, Any]:
        try:
            return await self.call(provider_id, "health")
        except Exception as exc:  # a failing provider reports, it does not fail the listing
            return {"status": "Error", "message": f"{type(exc).__name__}: {exc}"}
