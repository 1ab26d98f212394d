"""Every error that leaves the ingress is an OpenAI-style body with the right status code."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import exceptions as ray_exceptions
from starlette.exceptions import HTTPException

from providers.api.errors import APIError, ProviderError, ServiceUnavailableError

logger = logging.getLogger("ray.serve")

_HTTP_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 405: "invalid_request_error"}


def error_response(status: int, message: str, error_type: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


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
    if exc.__class__.__name__ == "BackPressureError":
        return ServiceUnavailableError("the provider is at capacity; retry shortly", code="backpressure")
    logger.exception("provider call failed", exc_info=exc)
    return ProviderError(f"the provider failed: {type(cause or exc).__name__}: {cause or exc}")


def _validation_param(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    # Drop the union/discriminator tags pydantic adds (e.g. "user", "function-after[...]").
    return ".".join(p for p in parts if not p.startswith(("function-", "union[", "str", "list[", "constrained-")))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return api_error_response(as_api_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        param = _validation_param(tuple(first.get("loc", ())))
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            return error_response(400, f"request body is not valid JSON: {message}", "invalid_request_error")
        if first.get("type") == "missing":
            message = f"missing required parameter '{param}'"
        elif param:
            message = f"invalid value for '{param}': {message}"
        return error_response(400, message, "invalid_request_error", param=param or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        error_type = _HTTP_ERROR_TYPES.get(exc.status_code, "invalid_request_error")
        return error_response(exc.status_code, str(exc.detail), error_type)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return api_error_response(as_api_error(exc))
