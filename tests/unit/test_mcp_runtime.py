"""remote::model-context-protocol against a real MCP server (tests/mcp_server.py), no Ray."""

import pickle
import socket
import time

import pytest

from providers.api.errors import FailedDependencyError, InvalidRequestError
from providers.remote.mcp import create_provider
from providers.remote.mcp.config import MCPToolRuntimeConfig
from tests.mcp_server import start_mcp_server

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def server_url():
    url, stop = start_mcp_server()
    yield url
    stop()


@pytest.fixture(scope="module")
def guarded_url():
    url, stop = start_mcp_server(required_token=TOKEN)
    yield url
    stop()


@pytest.fixture
def runtime():
    return create_provider(MCPToolRuntimeConfig(timeout_s=5))


async def test_lists_the_tools_with_their_schemas(runtime, server_url):
    tools = {tool.name: tool for tool in await runtime.list_runtime_tools(server_url)}
    assert sorted(tools) == ["add", "explode", "get_forecast"]
    forecast = tools["get_forecast"]
    assert forecast.description == "The weather forecast for a city"
    assert forecast.input_schema["properties"]["city"]["type"] == "string"
    assert forecast.input_schema["required"] == ["city"]
    assert tools["add"].description == "Add two integers"
    assert set(tools["add"].input_schema["properties"]) == {"a", "b"}
    assert forecast.metadata is None  # no annotations


async def test_calls_tools(runtime, server_url):
    forecast = await runtime.invoke_tool("get_forecast", {"city": "Paris"}, server_url)
    assert forecast.content == "Forecast for Paris: 23 degrees and sunny"
    assert forecast.error_message is None
    total = await runtime.invoke_tool("add", {"a": 2, "b": 40}, server_url)
    assert total.content == "42"


async def test_a_failing_tool_answers_an_error_message(runtime, server_url):
    result = await runtime.invoke_tool("explode", {}, server_url)
    assert result.content is None
    assert "the reactor is offline" in result.error_message


async def test_an_unknown_tool_answers_an_error_message(runtime, server_url):
    result = await runtime.invoke_tool("no_such_tool", {}, server_url)
    assert result.content is None
    assert "no_such_tool" in result.error_message


async def test_a_missing_endpoint_is_an_invalid_request(runtime):
    with pytest.raises(InvalidRequestError) as caught:
        await runtime.invoke_tool("add", {"a": 1, "b": 2}, None)
    assert caught.value.param == "server_url"


async def test_the_right_token_is_accepted(runtime, guarded_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert len(await runtime.list_runtime_tools(guarded_url, headers)) == 3
    assert (await runtime.invoke_tool("add", {"a": 1, "b": 1}, guarded_url, headers)).content == "2"


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"}])
async def test_a_wrong_or_missing_token_is_a_failed_dependency(runtime, guarded_url, headers):
    with pytest.raises(FailedDependencyError, match="401") as caught:
        await runtime.invoke_tool("add", {"a": 1, "b": 1}, guarded_url, headers)
    assert guarded_url in caught.value.message


async def test_a_closed_port_fails_fast_and_the_error_pickles(runtime):
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        started = time.monotonic()
        with pytest.raises(FailedDependencyError) as caught:
            await runtime.list_runtime_tools(url)
    assert time.monotonic() - started < 2
    assert url in caught.value.message
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is FailedDependencyError and copy.message == caught.value.message
    assert copy.status_code == 424


async def test_a_server_that_never_answers_times_out():
    runtime = create_provider(MCPToolRuntimeConfig(timeout_s=0.3))
    with socket.create_server(("127.0.0.1", 0)) as sock:  # the kernel accepts, nobody answers
        with pytest.raises(FailedDependencyError, match="timed out"):
            await runtime.list_runtime_tools(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")


async def test_health_and_shutdown(runtime):
    assert await runtime.health() == {"status": "OK"}
    await runtime.shutdown()
