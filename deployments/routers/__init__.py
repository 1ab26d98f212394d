"""One FastAPI router per API; handlers stay thin and call the gateway."""

from fastapi import Request

from deployments.gateway import Gateway


async def gateway_of(request: Request) -> Gateway:
    """Async on purpose: FastAPI would run a plain function in a worker thread on every request."""
    return request.app.state.gateway
