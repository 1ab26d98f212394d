"""GET /v1/health, /v1/version, /v1/providers[/{id}], /v1/inspect/routes."""

import asyncio
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from deployments.clients import ProviderRoute
from deployments.routes.dependencies import ModelsDep, ProvidersDep, user_of

router = APIRouter(prefix="/v1", tags=["Inspect"])
# Health and version stay open with authentication on; the rest needs a valid token.
signed_in = [Depends(user_of)]

_SECRET_WORDS = ("key", "token", "password", "secret")
# Which provider API implements each router's routes.
_ROUTE_APIS = {"Inference": "inference", "Models": "inference", "Files": "files", "Vector stores": "vector_io",
               "Safety": "safety", "Tools": "tool_runtime",
               "Responses": "agents", "Datasets": "datasetio", "Post training": "post_training"}


HEALTH_TIMEOUT_S = 2.0


@router.get("/health")
async def health(models: ModelsDep):
    """OK while this replica can read its routing table (the metadata store); a 503 otherwise."""
    try:
        await asyncio.wait_for(models.check(), HEALTH_TIMEOUT_S)
    except Exception as exc:  # the store is down or stalled: this replica cannot route
        return JSONResponse({"status": "Error", "message": f"the metadata store does not answer: {type(exc).__name__}"},
                            status_code=503)
    return {"status": "OK"}


@router.get("/version")
async def get_version():
    try:
        return {"version": version("raystack")}
    except PackageNotFoundError:
        return {"version": "unknown"}


@router.get("/providers", dependencies=signed_in)
async def list_providers(providers: ProvidersDep):
    routes = list(providers.routes.values())
    healths = await asyncio.gather(*(providers.health(r.entry.provider_id) for r in routes))
    return {"data": [_provider_info(r, h) for r, h in zip(routes, healths)]}


@router.get("/providers/{provider_id}", dependencies=signed_in)
async def get_provider(provider_id: str, providers: ProvidersDep):
    route = providers.route(provider_id)
    return _provider_info(route, await providers.health(provider_id))


@router.get("/inspect/routes", dependencies=signed_in)
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


def _provider_info(route: ProviderRoute, health: dict) -> dict:
    return {
        "api": route.api,
        "provider_id": route.entry.provider_id,
        "provider_type": route.entry.provider_type,
        "config": _redacted(route.entry.config),
        "health": health,
    }


def _redacted(value):
    if isinstance(value, dict):
        return {k: "********" if any(w in k.lower() for w in _SECRET_WORDS) and v else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value
