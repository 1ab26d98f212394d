"""/ui: the web console, static modules that call the public API from the browser.

The files hold no data, so they are served without a token; every API call the page makes carries
the token the user typed. The Content-Security-Policy lets the page run only its own scripts and
reach only this server."""

from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/ui"
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleFiles:
    """The console's files (index.html at /ui/), each with the security headers; mounted at /ui."""

    def __init__(self):
        self.files = StaticFiles(directory=CONSOLE_DIR, html=True)

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.files(scope, receive, send_with_headers)
