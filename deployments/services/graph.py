"""The Serve graph as the console's Graph page shows it: each deployment of this application, its
status and replicas, the provider it hosts with that provider's health, and the Ray dashboard."""

from __future__ import annotations

import asyncio
from typing import Any

from deployments.clients.directory import ProviderDirectory
from providers.api.errors import ServiceUnavailableError

SERVE_STATUS_TIMEOUT_S = 10.0
PROVIDER_PREFIX = "provider-"  # graphs.builder names a provider's deployment `provider-<id>`


async def graph_status(providers: ProviderDirectory) -> dict[str, Any]:
    """`{"application", "dashboard_url", "deployments": [...]}`; a provider without a deployment of
    its own (colocated with the ingress) is listed as served by `ingress`."""
    try:
        application, deployments, dashboard_url = await asyncio.wait_for(asyncio.to_thread(_serve_status),
                                                                         SERVE_STATUS_TIMEOUT_S)
    except TimeoutError:
        raise ServiceUnavailableError(f"Serve's controller did not answer in {SERVE_STATUS_TIMEOUT_S:g} s") from None
    healths = await providers.healths()
    listed = []
    for name, overview in sorted(deployments.items()):
        provider_id = name[len(PROVIDER_PREFIX):] if name.startswith(PROVIDER_PREFIX) else None
        route = providers.routes.get(provider_id) if provider_id else None
        listed.append({
            "name": name, "status": _text(overview.status), "message": overview.message,
            "replicas": {_text(state): count for state, count in overview.replica_states.items()},
            "provider": _provider(route, healths.get(provider_id)) if route else None,
        })
    hosted = {d["provider"]["provider_id"] for d in listed if d["provider"]}
    for provider_id, route in providers.routes.items():
        if provider_id not in hosted:
            listed.append({"name": "ingress", "status": "HEALTHY", "message": "colocated with the ingress",
                           "replicas": {}, "provider": _provider(route, healths[provider_id])})
    return {"application": application, "dashboard_url": dashboard_url, "deployments": listed}


def _text(state) -> str:
    """A Serve status or replica state (an enum, or its value once serialized) as its name."""
    return str(getattr(state, "value", state))


def _provider(route, health: dict[str, Any] | None) -> dict[str, Any]:
    return {"provider_id": route.entry.provider_id, "api": route.api, "provider_type": route.entry.provider_type,
            "health": health}


def _serve_status() -> tuple[str, dict[str, Any], str | None]:
    """This replica's application, its deployments' status overviews, and the dashboard's URL."""
    from ray import serve
    from ray._private.services import get_webui_url_from_internal_kv

    application = serve.get_replica_context().app_name
    status = serve.status().applications.get(application)
    address = get_webui_url_from_internal_kv()
    dashboard_url = (address if "://" in address else f"http://{address}") if address else None
    return application, status.deployments if status else {}, dashboard_url
