"""Anthropic's Messages API over the chat models of the graph: a Messages request becomes a chat
completion request on the one inference path, and the chat completion (or its chunks) becomes an
Anthropic message (or its events)."""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import orjson
from pydantic import ValidationError

from deployments.errors import validation_error
from providers.api.errors import ProviderError
from providers.api.inference import ChatCompletionRequest
from providers.api.messages import (
    AnyChoice,
    AutoChoice,
    CountTokensRequest,
    ImageBlock,
    MessagesRequest,
    NamedChoice,
    NoneChoice,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}


def chat_request(request: CountTokensRequest | MessagesRequest) -> ChatCompletionRequest:
    """The chat completion request that asks the model what the Messages request asks. A final
    assistant message is a prefill: the model continues it (vLLM's `continue_final_message`)."""
    messages = [] if request.system is None else [{"role": "system", "content": _text(request.system)}]
    for message in request.messages:
        messages += _chat_messages(message.role, message.blocks())
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "parameters": t.input_schema,
                                                           **({"description": t.description} if t.description else {})}}
                         for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if getattr(request.tool_choice, "disable_parallel_tool_use", None):
            body["parallel_tool_calls"] = False
    if request.messages[-1].role == "assistant":
        body.update(add_generation_prompt=False, continue_final_message=True)
    if isinstance(request, MessagesRequest):
        body.update(max_tokens=request.max_tokens,
                    **{k: v for k, v in (("stop", request.stop_sequences), ("temperature", request.temperature),
                                         ("top_p", request.top_p), ("top_k", request.top_k)) if v is not None})
        if request.output_config is not None and request.output_config.format is not None:
            schema = request.output_config.format.schema_
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        if request.metadata is not None and request.metadata.user_id:
            body["user"] = request.metadata.user_id
        if request.stream:
            body.update(stream=True, stream_options={"include_usage": True})
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:  # a history Anthropic's rules admit but a chat request cannot carry
        raise validation_error(exc) from None


def _text(content: str | list[TextBlock]) -> str:
    return content if isinstance(content, str) else "".join(block.text for block in content)


def _chat_messages(role: str, blocks: list) -> list[dict[str, Any]]:
    """One Anthropic turn as chat messages: a user turn's tool results become tool messages ahead of
    its other content; an assistant turn's tool_use blocks become its tool_calls."""
    if role == "assistant":
        calls = [{"id": b.id, "type": "function", "function": {"name": b.name, "arguments": orjson.dumps(b.input).decode()}}
                 for b in blocks if isinstance(b, ToolUseBlock)]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(b.text for b in blocks if isinstance(b, TextBlock))}
        if calls:
            message["tool_calls"] = calls
        return [message]
    results = [{"role": "tool", "tool_call_id": b.tool_use_id, "content": _result_text(b)}
               for b in blocks if isinstance(b, ToolResultBlock)]
    parts = [_part(b) for b in blocks if isinstance(b, (TextBlock, ImageBlock))]
    if not parts:
        return results
    if all(part["type"] == "text" for part in parts):
        return [*results, {"role": "user", "content": "".join(part["text"] for part in parts)}]
    return [*results, {"role": "user", "content": parts}]


def _result_text(block: ToolResultBlock) -> str:
    text = "" if block.content is None else _text(block.content)
    return f"Error: {text}" if block.is_error else text


def _part(block: TextBlock | ImageBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    source = block.source
    url = source.url if source.type == "url" else f"data:{source.media_type};base64,{source.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_choice(choice: AutoChoice | AnyChoice | NamedChoice | NoneChoice) -> Any:
    if isinstance(choice, NamedChoice):
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def message_id(completion_id: str) -> str:
    return "msg_" + completion_id.removeprefix("chatcmpl-")


def _stop(finish_reason: str | None, matched: Any, stop_sequences: list[str] | None, has_calls: bool) -> tuple[str, str | None]:
    """Anthropic's stop_reason and stop_sequence. vLLM names the stop string it met (`stop_reason`);
    a provider that does not reports it as end_turn."""
    if has_calls:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched, str) and matched in (stop_sequences or ()):
        return "stop_sequence", matched
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def usage(chat_usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic counts prompt tokens read from the cache apart from `input_tokens`."""
    chat_usage = chat_usage or {}
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {"input_tokens": (chat_usage.get("prompt_tokens") or 0) - cached, "output_tokens": chat_usage.get("completion_tokens") or 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def message(completion: dict[str, Any], request: MessagesRequest) -> dict[str, Any]:
    """The Anthropic message of a chat completion's first choice."""
    choice = completion["choices"][0]
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = [{"type": "text", "text": reply["content"]}] if reply.get("content") else []
    calls = reply.get("tool_calls") or []
    for call in calls:
        function = call["function"]
        content.append({"type": "tool_use", "id": call["id"], "name": function["name"],
                        "input": _tool_input(function.get("arguments"), choice.get("finish_reason") == "length")})
    stop_reason, stop_sequence = _stop(choice.get("finish_reason"), choice.get("stop_reason"), request.stop_sequences, bool(calls))
    return {"id": message_id(completion["id"]), "type": "message", "role": "assistant", "model": request.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": usage(completion.get("usage"))}


def _tool_input(arguments: str | None, truncated: bool) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's `input` is; a call cut off by max_tokens
    gives an empty object."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    if truncated:
        return {}
    raise ProviderError(f"the model called a tool with arguments that are not a JSON object: {arguments!r:.200}")


def event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {orjson.dumps({'type': kind, **data}).decode()}\n\n"


class MessageEvents:
    """Anthropic's stream events from the SSE text of a chat completion's chunks: message_start and a
    ping first, then a content block per text run and per tool call (text_delta, input_json_delta),
    then message_delta with the stop reason and usage, and message_stop."""

    def __init__(self, request: MessagesRequest):
        self.request = request
        self.id: str | None = None  # set by message_start
        self.block: int | None = None  # the open content block
        self.blocks = 0
        self.calls: dict[int, int] = {}  # tool call index -> its block
        self.finish_reason: str | None = None
        self.matched: Any = None
        self.usage: dict[str, Any] | None = None

    def feed(self, sse_text: str) -> Iterator[str]:
        for line in sse_text.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                yield from self._chunk(orjson.loads(line[6:]))

    def _start(self, completion_id: str) -> Iterator[str]:
        if self.id is None:
            self.id = message_id(completion_id)
            head = {"id": self.id, "type": "message", "role": "assistant", "model": self.request.model,
                    "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage(None)}
            yield event("message_start", {"message": head})
            yield event("ping", {})

    def _chunk(self, chunk: dict[str, Any]) -> Iterator[str]:
        yield from self._start(chunk.get("id") or uuid.uuid4().hex)
        self.usage = chunk.get("usage") or self.usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block is None or self.block in self.calls.values():
                    yield from self._open({"type": "text", "text": ""})
                yield event("content_block_delta", {"index": self.block, "delta": {"type": "text_delta", "text": delta["content"]}})
            for call in delta.get("tool_calls") or []:
                yield from self._tool_call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason, self.matched = choice["finish_reason"], choice.get("stop_reason")

    def _tool_call_delta(self, call: dict[str, Any]) -> Iterator[str]:
        function = call.get("function") or {}
        index = call.get("index", 0)
        if index not in self.calls:
            call_id = call.get("id") or f"toolu_{self.id}_{index}"
            yield from self._open({"type": "tool_use", "id": call_id, "name": function.get("name") or "", "input": {}})
            self.calls[index] = self.block
        if function.get("arguments"):
            yield event("content_block_delta", {"index": self.calls[index],
                                                "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}})

    def _open(self, block: dict[str, Any]) -> Iterator[str]:
        yield from self._close()
        self.block, self.blocks = self.blocks, self.blocks + 1
        yield event("content_block_start", {"index": self.block, "content_block": block})

    def _close(self) -> Iterator[str]:
        if self.block is not None:
            yield event("content_block_stop", {"index": self.block})
            self.block = None

    def finish(self) -> Iterator[str]:
        """The events that end a stream the model finished."""
        yield from self._start(uuid.uuid4().hex)
        yield from self._close()
        stop_reason, stop_sequence = _stop(self.finish_reason, self.matched, self.request.stop_sequences, bool(self.calls))
        yield event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                                      "usage": usage(self.usage)})
        yield event("message_stop", {})
