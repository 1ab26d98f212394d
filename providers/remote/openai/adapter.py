"""Calls an OpenAI-compatible endpoint over HTTP; maps its failures to clear errors."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import httpx

from providers.api.errors import (
    APIError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from providers.api.inference import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ProviderModel,
)
from providers.remote.openai.config import OpenAICompatConfig


class OpenAICompatProvider:
    def __init__(self, config: OpenAICompatConfig):
        self.config = config
        headers = dict(config.extra_headers)
        if config.api_key is not None:
            headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=config.max_connections, max_keepalive_connections=config.max_connections),
        )

    async def list_models(self) -> list[ProviderModel]:
        return []

    async def chat_completion(self, request: ChatCompletionRequest, provider_model_id: str):
        body = _body(request, provider_model_id)
        if request.stream:
            return self._stream("chat/completions", body, request.model)
        return await self._post("chat/completions", body, request.model)

    async def completion(self, request: CompletionRequest, provider_model_id: str):
        body = _body(request, provider_model_id)
        if request.stream:
            return self._stream("completions", body, request.model)
        return await self._post("completions", body, request.model)

    async def embeddings(self, request: EmbeddingRequest, provider_model_id: str) -> dict:
        return await self._post("embeddings", _body(request, provider_model_id), request.model)

    async def health(self) -> dict[str, Any]:
        try:
            await self._send("GET", "models")
        except APIError as exc:
            return {"status": "Error", "message": exc.message}
        return {"status": "OK"}

    async def shutdown(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: dict, model: str) -> dict:
        """The remote's JSON answer as it came (vendor fields and base64 vectors kept), under the client's model id."""
        data = (await self._send("POST", path, body)).json()
        data["model"] = model
        return data

    async def _send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException:
            raise ProviderTimeoutError(f"{self.config.base_url} did not answer within {self.config.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.config.base_url} is unreachable: {exc!r}") from None
        if response.status_code >= 400:
            await response.aread()
            raise _remote_error(response, self.config.base_url)
        return response

    async def _stream(self, path: str, body: dict, model: str) -> AsyncIterator[dict]:
        try:
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _remote_error(response, self.config.base_url)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        raise ProviderError(f"{self.config.base_url}: {_message(chunk)}")
                    chunk["model"] = model
                    yield chunk
        except httpx.TimeoutException:
            raise ProviderTimeoutError(f"{self.config.base_url} stopped answering mid-stream") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.config.base_url} failed mid-stream: {exc!r}") from None


def _body(request, provider_model_id: str) -> dict:
    body = request.model_dump(mode="json", exclude_unset=True, by_alias=True)
    body["model"] = provider_model_id
    return body


def _message(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(data)


def _remote_error(response: httpx.Response, base_url: str) -> APIError:
    try:
        message = _message(response.json())
    except ValueError:
        message = response.text[:500]
    status = response.status_code
    if status in (400, 422):
        return InvalidRequestError(f"{base_url} rejected the request: {message}")
    if status == 429:
        return RateLimitError(f"{base_url} is rate limiting: {message}")
    if status == 404:
        return ProviderError(f"{base_url} does not know this model or path (404): {message}")
    return ProviderError(f"{base_url} answered {status}: {message}")
