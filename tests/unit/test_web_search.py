"""remote::tavily-search against a loopback fake of Tavily's Search API."""

import pickle
import time

import pytest

from providers.api.errors import InvalidRequestError, ProviderError
from providers.remote.tavily_search import TavilySearchConfig, create_provider
from tests.conftest import free_port
from tests.fake_tavily import start_fake_tavily

FACT = {"title": "Raystack release notes", "url": "https://example.test/raystack-4-2",
        "content": "Raystack 4.2 was released on the ninth of March with a tavily search tool."}
DOCS = [FACT] + [{"title": f"Filler {i}", "url": f"https://example.test/filler-{i}",
                  "content": f"Release notes filler page {i}."} for i in range(6)]


@pytest.fixture
def fake():
    base_url, stop = start_fake_tavily(DOCS)
    yield base_url, stop
    stop()


def search(base_url: str, key: str = "test-key", **config):
    return create_provider(TavilySearchConfig(api_key=key, base_url=base_url, **config))


async def test_lists_one_web_search_tool():
    (tool,) = await search("http://127.0.0.1:1").list_runtime_tools()
    assert tool.name == "web_search"
    assert tool.input_schema["required"] == ["query"]


async def test_finds_the_planted_fact(fake):
    base_url, stop = fake
    provider = search(base_url, search_depth="advanced")
    result = await provider.invoke_tool("web_search", {"query": "When was Raystack 4.2 released?"})
    await provider.shutdown()
    top = result.metadata["results"][0]
    assert (top["url"], top["content"]) == (FACT["url"], FACT["content"])
    assert result.content.startswith(f"[1] {FACT['title']} ({FACT['url']})\n{FACT['content']}")
    assert stop.requests[0]["search_depth"] == "advanced"


async def test_max_results_sent_and_honoured(fake):
    base_url, stop = fake
    provider = search(base_url, max_results=4)
    default = await provider.invoke_tool("web_search", {"query": "release notes"})
    asked = await provider.invoke_tool("web_search", {"query": "release notes", "max_results": 2})
    await provider.shutdown()
    assert [body["max_results"] for body in stop.requests] == [4, 2]
    assert (len(default.metadata["results"]), len(asked.metadata["results"])) == (4, 2)
    assert "[2]" in asked.content and "[3]" not in asked.content


async def test_no_results(fake):
    provider = search(fake[0])
    result = await provider.invoke_tool("web_search", {"query": "zeppelin"})
    await provider.shutdown()
    assert (result.content, result.metadata["results"]) == ("No web results were found.", [])


async def test_wrong_key_is_refused_without_echoing_it(fake):
    provider = search(fake[0], key="sk-wrong-secret")
    with pytest.raises(ProviderError) as caught:
        await provider.invoke_tool("web_search", {"query": "raystack"})
    await provider.shutdown()
    assert "key" in caught.value.message and "sk-wrong-secret" not in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).message == caught.value.message


async def test_closed_port_fails_quickly():
    base_url = f"http://127.0.0.1:{free_port()}"
    provider = search(base_url, timeout_s=5)
    started = time.monotonic()
    with pytest.raises(ProviderError, match=base_url):
        await provider.invoke_tool("web_search", {"query": "raystack"})
    await provider.shutdown()
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("arguments", [{}, {"query": ""}, {"query": "   "}])
async def test_empty_query_is_invalid(arguments):
    with pytest.raises(InvalidRequestError) as caught:
        await search("http://127.0.0.1:1").invoke_tool("web_search", arguments)
    assert caught.value.param == "query"


async def test_unknown_tool_is_named():
    with pytest.raises(InvalidRequestError, match="image_search"):
        await search("http://127.0.0.1:1").invoke_tool("image_search", {"query": "x"})
