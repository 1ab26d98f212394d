"""Serve an aiohttp app on a free 127.0.0.1 port, on an event loop of its own in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Callable

from aiohttp import web


def serve_aiohttp(app: web.Application) -> tuple[str, Callable[[], None]]:
    """Returns (base URL, stop); stop shuts the server down and joins its thread."""
    runner = web.AppRunner(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop
