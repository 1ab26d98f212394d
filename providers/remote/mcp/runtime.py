"""The MCP tool runtime: one streamable-HTTP session per call (connect, handshake, operation, close).

A server that is unreachable, answers an HTTP error, does not speak MCP or is too slow raises
FailedDependencyError, a plain picklable exception that crosses Ray and reaches the client as a
424. A tool that fails, or a call the server refuses (an unknown tool), answers `error_message`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ContentBlock, TextContent, Tool

from providers.api.errors import FailedDependencyError, InvalidRequestError
from providers.api.tools import ToolDef, ToolInvocationResult
from providers.remote.mcp.config import MCPToolRuntimeConfig

_T = TypeVar("_T")


class _HTTPRejection(Exception):
    """An HTTP error status, which the MCP transport would hide behind a generic JSON-RPC error."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status


async def _reject_http_errors(response: httpx2.Response) -> None:
    """httpx2 response hook: fail a POST answered with an auth or server error status, or with any
    error status whose body is not JSON (so cannot be a JSON-RPC error the session would report)."""
    status = response.status_code
    if response.request.method != "POST" or status < 400:
        return
    json_body = response.headers.get("content-type", "").startswith("application/json")
    if status in (401, 403) or status >= 500 or not json_body:
        raise _HTTPRejection(status, response.reason_phrase)


class MCPToolRuntime:
    """Lists and calls the tools of the MCP server each request names."""

    def __init__(self, config: MCPToolRuntimeConfig):
        self.config = config

    async def list_runtime_tools(self, mcp_endpoint: str | None = None,
                                 headers: dict[str, str] | None = None) -> list[ToolDef]:
        tools = await self._with_session(mcp_endpoint, headers, _list_all_tools)
        return [_tool_def(tool) for tool in tools]

    async def invoke_tool(self, tool_name: str, arguments: dict[str, Any], mcp_endpoint: str | None = None,
                          headers: dict[str, str] | None = None) -> ToolInvocationResult:
        async def call(client: Client) -> ToolInvocationResult:
            try:
                return _invocation_result(await client.call_tool(tool_name, arguments))
            except MCPError as exc:  # the server refused the call: an unknown tool, invalid arguments
                return ToolInvocationResult(error_message=exc.message, error_code=exc.code)

        return await self._with_session(mcp_endpoint, headers, call)

    async def health(self) -> dict[str, str]:
        return {"status": "OK"}

    async def shutdown(self) -> None:
        """Nothing to close: every call opens and closes its own session."""

    async def _with_session(self, endpoint: str | None, headers: dict[str, str] | None,
                            operation: Callable[[Client], Awaitable[_T]]) -> _T:
        """Run `operation` on a fresh session with the server; its failures become FailedDependencyError."""
        if not endpoint:
            raise InvalidRequestError("an MCP tool call needs the server's URL", param="server_url")
        timeout = httpx2.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s)
        try:
            with anyio.fail_after(self.config.timeout_s):
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=timeout,
                                       event_hooks={"response": [_reject_http_errors]}) as http,
                    Client(streamable_http_client(endpoint, http_client=http), cache=None) as client,
                ):
                    return await operation(client)
        except Exception as exc:  # anyio wraps the transport's errors in (nested) exception groups
            raise FailedDependencyError(f"MCP server {endpoint} {self._describe(_root_cause(exc))}") from exc

    def _describe(self, cause: BaseException) -> str:
        if isinstance(cause, _HTTPRejection):
            return f"answered {cause}"
        if isinstance(cause, TimeoutError):
            return f"timed out after {self.config.timeout_s:g}s"
        if isinstance(cause, httpx2.TimeoutException):
            return f"timed out ({type(cause).__name__})"
        if isinstance(cause, httpx2.TransportError):
            return f"could not be reached ({type(cause).__name__}: {_brief(str(cause))})"
        if isinstance(cause, MCPError):
            return f"did not answer as an MCP server ({_brief(cause.message)})"
        return f"failed ({type(cause).__name__}: {_brief(str(cause))})"


def _root_cause(exc: BaseException) -> BaseException:
    """The first leaf of an exception group, or the exception itself."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _brief(text: str, limit: int = 200) -> str:
    """The first line of an error's text, cut to `limit` characters (pydantic's run to dozens)."""
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit] + "..."


async def _list_all_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


def _tool_def(tool: Tool) -> ToolDef:
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return ToolDef(name=tool.name, description=tool.description, input_schema=tool.input_schema,
                   output_schema=tool.output_schema,
                   metadata={"annotations": annotations} if annotations is not None else None)


def _invocation_result(result: CallToolResult) -> ToolInvocationResult:
    text = "\n".join(_render(block) for block in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content)
    if result.is_error:
        return ToolInvocationResult(error_message=text or "the tool failed without a message")
    return ToolInvocationResult(content=text)


def _render(block: ContentBlock) -> str:
    """A text block's text; other blocks as JSON, without their base64 payload."""
    if isinstance(block, TextContent):
        return block.text
    return block.model_dump_json(by_alias=True, exclude_none=True, exclude={"data"})
