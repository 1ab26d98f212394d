"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the graph's chat
models (deployments/services/messages.py translates; errors take Anthropic's shape in
deployments/errors.py:AnthropicErrorBodies)."""

from typing import AsyncIterator

import orjson
from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from deployments.errors import anthropic_error, api_error_response, as_api_error
from deployments.routes.dependencies import ServicesDep, UserDep
from deployments.routes.replies import AnthropicMessage, TokenCount, replies
from deployments.services.messages import MessageEvents, chat_request, event, message
from providers.api.messages import CountTokensRequest, MessagesRequest

router = APIRouter(prefix="/v1", tags=["Messages"])


@router.post("/messages", **replies(AnthropicMessage, streams=True))
async def create_message(request: MessagesRequest, services: ServicesDep, user: UserDep):
    model = await services.models.model_of_type(user, request.model, "llm", "messages")
    client = services.models.client(model)
    chat = chat_request(request)
    if request.stream:
        return await _events(client.stream_chat_completion(chat, model.provider_resource_id), MessageEvents(request))
    completion = await client.chat_completion(chat, model.provider_resource_id)
    if not isinstance(completion, dict):
        completion = completion.model_dump()
    return Response(orjson.dumps(message(completion, request)), media_type="application/json")


@router.post("/messages/count_tokens", **replies(TokenCount))
async def count_tokens(request: CountTokensRequest, services: ServicesDep, user: UserDep):
    model = await services.models.model_of_type(user, request.model, "llm", "count_tokens")
    count = await services.models.client(model).count_tokens(chat_request(request), model.provider_resource_id)
    return {"input_tokens": count}


async def _events(stream: AsyncIterator[str], events: MessageEvents) -> Response:
    """Anthropic's events from the chat stream. An error before the first chunk is an error
    response; one after it is an `error` event that ends the stream."""
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        first = ""
    except Exception as exc:
        return api_error_response(as_api_error(exc))

    async def body():
        disconnected = True
        try:
            for text in events.feed(first):
                yield text
            async for sse_text in stream:
                for text in events.feed(sse_text):
                    yield text
            disconnected = False
        except Exception as exc:
            disconnected = False
            error = as_api_error(exc)
            yield event("error", {"error": anthropic_error(error.status_code, error.message)["error"]})
            return
        finally:
            if disconnected:
                stream.cancel()
        for text in events.finish():
            yield text

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
