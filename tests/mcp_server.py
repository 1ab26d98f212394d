"""A small real MCP server for tests: the mcp package's MCPServer over streamable HTTP.

    url, stop = start_mcp_server()                    # url ends in /mcp
    url, stop = start_mcp_server(required_token="t")  # other requests get HTTP 401

Tools: get_forecast(city), add(a, b), and explode(), which raises "the reactor is offline".
"""

from __future__ import annotations

import socket
import threading
from typing import Callable

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def build_server() -> MCPServer:
    """The test tools on an MCPServer."""
    # Below WARNING, MCPServer logs every request through a rich handler it installs on the root logger.
    server = MCPServer("raystack-test", log_level="WARNING")

    @server.tool(description="The weather forecast for a city")
    def get_forecast(city: str) -> str:
        return f"Forecast for {city}: 23 degrees and sunny"

    @server.tool(description="Add two integers")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Always fails")
    def explode() -> str:
        # A ToolError reaches the client with its message; any other exception reads "Error executing tool".
        raise ToolError("the reactor is offline")

    return server


def require_bearer(app: ASGIApp, token: str) -> ASGIApp:
    """Answer HTTP 401 to any request without `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await PlainTextResponse("unauthorized", status_code=401)(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


def start_mcp_server(required_token: str | None = None) -> tuple[str, Callable[[], None]]:
    """Serve the test tools with uvicorn in a daemon thread on a free loopback port; returns (url, stop)."""
    app: ASGIApp = build_server().streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    if required_token is not None:
        app = require_bearer(app, required_token)
    # Listening before uvicorn starts: early clients wait in the backlog until it serves.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mcp-test-server", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join()
        sock.close()

    return f"http://127.0.0.1:{port}/mcp", stop
