"""The ingress's side of the agents deployment (deployments/agents.py): a response made there."""

import json
import re
from typing import AsyncIterator

from deployments.clients.base import ProviderClient
from deployments.errors import as_api_error
from deployments.tracing import carrier
from providers.access import Identity
from providers.api.errors import APIError
from providers.api.responses import CreateResponseRequest

# As ResponseService writes its events (json.dumps with the default separators).
_SEQUENCE_NUMBER = re.compile(r'"sequence_number": (\d+)')


class AgentsClient(ProviderClient):
    """The agents deployment answers `health` as every provider does, and makes responses."""

    async def create(self, user: Identity | None, request: CreateResponseRequest) -> dict | AsyncIterator[str]:
        trace_context = carrier()
        if not request.stream:
            return await self.handle.create.remote(user, request, trace_context)
        events = self.handle.options(stream=True).stream.remote(user, request, trace_context)
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
