"""The Responses API: a turn of an agent on the graph's models.

A turn gathers its context (the previous response's context and output, or the conversation's
items), the prompt and instructions as a system message, and the new input, then calls the model
through the gateway. Calls the model makes to server-side tools (file_search over vector stores)
are run and fed back until it answers or `max_tool_calls` is reached; calls to the caller's
`function` tools end the turn as `function_call` items, continued by a request with
`function_call_output` items. Streaming emits OpenAI's event sequence. Responses are stored in the
`responses` store with the context they saw, so `previous_response_id` chains them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Literal

from deployments.gateway import Gateway
from deployments.recording import StreamedCompletion
from providers.access import Identity
from providers.api.errors import APIError, InvalidRequestError, NotFoundError
from providers.api.inference import ChatCompletionRequest
from providers.api.models import Model
from providers.api.responses import (FILE_SEARCH_FUNCTION, CreateResponseRequest, FileSearchTool, chat_messages,
                                     chat_response_format, chat_tool_choice, item_text)
from providers.api.safety import RunShieldRequest
from providers.api.vector_stores import SearchRequest
from providers.storage.owned_records import OwnedRecords

MAX_STEPS = 10
Emit = Callable[[dict[str, Any]], Awaitable[None]]


async def _quiet(event: dict[str, Any]) -> None:
    pass


class _Turn:
    """One response being made: its request, context, messages and output so far."""

    def __init__(self, request: CreateResponseRequest, model: Model, response_id: str, context: list[dict[str, Any]],
                 new_items: list[dict[str, Any]], messages: list[dict[str, Any]], conversation_id: str | None,
                 guardrails: list[str]):
        self.request = request
        self.model = model
        self.guardrails = guardrails
        self.response_id = response_id
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
        self.incomplete_details: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    def response(self) -> dict[str, Any]:
        request = self.request
        include_results = "file_search_call.results" in (request.include or [])
        output = [{**item, "results": None} if item["type"] == "file_search_call" and not include_results else item
                  for item in self.output]
        usage = {**self.usage, "total_tokens": self.usage["input_tokens"] + self.usage["output_tokens"],
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
        return {
            "id": self.response_id, "object": "response", "created_at": self.created_at, "status": self.status,
            "model": request.model, "output": output, "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "conversation": {"id": self.conversation_id} if self.conversation_id else None,
            "tools": [t.model_dump(exclude_none=True) for t in request.tools], "tool_choice": request.tool_choice or "auto",
            "parallel_tool_calls": request.parallel_tool_calls is not False, "max_tool_calls": request.max_tool_calls,
            "max_output_tokens": request.max_output_tokens, "temperature": request.temperature, "top_p": request.top_p,
            "text": request.text.model_dump(exclude_none=True) if request.text else {"format": {"type": "text"}},
            "metadata": request.metadata or {}, "store": request.store, "usage": usage, "error": self.error,
            "incomplete_details": self.incomplete_details,
            "prompt": request.prompt.model_dump() if request.prompt else None,
        }


class ResponseService:
    def __init__(self, gateway: Gateway, records: OwnedRecords):
        self.gateway = gateway
        self.records = records

    # ------------------------------------------------------------ making a response

    async def create(self, user: Identity | None, request: CreateResponseRequest) -> dict[str, Any] | AsyncIterator[str]:
        turn = await self._prepare(user, request)
        if not request.stream:
            await self._run(user, turn, _quiet)
            await self._finish(user, turn)
            return turn.response()
        return self._stream(user, turn)

    async def _prepare(self, user: Identity | None, request: CreateResponseRequest) -> _Turn:
        model = await self.gateway.model_for(user, request.model)
        if model.model_type != "llm":
            raise InvalidRequestError(f"model '{request.model}' is an {model.model_type} model; responses need an llm", param="model")
        if not request.store and request.conversation:
            raise InvalidRequestError("a response in a conversation is stored in it; store must not be false", param="store")
        context: list[dict[str, Any]] = []
        if request.previous_response_id:
            try:
                previous = await self.records.get(user, request.previous_response_id)
            except NotFoundError:
                raise NotFoundError(f"Response '{request.previous_response_id}' not found",
                                    param="previous_response_id") from None
            context = previous["context"] + previous["response"]["output"]
        conversation_id = request.conversation_id()
        if conversation_id:
            if self.gateway.conversations is None:
                raise InvalidRequestError("conversations are not served by this graph", param="conversation")
            await self.gateway.conversations.conversations.authorize(user, conversation_id, "update")
            context = await self.gateway.conversations.history(user, conversation_id)
        for tool in request.tools:
            if isinstance(tool, FileSearchTool):
                if self.gateway.vector_stores is None:
                    raise InvalidRequestError("file_search needs vector stores, which this graph does not serve", param="tools")
                for store_id in tool.vector_store_ids:
                    await self.gateway.vector_stores.stores.get(user, store_id)
        system = []
        if request.prompt:
            if self.gateway.prompts is None:
                raise InvalidRequestError("prompts are not served by this graph", param="prompt")
            version = int(request.prompt.version) if request.prompt.version is not None else None
            system.append(await self.gateway.prompts.render(user, request.prompt.id, version, request.prompt.variables))
        if request.instructions:
            system.append(request.instructions)
        new_items = request.input_items()
        messages = ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + chat_messages(context + new_items)
        chat_response_format(request.text)
        guardrails = request.guardrails if request.guardrails is not None else self.gateway.run_config.responses.guardrails
        for i, shield_id in enumerate(guardrails):
            if self.gateway.safety is None:
                raise InvalidRequestError("guardrails need shields, and this graph serves no safety provider", param="guardrails")
            self.gateway.safety.shield(shield_id, f"guardrails.{i}")
        return _Turn(request, model, f"resp_{uuid.uuid4().hex}", context, new_items, messages, conversation_id, guardrails)

    async def _refusal(self, turn: _Turn, texts: list[str]) -> str | None:
        """What to answer instead when a guardrail flags any of `texts`."""
        messages = [{"role": "user", "content": text} for text in texts if text]
        for shield_id in turn.guardrails if messages else []:
            verdict = await self.gateway.safety.run_shield(RunShieldRequest(shield_id=shield_id, messages=messages))
            if verdict["violation"] is not None:
                return verdict["violation"]["user_message"]
        return None

    def _chat_request(self, turn: _Turn, stream: bool) -> ChatCompletionRequest:
        request = turn.request
        tools_left = request.max_tool_calls is None or turn.tool_calls < request.max_tool_calls
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
                 for t in request.function_tools().values()]
        if any(isinstance(t, FileSearchTool) for t in request.tools):
            tools.append({"type": "function", "function": FILE_SEARCH_FUNCTION.model_dump(exclude_none=True)})
        body = {
            "model": request.model, "messages": turn.messages, "stream": stream or None,
            "max_tokens": request.max_output_tokens, "temperature": request.temperature, "top_p": request.top_p,
            "response_format": chat_response_format(request.text), "store": False,
        }
        if tools and tools_left:
            body.update(tools=tools, parallel_tool_calls=request.parallel_tool_calls,
                        tool_choice=turn.tool_choice)
        if stream:
            body["stream_options"] = {"include_usage": True}
        try:
            return ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})
        except ValueError as exc:
            raise InvalidRequestError(f"the turn does not make a valid chat request: {exc}") from None

    async def _run(self, user: Identity | None, turn: _Turn, emit: Emit) -> None:
        functions = turn.request.function_tools()
        refusal = await self._refusal(turn, [item_text(i.get("content")) for i in turn.new_items if i["type"] == "message"])
        if refusal is not None:  # a blocked input ends the turn with a refusal
            await self._add_item(turn, _refusal_item(refusal), emit)
            turn.status = "completed"
            return
        if turn.tool_choice == {"type": "function", "function": {"name": "file_search"}} and "file_search" not in functions:
            # A search the caller forced needs no model call to word it: it searches for the input.
            turn.tool_calls += 1
            await self._file_search(user, turn, _last_user_text(turn.messages), emit)
            turn.messages = turn.messages + chat_messages(turn.output[-1:])
            turn.tool_choice = "none"
        for _ in range(MAX_STEPS):
            completion = await self._step(turn, emit)
            usage = completion.get("usage") or {}
            turn.usage["input_tokens"] += usage.get("prompt_tokens", 0)
            turn.usage["output_tokens"] += usage.get("completion_tokens", 0)
            choice = completion["choices"][0]
            calls = choice["message"].get("tool_calls") or []
            if choice.get("finish_reason") == "length":
                turn.status, turn.incomplete_details = "incomplete", {"reason": "max_output_tokens"}
                return
            if not calls:
                break
            searches = [c for c in calls if c["function"]["name"] == "file_search" and "file_search" not in functions]
            for call in calls:
                if call not in searches:
                    item = {"id": f"fc_{uuid.uuid4().hex}", "type": "function_call", "status": "completed",
                            "call_id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
                    await self._add_item(turn, item, emit)
            for call in searches:
                turn.tool_calls += 1
                await self._file_search(user, turn, _query_of(call) or _last_user_text(turn.messages), emit)
            if len(searches) < len(calls):  # the caller runs its functions and continues the turn
                break
            turn.messages = turn.messages + chat_messages(turn.output[-len(searches):])
            turn.tool_choice = "auto"  # a named or required choice applies to the first call
        turn.status = "completed"

    async def _step(self, turn: _Turn, emit: Emit) -> dict[str, Any]:
        """One chat completion; a streamed one emits its text as it comes."""
        model = turn.model
        if not turn.request.stream:
            result = await self.gateway.call(model.provider_id, "chat_completion", self._chat_request(turn, False),
                                             model.provider_resource_id)
            completion = result if isinstance(result, dict) else result.model_dump(exclude_unset=True)
            text = completion["choices"][0]["message"].get("content")
            if text:
                await self._add_message(turn, text, emit)
            return completion
        streamed = StreamedCompletion()
        item: dict[str, Any] | None = None
        async for sse_text in self.gateway.stream(model.provider_id, "chat_completion", self._chat_request(turn, True),
                                                  model.provider_resource_id):
            deltas = streamed.feed(sse_text)
            if turn.guardrails:  # guarded text is checked whole before anyone sees it
                continue
            for delta in deltas:
                if item is None:
                    item = {**_message_item(""), "status": "in_progress", "content": []}
                    await emit({"type": "response.output_item.added", "output_index": len(turn.output), "item": item})
                    await emit({"type": "response.content_part.added", "item_id": item["id"], "output_index": len(turn.output),
                                "content_index": 0, "part": _text_part("")})
                await emit({"type": "response.output_text.delta", "item_id": item["id"], "output_index": len(turn.output),
                            "content_index": 0, "delta": delta, "logprobs": []})
        completion = streamed.completion(turn.request.model, None)
        if completion is None:
            raise APIError("the model's stream ended before any chunk")
        text = completion["choices"][0]["message"].get("content") or ""
        if turn.guardrails:
            if text:
                await self._add_message(turn, text, emit)
            return completion
        if item is not None:
            done = {**_message_item(text), "id": item["id"]}
            await emit({"type": "response.output_text.done", "item_id": item["id"], "output_index": len(turn.output),
                        "content_index": 0, "text": text, "logprobs": []})
            await emit({"type": "response.content_part.done", "item_id": item["id"], "output_index": len(turn.output),
                        "content_index": 0, "part": _text_part(text)})
            turn.output.append(done)
            await emit({"type": "response.output_item.done", "output_index": len(turn.output) - 1, "item": done})
        return completion

    async def _add_message(self, turn: _Turn, text: str, emit: Emit) -> None:
        """The model's answer, or a refusal when a guardrail flags it."""
        refusal = await self._refusal(turn, [text])
        await self._add_item(turn, _refusal_item(refusal) if refusal is not None else _message_item(text), emit)

    async def _add_item(self, turn: _Turn, item: dict[str, Any], emit: Emit) -> None:
        index = len(turn.output)
        turn.output.append(item)
        if turn.request.stream:
            if item["type"] == "message":
                part = item["content"][0]
                where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                await emit({"type": "response.output_item.added", "output_index": index,
                            "item": {**item, "status": "in_progress", "content": []}})
                empty = {**part, "refusal": ""} if part["type"] == "refusal" else {**part, "text": ""}
                await emit({"type": "response.content_part.added", **where, "part": empty})
                if part["type"] == "refusal":
                    await emit({"type": "response.refusal.delta", **where, "delta": part["refusal"]})
                    await emit({"type": "response.refusal.done", **where, "refusal": part["refusal"]})
                else:
                    await emit({"type": "response.output_text.delta", **where, "delta": part["text"], "logprobs": []})
                    await emit({"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []})
                await emit({"type": "response.content_part.done", **where, "part": part})
            elif item["type"] == "function_call":
                await emit({"type": "response.output_item.added", "output_index": index,
                            "item": {**item, "arguments": "", "status": "in_progress"}})
                await emit({"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": index,
                            "delta": item["arguments"]})
                await emit({"type": "response.function_call_arguments.done", "item_id": item["id"], "output_index": index,
                            "arguments": item["arguments"]})
            else:
                await emit({"type": "response.output_item.added", "output_index": index, "item": item})
            await emit({"type": "response.output_item.done", "output_index": index, "item": item})

    async def _file_search(self, user: Identity | None, turn: _Turn, query: str, emit: Emit) -> None:
        tool = next(t for t in turn.request.tools if isinstance(t, FileSearchTool))
        item_id = f"fs_{uuid.uuid4().hex}"
        index = len(turn.output)
        if turn.request.stream:
            await emit({"type": "response.output_item.added", "output_index": index, "item": {
                "id": item_id, "type": "file_search_call", "status": "in_progress", "queries": [query], "results": None}})
            await emit({"type": "response.file_search_call.searching", "item_id": item_id, "output_index": index})
        results = []
        for store_id in tool.vector_store_ids:
            search = SearchRequest.model_validate({"query": query, "max_num_results": tool.max_num_results,
                                                   **({"filters": tool.filters} if tool.filters else {}),
                                                   **({"ranking_options": tool.ranking_options} if tool.ranking_options else {})})
            page = await self.gateway.vector_stores.search(user, store_id, search)
            results += [{"file_id": hit["file_id"], "filename": hit["filename"], "score": hit["score"],
                         "text": "".join(part["text"] for part in hit["content"]), "attributes": hit["attributes"]}
                        for hit in page["data"]]
        results = sorted(results, key=lambda r: r["score"], reverse=True)[:tool.max_num_results]
        item = {"id": item_id, "type": "file_search_call", "status": "completed", "queries": [query], "results": results}
        turn.output.append(item)
        if turn.request.stream:
            await emit({"type": "response.file_search_call.completed", "item_id": item_id, "output_index": index})
            await emit({"type": "response.output_item.done", "output_index": index, "item": item})

    def _stream(self, user: Identity | None, turn: _Turn) -> AsyncIterator[str]:
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        sequence = 0

        async def emit(event: dict[str, Any]) -> None:
            nonlocal sequence
            await events.put({**event, "sequence_number": sequence})
            sequence += 1

        async def produce() -> None:
            try:
                await emit({"type": "response.created", "response": turn.response()})
                await emit({"type": "response.in_progress", "response": turn.response()})
                try:
                    await self._run(user, turn, emit)
                except APIError as exc:
                    turn.status, turn.error = "failed", {"code": exc.code or exc.error_type, "message": exc.message}
                except Exception as exc:
                    turn.status, turn.error = "failed", {"code": "server_error", "message": f"{type(exc).__name__}: {exc}"}
                await self._finish(user, turn)
                kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(turn.status, "response.failed")
                await emit({"type": kind, "response": turn.response()})
            finally:
                await events.put(None)

        async def sse() -> AsyncIterator[str]:
            producer = asyncio.ensure_future(produce())
            try:
                while (event := await events.get()) is not None:
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
            finally:
                if not producer.done():
                    producer.cancel()

        return sse()

    async def _finish(self, user: Identity | None, turn: _Turn) -> None:
        """Store the response and add the turn to its conversation."""
        response = turn.response()
        if turn.request.store:
            record = {"id": turn.response_id, "response": response, "input_items": turn.new_items,
                      "context": turn.context + turn.new_items}
            await self.records.insert([self.records.row(record, user, model=turn.request.model)])
        if turn.conversation_id:
            await self.gateway.conversations.append(turn.conversation_id, turn.new_items + turn.output)

    # ------------------------------------------------------------ stored responses

    async def get(self, user: Identity | None, response_id: str) -> dict[str, Any]:
        return (await self.records.get(user, response_id))["response"]

    async def list(self, user: Identity | None, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                   model: str | None) -> dict[str, Any]:
        listed = await self.records.list(user, after=after, limit=limit, order=order, model=model)
        return {**listed, "data": [record["response"] for record in listed["data"]]}

    async def input_items(self, user: Identity | None, response_id: str, *, after: str | None, limit: int,
                          order: Literal["asc", "desc"]) -> dict[str, Any]:
        items = (await self.records.get(user, response_id))["input_items"]
        items = items if order == "asc" else items[::-1]
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                raise InvalidRequestError(f"no input item '{after}' to list after", param="after")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        return {"object": "list", "data": page, "has_more": len(items) > limit,
                "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}

    async def delete(self, user: Identity | None, response_id: str) -> dict[str, Any]:
        await self.records.delete(user, response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}


def _message_item(text: str) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "status": "completed", "role": "assistant",
            "content": [_text_part(text)]}


def _refusal_item(refusal: str) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "refusal", "refusal": refusal}]}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _query_of(call: dict[str, Any]) -> str:
    try:
        return str(json.loads(call["function"]["arguments"] or "{}").get("query") or "")
    except (json.JSONDecodeError, AttributeError):
        return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user" and isinstance(m["content"], str)), "")
