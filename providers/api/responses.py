"""Responses API wire types (OpenAI's shapes, with Llama Stack's `guardrails`) and the mapping
between response items and chat messages."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from providers.api.base import MAX_TOOLS, WireModel
from providers.api.conversations import normalized_item
from providers.api.errors import InvalidRequestError
from providers.api.inference import FunctionDefinition
from providers.api.vector_stores import SearchRequest

INCLUDABLE = ("file_search_call.results", "message.output_text.logprobs", "reasoning.encrypted_content",
              "message.input_image.image_url", "computer_call_output.output.image_url", "code_interpreter_call.outputs",
              "web_search_call.action.sources", "web_search_call.results")


class PublicModel(WireModel):
    def public(self) -> dict[str, Any]:
        """As a response shows it."""
        return self.model_dump(exclude_none=True)


class FunctionTool(PublicModel):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FileSearchTool(PublicModel):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1)
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _searchable(self) -> "FileSearchTool":
        """The search's filters and ranking options are checked when the request arrives, not when the
        model first calls the tool."""
        SearchRequest.model_validate({"query": "check", "filters": self.filters, "ranking_options": self.ranking_options})
        return self


class ToolNames(PublicModel):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class ApprovalFilter(PublicModel):
    """OpenAI's `{"always": {"tool_names": [...]}, "never": {...}}`; Llama Stack's lists of names too."""

    always: ToolNames | list[str] | None = None
    never: ToolNames | list[str] | None = None


def _names(names: ToolNames | list[str] | None) -> set[str]:
    if isinstance(names, ToolNames):
        return set(names.tool_names or [])
    return set(names or [])


class MCPTool(PublicModel):
    """A remote MCP server's tools. As on OpenAI, calls need approval unless `require_approval`
    says `never` (or lists the tool under `never`)."""

    type: Literal["mcp"]
    server_label: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    server_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    connector_id: str | None = None
    server_description: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | ToolNames | None = None
    require_approval: Literal["always", "never"] | ApprovalFilter | None = None

    @model_validator(mode="after")
    def _a_server_url(self) -> "MCPTool":
        if self.connector_id is not None:
            raise ValueError("connector_id: connectors are not served here; give the MCP server's server_url")
        if self.server_url is None:
            raise ValueError("server_url: an mcp tool needs the MCP server's server_url")
        return self

    def allows(self, name: str) -> bool:
        return self.allowed_tools is None or name in _names(self.allowed_tools)

    def needs_approval(self, name: str) -> bool:
        policy = self.require_approval
        if isinstance(policy, ApprovalFilter):
            return name in _names(policy.always) or name not in _names(policy.never)
        return policy != "never"

    def http_headers(self) -> dict[str, str]:
        bearer = {"Authorization": f"Bearer {self.authorization}"} if self.authorization else {}
        return {**(self.headers or {}), **bearer}

    def public(self) -> dict[str, Any]:
        """As the response shows it: without the credentials."""
        return self.model_dump(exclude_none=True, exclude={"headers", "authorization"})


WEB_SEARCH_TYPES = ("web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26")


class WebSearchTool(PublicModel):
    type: Literal[WEB_SEARCH_TYPES]  # type: ignore[valid-type]
    search_context_size: Literal["low", "medium", "high"] | None = None
    user_location: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None


Tool = Annotated[Union[FunctionTool, FileSearchTool, MCPTool, WebSearchTool], Field(discriminator="type")]


class PromptReference(PublicModel):
    id: str = Field(min_length=1)
    version: int | Annotated[str, Field(pattern=r"^[1-9][0-9]*$")] | None = None
    variables: dict[str, str] = {}


class Reasoning(PublicModel):
    """Accepted and echoed; the served models do not reason."""

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class TextConfig(PublicModel):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class CreateResponseRequest(PublicModel):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, str] | None = None
    prompt: PromptReference | None = None
    tools: list[Tool] = Field(default=[], max_length=MAX_TOOLS)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    reasoning: Reasoning | None = None
    background: bool | None = Field(default=None, description="run the turn after the request returns: the response "
                                    "comes back `queued`, and GET /v1/responses/{id} shows it as it runs")
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    prompt_cache_retention: Literal["in-memory", "24h"] | None = None
    text: TextConfig | None = None
    include: list[Literal[INCLUDABLE]] | None = None  # type: ignore[valid-type]
    store: bool = True
    stream: bool = False
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    guardrails: list[str] | None = None

    @model_validator(mode="after")
    def _one_context(self) -> "CreateResponseRequest":
        if self.previous_response_id and self.conversation:
            raise ValueError("conversation: give previous_response_id or conversation, not both")
        names = [t.name for t in self.tools if isinstance(t, FunctionTool)]
        if len(set(names)) != len(names):
            raise ValueError("tools: function names must be unique")
        labels = [t.server_label for t in self.tools if isinstance(t, MCPTool)]
        if len(set(labels)) != len(labels):
            raise ValueError("tools: mcp server_label values must be unique")
        return self

    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, dict):
            if not self.conversation.get("id"):
                raise InvalidRequestError("conversation needs an id", param="conversation.id")
            return self.conversation["id"]
        return self.conversation

    def input_items(self) -> list[dict[str, Any]]:
        if isinstance(self.input, str):
            return [normalized_item({"role": "user", "content": self.input}, "input")]
        return [normalized_item(item, f"input.{i}") for i, item in enumerate(self.input)]

    def function_tools(self) -> dict[str, FunctionTool]:
        return {t.name: t for t in self.tools if isinstance(t, FunctionTool)}

    def mcp_tools(self) -> dict[str, MCPTool]:
        return {t.server_label: t for t in self.tools if isinstance(t, MCPTool)}

    def tool_of(self, kind: type[WireModel]) -> Any:
        return next((t for t in self.tools if isinstance(t, kind)), None)


_QUERY = {"type": "object", "properties": {"query": {"type": "string", "description": "what to look for"}},
          "required": ["query"]}
FILE_SEARCH_FUNCTION = FunctionDefinition(
    name="file_search", description="Search the attached documents for passages relevant to a query.", parameters=_QUERY)
WEB_SEARCH_FUNCTION = FunctionDefinition(
    name="web_search", description="Search the web for current information.", parameters=_QUERY)


def chat_tool_choice(tool_choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """A Responses tool_choice as the chat API's."""
    if tool_choice is None or isinstance(tool_choice, str):
        if tool_choice not in (None, "auto", "none", "required"):
            raise InvalidRequestError("tool_choice must be auto, none, required or a tool", param="tool_choice")
        return tool_choice
    kind = tool_choice.get("type")
    if kind == "function" and tool_choice.get("name"):
        return {"type": "function", "function": {"name": tool_choice["name"]}}
    if kind == "file_search":
        return {"type": "function", "function": {"name": "file_search"}}
    if kind in WEB_SEARCH_TYPES:
        return {"type": "function", "function": {"name": "web_search"}}
    if kind == "mcp" and tool_choice.get("server_label"):
        return {"type": "function", "function": {"name": tool_choice["name"]}} if tool_choice.get("name") else "required"
    raise InvalidRequestError("tool_choice names an unknown tool", param="tool_choice")


def chat_response_format(text: TextConfig | None) -> dict[str, Any] | None:
    """`text.format` as the chat API's `response_format`."""
    if text is None or text.format is None or text.format.get("type") == "text":
        return None
    fmt = text.format
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema" and fmt.get("name") and isinstance(fmt.get("schema"), dict):
        spec = {"name": fmt["name"], "schema": fmt["schema"], **({"strict": fmt["strict"]} if "strict" in fmt else {})}
        return {"type": "json_schema", "json_schema": spec}
    raise InvalidRequestError("text.format must be text, json_object, or json_schema with a name and a schema",
                              param="text.format")


def item_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def chat_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Response items as chat messages: messages keep their role, a function call joins the
    assistant turn it belongs to, its output becomes a tool message; server-side tool calls (file
    search, web search, MCP) replay as a call and its result. MCP tool listings and approvals say
    nothing to the model, except a call the user refused, which replays as refused."""
    messages: list[dict[str, Any]] = []
    refusals = {i["approval_request_id"]: i for i in items if i["type"] == "mcp_approval_response" and not i.get("approve")}

    def assistant_with_calls() -> dict[str, Any]:
        if not messages or messages[-1]["role"] != "assistant" or "tool_calls" not in messages[-1]:
            messages.append({"role": "assistant", "content": None, "tool_calls": []})
        return messages[-1]

    def server_call(call_id: str, name: str, arguments: str, result: str) -> None:
        assistant_with_calls()["tool_calls"].append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})

    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": item_text(item["content"])})
        elif kind == "function_call":
            assistant_with_calls()["tool_calls"].append(
                {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"]}})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item["call_id"],
                             "content": output if isinstance(output, str) else json.dumps(output)})
        elif kind == "file_search_call":
            server_call(item["id"], "file_search", json.dumps({"query": " ".join(item.get("queries") or [])}),
                        file_search_context(item.get("results") or []))
        elif kind == "web_search_call":
            action = item.get("action") or {}
            server_call(item["id"], "web_search", json.dumps({"query": action.get("query", "")}),
                        web_search_context(action.get("sources") or []))
        elif kind == "mcp_call":
            server_call(item["id"], item["name"], item["arguments"], mcp_call_context(item))
        elif kind == "mcp_approval_request" and item["id"] in refusals:
            reason = refusals[item["id"]].get("reason")
            server_call(item["id"], item["name"], item["arguments"],
                        "The user did not approve this call" + (f": {reason}" if reason else "."))
    return messages


def web_search_context(sources: list[dict[str, Any]]) -> str:
    if not sources:
        return "No web results were found."
    return "\n\n".join(f"[{i + 1}] {s.get('title') or s['url']} ({s['url']})\n{s.get('content', '')}".rstrip()
                       for i, s in enumerate(sources))


def mcp_call_context(item: dict[str, Any]) -> str:
    error = item.get("error")
    if error:
        return f"Error: {error.get('message') or item_text(error.get('content'))}" if isinstance(error, dict) else f"Error: {error}"
    return item.get("output") or ""


def file_search_context(results: list[dict[str, Any]]) -> str:
    if not results:
        return "No relevant passages were found."
    return "\n\n".join(f"[{i + 1}] ({r['filename']}) {r['text']}" for i, r in enumerate(results))
