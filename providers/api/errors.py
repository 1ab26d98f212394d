"""Errors that reach a client as an OpenAI-style body: {"error": {message, type, param, code}}.

They cross Ray Serve handles intact (Ray re-raises the provider's exception class in the ingress).
"""


class APIError(Exception):
    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, self.param, self.code))


def _rebuild(cls, message, param, code):
    return cls(message, param=param, code=code)


class InvalidRequestError(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class NotFoundError(APIError):
    status_code = 404
    error_type = "not_found_error"


class ConflictError(APIError):
    status_code = 409
    error_type = "invalid_request_error"


class ProviderError(APIError):
    """The backend behind a provider failed (a remote answered badly, an engine crashed)."""

    status_code = 502
    error_type = "provider_error"


class ProviderTimeoutError(APIError):
    status_code = 504
    error_type = "timeout_error"


class ServiceUnavailableError(APIError):
    status_code = 503
    error_type = "service_unavailable"


class RateLimitError(APIError):
    status_code = 429
    error_type = "rate_limit_error"


class AuthenticationError(APIError):
    """No credentials, or credentials that do not verify (OpenAI answers these with a 401)."""

    status_code = 401
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = "invalid_api_key"):
        super().__init__(message, param=param, code=code)


class PermissionDeniedError(APIError):
    status_code = 403
    error_type = "permission_error"


class PayloadTooLargeError(APIError):
    status_code = 413
    error_type = "invalid_request_error"


class FailedDependencyError(APIError):
    """A server the request itself named (an MCP server) could not be reached or answered badly."""

    status_code = 424
    error_type = "external_connector_error"
