"""POST /v1/chat/completions, /v1/completions, /v1/embeddings."""

import json
from typing import Any, AsyncIterator

import orjson
from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from deployments.errors import api_error_response, as_api_error
from deployments.routes.dependencies import ServicesDep, UserDep
from deployments.routes.replies import ChatCompletion, Embeddings, TextCompletion, replies
from deployments.services.recording import CompletionRecording
from providers.api.inference import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["Inference"])


@router.post("/chat/completions", **replies(ChatCompletion, streams=True))
async def chat_completions(request: ChatCompletionRequest, services: ServicesDep,
                           user: UserDep):
    recording = None
    if services.inference_store is not None and request.store is not False:
        recording = CompletionRecording(services.inference_store, request, user)
    model = await services.models.model_of_type(user, request.model, "llm", "chat_completion")
    client = services.models.client(model)
    if request.stream:
        return await _event_stream(client.stream_chat_completion(request, model.provider_resource_id), recording)
    return await _answer(await client.chat_completion(request, model.provider_resource_id), recording)


@router.post("/completions", **replies(TextCompletion, streams=True))
async def completions(request: CompletionRequest, services: ServicesDep,
                      user: UserDep):
    model = await services.models.model_of_type(user, request.model, "llm", "completion")
    client = services.models.client(model)
    if request.stream:
        return await _event_stream(client.stream_completion(request, model.provider_resource_id), None)
    return await _answer(await client.completion(request, model.provider_resource_id), None)


@router.post("/embeddings", **replies(Embeddings))
async def embeddings(request: EmbeddingRequest, services: ServicesDep,
                     user: UserDep):
    model = await services.models.model_of_type(user, request.model, "embedding", "embeddings")
    return await _answer(await services.models.client(model).embeddings(request, model.provider_resource_id), None)


async def _answer(result: Any, recording: CompletionRecording | None) -> Response:
    if recording is not None:
        result = await recording.save(result if isinstance(result, dict) else result.model_dump(exclude_unset=True))
    if isinstance(result, dict):
        return Response(orjson.dumps(result), media_type="application/json")
    return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")


async def _event_stream(stream: AsyncIterator[str], recording: CompletionRecording | None) -> Response:
    """SSE from the provider's stream. An error before the first chunk is a normal error
    response; one after it becomes an `error` event, and the stream ends with [DONE].
    A recorded stream is stored when it ends, however it ends."""
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        first = ""
    except Exception as exc:
        return api_error_response(as_api_error(exc))

    async def events():
        incomplete_reason = "client_disconnected"
        try:
            yield first if recording is None else recording.feed(first)
            async for text in stream:
                yield text if recording is None else recording.feed(text)
            incomplete_reason = None
        except Exception as exc:
            incomplete_reason = "error"
            yield f"data: {json.dumps(as_api_error(exc).body())}\n\n"
        finally:
            if incomplete_reason == "client_disconnected":
                stream.cancel()
            if recording is not None:
                recording.finish_stream(incomplete_reason)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
