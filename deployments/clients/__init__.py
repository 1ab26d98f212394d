"""Typed clients over the deployment handles: one per API, method for method its provider Protocol
(providers/api). They are the only place a provider method is named by a string."""

from deployments.clients.agents import AgentsClient
from deployments.clients.base import ProviderClient, Reply
from deployments.clients.directory import ProviderDirectory, ProviderRoute
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

__all__ = ["AgentsClient", "DatasetIOClient", "FilesClient", "InferenceClient", "PostTrainingClient", "PromptsClient", "ProviderClient",
           "ProviderDirectory", "ProviderRoute", "Reply", "SafetyClient", "ToolRuntimeClient", "VectorIOClient"]
