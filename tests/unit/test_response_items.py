"""Response items as chat messages, and the Responses options that become chat options."""

import pytest
from pydantic import ValidationError

from deployments.services.response_turn import shown
from providers.api.errors import InvalidRequestError
from providers.api.responses import (
    CreateResponseRequest,
    MCPTool,
    TextConfig,
    chat_messages,
    chat_response_format,
    chat_tool_choice,
)


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
    assert chat_tool_choice({"type": "web_search_preview"}) == {"type": "function", "function": {"name": "web_search"}}
    assert chat_tool_choice({"type": "mcp", "server_label": "s", "name": "t"}) == {"type": "function", "function": {"name": "t"}}
    assert chat_tool_choice({"type": "mcp", "server_label": "s"}) == "required"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert chat_response_format(TextConfig(format={"type": "json_schema", "name": "place", "schema": schema})) == \
        {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    assert chat_response_format(TextConfig(format={"type": "text"})) is None
    with pytest.raises(InvalidRequestError):
        chat_tool_choice({"type": "code_interpreter"})


def test_server_side_tool_calls_replay_as_calls_and_their_results():
    items = [
        {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "weather", "tools": [{"name": "forecast"}]},
        {"id": "mcp_1", "type": "mcp_call", "server_label": "weather", "name": "forecast",
         "arguments": '{"city": "Oslo"}', "output": "Snow", "error": None},
        {"id": "mcp_2", "type": "mcp_call", "server_label": "weather", "name": "forecast", "arguments": "{}",
         "output": None, "error": {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": "no city"}]}},
        {"id": "ws_1", "type": "web_search_call", "status": "completed",
         "action": {"type": "search", "query": "regatta", "sources": [{"type": "url", "url": "https://r.example/2026",
                                                                       "title": "Regatta", "content": "Blue won."}]}},
    ]
    messages = chat_messages(items)
    assert [m["role"] for m in messages] == ["assistant", "tool"] * 3, "a listing says nothing; each call is answered"
    assert [m["tool_calls"][0]["function"]["name"] for m in messages[::2]] == ["forecast", "forecast", "web_search"]
    assert messages[1] == {"role": "tool", "tool_call_id": "mcp_1", "content": "Snow"}
    assert messages[3]["content"] == "Error: no city"
    assert "Blue won." in messages[5]["content"] and "https://r.example/2026" in messages[5]["content"]


def test_an_approved_call_says_nothing_until_it_runs_and_a_refused_one_replays_as_refused():
    request = {"id": "mcpr_1", "type": "mcp_approval_request", "server_label": "s", "name": "wipe", "arguments": "{}"}
    approved = {"id": "a1", "type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True}
    refused = {**approved, "approve": False, "reason": "too risky"}
    assert chat_messages([request, approved]) == []
    call, answer = chat_messages([request, refused])
    assert call["tool_calls"][0]["function"]["name"] == "wipe"
    assert answer["tool_call_id"] == "mcpr_1" and "did not approve" in answer["content"] and "too risky" in answer["content"]


def mcp_tool(**options) -> MCPTool:
    return MCPTool.model_validate({"type": "mcp", "server_label": "s", "server_url": "http://127.0.0.1:1/mcp", **options})


def test_mcp_calls_need_approval_unless_the_request_says_never():
    assert mcp_tool().needs_approval("any")
    assert not mcp_tool(require_approval="never").needs_approval("any")
    openai_filter = mcp_tool(require_approval={"never": {"tool_names": ["read"]}})
    assert not openai_filter.needs_approval("read") and openai_filter.needs_approval("write")
    llama_stack_filter = mcp_tool(require_approval={"always": ["write"], "never": ["read", "write"]})
    assert llama_stack_filter.needs_approval("write") and not llama_stack_filter.needs_approval("read")


def test_mcp_allowed_tools_and_credentials():
    assert mcp_tool(allowed_tools=["a"]).allows("a") and not mcp_tool(allowed_tools=["a"]).allows("b")
    assert mcp_tool(allowed_tools={"tool_names": ["b"]}).allows("b") and mcp_tool().allows("anything")
    tool = mcp_tool(headers={"X-Team": "red"}, authorization="secret")
    assert tool.http_headers() == {"X-Team": "red", "Authorization": "Bearer secret"}
    assert "secret" not in str(tool.public()) and "red" not in str(tool.public())


@pytest.mark.parametrize("options, message", [
    ({"server_url": None}, "server_url"),
    ({"connector_id": "connector_gmail"}, "connector_id"),
    ({"server_url": "file:///etc/passwd"}, "server_url"),
])
def test_an_mcp_tool_needs_a_server_url(options, message):
    with pytest.raises(ValidationError, match=message):
        mcp_tool(**options)


def test_include_decides_what_a_response_shows():
    response = {"output": [
        {"type": "file_search_call", "id": "fs_1", "results": [{"text": "x"}]},
        {"type": "web_search_call", "id": "ws_1", "action": {"type": "search", "query": "q", "sources": [{"url": "u"}]}},
    ]}
    hidden = shown(response, None)["output"]
    assert hidden[0]["results"] is None and "sources" not in hidden[1]["action"] and hidden[1]["action"]["query"] == "q"
    assert shown(response, ["file_search_call.results", "web_search_call.action.sources"]) == response
    assert response["output"][0]["results"] == [{"text": "x"}], "the stored response is not changed"


@pytest.mark.parametrize("item, param", [
    ({"type": "function_call", "call_id": "x"}, "items.0.name"),
    ({"type": "function_call", "call_id": "x", "name": "f"}, "items.0.arguments"),
    ({"type": "function_call", "call_id": "x", "name": "f", "arguments": {"a": 1}}, "items.0.arguments"),
    ({"type": "mcp_call", "name": "f"}, "items.0.arguments"),
    ({"type": "function_call_output", "output": "42"}, "items.0.call_id"),
])
def test_items_a_later_turn_could_not_replay_are_refused_when_stored(item, param):
    from providers.api.conversations import normalized_item

    with pytest.raises(InvalidRequestError) as refused:
        normalized_item(item, "items.0")
    assert refused.value.param == param
