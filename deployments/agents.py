"""The agents deployment (`inline::builtin` under providers.agents): the Responses agent loop,
scaled apart from the ingress. A turn may take many model and tool calls; here it holds an
agents replica, not an ingress one.

Each replica opens the graph's services as the ingress does (the model registry, stores, vector
stores, tools, shields) and calls the providers through their handles. The ingress forwards
`POST /v1/responses` to it and keeps serving the stored responses itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, AsyncIterator

from deployments.errors import as_api_error
from deployments.services.wiring import open_gateway
from deployments.metrics import ProviderMetrics, sample_queue_depths
from deployments.provider_host import batched
from providers.access import Identity
from providers.api.errors import APIError, InvalidRequestError
from providers.api.responses import CreateResponseRequest
from providers.inline.agents.config import BuiltinAgentsConfig
from providers.run_config import RunConfig
from providers.storage import Storage

# As ResponseService writes its events (json.dumps with the default separators).
_SEQUENCE_NUMBER = re.compile(r'"sequence_number": (\d+)')


class AgentsDeployment:
    async def __init__(self, provider_id: str, run_config: dict[str, Any], handles: dict[str, Any],
                       config: dict[str, Any]):
        graph = RunConfig.model_validate(run_config)
        self.config = BuiltinAgentsConfig.model_validate(config)
        self.storage = Storage(graph.storage)
        self.gateway = await open_gateway(graph, handles, self.storage, max_steps=self.config.max_steps)
        self.responses = self.gateway.responses
        self.metrics = ProviderMetrics(provider_id)
        self._queue_depths = asyncio.get_running_loop().create_task(sample_queue_depths(self.gateway))

    async def create(self, user: Identity | None, request: CreateResponseRequest) -> dict[str, Any]:
        with self.metrics.call("create_response"):
            return await self.responses.create(user, request.model_copy(update={"stream": False}))

    async def stream(self, user: Identity | None, request: CreateResponseRequest) -> AsyncIterator[str]:
        """The response's Server-Sent Events; a request the turn cannot start with raises before the first."""
        with self.metrics.call("create_response"):
            events = await self.responses.create(user, request.model_copy(update={"stream": True}))
            async for batch in batched(events.__aiter__(), self.config.stream_batch_window_s):
                yield "".join(batch)

    async def call(self, method: str) -> dict[str, Any]:
        """What the ingress asks of every provider: its health."""
        if method != "health":
            raise InvalidRequestError(f"the agents deployment does not support {method}")
        return {"status": "OK"}

    async def __del__(self):
        self._queue_depths.cancel()
        if self.gateway.vector_stores is not None:
            await self.gateway.vector_stores.close()
        await self.storage.close()


class AgentsClient:
    """The ingress's side: a response made by the agents deployment."""

    def __init__(self, handle: Any):  # ray.serve.handle.DeploymentHandle
        self.handle = handle

    async def create(self, user: Identity | None, request: CreateResponseRequest) -> dict[str, Any] | AsyncIterator[str]:
        if not request.stream:
            return await self.handle.create.remote(user, request)
        events = self.handle.options(stream=True).stream.remote(user, request)
        first = await events.__anext__()  # a bad request fails here, as an HTTP error and not a stream

        async def relay() -> AsyncIterator[str]:
            text = first
            try:
                yield first
                async for text in events:
                    yield text
            except Exception as exc:  # the agents replica went away mid-turn: the stream says so and ends
                yield _error_event(as_api_error(exc), _last_sequence_number(text) + 1)

        return relay()


def _last_sequence_number(sse_text: str) -> int:
    numbers = _SEQUENCE_NUMBER.findall(sse_text)
    return int(numbers[-1]) if numbers else -1


def _error_event(error: APIError, sequence_number: int) -> str:
    event = {"type": "error", "code": error.code or error.error_type, "message": error.message, "param": error.param,
             "sequence_number": sequence_number}
    return f"event: error\ndata: {json.dumps(event)}\n\n"
