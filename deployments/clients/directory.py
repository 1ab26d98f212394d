"""Every provider of the graph by id: its API, run-config entry and typed client."""

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar

from deployments.clients.agents import AgentsClient
from deployments.clients.base import ProviderClient
from deployments.clients.providers import (
    DatasetIOClient,
    FilesClient,
    InferenceClient,
    PostTrainingClient,
    PromptsClient,
    SafetyClient,
    ToolRuntimeClient,
    VectorIOClient,
)
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.run_config import ProviderEntry, RunConfig

CLIENT_BY_API: dict[str, type[ProviderClient]] = {
    "inference": InferenceClient, "files": FilesClient, "vector_io": VectorIOClient, "safety": SafetyClient,
    "tool_runtime": ToolRuntimeClient, "datasetio": DatasetIOClient, "post_training": PostTrainingClient,
    "prompts": PromptsClient, "agents": AgentsClient,
}
C = TypeVar("C", bound=ProviderClient)
PROVIDER_HEALTH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProviderRoute:
    api: str
    entry: ProviderEntry
    client: ProviderClient


class ProviderDirectory:
    def __init__(self, config: RunConfig, handles: dict[str, Any]):
        """`handles`: provider id -> DeploymentHandle; the agents deployment holds none to itself."""
        self.routes = {
            entry.provider_id: ProviderRoute(api, entry, CLIENT_BY_API[api](handles[entry.provider_id]))
            for api, entry in config.provider_entries() if entry.provider_id in handles
        }

    def route(self, provider_id: str) -> ProviderRoute:
        route = self.routes.get(provider_id)
        if route is None:
            raise NotFoundError(f"Provider '{provider_id}' not found", param="provider_id")
        return route

    def of_api(self, api: str) -> list[ProviderRoute]:
        return [route for route in self.routes.values() if route.api == api]

    def clients(self, kind: type[C]) -> dict[str, C]:
        return {pid: route.client for pid, route in self.routes.items() if isinstance(route.client, kind)}

    def client(self, provider_id: str, kind: type[C]) -> C:
        client = self.route(provider_id).client
        if not isinstance(client, kind):
            api = next(api for api, cls in CLIENT_BY_API.items() if cls is kind)
            raise InvalidRequestError(f"provider '{provider_id}' is not a {api} provider", param="provider_id")
        return client

    def schedules_by_priority(self, provider_id: str) -> bool:
        """Whether the provider's engine runs requests by their `priority` (vLLM's `scheduling_policy: priority`)."""
        entry = self.route(provider_id).entry
        return (entry.provider_type == "inline::vllm"
                and entry.config.get("engine_args", {}).get("scheduling_policy") == "priority")

    def inference(self, provider_id: str) -> InferenceClient:
        return self.client(provider_id, InferenceClient)

    async def health(self, provider_id: str) -> dict[str, Any]:
        """The provider's own health; a provider that fails or does not answer within
        PROVIDER_HEALTH_TIMEOUT_S reports an error, it does not fail or stall the listing."""
        try:
            return await asyncio.wait_for(self.route(provider_id).client.health(), PROVIDER_HEALTH_TIMEOUT_S)
        except TimeoutError:
            return {"status": "Error", "message": f"no answer in {PROVIDER_HEALTH_TIMEOUT_S:g} s"}
        except Exception as exc:
            return {"status": "Error", "message": f"{type(exc).__name__}: {exc}"}

    async def healths(self) -> dict[str, dict[str, Any]]:
        """Every provider's health by id, asked at once."""
        ids = list(self.routes)
        return dict(zip(ids, await asyncio.gather(*(self.health(provider_id) for provider_id in ids))))
