"""The ingress's view of the graph: the model routing table and a handle per provider."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from providers.access import AccessPolicy, Identity
from providers.api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.api.inference import ProviderModel
from providers.api.models import Model, RegisterModelRequest
from providers.access.authenticators import Authenticator
from providers.storage.model_registry import ModelRegistry
from providers.run_config import ProviderEntry, RunConfig
from providers.storage.inference_store import InferenceStore

if TYPE_CHECKING:
    from deployments.agents import AgentsClient
    from deployments.services.conversations import ConversationService
    from deployments.services.datasets import DatasetService
    from deployments.services.eval import EvalService
    from deployments.services.files import FileService
    from deployments.services.post_training import PostTrainingService
    from deployments.services.prompts import PromptService
    from deployments.services.responses import ResponseService
    from deployments.services.safety import SafetyService
    from deployments.services.scoring import ScoringService
    from deployments.services.tools import ToolService
    from deployments.services.vector_stores import VectorStoreService

logger = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class ProviderRoute:
    api: str
    entry: ProviderEntry
    handle: Any  # ray.serve.handle.DeploymentHandle


class Gateway:
    """Provider handles, the model routing table and the access policy; the services a replica
    opens (deployments/services/wiring.py): the file, vector store, prompt, safety, tool,
    conversation, response, dataset, post-training, scoring and eval services, and in the ingress the inference store, the authenticator
    and the agents deployment. Each is None when not configured (the authenticator when
    authentication is off)."""

    def __init__(self, run_config: RunConfig, handles: dict[str, Any], models: ModelRegistry, policy: AccessPolicy):
        self.run_config = run_config
        self.models = models
        self.policy = policy
        self.inference_store: InferenceStore | None = None
        self.authenticator: Authenticator | None = None
        self.files: FileService | None = None
        self.vector_stores: VectorStoreService | None = None
        self.prompts: PromptService | None = None
        self.safety: SafetyService | None = None
        self.tools: ToolService | None = None
        self.conversations: ConversationService | None = None
        self.responses: ResponseService | None = None
        self.agents: AgentsClient | None = None
        self.datasets: DatasetService | None = None
        self.post_training: PostTrainingService | None = None
        self.scoring: ScoringService | None = None
        self.eval: EvalService | None = None
        self.providers = {  # the agents deployment holds no handle to itself
            entry.provider_id: ProviderRoute(api, entry, handles[entry.provider_id])
            for api, entry in run_config.provider_entries() if entry.provider_id in handles
        }

    def provider(self, provider_id: str) -> ProviderRoute:
        route = self.providers.get(provider_id)
        if route is None:
            raise NotFoundError(f"Provider '{provider_id}' not found", param="provider_id")
        return route

    async def call(self, provider_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return await self.provider(provider_id).handle.call.remote(method, *args, **kwargs)

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

    def may(self, user: Identity | None, action: str, model: Model) -> bool:
        return self.policy.allows(user, action, "model", model.identifier, model.owner)

    async def model_for(self, user: Identity | None, model_id: str, *, fresh: bool = False) -> Model:
        """The model `model_id` if `user` may read it; one they may not read is not found."""
        model = await self.models.get(model_id, fresh=fresh)
        if not self.may(user, "read", model):
            raise NotFoundError(f"Model '{model_id}' not found", param="model", code="model_not_found")
        return model

    async def visible_models(self, user: Identity | None) -> list[Model]:
        return [m for m in await self.models.list() if self.may(user, "read", m)]

    async def unregister_model(self, user: Identity | None, model_id: str) -> None:
        model = await self.model_for(user, model_id, fresh=True)
        if not self.may(user, "delete", model):
            raise PermissionDeniedError(f"not allowed to delete model '{model_id}'", param="model_id")
        await self.models.unregister(model_id)

    async def register_model(self, user: Identity | None, request: RegisterModelRequest) -> Model:
        if not self.policy.allows(user, "create", "model", request.model_id, user):
            raise PermissionDeniedError(f"not allowed to register model '{request.model_id}'", param="model_id")
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
            owner=user,
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
