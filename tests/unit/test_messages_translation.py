"""Anthropic's Messages API onto chat completions and back (deployments/services/messages.py)."""

import orjson

from deployments.services.messages import MessageEvents, chat_request
from providers.api.messages import MessagesRequest

CALL = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_a_history_with_tool_use_results_images_and_a_prefill_becomes_chat_messages():
    request = MessagesRequest.model_validate({
        "model": "m", "max_tokens": 8, "system": [{"type": "text", "text": "Be brief."}], "tools": [TOOL],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Look: "},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, CALL]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "down", "is_error": True},
                                         {"type": "text", "text": "And now?"}]},
            {"role": "assistant", "content": "It is"},
        ]})
    chat = chat_request(request).model_dump(exclude_unset=True)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look: "},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: down"},
        {"role": "user", "content": "And now?"},
        {"role": "assistant", "content": "It is"},
    ]
    assert (chat["tool_choice"], chat["parallel_tool_calls"], chat["max_tokens"]) == ("required", False, 8)
    assert chat["continue_final_message"] is True and chat["add_generation_prompt"] is False


def sse(*chunks: dict) -> str:
    return "".join(f"data: {orjson.dumps({'id': 'chatcmpl-7', **chunk}).decode()}\n\n" for chunk in chunks)


def delta(**fields) -> dict:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def test_text_then_a_tool_call_stream_as_two_blocks_and_end_with_tool_use():
    request = MessagesRequest.model_validate({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    events = MessageEvents(request)
    opening = {"index": 0, "id": "call_9", "function": {"name": "get_weather", "arguments": ""}}
    texts = [*events.feed(sse(delta(role="assistant", content="Let me look."), delta(tool_calls=[opening]))),
             *events.feed(sse(delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
                              delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
                              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                              {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}})),
             *events.finish()]
    sent = [orjson.loads(text.split("data: ", 1)[1]) for text in texts]
    assert [(e["type"], e.get("index")) for e in sent] == [
        ("message_start", None), ("ping", None), ("content_block_start", 0), ("content_block_delta", 0),
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
        ("content_block_stop", 1), ("message_delta", None), ("message_stop", None)]
    assert sent[0]["message"]["id"] == "msg_7"
    assert sent[5]["content_block"] == {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {}}
    assert "".join(e["delta"]["partial_json"] for e in sent[6:8]) == '{"city": "Paris"}'
    assert sent[9]["delta"]["stop_reason"] == "tool_use"
    assert sent[9]["usage"]["input_tokens"] == 12 and sent[9]["usage"]["output_tokens"] == 9
