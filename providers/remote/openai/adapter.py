"""Calls an OpenAI-compatible endpoint over HTTP (aiohttp: the cheapest client per request);
maps its failures to clear errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import aiohttp
import orjson

from providers.api.errors import (
    APIError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from providers.api.inference import (
    TOKENIZE_FIELDS,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ProviderModel,
)
from providers.remote.openai.config import OpenAICompatConfig


class OpenAICompatProvider:
    def __init__(self, config: OpenAICompatConfig):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        self._headers = dict(config.extra_headers)
        if config.api_key is not None:
            self._headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._whole = aiohttp.ClientTimeout(total=config.timeout_s, sock_connect=config.connect_timeout_s)
        # A stream may run long; what must not run long is the silence between two chunks.
        self._streaming = aiohttp.ClientTimeout(sock_read=config.timeout_s, sock_connect=config.connect_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """Made on first use, inside the replica's event loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.config.max_connections)
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector)
        return self._session

    async def list_models(self) -> list[ProviderModel]:
        return []

    async def chat_completion(self, request: ChatCompletionRequest, provider_model_id: str):
        return await self._forward("chat/completions", request, provider_model_id)

    async def completion(self, request: CompletionRequest, provider_model_id: str):
        return await self._forward("completions", request, provider_model_id)

    async def embeddings(self, request: EmbeddingRequest, provider_model_id: str) -> dict:
        return await self._forward("embeddings", request, provider_model_id)

    async def count_tokens(self, request: ChatCompletionRequest, provider_model_id: str) -> int:
        """Through vLLM's `POST /tokenize` beside the remote's /v1: a remote without it cannot count."""
        body = request.model_dump(mode="json", exclude_unset=True, by_alias=True)
        tokenize = {k: body[k] for k in TOKENIZE_FIELDS if k in body}
        try:
            data = await self._request("POST", "/tokenize", {"model": provider_model_id, **tokenize})
        except APIError as exc:
            raise type(exc)(f"counting tokens needs vLLM's POST /tokenize on the remote: {exc.message}") from None
        if not isinstance(data.get("count"), int):
            raise ProviderError(f"{self.root_url}/tokenize answered without a token count")
        return data["count"]

    async def health(self) -> dict[str, Any]:
        try:
            await self._request("GET", "models")
        except APIError as exc:
            return {"status": "Error", "message": exc.message}
        return {"status": "OK"}

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, path: str, request, provider_model_id: str):
        """The remote's answer as it came (vendor fields and base64 vectors kept), under the
        client's model id; a stream as an iterator of chunks."""
        body = request.model_dump(mode="json", exclude_unset=True, by_alias=True)
        body["model"] = provider_model_id
        if getattr(request, "stream", False):
            return self._stream(path, body, request.model)
        data = await self._request("POST", path, body)
        data["model"] = request.model
        return data

    async def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """`path` under the base URL, or from the server's root when it starts with a slash."""
        url = f"{self.root_url}{path}" if path.startswith("/") else f"{self.base_url}/{path}"
        try:
            async with self._client().request(method, url, data=_encoded(body), headers=_JSON,
                                              timeout=self._whole) as response:
                if response.status >= 400:
                    raise _remote_error(response.status, await response.read(), self.base_url)
                content = await response.read()
            try:
                return orjson.loads(content)
            except ValueError:
                raise ProviderError(f"{self.base_url} answered {response.status} with a body that is not JSON: "
                                    f"{content[:200].decode(errors='replace')!r}") from None
        except asyncio.TimeoutError:
            raise ProviderTimeoutError(f"{self.base_url} did not answer within {self.config.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self.base_url} is unreachable: {exc!r}") from None

    async def _stream(self, path: str, body: dict, model: str) -> AsyncIterator[dict]:
        try:
            async with self._client().post(f"{self.base_url}/{path}", data=_encoded(body), headers=_JSON,
                                           timeout=self._streaming) as response:
                if response.status >= 400:
                    raise _remote_error(response.status, await response.read(), self.base_url)
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    chunk = orjson.loads(payload)
                    if "error" in chunk:
                        raise ProviderError(f"{self.base_url}: {_message(chunk)}")
                    chunk["model"] = model
                    yield chunk
        except asyncio.TimeoutError:
            raise ProviderTimeoutError(f"{self.base_url} went silent for {self.config.timeout_s:g} s mid-stream") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self.base_url} failed mid-stream: {exc!r}") from None


_JSON = {"Content-Type": "application/json"}


def _encoded(body: dict | None) -> bytes | None:
    """The body as JSON: orjson, or the standard library for an integer beyond 64 bits, which a
    request may carry (a `seed`) and orjson refuses."""
    if body is None:
        return None
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


def _message(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(data)


def _remote_error(status: int, content: bytes, base_url: str) -> APIError:
    try:
        message = _message(json.loads(content))
    except ValueError:
        message = content[:500].decode(errors="replace")
    if status in (400, 422):
        return InvalidRequestError(f"{base_url} rejected the request: {message}")
    if status == 429:
        return RateLimitError(f"{base_url} is rate limiting: {message}")
    if status == 404:
        return ProviderError(f"{base_url} does not know this model or path (404): {message}")
    return ProviderError(f"{base_url} answered {status}: {message}")
