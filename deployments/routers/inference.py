"""POST /v1/chat/completions, /v1/completions, /v1/embeddings."""

import json
from typing import AsyncIterator

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response, StreamingResponse

from deployments.errors import api_error_response, as_api_error
from deployments.gateway import Gateway
from deployments.routers import gateway_of
from providers.api.errors import InvalidRequestError
from providers.api.inference import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["Inference"])


@router.post("/chat/completions")
async def chat_completions(request: ChatCompletionRequest, gateway: Gateway = Depends(gateway_of)):
    return await _run(gateway, request, "chat_completion", "llm")


@router.post("/completions")
async def completions(request: CompletionRequest, gateway: Gateway = Depends(gateway_of)):
    return await _run(gateway, request, "completion", "llm")


@router.post("/embeddings")
async def embeddings(request: EmbeddingRequest, gateway: Gateway = Depends(gateway_of)):
    return await _run(gateway, request, "embeddings", "embedding")


async def _run(gateway: Gateway, request, method: str, model_type: str) -> Response:
    model = await gateway.models.get(request.model)
    if model.model_type != model_type:
        raise InvalidRequestError(
            f"model '{model.identifier}' is an {model.model_type} model; {method} needs an {model_type} model",
            param="model",
        )
    args = (method, request, model.provider_resource_id)
    if getattr(request, "stream", False):
        return await _event_stream(gateway.stream(model.provider_id, *args))
    result = await gateway.call(model.provider_id, *args)
    if isinstance(result, dict):
        return JSONResponse(result)
    return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")


async def _event_stream(stream: AsyncIterator[str]) -> Response:
    """SSE from the provider's stream. An error before the first chunk is a normal error
    response; one after it becomes an `error` event, and the stream ends with [DONE]."""
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        first = ""
    except Exception as exc:
        return api_error_response(as_api_error(exc))

    async def events():
        ended = False
        try:
            yield first
            async for text in stream:
                yield text
            ended = True
        except Exception as exc:
            ended = True
            yield f"data: {json.dumps(as_api_error(exc).body())}\n\n"
        finally:
            if not ended:  # the client went away: stop generating
                stream.cancel()
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
