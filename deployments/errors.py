"""Every error that leaves the ingress is an OpenAI-style body with the right status code."""

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from ray import exceptions as ray_exceptions
from ray.serve.exceptions import BackPressureError
from starlette.exceptions import HTTPException

from providers.api.errors import APIError, InvalidRequestError, ProviderError, ServiceUnavailableError
from providers.storage.unreachable import unreachable

logger = logging.getLogger("ray.serve")

_HTTP_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 405: "invalid_request_error"}


def error_response(status: int, message: str, error_type: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


# Anthropic's error types by status (its Messages API answers in its own error shape).
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}
ANTHROPIC_PATHS = "/v1/messages"


def anthropic_error(status: int, message: str) -> dict:
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


class AnthropicErrorBodies:
    """ASGI: under /v1/messages, every error body (the guard's, a validation error, a provider's) is
    rewritten to Anthropic's shape. Its message names the field, as Anthropic's error has no `param`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(ANTHROPIC_PATHS):
            return await self.app(scope, receive, send)
        start: dict | None = None
        body = b""

        async def send_anthropic(message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                return await send(message)
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            rewritten = _anthropic_body(start["status"], body)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(rewritten)).encode())]})
            await send({"type": "http.response.body", "body": rewritten})

        await self.app(scope, receive, send_anthropic)


def _anthropic_body(status: int, body: bytes) -> bytes:
    try:
        error = json.loads(body).get("error") or {}
        message, param = str(error.get("message")), error.get("param")
    except (ValueError, AttributeError):
        message, param = body.decode(errors="replace")[:500], None
    if param and param not in message:
        message = f"{param}: {message}"
    return json.dumps(anthropic_error(status, message)).encode()


def api_error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code)


def as_api_error(exc: BaseException) -> APIError:
    """The client-facing error for anything a provider call raised."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, APIError) and isinstance(cause, APIError):
        return cause
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, (ray_exceptions.ActorDiedError, ray_exceptions.ActorUnavailableError, ray_exceptions.RayActorError)):
        return ServiceUnavailableError("the provider replica serving this request is unavailable; retry shortly")
    if isinstance(exc, BackPressureError):
        return ServiceUnavailableError("the provider is at capacity; retry shortly", code="backpressure")
    if unreachable(cause or exc):
        logger.warning("state store unreachable: %r", cause or exc)
        return ServiceUnavailableError("the graph's database is unavailable; retry shortly", code="database_unavailable")
    if isinstance(exc, ray_exceptions.RayTaskError):
        logger.warning("provider call failed: %r", cause or exc)
        return ProviderError(f"the provider failed: {type(cause or exc).__name__}: {cause or exc}")
    logger.exception("request failed in the ingress", exc_info=exc)
    return APIError("internal error in the ingress; see the ingress replica's log")


# Parts of a pydantic error location that name a union member's type, not a field.
_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|constrained-\w+|[\w-]+\[.*\])$")
_NAMED_FIELD = re.compile(r"^([A-Za-z_][\w.]*): ")


def _validation_param(loc: tuple) -> str:
    where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    return ".".join(str(p) for p in where if not _TYPE_TAG.match(str(p)))


def _validation_message(errors: list[dict]) -> tuple[str | None, str]:
    """The field and a message for the first problem. A value that fits no member of a union
    lists what each member wanted; a cross-field check names its field as "field: why"."""
    first = errors[0]
    param = _validation_param(tuple(first.get("loc", ())))
    if first.get("type") == "missing":
        return param, f"missing required parameter '{param}'"
    if not param:
        message = first.get("msg", "invalid request").removeprefix("Value error, ")
        named = _NAMED_FIELD.match(message)
        return (named.group(1) if named else None), message
    field = param.split(".")[0]
    same_field = [e["msg"] for e in errors if _validation_param(tuple(e.get("loc", ()))).split(".")[0] == field]
    return param, f"invalid value for '{param}': {'; '.join(list(dict.fromkeys(same_field))[:3])}"


def validation_error(exc: ValidationError) -> InvalidRequestError:
    """The 400 for a body that fails its pydantic type outside a route (a batch's request line)."""
    param, message = _validation_message(exc.errors())
    return InvalidRequestError(message, param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return api_error_response(as_api_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if errors[0].get("type") == "json_invalid":
            return error_response(400, f"request body is not valid JSON: {errors[0].get('msg')}", "invalid_request_error")
        param, message = _validation_message(errors)
        return error_response(400, message, "invalid_request_error", param=param)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        error_type = _HTTP_ERROR_TYPES.get(exc.status_code, "invalid_request_error")
        return error_response(exc.status_code, str(exc.detail), error_type)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return api_error_response(as_api_error(exc))
