"""A streamed chat completion is rebuilt whole from its SSE text, however the provider batched it."""

import json

from deployments.services.recording import StreamedCompletion


def sse(*chunks) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)


def chunk(**delta_and_rest):
    finish = delta_and_rest.pop("finish_reason", None)
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "provider-name",
            "choices": [{"index": 0, "delta": delta_and_rest, "finish_reason": finish}]}


def test_content_tool_calls_and_usage_are_merged():
    stream = StreamedCompletion()
    stream.feed(sse(chunk(role="assistant", content=""), chunk(content="Hel")))
    stream.feed(sse(chunk(content="lo"), chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                                             "function": {"name": "get_", "arguments": '{"ci'}}])))
    stream.feed(sse(chunk(tool_calls=[{"index": 0, "function": {"name": "weather", "arguments": 'ty": "Paris"}'}}]),
                    chunk(finish_reason="tool_calls")))
    stream.feed(sse({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}) + "data: [DONE]\n\n")
    record = stream.completion("client-name", None)
    message = record["choices"][0]["message"]
    assert record["id"] == "chatcmpl-1" and record["model"] == "client-name" and record["object"] == "chat.completion"
    assert message["content"] == "Hello"
    assert message["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert record["choices"][0]["finish_reason"] == "tool_calls"
    assert record["usage"]["total_tokens"] == 8
    assert "incomplete_details" not in record


def test_a_stream_cut_short_is_marked_and_an_empty_one_is_nothing():
    stream = StreamedCompletion()
    assert stream.completion("m", "client_disconnected") is None
    stream.feed(sse(chunk(content="par")) + 'data: {"error": {"message": "engine died"}}\n\n')
    record = stream.completion("m", "error")
    assert record["choices"][0]["message"]["content"] == "par"
    assert record["choices"][0]["finish_reason"] is None
    assert record["incomplete_details"] == {"reason": "error"}
