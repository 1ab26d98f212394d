"""One FastAPI router per API; handlers stay thin and call the gateway."""

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from deployments.services.gateway import Gateway
from providers.access import Identity
from providers.api.errors import AuthenticationError, NotFoundError


async def gateway_of(request: Request) -> Gateway:
    """Async on purpose: FastAPI would run a plain function in a worker thread on every request."""
    return request.app.state.gateway


async def user_of(request: Request) -> Identity | None:
    """The caller's identity from `Authorization: Bearer <token>`; None when authentication is off.
    FastAPI runs it once per request however many dependencies name it."""
    authenticator = request.app.state.gateway.authenticator
    if authenticator is None:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token: send the header 'Authorization: Bearer <token>'")
    headers = {k: v for k, v in request.headers.items() if k not in ("authorization", "cookie")}
    context = {"method": request.method, "path": request.url.path, "headers": headers}
    return await authenticator.authenticate(token.strip(), context)


def service_of(attribute: str, missing: str):
    """A dependency giving the gateway's service `attribute`; a 404 saying `missing` (what the run
    config lacks) when the graph does not have it."""

    async def service(request: Request):
        found = getattr(request.app.state.gateway, attribute)
        if found is None:
            raise NotFoundError(missing)
        return found

    return service


MAX_PAGE = 100
# A page size: above the most a page holds it is capped, as on OpenAI's list endpoints.
Limit = Annotated[int, Query(ge=1), AfterValidator(lambda limit: min(limit, MAX_PAGE))]

GatewayDep = Annotated[Gateway, Depends(gateway_of)]
UserDep = Annotated[Identity | None, Depends(user_of)]
