"""One response being made: its request, context, messages and output, the output items it can
hold, and the stream events that add them."""

from __future__ import annotations

import time
import uuid
from typing import Any, Awaitable, Callable

from providers.api.models import Model
from providers.api.responses import CreateResponseRequest, chat_tool_choice

Emit = Callable[[dict[str, Any]], Awaitable[None]]


async def quiet(event: dict[str, Any]) -> None:
    """The emit of a response that is not streamed."""


# What `include` adds to an item of each type, and where: (include value, item type, path to the field).
_INCLUDED = (("file_search_call.results", "file_search_call", ("results",)),
             ("web_search_call.action.sources", "web_search_call", ("action", "sources")))


def shown(response: dict[str, Any], include: list[str] | None) -> dict[str, Any]:
    """The response as the caller sees it: fields only `include` asks for left out."""
    output = []
    for item in response["output"]:
        for name, kind, path in _INCLUDED:
            if item["type"] == kind and name not in (include or []):
                item = _without(item, path)
        output.append(item)
    return {**response, "output": output}


def _without(item: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    head, *rest = path
    if not rest:
        return {**item, head: None} if head == "results" else {k: v for k, v in item.items() if k != head}
    return {**item, head: _without(item.get(head) or {}, tuple(rest))}


class Turn:
    def __init__(self, request: CreateResponseRequest, model: Model, context: list[dict[str, Any]],
                 new_items: list[dict[str, Any]], messages: list[dict[str, Any]], conversation_id: str | None,
                 guardrails: list[str]):
        self.request = request
        self.model = model
        self.guardrails = guardrails
        self.response_id = f"resp_{uuid.uuid4().hex}"
        self.created_at = int(time.time())
        self.context = context
        self.new_items = new_items
        self.messages = messages
        self.conversation_id = conversation_id
        self.output: list[dict[str, Any]] = []
        self.usage = {"input_tokens": 0, "output_tokens": 0}
        self.tool_calls = 0
        self.tool_choice = chat_tool_choice(request.tool_choice)
        self.status = "in_progress"
        self.completed_at: int | None = None
        self.incomplete_details: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    def response(self) -> dict[str, Any]:
        """The whole response, as stored: `shown` gives the caller's view."""
        request = self.request
        usage = {**self.usage, "total_tokens": self.usage["input_tokens"] + self.usage["output_tokens"],
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        tools = [t.public() for t in request.tools]
        return {
            "id": self.response_id, "object": "response", "created_at": self.created_at, "status": self.status,
            "completed_at": self.completed_at,
            "model": request.model, "output": list(self.output), "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "conversation": {"id": self.conversation_id} if self.conversation_id else None,
            "tools": tools, "tool_choice": request.tool_choice or "auto", "truncation": request.truncation or "disabled",
            "parallel_tool_calls": request.parallel_tool_calls is not False, "max_tool_calls": request.max_tool_calls,
            "max_output_tokens": request.max_output_tokens, **sampling_fields(request),
            "text": request.text.model_dump(exclude_none=True) if request.text else {"format": {"type": "text"}},
            "reasoning": request.reasoning.model_dump(exclude_none=True) if request.reasoning else None,
            "user": request.user, "background": request.background is True, "service_tier": "default",
            "safety_identifier": request.safety_identifier, "prompt_cache_key": request.prompt_cache_key,
            "metadata": request.metadata or {}, "store": request.store, "usage": usage, "error": self.error,
            "incomplete_details": self.incomplete_details,
            "prompt": request.prompt.model_dump() if request.prompt else None,
        }

    def end(self, status: str) -> None:
        self.status = status
        if status == "completed":
            self.completed_at = int(time.time())

    def visible(self) -> dict[str, Any]:
        return shown(self.response(), self.request.include)

    def tools_left(self) -> bool:
        return self.request.max_tool_calls is None or self.tool_calls < self.request.max_tool_calls


# OpenAI's defaults for what a request leaves unset: the response states them, as the spec requires.
SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
                     "top_logprobs": 0}


def sampling_fields(request: CreateResponseRequest) -> dict[str, Any]:
    return {name: default if getattr(request, name) is None else getattr(request, name)
            for name, default in SAMPLING_DEFAULTS.items()}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def message_item(text: str) -> dict[str, Any]:
    return {"id": new_id("msg"), "type": "message", "status": "completed", "role": "assistant", "content": [text_part(text)]}


def refusal_item(refusal: str) -> dict[str, Any]:
    return {"id": new_id("msg"), "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "refusal", "refusal": refusal}]}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


async def open_message(turn: Turn, item: dict[str, Any], emit: Emit) -> dict[str, Any]:
    """Announce a message whose first part follows; returns where its deltas go."""
    where = {"item_id": item["id"], "output_index": len(turn.output), "content_index": 0}
    part = item["content"][0] if item["content"] else text_part("")
    await emit({"type": "response.output_item.added", "output_index": where["output_index"],
                "item": {**item, "status": "in_progress", "content": []}})
    empty = {**part, "refusal": ""} if part["type"] == "refusal" else {**part, "text": ""}
    await emit({"type": "response.content_part.added", **where, "part": empty})
    return where


async def close_message(turn: Turn, item: dict[str, Any], where: dict[str, Any], emit: Emit) -> None:
    """The part's done event, then the message joins the output."""
    part = item["content"][0]
    if part["type"] == "refusal":
        await emit({"type": "response.refusal.done", **where, "refusal": part["refusal"]})
    else:
        await emit({"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []})
    await emit({"type": "response.content_part.done", **where, "part": part})
    turn.output.append(item)
    await emit({"type": "response.output_item.done", "output_index": where["output_index"], "item": item})


async def add_message(turn: Turn, item: dict[str, Any], emit: Emit) -> None:
    """A message added whole: its text (or refusal) goes out as one delta."""
    where = await open_message(turn, item, emit)
    part = item["content"][0]
    if part["type"] == "refusal":
        await emit({"type": "response.refusal.delta", **where, "delta": part["refusal"]})
    else:
        await emit({"type": "response.output_text.delta", **where, "delta": part["text"], "logprobs": []})
    await close_message(turn, item, where, emit)


async def add_item(turn: Turn, item: dict[str, Any], emit: Emit) -> None:
    """An item that is complete when added (a function call, an approval request)."""
    index = len(turn.output)
    turn.output.append(item)
    if item["type"] == "function_call":
        await emit({"type": "response.output_item.added", "output_index": index,
                    "item": {**item, "arguments": "", "status": "in_progress"}})
        where = {"item_id": item["id"], "output_index": index}
        await emit({"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]})
        await emit({"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]})
    else:
        await emit({"type": "response.output_item.added", "output_index": index, "item": item})
    await emit({"type": "response.output_item.done", "output_index": index, "item": item})


async def run_tool_item(turn: Turn, item: dict[str, Any], emit: Emit,
                        run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A server-side tool call: announced in progress, run, then completed (or failed) in place.
    Its events are named after the item type (`response.mcp_call.in_progress` ...)."""
    index = len(turn.output)
    turn.output.append(item)
    where = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    await emit({"type": "response.output_item.added", "output_index": index, "item": item})
    if kind == "mcp_call":
        await emit({"type": "response.mcp_call_arguments.delta", **where, "delta": item["arguments"]})
        await emit({"type": "response.mcp_call_arguments.done", **where, "arguments": item["arguments"]})
    await emit({"type": f"response.{kind}.in_progress", **where})
    if kind in ("file_search_call", "web_search_call"):
        await emit({"type": f"response.{kind}.searching", **where})
    try:
        done = await run()
    except Exception:
        await emit({"type": f"response.{kind}.failed", **where})
        raise
    turn.output[index] = done
    failed = done.get("status") == "failed" or bool(done.get("error"))
    await emit({"type": f"response.{kind}.{'failed' if failed else 'completed'}", **where})
    await emit({"type": "response.output_item.done", "output_index": index, "item": done})
    return done
