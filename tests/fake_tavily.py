"""A loopback stand-in for Tavily's Search API: a real aiohttp server in a thread of its own."""

from __future__ import annotations

import re
from typing import Callable

from aiohttp import web

from tests.loopback import serve_aiohttp

UNAUTHORIZED = {"detail": {"error": "Unauthorized: missing or invalid API key."}}


class StopFakeTavily:
    """Call to shut the server down; `requests` holds the JSON bodies it received, in order."""

    def __init__(self, stop: Callable[[], None], requests: list[dict]):
        self._stop = stop
        self.requests = requests

    def __call__(self) -> None:
        self._stop()


def start_fake_tavily(documents: list[dict], api_key: str = "test-key") -> tuple[str, StopFakeTavily]:
    """Serves POST /search over `documents` ({"title", "url", "content"}) on a free 127.0.0.1 port."""
    requests: list[dict] = []
    app = web.Application()
    app.router.add_post("/search", _search_handler(documents, api_key, requests))
    base_url, stop = serve_aiohttp(app)
    return base_url, StopFakeTavily(stop, requests)


def _search_handler(documents: list[dict], api_key: str, requests: list[dict]):
    async def search(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return web.json_response(UNAUTHORIZED, status=401)
        body = await request.json()
        requests.append(body)
        results = _rank(documents, body["query"])[: body.get("max_results", 5)]
        return web.json_response({"query": body["query"], "results": results, "response_time": 0.01})

    return search


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _rank(documents: list[dict], query: str) -> list[dict]:
    """Documents holding any of the query's words, best first; score = share of the words held."""
    words = _words(query)
    scored = []
    for doc in documents:
        hits = len(words & _words(f"{doc['title']} {doc['content']}"))
        if hits:
            scored.append({**doc, "score": round(hits / len(words), 4)})
    return sorted(scored, key=lambda doc: doc["score"], reverse=True)
