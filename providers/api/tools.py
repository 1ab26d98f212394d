"""Tool runtime API: tool definitions (Llama Stack's ToolDef), tool groups, and the contract of a
tool runtime provider (an MCP client, a web search service)."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel


class ToolDef(BaseModel):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    toolgroup_id: str | None = None


class ToolGroup(BaseModel):
    identifier: str
    provider_id: str
    provider_resource_id: str | None = None
    type: str = "tool_group"
    mcp_endpoint: dict[str, str] | None = None
    args: dict[str, Any] | None = None


class ToolInvocationResult(BaseModel):
    """What a tool answered: `content` for the model, or `error_message` (and `error_code`) when
    the tool itself failed; `metadata` carries structured results (a search's sources)."""

    content: str | None = None
    error_message: str | None = None
    error_code: int | None = None
    metadata: dict[str, Any] | None = None


class ToolRuntimeProvider(Protocol):
    """Lists and runs tools. `mcp_endpoint` and `headers` name the MCP server for providers that
    reach one; other providers ignore them. A server that cannot be reached raises
    FailedDependencyError; a tool that fails answers with `error_message`."""

    async def list_runtime_tools(self, mcp_endpoint: str | None = None,
                                 headers: dict[str, str] | None = None) -> list[ToolDef]: ...

    async def invoke_tool(self, tool_name: str, arguments: dict[str, Any], mcp_endpoint: str | None = None,
                          headers: dict[str, str] | None = None) -> ToolInvocationResult: ...

    async def shutdown(self) -> None: ...
