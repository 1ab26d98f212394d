"""The generic provider deployment: hosts any provider from the registry, so adding a provider
never means writing a deployment."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, TypedDict

import orjson
from pydantic import BaseModel

from deployments.clients import InferenceClient
from deployments.metrics import ProviderMetrics
from deployments.tracing import Carrier, SpanKind, span, start_tracing, stop_tracing, traced_stream
from providers.api.errors import InvalidRequestError
from providers.api.inference import ChatCompletionRequest
from providers.registry import get_spec

# Methods called as (request, provider_model_id) whose results carry token usage.
_MODEL_METHODS = {"chat_completion", "completion", "embeddings"}


class ProviderDeployment:
    """One provider in one replica. `call` runs a method and returns its result; `stream` runs a
    method that returns an async iterator and yields Server-Sent-Event text, gathering the
    chunks that arrive within `stream_batch_window_s` into one message to spare the hop."""

    def __init__(self, provider_id: str, provider_type: str, config: dict[str, Any],
                 models: dict[str, ModelRoute] | None = None, stream_batch_window_s: float = 0.02,
                 tracing: dict[str, Any] | None = None):
        start_tracing(tracing, f"provider-{provider_id}")
        self.provider_id = provider_id
        self.provider_type = provider_type
        self.stream_batch_window_s = stream_batch_window_s
        chat_models = None if models is None else {m: GraphChatModel(route) for m, route in models.items()}
        self.provider = get_spec(provider_type).create(config, chat_models)
        self.metrics = ProviderMetrics(provider_id)

    async def _method(self, method: str):
        function = getattr(self.provider, method, None)
        if function is None and method == "health":
            return _no_health_check
        if function is None or method.startswith("_"):
            raise InvalidRequestError(f"provider '{self.provider_id}' ({self.provider_type}) does not support {method}")
        return function

    async def call(self, method: str, *args: Any, trace_context: Carrier | None = None, **kwargs: Any) -> Any:
        with span(f"{self.provider_id}.{method}", trace_context, SpanKind.SERVER, **{"raystack.provider": self.provider_id}), \
                self.metrics.call(method):
            result = await (await self._method(method))(*args, **kwargs)
        if method in _MODEL_METHODS:
            self.metrics.count_usage(args[1], _usage(result))
        return result

    async def stream(self, method: str, *args: Any, trace_context: Carrier | None = None) -> AsyncIterator[str]:
        texts = self._stream(method, *args)
        if trace_context is not None:
            texts = traced_stream(f"{self.provider_id}.{method}", trace_context, texts, **{"raystack.provider": self.provider_id})
        async for text in texts:
            yield text

    async def _stream(self, method: str, *args: Any) -> AsyncIterator[str]:
        """Token counts come from the stream's usage chunk; without one (the client did not ask for
        `stream_options.include_usage`), each chunk with choices counts as one token out (vLLM sends a
        chunk per token)."""
        model = args[1] if method in _MODEL_METHODS else None
        usage, chunks_out, first = None, 0, True
        with self.metrics.call(method) as started:
            try:
                chunks = await (await self._method(method))(*args)
                if not hasattr(chunks, "__aiter__"):
                    raise InvalidRequestError(f"{method} on provider '{self.provider_id}' does not stream")
                async for batch in batched(chunks.__aiter__(), self.stream_batch_window_s):
                    if model is not None:
                        if first:
                            self.metrics.time_to_first_token_ms.observe(
                                (time.perf_counter() - started) * 1000, tags={"model": model})
                            first = False
                        for chunk in batch:
                            usage = _usage(chunk) or usage
                            chunks_out += _carries_output(chunk)
                    yield "".join(f"data: {_encode(chunk)}\n\n" for chunk in batch)
            finally:
                if model is not None:
                    self.metrics.count_usage(model, usage or {"completion_tokens": chunks_out})

    async def check_health(self) -> None:
        """Serve restarts the replica when this raises (e.g. the engine died)."""
        check_alive = getattr(self.provider, "check_alive", None)
        if check_alive is not None:
            await check_alive()

    async def close(self) -> None:
        await self.provider.shutdown()

    async def __del__(self):
        await self.close()
        stop_tracing()


class ModelRoute(TypedDict):
    """Where a model a provider depends on is served: the inference deployment and its own name for it."""

    handle: Any  # ray.serve.handle.DeploymentHandle
    provider_model_id: str


class GraphChatModel:
    """A chat model of the graph, called through its inference deployment's handle."""

    def __init__(self, route: ModelRoute):
        self.inference = InferenceClient(route["handle"])
        self.provider_model_id = route["provider_model_id"]

    async def chat_completion(self, request: ChatCompletionRequest) -> dict[str, Any]:
        result = await self.inference.chat_completion(request, self.provider_model_id)
        return result if isinstance(result, dict) else result.model_dump(exclude_unset=True)


def _usage(result: Any) -> dict[str, Any] | None:
    usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
    return usage.model_dump() if isinstance(usage, BaseModel) else usage


def _carries_output(chunk: Any) -> bool:
    choices = chunk.get("choices") if isinstance(chunk, dict) else getattr(chunk, "choices", None)
    return bool(choices)


def _encode(chunk: Any) -> str:
    if isinstance(chunk, BaseModel):
        return chunk.model_dump_json(exclude_unset=True)
    return orjson.dumps(chunk).decode()


async def batched(chunks: AsyncIterator[Any], window_s: float) -> AsyncIterator[list[Any]]:
    """Group the chunks that arrive within `window_s` of the first of each group; the stream's
    first chunk goes out alone so time to first token is not delayed."""
    loop = asyncio.get_running_loop()
    batch: list[Any] = []
    flush_at = 0.0
    window = 0.0
    pending: asyncio.Future | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(chunks.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, flush_at - loop.time()) if batch else None)
            if not done:
                yield batch
                batch = []
                continue
            arrived, pending = pending, None
            try:
                chunk = arrived.result()
            except StopAsyncIteration:
                break
            except Exception:
                if batch:
                    yield batch
                raise
            if not batch:
                flush_at = loop.time() + window
            batch.append(chunk)
            if not window:
                yield batch
                batch, window = [], window_s
        if batch:
            yield batch
    finally:
        if pending is not None:
            pending.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _no_health_check() -> dict[str, str]:
    """Llama Stack's health for a provider that has no check of its own."""
    return {"status": "Not Implemented", "message": "the provider has no health check; its replica answers"}
