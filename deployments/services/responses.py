"""The Responses API: a turn of an agent on the graph's models.

A turn gathers its context (the previous response's context and output, or the conversation's
items), the prompt and instructions as a system message, and the new input, then calls the model
through its inference client. Calls the model makes to server-side tools (file_search, web_search, the
tools of MCP servers) are run and fed back until it answers or `max_tool_calls` is reached; calls
to the caller's `function` tools, and MCP calls that need the caller's approval, end the turn as
`function_call` / `mcp_approval_request` items, continued by a request with
`function_call_output` / `mcp_approval_response` items. Streaming emits OpenAI's event sequence.
Responses are stored in the `responses` store with the context they saw, so
`previous_response_id` chains them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Literal

from deployments.services.background_responses import BackgroundRuns
from deployments.services.conversations import ConversationService
from deployments.services.models import ModelService
from deployments.services.pages import page_after
from deployments.services.prompts import Prompts
from deployments.services.recording import StreamedCompletion
from deployments.services.response_tools import ToolRunner, TurnTools
from deployments.services.response_turn import (
    Emit,
    Turn,
    add_item,
    add_message,
    close_message,
    message_item,
    new_id,
    open_message,
    quiet,
    refusal_item,
    shown,
)
from deployments.services.safety import SafetyService
from providers.access import Identity
from providers.api.errors import APIError, InvalidRequestError, NotFoundError
from providers.api.inference import ChatCompletionRequest
from providers.api.responses import CreateResponseRequest, chat_messages, chat_response_format, item_text
from providers.api.safety import RunShieldRequest
from providers.storage.group_commit import GroupCommit
from providers.storage.owned_records import OwnedRecords

MAX_STEPS = 10
_FORCED_SEARCHES = ({"type": "function", "function": {"name": "file_search"}},
                    {"type": "function", "function": {"name": "web_search"}})


class ResponseService:
    def __init__(self, records: OwnedRecords, models: ModelService, tools: ToolRunner, *,
                 prompts: Prompts | None, safety: SafetyService | None,
                 conversations: ConversationService | None, guardrails: list[str], background: BackgroundRuns,
                 max_steps: int = MAX_STEPS):
        """`guardrails`: the shields every response runs, whatever shields its request adds;
        `background` keeps the runs of `background: true` responses."""
        self.records = records
        self.models = models
        self.tools = tools
        self.prompts = prompts
        self.safety = safety
        self.conversations = conversations
        self.guardrails = guardrails
        self.max_steps = max_steps
        self.background = background
        # Stored before the answer returns, so previous_response_id finds it; concurrent turns share transactions.
        self.writes = GroupCommit(records.insert)

    # ------------------------------------------------------------ making a response

    async def create(self, user: Identity | None, request: CreateResponseRequest) -> dict[str, Any] | AsyncIterator[str]:
        turn = await self._prepare(user, request)
        if request.background:
            return await self._in_background(user, turn)
        if not request.stream:
            await self._run(user, turn, quiet)
            return shown(await self._finish(user, turn), request.include)
        return self._stream(user, turn)

    async def _prepare(self, user: Identity | None, request: CreateResponseRequest) -> Turn:
        model = await self.models.model_of_type(user, request.model, "llm", "responses")
        if request.background and not request.store:
            raise InvalidRequestError("a background response is stored; store must not be false", param="store")
        if not request.store and request.conversation:
            raise InvalidRequestError("a response in a conversation is stored in it; store must not be false", param="store")
        context = await self._context(user, request)
        system = []
        if request.prompt:
            if self.prompts is None:
                raise InvalidRequestError("prompts are not served by this graph", param="prompt")
            version = int(request.prompt.version) if request.prompt.version is not None else None
            system.append(await self.prompts.render(user, request.prompt.id, version, request.prompt.variables))
        if request.instructions:
            system.append(request.instructions)
        new_items = request.input_items()
        messages = ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + chat_messages(context + new_items)
        chat_response_format(request.text)
        guardrails = list(dict.fromkeys([*self.guardrails, *(request.guardrails or [])]))  # the operator's are a floor
        for i, shield_id in enumerate(guardrails):
            if self.safety is None:
                raise InvalidRequestError("guardrails need shields, and this graph serves no safety provider", param="guardrails")
            self.safety.shield(shield_id, f"guardrails.{i}")
        turn = Turn(request, model, context, new_items, messages, request.conversation_id(), guardrails)
        await asyncio.gather(*self.tools.check(user, turn))
        return turn

    async def _context(self, user: Identity | None, request: CreateResponseRequest) -> list[dict[str, Any]]:
        """The items the turn continues: the previous response's, or the conversation's."""
        if request.previous_response_id:
            try:
                previous = await self.records.get(user, request.previous_response_id)
            except NotFoundError:
                raise NotFoundError(f"Response '{request.previous_response_id}' not found",
                                    param="previous_response_id") from None
            return previous["context"] + previous["response"]["output"]
        conversation_id = request.conversation_id()
        if conversation_id:
            if self.conversations is None:
                raise InvalidRequestError("conversations are not served by this graph", param="conversation")
            await self.conversations.conversations.authorize(user, conversation_id, "update")
            return await self.conversations.history(user, conversation_id)
        return []

    async def _refusal(self, turn: Turn, texts: list[str]) -> str | None:
        """What to answer instead when a guardrail flags any of `texts`."""
        messages = [{"role": "user", "content": text} for text in texts if text]
        for shield_id in turn.guardrails if messages else []:
            verdict = await self.safety.run_shield(RunShieldRequest(shield_id=shield_id, messages=messages))
            if verdict["violation"] is not None:
                return verdict["violation"]["user_message"]
        return None

    def _chat_request(self, turn: Turn, tools: TurnTools, stream: bool) -> ChatCompletionRequest:
        request = turn.request
        body = {
            "model": request.model, "messages": turn.messages, "stream": stream or None,
            "max_tokens": request.max_output_tokens, "temperature": request.temperature, "top_p": request.top_p,
            "presence_penalty": request.presence_penalty, "frequency_penalty": request.frequency_penalty,
            "response_format": chat_response_format(request.text), "store": False,
        }
        chat_tools = tools.chat_tools()
        if chat_tools and turn.tools_left():
            body.update(tools=chat_tools, parallel_tool_calls=request.parallel_tool_calls, tool_choice=turn.tool_choice)
        if stream:
            body["stream_options"] = {"include_usage": True}
        try:
            return ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})
        except ValueError as exc:
            raise InvalidRequestError(f"the turn does not make a valid chat request: {exc}") from None

    async def _run(self, user: Identity | None, turn: Turn, emit: Emit) -> None:
        refusal = await self._refusal(turn, [item_text(i.get("content")) for i in turn.new_items if i["type"] == "message"])
        if refusal is not None:  # a blocked input ends the turn with a refusal
            await add_message(turn, refusal_item(refusal), emit)
            turn.end("completed")
            return
        tools = TurnTools(turn, await self.tools.list_mcp_tools(turn, emit))
        await self.tools.run_approved(turn, emit)
        if turn.tool_choice in _FORCED_SEARCHES and tools.server_side(turn.tool_choice["function"]["name"]):
            # A search the caller forced needs no model call to word it: it searches for the input.
            await self._server_call(user, turn, tools, turn.tool_choice["function"]["name"], "{}", emit)
            turn.tool_choice = "none"
        fed = 0
        for _ in range(self.max_steps):  # what the turn added since the last step is fed back first
            turn.messages, fed = turn.messages + chat_messages(turn.output[fed:]), len(turn.output)
            completion = await self._step(turn, tools, emit)
            usage = completion.get("usage") or {}
            turn.usage["input_tokens"] += usage.get("prompt_tokens", 0)
            turn.usage["output_tokens"] += usage.get("completion_tokens", 0)
            choice = completion["choices"][0]
            if choice.get("finish_reason") == "length":
                turn.end("incomplete")
                turn.incomplete_details = {"reason": "max_output_tokens"}
                return
            calls = choice["message"].get("tool_calls") or []
            if turn.request.parallel_tool_calls is False:
                calls = calls[:1]
            if not calls:
                break
            waiting = [await self._dispatch(user, turn, tools, call, emit) for call in calls]
            if any(waiting):  # the caller runs its functions or approves, then continues the turn
                break
            turn.tool_choice = "auto"  # a named or required choice applies to the first call
        turn.end("completed")

    async def _dispatch(self, user: Identity | None, turn: Turn, tools: TurnTools, call: dict[str, Any],
                        emit: Emit) -> bool:
        """Run or hand over one call of the model; True when it waits for the caller."""
        name, arguments = call["function"]["name"], call["function"]["arguments"] or "{}"
        if not tools.server_side(name):
            await add_item(turn, {"id": new_id("fc"), "type": "function_call", "status": "completed",
                                  "call_id": call["id"], "name": name, "arguments": arguments}, emit)
            return True
        if name in tools.mcp and tools.mcp[name][0].needs_approval(name):
            await self.tools.request_approval(turn, tools.mcp[name][0], name, arguments, emit)
            return True
        await self._server_call(user, turn, tools, name, arguments, emit)
        return False

    async def _server_call(self, user: Identity | None, turn: Turn, tools: TurnTools, name: str, arguments: str,
                           emit: Emit) -> None:
        if name in tools.mcp:
            await self.tools.call_mcp(turn, tools.mcp[name][0], name, arguments, emit)
            return
        query = _query_of(arguments) or _last_user_text(turn.messages)
        if name == "file_search":
            await self.tools.file_search(user, turn, query, emit)
        else:
            await self.tools.web_search(turn, query, emit)

    async def _step(self, turn: Turn, tools: TurnTools, emit: Emit) -> dict[str, Any]:
        """One chat completion; a streamed one emits its text as it comes."""
        model = turn.model
        if not turn.request.stream:
            result = await self.models.client(model).chat_completion(self._chat_request(turn, tools, False),
                                                                     model.provider_resource_id)
            completion = result if isinstance(result, dict) else result.model_dump(exclude_unset=True)
            text = completion["choices"][0]["message"].get("content")
            if text:
                await self._add_answer(turn, text, emit)
            return completion
        streamed = StreamedCompletion()
        item: dict[str, Any] | None = None
        where: dict[str, Any] = {}
        async for sse_text in self.models.client(model).stream_chat_completion(self._chat_request(turn, tools, True),
                                                                               model.provider_resource_id):
            deltas = streamed.feed(sse_text)
            if turn.guardrails:  # guarded text is checked whole before anyone sees it
                continue
            for delta in deltas:
                if item is None:
                    item = {**message_item(""), "content": []}
                    where = await open_message(turn, item, emit)
                await emit({"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []})
        completion = streamed.completion(turn.request.model, None)
        if completion is None:
            raise APIError("the model's stream ended before any chunk")
        text = completion["choices"][0]["message"].get("content") or ""
        if turn.guardrails:
            if text:
                await self._add_answer(turn, text, emit)
        elif item is not None:
            await close_message(turn, {**message_item(text), "id": item["id"]}, where, emit)
        return completion

    async def _add_answer(self, turn: Turn, text: str, emit: Emit) -> None:
        """The model's answer, or a refusal when a guardrail flags it."""
        refusal = await self._refusal(turn, [text])
        await add_message(turn, refusal_item(refusal) if refusal is not None else message_item(text), emit)

    def _stream(self, user: Identity | None, turn: Turn) -> AsyncIterator[str]:
        events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        sequence = 0

        async def emit(event: dict[str, Any]) -> None:
            nonlocal sequence
            await events.put({**event, "sequence_number": sequence})
            sequence += 1

        async def produce() -> None:
            try:
                opening = turn.visible()
                await emit({"type": "response.created", "response": opening})
                await emit({"type": "response.in_progress", "response": opening})
                await self._run_reporting_failure(user, turn, emit)
                await self._emit_end(user, turn, emit)
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

    async def _in_background(self, user: Identity | None, turn: Turn) -> dict[str, Any] | AsyncIterator[str]:
        """Store the response as queued and run the turn on this replica; the queued response, or
        (streaming) its stored events as they come."""
        turn.status = "queued"
        await self.background.queue(user, self._record(turn), turn.request.model)
        self.background.start(turn.response_id, lambda emit: self._background_turn(user, turn, emit))
        if turn.request.stream:
            return self.background.replay(turn.response_id, None)
        return turn.visible()

    async def _background_turn(self, user: Identity | None, turn: Turn, emit: Emit) -> None:
        await emit({"type": "response.created", "response": turn.visible()})
        if not await self.background.begin(turn.response_id):
            return
        turn.status = "in_progress"
        await emit({"type": "response.in_progress", "response": turn.visible()})
        await self._run_reporting_failure(user, turn, emit)
        if await self.background.end(turn.response_id, turn.status):
            await self._emit_end(user, turn, emit)

    async def _emit_end(self, user: Identity | None, turn: Turn, emit: Emit) -> None:
        """Store the ended turn and emit the event that closes its stream."""
        response = shown(await self._finish(user, turn), turn.request.include)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(turn.status, "response.failed")
        await emit({"type": kind, "response": response})

    async def _run_reporting_failure(self, user: Identity | None, turn: Turn, emit: Emit) -> None:
        """Run the turn; a failure ends it `failed` with the reason, for the stream to report."""
        try:
            await self._run(user, turn, emit)
        except APIError as exc:
            turn.status, turn.error = "failed", {"code": exc.code or exc.error_type, "message": exc.message}
        except Exception as exc:
            turn.status, turn.error = "failed", {"code": "server_error", "message": f"{type(exc).__name__}: {exc}"}

    def _record(self, turn: Turn) -> dict[str, Any]:
        return {"id": turn.response_id, "response": turn.response(), "input_items": turn.new_items,
                "context": turn.context + turn.new_items}

    async def _finish(self, user: Identity | None, turn: Turn) -> dict[str, Any]:
        """Store the response and add the turn to its conversation; returns the whole response."""
        response = turn.response()
        if turn.request.background:
            await self.records.replace(turn.response_id, self._record(turn))
        elif turn.request.store:
            await self.writes.insert([self.records.row(self._record(turn), user, model=turn.request.model)])
        if turn.conversation_id:
            await self.conversations.append(turn.conversation_id, turn.new_items + turn.output)
        return response

    # ------------------------------------------------------------ stored responses

    async def get(self, user: Identity | None, response_id: str, include: list[str] | None = None) -> dict[str, Any]:
        response = (await self.records.get(user, response_id))["response"]
        return shown(await self.background.current(response), include)

    async def events(self, user: Identity | None, response_id: str, starting_after: int | None) -> AsyncIterator[str]:
        """A background response's stream again, after the event `starting_after`."""
        response = (await self.records.get(user, response_id))["response"]
        self.background.check_replay(response)
        return self.background.replay(response_id, starting_after)

    async def cancel(self, user: Identity | None, response_id: str) -> dict[str, Any]:
        return shown(await self.background.cancel(user, response_id), None)

    async def list(self, user: Identity | None, *, after: str | None, limit: int, order: Literal["asc", "desc"],
                   model: str | None) -> dict[str, Any]:
        listed = await self.records.list(user, after=after, limit=limit, order=order, model=model)
        responses = await self.background.current_page([record["response"] for record in listed["data"]])
        return {**listed, "data": [shown(response, None) for response in responses]}

    async def input_items(self, user: Identity | None, response_id: str, *, after: str | None, limit: int,
                          order: Literal["asc", "desc"]) -> dict[str, Any]:
        items = (await self.records.get(user, response_id))["input_items"]
        return page_after(items if order == "asc" else items[::-1], after, limit,
                          f"no input item '{after}' to list after")

    async def delete(self, user: Identity | None, response_id: str) -> dict[str, Any]:
        await self.records.delete(user, response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}


def _query_of(arguments: str) -> str:
    try:
        return str(json.loads(arguments or "{}").get("query") or "")
    except (json.JSONDecodeError, AttributeError):
        return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user" and isinstance(m["content"], str)), "")
