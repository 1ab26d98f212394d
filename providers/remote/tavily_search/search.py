"""The `web_search` tool: calls Tavily's Search API over HTTP (aiohttp) and renders its results
as numbered text for a model, with the sources kept in metadata."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from providers.api.errors import (
    APIError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from providers.api.tools import ToolDef, ToolInvocationResult
from providers.remote.tavily_search.config import TavilySearchConfig

TOOL_NAME = "web_search"
NO_RESULTS = "No web results were found."


class TavilySearch:
    def __init__(self, config: TavilySearchConfig):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """Made on first use, inside the replica's event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def list_runtime_tools(self, mcp_endpoint: str | None = None,
                                 headers: dict[str, str] | None = None) -> list[ToolDef]:
        return [ToolDef(
            name=TOOL_NAME,
            description="Search the web for current information",
            input_schema={
                "type": "object",
                "properties": {"query": {"type": "string", "description": "what to search the web for"}},
                "required": ["query"],
            },
        )]

    async def invoke_tool(self, tool_name: str, arguments: dict[str, Any], mcp_endpoint: str | None = None,
                          headers: dict[str, str] | None = None) -> ToolInvocationResult:
        if tool_name != TOOL_NAME:
            raise InvalidRequestError(f"unknown tool {tool_name!r}; this provider offers {TOOL_NAME!r}")
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequestError("web_search needs a non-empty 'query'", param="query")
        results = await self._search(query, arguments.get("max_results", self.config.max_results))
        return ToolInvocationResult(content=_render(results), metadata={"query": query, "results": results})

    async def health(self) -> dict[str, Any]:
        return {"status": "OK"}

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _search(self, query: str, max_results: Any) -> list[dict[str, Any]]:
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 20:
            raise InvalidRequestError("'max_results' must be an integer from 1 to 20", param="max_results")
        body = {"query": query, "max_results": max_results, "search_depth": self.config.search_depth,
                "topic": "general"}
        data = await self._post("search", body)
        results = data.get("results") or []
        return [_source(r) for r in results if isinstance(r, dict)][:max_results]

    async def _post(self, path: str, body: dict) -> dict:
        try:
            async with self._client().post(f"{self.base_url}/{path}", json=body) as response:
                if response.status != 200:
                    raise _remote_error(response.status, await response.read(), self.base_url)
                data = await response.json(content_type=None)
        except asyncio.TimeoutError:
            raise ProviderTimeoutError(f"{self.base_url} did not answer within {self.config.timeout_s:g} s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise ProviderError(f"{self.base_url} could not be searched: {type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.base_url} answered something other than a JSON object")
        return data


def _source(result: dict[str, Any]) -> dict[str, Any]:
    return {"title": result.get("title") or "", "url": result.get("url") or "",
            "content": result.get("content") or "", "score": result.get("score")}


def _render(results: list[dict[str, Any]]) -> str:
    if not results:
        return NO_RESULTS
    return "\n\n".join(f"[{i}] {r['title']} ({r['url']})\n{r['content']}" for i, r in enumerate(results, start=1))


def _detail(content: bytes) -> str:
    """The service's own words: Tavily puts them under {"detail": {"error": ...}}."""
    try:
        data = json.loads(content)
    except ValueError:
        return content[:300].decode(errors="replace")
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, dict):
        detail = detail.get("error") or detail
    return str(detail)[:300]


def _remote_error(status: int, content: bytes, base_url: str) -> APIError:
    if status in (401, 403):
        return ProviderError(f"{base_url} refused the configured API key ({status})")
    if status == 429:
        return RateLimitError(f"{base_url} is rate limiting web searches: {_detail(content)}")
    return ProviderError(f"{base_url} answered {status}: {_detail(content)}")
