"""The ingress's door, in ASGI before any route reads a body: the Host and Origin a request names,
who sends it (the bearer token, so an anonymous upload is refused before its first byte is read)
and how large its body is (Content-Length, and the bytes as they stream in)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from deployments.errors import error_response
from deployments.routes.console import is_console_path
from providers.access import Identity
from providers.access.authenticators import Authenticator
from providers.access.exposure import Exposure
from providers.api.errors import APIError, AuthenticationError

MISSING_TOKEN = "missing bearer token: send the header 'Authorization: Bearer <token>' (or 'x-api-key: <token>')"
# Open with authentication on: load balancers' checks, and the docs when the operator says so.
OPEN_PATHS = frozenset({"/v1/health", "/v1/version"})
DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class RequestGuard:
    def __init__(self, app, exposure: Exposure, authenticator: Authenticator | None):
        self.app = app
        self.exposure = exposure
        self.authenticator = authenticator
        self.open_paths = OPEN_PATHS | DOC_PATHS if exposure.public_docs else OPEN_PATHS

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        limit = self.exposure.body_limit(headers.get("content-type"))
        refusal = self._refusal(headers, limit)
        if refusal is None and self.authenticator is not None and not self._open(scope["path"]):
            try:
                scope.setdefault("state", {})["user"] = await self._authenticate(headers, scope)
            except APIError as exc:
                refusal = error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, _capped(receive, limit), send)

    def _open(self, path: str) -> bool:
        """Paths served without a token: health, version, the console's files and (if public) the docs."""
        return path in self.open_paths or is_console_path(path)

    def _refusal(self, headers: Headers, limit: int):
        host = headers.get("host")
        if not self.exposure.answers(host):
            return error_response(421, f"this server does not answer requests for the host {host!r}; the operator "
                                       "lists the names it answers under server.allowed_hosts",
                                  "invalid_request_error", "host", "misdirected_request")
        origin = headers.get("origin")
        if self.authenticator is None and origin and not self.exposure.answers(urlsplit(origin).netloc):
            return error_response(403, f"requests from web pages of {origin!r} are refused while authentication is "
                                       "off", "permission_error", "origin", "origin_not_allowed")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return error_response(413, _too_large(limit), "invalid_request_error", None, "request_too_large")
        return None

    async def _authenticate(self, headers: Headers, scope: dict[str, Any]) -> Identity:
        """The token of `Authorization: Bearer`, or of `x-api-key` as Anthropic's clients send it."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = (token if scheme.lower() == "bearer" else "").strip() or headers.get("x-api-key", "").strip()
        if not token:
            raise AuthenticationError(MISSING_TOKEN)
        context = {"method": scope["method"], "path": scope["path"],
                   "headers": {k: v for k, v in headers.items() if k not in ("authorization", "x-api-key", "cookie")}}
        return await self.authenticator.authenticate(token, context)


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (server.max_request_bytes, server.max_upload_bytes for uploads)"


def _capped(receive, limit: int):
    """`receive` that refuses a body once it has streamed more than `limit` bytes."""
    seen = 0

    async def capped_receive():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, _too_large(limit))
        return message

    return capped_receive
