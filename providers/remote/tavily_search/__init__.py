"""remote::tavily-search: a `web_search` tool backed by Tavily's Search API."""

from providers.remote.tavily_search.config import TavilySearchConfig


def create_provider(config: TavilySearchConfig):
    from providers.remote.tavily_search.search import TavilySearch

    return TavilySearch(config)
