"""The agents deployment (`inline::builtin` under providers.agents): the Responses agent loop,
scaled apart from the ingress. A turn may take many model and tool calls; here it holds an
agents replica, not an ingress one.

Each replica opens the responses service and what its turns call (deployments/services/wiring.py:
the model table, prompts, shields, tools, vector stores, conversations) over the providers' clients. The ingress forwards
`POST /v1/responses` to it and keeps serving the stored responses itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from deployments.metrics import ProviderMetrics, sample_queue_depths
from deployments.provider_host import batched
from deployments.replicas import this_replica
from deployments.services.wiring import open_services
from deployments.tracing import Carrier, SpanKind, span, start_tracing, stop_tracing, traced_stream
from providers.access import Identity
from providers.api.errors import InvalidRequestError
from providers.api.responses import CreateResponseRequest
from providers.inline.agents.config import BuiltinAgentsConfig
from providers.run_config import RunConfig
from providers.storage import Storage


class AgentsDeployment:
    async def __init__(self, provider_id: str, run_config: dict[str, Any], handles: dict[str, Any],
                       config: dict[str, Any]):
        graph = RunConfig.model_validate(run_config)
        start_tracing(graph.server.tracing, f"provider-{provider_id}")
        self.provider_id = provider_id
        self.config = BuiltinAgentsConfig.model_validate(config)
        self.storage = Storage(graph.storage)
        self.services = await open_services(graph, handles, self.storage, this_replica(), ingress=False,
                                            max_steps=self.config.max_steps)
        self.responses = self.services.responses
        self.metrics = ProviderMetrics(provider_id)
        loop = asyncio.get_running_loop()
        self._queue_depths = loop.create_task(sample_queue_depths(self.services.write_queues()))
        self._background_watch = loop.create_task(self.responses.background.watch())

    async def create(self, user: Identity | None, request: CreateResponseRequest,
                     trace_context: Carrier | None = None) -> dict[str, Any]:
        with span(f"{self.provider_id}.create_response", trace_context, SpanKind.SERVER, **{"raystack.provider": self.provider_id}), \
                self.metrics.call("create_response"):
            return await self.responses.create(user, request.model_copy(update={"stream": False}))

    async def stream(self, user: Identity | None, request: CreateResponseRequest,
                     trace_context: Carrier | None = None) -> AsyncIterator[str]:
        texts = self._stream(user, request)
        if trace_context is not None:
            texts = traced_stream(f"{self.provider_id}.create_response", trace_context, texts,
                                  **{"raystack.provider": self.provider_id})
        async for text in texts:
            yield text

    async def _stream(self, user: Identity | None, request: CreateResponseRequest) -> AsyncIterator[str]:
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
        self._background_watch.cancel()
        await self.services.close()
        await self.storage.close()
        stop_tracing()
