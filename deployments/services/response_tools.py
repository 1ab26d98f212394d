"""The tools of a response turn, and the server-side ones the turn runs itself: file_search over
vector stores, web_search through a web search provider, and the tools of remote MCP servers
(listed once per conversation, called at once or after the caller approves)."""

from __future__ import annotations

import json
from typing import Any

from deployments.services.mcp_servers import MCPServerPolicy
from deployments.services.response_turn import Emit, Turn, add_item, new_id, run_tool_item
from deployments.services.tools import ToolService
from deployments.services.vector_stores import VectorStoreService
from providers.access import Identity
from providers.api.errors import APIError, InvalidRequestError
from providers.api.responses import FILE_SEARCH_FUNCTION, WEB_SEARCH_FUNCTION, FileSearchTool, MCPTool, WebSearchTool
from providers.api.vector_stores import SearchRequest


class TurnTools:
    """What the model may call this turn: the caller's functions (returned to the caller) and the
    server-side tools, by the name the model calls them."""

    def __init__(self, turn: Turn, listings: dict[str, list[dict[str, Any]]]):
        request = turn.request
        self.functions = request.function_tools()
        self.file_search: FileSearchTool | None = request.tool_of(FileSearchTool)
        self.web_search: WebSearchTool | None = request.tool_of(WebSearchTool)
        self.mcp: dict[str, tuple[MCPTool, dict[str, Any]]] = {}
        taken = set(self.functions) | {name for name, on in (("file_search", self.file_search),
                                                             ("web_search", self.web_search)) if on}
        servers = request.mcp_tools()
        for label, tools in listings.items():
            server = servers[label]
            for tool in tools:
                if not server.allows(tool["name"]):
                    continue
                if tool["name"] in taken:
                    raise InvalidRequestError(f"tool name '{tool['name']}' of MCP server '{label}' is also the name of "
                                              "another tool of this request", param="tools")
                taken.add(tool["name"])
                self.mcp[tool["name"]] = (server, tool)

    def server_side(self, name: str) -> bool:
        """Whether the turn runs a call to `name` itself (the caller's functions take precedence)."""
        if name in self.functions:
            return False
        return name in self.mcp or (name == "file_search" and bool(self.file_search)) or \
            (name == "web_search" and bool(self.web_search))

    def chat_tools(self) -> list[dict[str, Any]]:
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
                 for t in self.functions.values()]
        for on, function in ((self.file_search, FILE_SEARCH_FUNCTION), (self.web_search, WEB_SEARCH_FUNCTION)):
            if on:
                tools.append({"type": "function", "function": function.model_dump(exclude_none=True)})
        for name, (_, tool) in self.mcp.items():
            tools.append({"type": "function", "function": {"name": name, "description": tool.get("description"),
                                                           "parameters": tool.get("input_schema") or {"type": "object"}}})
        return tools


class ToolRunner:
    """The server-side tools of a turn: file_search over the vector stores, MCP servers and web search."""

    def __init__(self, vector_stores: VectorStoreService | None, tools: ToolService | None,
                 mcp_servers: MCPServerPolicy):
        self.vector_stores = vector_stores
        self.tools = tools
        self.mcp_servers = mcp_servers

    def check(self, user: Identity | None, turn: Turn) -> list[Any]:
        """Awaitables that check the request's tools can be served; raise at once when not."""
        request = turn.request
        checks = []
        if request.tool_of(FileSearchTool):
            if self.vector_stores is None:
                raise InvalidRequestError("file_search needs vector stores, which this graph does not serve", param="tools")
            checks += [self.vector_stores.stores.get(user, store_id)
                       for store_id in request.tool_of(FileSearchTool).vector_store_ids]
        if request.mcp_tools() or request.tool_of(WebSearchTool):
            if self.tools is None:
                raise InvalidRequestError("mcp and web_search tools need a provider under providers.tool_runtime",
                                          param="tools")
            if request.mcp_tools():
                self.tools.mcp_provider()
                checks += [self.mcp_servers.check(user, tool.server_url, f"tools.{i}.server_url")
                           for i, tool in enumerate(request.tools) if isinstance(tool, MCPTool)]
            if request.tool_of(WebSearchTool):
                self.tools.web_search_provider()
        return checks

    # ------------------------------------------------------------ MCP

    async def list_mcp_tools(self, turn: Turn, emit: Emit) -> dict[str, list[dict[str, Any]]]:
        """Each MCP server's tools: as an earlier turn of the context listed them, else listed now
        into an `mcp_list_tools` item."""
        listed = {item["server_label"]: item["tools"] for item in turn.context
                  if item["type"] == "mcp_list_tools" and not item.get("error")}
        listings = {}
        for label, server in turn.request.mcp_tools().items():
            if label not in listed:
                item = {"id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": label, "tools": []}
                listed[label] = (await run_tool_item(turn, item, emit, lambda: self._list(item, server)))["tools"]
            listings[label] = listed[label]
        return listings

    async def _list(self, item: dict[str, Any], server: MCPTool) -> dict[str, Any]:
        tools = await self.tools.list_mcp_tools(server.server_url, server.http_headers())
        return {**item, "tools": [{"name": t.name, "description": t.description, "input_schema": t.input_schema or {},
                                   "annotations": (t.metadata or {}).get("annotations")}
                                  for t in tools if server.allows(t.name)]}

    async def call_mcp(self, turn: Turn, server: MCPTool, name: str, arguments: str, emit: Emit,
                       approval_request_id: str | None = None) -> None:
        item = {"id": new_id("mcp"), "type": "mcp_call", "status": "in_progress", "server_label": server.server_label,
                "name": name, "arguments": arguments, "output": None, "error": None,
                "approval_request_id": approval_request_id}
        turn.tool_calls += 1
        await run_tool_item(turn, item, emit, lambda: self._call(item, server))

    async def _call(self, item: dict[str, Any], server: MCPTool) -> dict[str, Any]:
        try:
            arguments = json.loads(item["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return {**item, "status": "failed", "error": _execution_error(f"the arguments are not a JSON object: {exc}")}
        try:
            result = await self.tools.call_mcp_tool(server.server_url, server.http_headers(), item["name"],
                                                            arguments)
        except APIError as exc:  # the server went away mid-turn: the model hears of it, the turn goes on
            return {**item, "status": "failed", "error": {"type": "http_error", "code": exc.status_code,
                                                          "message": exc.message}}
        if result.error_message is not None:
            return {**item, "status": "failed", "error": _execution_error(result.error_message)}
        return {**item, "status": "completed", "output": result.content or ""}

    async def request_approval(self, turn: Turn, server: MCPTool, name: str, arguments: str, emit: Emit) -> None:
        await add_item(turn, {"id": new_id("mcpr"), "type": "mcp_approval_request", "server_label": server.server_label,
                              "name": name, "arguments": arguments}, emit)

    async def run_approved(self, turn: Turn, emit: Emit) -> None:
        """The calls the input approves run now; refused ones replay to the model as refused."""
        requests = {item["id"]: item for item in turn.context if item["type"] == "mcp_approval_request"}
        answered = {item.get("approval_request_id") for item in turn.context if item["type"] == "mcp_approval_response"}
        for i, item in enumerate(turn.new_items):
            if item["type"] != "mcp_approval_response":
                continue
            param = f"input.{i}.approval_request_id"
            request = requests.get(item.get("approval_request_id"))
            if request is None:
                raise InvalidRequestError(f"no MCP approval request '{item.get('approval_request_id')}' in this "
                                          "response's context", param=param)
            if request["id"] in answered:
                raise InvalidRequestError(f"MCP approval request '{request['id']}' was answered already", param=param)
            if not isinstance(item.get("approve"), bool):
                raise InvalidRequestError("approve must be true or false", param=f"input.{i}.approve")
            server = turn.request.mcp_tools().get(request["server_label"])
            if server is None:
                raise InvalidRequestError(f"the approved call is to MCP server '{request['server_label']}', which is "
                                          "not among this request's tools", param="tools")
            if item["approve"]:
                await self.call_mcp(turn, server, request["name"], request["arguments"], emit, request["id"])

    # ------------------------------------------------------------ searches

    async def file_search(self, user: Identity | None, turn: Turn, query: str, emit: Emit) -> None:
        tool: FileSearchTool = turn.request.tool_of(FileSearchTool)
        item = {"id": new_id("fs"), "type": "file_search_call", "status": "in_progress", "queries": [query], "results": None}
        turn.tool_calls += 1
        await run_tool_item(turn, item, emit, lambda: self._file_search(user, tool, item))

    async def _file_search(self, user: Identity | None, tool: FileSearchTool, item: dict[str, Any]) -> dict[str, Any]:
        options = {"query": item["queries"][0], "max_num_results": tool.max_num_results,
                   **({"filters": tool.filters} if tool.filters else {}),
                   **({"ranking_options": tool.ranking_options} if tool.ranking_options else {})}
        results = []
        for store_id in tool.vector_store_ids:
            page = await self.vector_stores.search(user, store_id, SearchRequest.model_validate(options))
            results += [{"file_id": hit["file_id"], "filename": hit["filename"], "score": hit["score"],
                         "text": "".join(part["text"] for part in hit["content"]), "attributes": hit["attributes"]}
                        for hit in page["data"]]
        results = sorted(results, key=lambda r: r["score"], reverse=True)[:tool.max_num_results]
        return {**item, "status": "completed", "results": results}

    async def web_search(self, turn: Turn, query: str, emit: Emit) -> None:
        item = {"id": new_id("ws"), "type": "web_search_call", "status": "in_progress",
                "action": {"type": "search", "query": query, "sources": []}}
        turn.tool_calls += 1
        await run_tool_item(turn, item, emit, lambda: self._web_search(item))

    async def _web_search(self, item: dict[str, Any]) -> dict[str, Any]:
        result = await self.tools.web_search(item["action"]["query"])
        sources = [{"type": "url", "url": r["url"], "title": r.get("title"), "content": r.get("content")}
                   for r in (result.metadata or {}).get("results", [])]
        return {**item, "status": "completed", "action": {**item["action"], "sources": sources}}


def _execution_error(message: str) -> dict[str, Any]:
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": message}]}
