"""What every provider client shares: the handle of a ProviderDeployment and its two entry points."""

from typing import Any, AsyncIterator, Generator, Generic, Protocol, TypeVar

from deployments.tracing import carrier

T = TypeVar("T", covariant=True)


class Reply(Protocol, Generic[T]):
    """A call's pending result (a Serve DeploymentResponse): awaited in a replica's event loop, or
    waited on with `result()` in a Ray Data task."""

    def __await__(self) -> Generator[Any, None, T]: ...

    def result(self, timeout_s: float | None = None) -> T: ...


class ProviderClient:
    """A provider deployment (deployments/provider_host.py) seen through its handle."""

    def __init__(self, handle: Any):  # ray.serve.handle.DeploymentHandle
        self.handle = handle
        # A handle makes a new handle for each method it is asked for: ask once.
        self._calls = handle.call
        self._streams = handle.options(stream=True).stream

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Reply[Any]:
        trace_context = carrier()
        if trace_context is not None:
            kwargs["trace_context"] = trace_context
        return self._calls.remote(method, *args, **kwargs)

    def _stream(self, method: str, *args: Any) -> AsyncIterator[str]:
        """The method's results as Server-Sent-Event text."""
        trace_context = carrier()
        traced = {} if trace_context is None else {"trace_context": trace_context}
        return self._streams.remote(method, *args, **traced)

    def health(self) -> Reply[dict[str, Any]]:
        return self._call("health")
