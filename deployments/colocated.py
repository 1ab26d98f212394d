"""Providers run inside the ingress replicas (a provider entry's `deployment: {colocate: ingress}`):
the ingress calls them in its own event loop, with no hop. Each stays its own provider entry with
its own metrics and spans, and keeps its deployment, which the agents deployment, providers that call
graph models and Ray Data tasks still call."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

from deployments.provider_host import ProviderDeployment
from providers.run_config import RunConfig


class ColocatedHandle:
    """A provider hosted in this process, answering as its DeploymentHandle does:
    `call.remote(...)` is awaitable, `options(stream=True).stream.remote(...)` iterates Server-Sent-Event
    text and can be cancelled. Pickled (into a Ray Data task), it becomes the deployment's handle."""

    def __init__(self, host: ProviderDeployment, handle: Any):
        self.host = host
        self.handle = handle
        self.call = _Method(lambda *args, **kwargs: asyncio.ensure_future(host.call(*args, **kwargs)))
        self.stream = _Method(lambda *args, **kwargs: LocalStream(host.stream(*args, **kwargs)))

    def options(self, **_: Any) -> ColocatedHandle:
        return self

    def __reduce__(self):
        return self.handle.__reduce__()


class _Method:
    def __init__(self, remote: Callable[..., Any]):
        self.remote = remote


class LocalStream:
    """An in-process stream with the `cancel()` of a Serve response generator."""

    def __init__(self, texts: AsyncIterator[str]):
        self._texts = texts

    def __aiter__(self) -> LocalStream:
        return self

    def __anext__(self):
        return self._texts.__anext__()

    def cancel(self) -> None:
        asyncio.ensure_future(self._texts.aclose())


def colocate(config: RunConfig, handles: dict[str, Any]) -> dict[str, Any]:
    """`handles` with each colocated provider's handle replaced by one to a copy of it in this process."""
    colocated = dict(handles)
    for _, entry in config.provider_entries():
        if entry.deployment.colocate == "ingress" and entry.provider_id in handles:
            host = ProviderDeployment(entry.provider_id, entry.provider_type, entry.config)
            colocated[entry.provider_id] = ColocatedHandle(host, handles[entry.provider_id])
    return colocated


async def close_colocated(handles: dict[str, Any]) -> None:
    for handle in handles.values():
        if isinstance(handle, ColocatedHandle):
            await handle.host.close()
