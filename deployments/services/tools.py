"""Tools: the tool groups of the run config, and the tool runtime providers that list and run them
(MCP servers named by a group or by a response's `mcp` tool, web search)."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.clients import ToolRuntimeClient
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.tools import ToolDef, ToolGroup, ToolInvocationResult
from providers.run_config import ToolGroupEntry

MCP_PROVIDER_TYPES = ("remote::model-context-protocol",)
WEB_SEARCH_PROVIDER_TYPES = ("remote::tavily-search",)


class ToolService:
    def __init__(self, entries: list[ToolGroupEntry], providers: dict[str, ToolRuntimeClient],
                 provider_types: dict[str, str]):
        """`providers`: each tool runtime's client by provider id; `provider_types`: its provider_type."""
        self.providers = providers
        self.provider_types = provider_types
        self.groups = {
            entry.toolgroup_id: ToolGroup(identifier=entry.toolgroup_id, provider_id=entry.provider_id,
                                          provider_resource_id=entry.toolgroup_id, args=entry.args,
                                          mcp_endpoint=entry.mcp_endpoint.model_dump() if entry.mcp_endpoint else None)
            for entry in entries
        }

    def group(self, toolgroup_id: str) -> ToolGroup:
        found = self.groups.get(toolgroup_id)
        if found is None:
            raise NotFoundError(f"Tool group '{toolgroup_id}' not found (registered: {', '.join(self.groups) or 'none'})",
                                param="toolgroup_id")
        return found

    async def list_tools(self, toolgroup_id: str | None = None) -> list[ToolDef]:
        """Every tool of every group (or of one), as its provider lists it now."""
        groups = [self.group(toolgroup_id)] if toolgroup_id else list(self.groups.values())
        listed = await asyncio.gather(*(self._group_tools(group) for group in groups))
        return [tool for tools in listed for tool in tools]

    async def _group_tools(self, group: ToolGroup) -> list[ToolDef]:
        endpoint = (group.mcp_endpoint or {}).get("uri")
        tools = await self.providers[group.provider_id].list_runtime_tools(endpoint, None)
        return [tool.model_copy(update={"toolgroup_id": group.identifier}) for tool in tools]

    def _provider_of(self, provider_types: tuple[str, ...]) -> ToolRuntimeClient | None:
        return next((self.providers[pid] for pid, kind in self.provider_types.items() if kind in provider_types), None)

    def mcp_provider(self) -> ToolRuntimeClient:
        provider = self._provider_of(MCP_PROVIDER_TYPES)
        if provider is None:
            raise InvalidRequestError("mcp tools need a remote::model-context-protocol provider under "
                                      "providers.tool_runtime, and this graph has none", param="tools")
        return provider

    def web_search_provider(self) -> ToolRuntimeClient:
        provider = self._provider_of(WEB_SEARCH_PROVIDER_TYPES)
        if provider is None:
            raise InvalidRequestError("web_search is off on this graph: it needs a web search provider under "
                                      "providers.tool_runtime (the starter graph turns one on with TAVILY_SEARCH_API_KEY)",
                                      param="tools")
        return provider

    async def list_mcp_tools(self, endpoint: str, headers: dict[str, str]) -> list[ToolDef]:
        return await self.mcp_provider().list_runtime_tools(endpoint, headers)

    async def call_mcp_tool(self, endpoint: str, headers: dict[str, str], name: str,
                            arguments: dict[str, Any]) -> ToolInvocationResult:
        return await self.mcp_provider().invoke_tool(name, arguments, endpoint, headers)

    async def web_search(self, query: str) -> ToolInvocationResult:
        return await self.web_search_provider().invoke_tool("web_search", {"query": query}, None, None)
