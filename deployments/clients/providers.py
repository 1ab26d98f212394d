"""One client per provider API, each mirroring its Protocol in providers/api."""

from typing import Any, AsyncIterator

from deployments.clients.base import ProviderClient, Reply
from providers.api.datasets import DatasetIOProvider
from providers.api.files import FilesProvider
from providers.api.inference import (
    ChatCompletionRequest,
    ChatResult,
    CompletionRequest,
    CompletionResult,
    EmbeddingRequest,
    InferenceProvider,
    ProviderModel,
)
from providers.api.post_training import PostTrainingProvider
from providers.api.prompts import PromptsProvider
from providers.api.safety import SafetyProvider
from providers.api.tools import ToolDef, ToolInvocationResult, ToolRuntimeProvider
from providers.api.vector_io import Chunk, ComparisonFilter, CompoundFilter, SearchHit, SearchMode, VectorIOProvider


class InferenceClient(ProviderClient):
    protocol = InferenceProvider

    def list_models(self) -> Reply[list[ProviderModel]]:
        return self._call("list_models")

    def chat_completion(self, request: ChatCompletionRequest, provider_model_id: str) -> Reply[ChatResult]:
        return self._call("chat_completion", request, provider_model_id)

    def completion(self, request: CompletionRequest, provider_model_id: str) -> Reply[CompletionResult]:
        return self._call("completion", request, provider_model_id)

    def embeddings(self, request: EmbeddingRequest, provider_model_id: str) -> Reply[dict[str, Any]]:
        return self._call("embeddings", request, provider_model_id)

    def count_tokens(self, request: ChatCompletionRequest, provider_model_id: str) -> Reply[int]:
        return self._call("count_tokens", request, provider_model_id)

    def weights_dir(self, provider_model_id: str) -> Reply[str | None]:
        return self._call("weights_dir", provider_model_id)

    def stream_chat_completion(self, request: ChatCompletionRequest, provider_model_id: str) -> AsyncIterator[str]:
        return self._stream("chat_completion", request, provider_model_id)

    def stream_completion(self, request: CompletionRequest, provider_model_id: str) -> AsyncIterator[str]:
        return self._stream("completion", request, provider_model_id)


class FilesClient(ProviderClient):
    protocol = FilesProvider

    def write(self, file_id: str, data: bytes, offset: int) -> Reply[None]:
        return self._call("write", file_id, data, offset)

    def commit(self, file_id: str, size: int) -> Reply[None]:
        return self._call("commit", file_id, size)

    def get(self, file_id: str) -> Reply[bytes]:
        return self._call("get", file_id)

    def delete(self, file_id: str) -> Reply[None]:
        return self._call("delete", file_id)


class VectorIOClient(ProviderClient):
    protocol = VectorIOProvider

    def create_store(self, store_id: str, dimension: int) -> Reply[None]:
        return self._call("create_store", store_id, dimension)

    def delete_store(self, store_id: str) -> Reply[None]:
        return self._call("delete_store", store_id)

    def insert(self, store_id: str, chunks: list[Chunk]) -> Reply[None]:
        return self._call("insert", store_id, chunks)

    def flush(self, store_id: str) -> Reply[None]:
        return self._call("flush", store_id)

    def delete_file(self, store_id: str, file_id: str) -> Reply[None]:
        return self._call("delete_file", store_id, file_id)

    def file_chunks(self, store_id: str, file_id: str) -> Reply[list[str]]:
        return self._call("file_chunks", store_id, file_id)

    def count(self, store_id: str) -> Reply[int]:
        return self._call("count", store_id)

    def search(self, store_id: str, *, embedding: list[float] | None, text: str | None, mode: SearchMode,
               limit: int, filters: ComparisonFilter | CompoundFilter | None, ef: int | None = None) -> Reply[list[SearchHit]]:
        return self._call("search", store_id, embedding=embedding, text=text, mode=mode, limit=limit, filters=filters, ef=ef)


class SafetyClient(ProviderClient):
    protocol = SafetyProvider

    def moderate(self, texts: list[str], params: dict[str, Any]) -> Reply[list[dict[str, Any]]]:
        return self._call("moderate", texts, params)


class ToolRuntimeClient(ProviderClient):
    protocol = ToolRuntimeProvider

    def list_runtime_tools(self, mcp_endpoint: str | None = None,
                           headers: dict[str, str] | None = None) -> Reply[list[ToolDef]]:
        return self._call("list_runtime_tools", mcp_endpoint, headers)

    def invoke_tool(self, tool_name: str, arguments: dict[str, Any], mcp_endpoint: str | None = None,
                    headers: dict[str, str] | None = None) -> Reply[ToolInvocationResult]:
        return self._call("invoke_tool", tool_name, arguments, mcp_endpoint, headers)


class DatasetIOClient(ProviderClient):
    protocol = DatasetIOProvider

    def import_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> Reply[dict[str, Any]]:
        return self._call("import_rows", dataset_id, rows)

    def import_uri(self, dataset_id: str, uri: str, metadata: dict[str, Any]) -> Reply[dict[str, Any]]:
        return self._call("import_uri", dataset_id, uri, metadata)

    def import_file(self, dataset_id: str, filename: str, content: bytes) -> Reply[dict[str, Any]]:
        return self._call("import_file", dataset_id, filename, content)

    def append_rows(self, dataset_id: str, rows: list[dict[str, Any]]) -> Reply[dict[str, Any]]:
        return self._call("append_rows", dataset_id, rows)

    def iterrows(self, dataset_id: str, start_index: int, limit: int | None) -> Reply[dict[str, Any]]:
        return self._call("iterrows", dataset_id, start_index, limit)

    def location(self, dataset_id: str) -> Reply[str]:
        return self._call("location", dataset_id)

    def delete(self, dataset_id: str) -> Reply[None]:
        return self._call("delete", dataset_id)


class PostTrainingClient(ProviderClient):
    protocol = PostTrainingProvider

    def start(self, job_uuid: str, spec: dict[str, Any], dataset_dir: str, validation_dir: str | None,
              shuffle: bool, train_on_input: bool) -> Reply[dict[str, Any]]:
        return self._call("start", job_uuid, spec, dataset_dir, validation_dir, shuffle, train_on_input)

    def state(self, job_uuid: str) -> Reply[dict[str, Any] | None]:
        return self._call("state", job_uuid)

    def cancel(self, job_uuid: str) -> Reply[None]:
        return self._call("cancel", job_uuid)

    def release(self, job_uuid: str) -> Reply[None]:
        return self._call("release", job_uuid)

    def artifacts_dir(self) -> Reply[str]:
        return self._call("artifacts_dir")

    def job_defaults(self) -> Reply[dict[str, Any]]:
        return self._call("job_defaults")


class PromptsClient(ProviderClient):
    protocol = PromptsProvider

    def create(self, prompt_id: str, template: str, tags: dict[str, str]) -> Reply[None]:
        return self._call("create", prompt_id, template, tags)

    def head(self, prompt_id: str) -> Reply[dict[str, Any] | None]:
        return self._call("head", prompt_id)

    def version(self, prompt_id: str, version: int) -> Reply[str | None]:
        return self._call("version", prompt_id, version)

    def versions(self, prompt_id: str) -> Reply[list[dict[str, Any]]]:
        return self._call("versions", prompt_id)

    def heads(self) -> Reply[list[dict[str, Any]]]:
        return self._call("heads")

    def add_version(self, prompt_id: str, template: str, latest: int) -> Reply[int]:
        return self._call("add_version", prompt_id, template, latest)

    def set_default(self, prompt_id: str, version: int) -> Reply[None]:
        return self._call("set_default", prompt_id, version)

    def delete(self, prompt_id: str) -> Reply[None]:
        return self._call("delete", prompt_id)
