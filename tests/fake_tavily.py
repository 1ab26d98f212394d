"""A loopback stand-in for Tavily's Search API: a real aiohttp server in a thread of its own."""

from __future__ import annotations

import asyncio
import re
import socket
import threading

from aiohttp import web

UNAUTHORIZED = {"detail": {"error": "Unauthorized: missing or invalid API key."}}


class StopFakeTavily:
    """Call to shut the server down; `requests` holds the JSON bodies it received, in order."""

    def __init__(self, runner: web.AppRunner, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 requests: list[dict]):
        self._runner, self._loop, self._thread = runner, loop, thread
        self.requests = requests

    def __call__(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def start_fake_tavily(documents: list[dict], api_key: str = "test-key") -> tuple[str, StopFakeTavily]:
    """Serves POST /search over `documents` ({"title", "url", "content"}) on a free 127.0.0.1 port."""
    requests: list[dict] = []
    app = web.Application()
    app.router.add_post("/search", _search_handler(documents, api_key, requests))
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", StopFakeTavily(runner, loop, thread, requests)


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
