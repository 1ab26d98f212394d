"""One FastAPI router per API; handlers stay thin and call the gateway."""

from fastapi import Request

from deployments.gateway import Gateway


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway
