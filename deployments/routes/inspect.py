"""GET /v1/health, /v1/version, /v1/providers[/{id}], /v1/inspect/routes, /v1/inspect/graph."""

import asyncio
import re
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from deployments.clients import ProviderRoute
from deployments.routes.dependencies import ModelsDep, ProvidersDep, UserDep, user_of
from deployments.routes.replies import Data, GraphStatus, Health, ProviderInfo, RouteInfo, Version, replies
from deployments.services.graph import graph_status
from providers.access.policy import AccessPolicy
from providers.registry import get_spec

router = APIRouter(prefix="/v1", tags=["Inspect"])
# Health and version stay open with authentication on; the rest needs a valid token.
signed_in = [Depends(user_of)]

_SECRET_WORDS = ("key", "token", "password", "secret", "credential", "auth")
_URI_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)[^@/]*@", re.IGNORECASE)
REDACTED = "********"
# Which provider API implements each router's routes.
_ROUTE_APIS = {"Inference": "inference", "Models": "inference", "Files": "files", "Vector stores": "vector_io",
               "Safety": "safety", "Tools": "tool_runtime",
               "Responses": "agents", "Datasets": "datasetio", "Post training": "post_training"}


HEALTH_TIMEOUT_S = 2.0


@router.get("/health", **replies(Health))
async def health(models: ModelsDep):
    """OK while this replica can read its routing table (the metadata store); a 503 otherwise."""
    try:
        await asyncio.wait_for(models.check(), HEALTH_TIMEOUT_S)
    except Exception as exc:  # the store is down or stalled: this replica cannot route
        return JSONResponse({"status": "Error", "message": f"the metadata store does not answer: {type(exc).__name__}"},
                            status_code=503)
    return {"status": "OK"}


@router.get("/version", **replies(Version))
async def get_version():
    try:
        return {"version": version("raystack")}
    except PackageNotFoundError:
        return {"version": "unknown"}


@router.get("/providers", **replies(Data[ProviderInfo]))
async def list_providers(providers: ProvidersDep, user: UserDep):
    healths = await providers.healths()
    return {"data": [_provider_info(route, healths[pid], AccessPolicy.is_admin(user)) for pid, route in providers.routes.items()]}


@router.get("/providers/{provider_id}", **replies(ProviderInfo))
async def get_provider(provider_id: str, providers: ProvidersDep, user: UserDep):
    route = providers.route(provider_id)
    return _provider_info(route, await providers.health(provider_id), AccessPolicy.is_admin(user))


@router.get("/inspect/routes", dependencies=signed_in, **replies(Data[RouteInfo]))
async def list_routes(request: Request, providers: ProvidersDep):
    data = []
    for route in request.app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
            continue
        api = next((_ROUTE_APIS[t] for t in route.tags if t in _ROUTE_APIS), None)
        provider_types = sorted({r.entry.provider_type for r in providers.of_api(api)})
        for method in sorted(route.methods):
            data.append({"route": route.path, "method": method, "provider_types": provider_types})
    return {"data": data}


@router.get("/inspect/graph", dependencies=signed_in, **replies(GraphStatus))
async def inspect_graph(providers: ProvidersDep):
    """This application's deployments, their replicas and providers' health, and the Ray dashboard's URL."""
    return await graph_status(providers)


def _provider_info(route: ProviderRoute, health: dict, admin: bool) -> dict:
    """A provider's config is shown to administrators only, its secrets redacted."""
    config = get_spec(route.entry.provider_type).parse_config(route.entry.config).model_dump(mode="json")
    return {
        "api": route.api,
        "provider_id": route.entry.provider_id,
        "provider_type": route.entry.provider_type,
        "config": redacted(config) if admin else {},
        "health": health,
    }


def redacted(value, key: str = ""):
    """Secrets out of a provider config, by what they are: SecretStr fields (pydantic dumps them
    masked), values under secret-sounding keys, every value of a header map, URI passwords."""
    if isinstance(value, dict):
        if "header" in key.lower():
            return {k: REDACTED for k in value}
        return {k: REDACTED if _secret_key(k) and v else redacted(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if isinstance(value, str) and "@" in value and "://" in value:
        return _URI_PASSWORD.sub(rf"\1{REDACTED}@", value)
    return value


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)
