"""Response items as chat messages, and the Responses options that become chat options."""

import pytest

from providers.api.errors import InvalidRequestError
from providers.api.responses import CreateResponseRequest, TextConfig, chat_messages, chat_response_format, chat_tool_choice


def test_items_become_the_chat_turns_they_stand_for():
    items = CreateResponseRequest(model="m", input=[
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": {"sky": "rain"}},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny, and rain."}]},
    ]).input_items()
    messages = chat_messages(items)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": '{"sky": "rain"}'}
    assert messages[4]["content"] == "Sunny, and rain."


def test_a_file_search_replays_as_a_call_and_its_results():
    search = {"id": "fs_1", "type": "file_search_call", "queries": ["key"],
              "results": [{"filename": "handbook.md", "text": "Under the blue flowerpot."}]}
    call, result = chat_messages([search])
    assert call["tool_calls"][0]["function"]["name"] == "file_search"
    assert result["tool_call_id"] == "fs_1" and "[1] (handbook.md) Under the blue flowerpot." in result["content"]


def test_tool_choice_and_text_format_map_to_chat_options():
    assert chat_tool_choice({"type": "function", "name": "weather"}) == {"type": "function", "function": {"name": "weather"}}
    assert chat_tool_choice({"type": "file_search"}) == {"type": "function", "function": {"name": "file_search"}}
    assert chat_tool_choice("required") == "required"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert chat_response_format(TextConfig(format={"type": "json_schema", "name": "place", "schema": schema})) == \
        {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    assert chat_response_format(TextConfig(format={"type": "text"})) is None
    with pytest.raises(InvalidRequestError):
        chat_tool_choice({"type": "code_interpreter"})
