"""OpenTelemetry traces across the graph's hops, when the run config's `server.tracing` names a
collector (providers/observability.py). Off, every function here costs one `None` check.

Each replica process starts its own tracer (`start_tracing`). A call to another deployment carries
the W3C trace context (`carrier()`) as an argument, and the callee opens its span under it
(`span(..., parent=carrier)`), so one request is one trace from the ingress through every
deployment it reaches. Ray Data tasks get the options and the context as an argument
(`for_tasks()`) and start their process's tracer on their first span (`task_span`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, AsyncIterator, Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from providers.observability import TracingOptions

Carrier = dict[str, str]
_PROPAGATOR = TraceContextTextMapPropagator()
_EXPORT_DELAY_MS = 1000
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_options: TracingOptions | None = None


def start_tracing(options: TracingOptions | dict[str, Any] | None, component: str) -> None:
    """Send this process's spans to the collector, as `component` (ingress, provider-<id>, ...)."""
    global _tracer, _provider, _options
    if options is None or _tracer is not None:
        return
    options = _options = TracingOptions.model_validate(options)
    _provider = TracerProvider(
        resource=Resource.create({"service.name": options.service_name, "raystack.component": component}),
        sampler=ParentBased(TraceIdRatioBased(options.sample_ratio)),
    )
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=options.endpoint),
                                                    schedule_delay_millis=_EXPORT_DELAY_MS))
    trace.set_tracer_provider(_provider)  # for the spans of code below the deployments (store writes)
    _tracer = _provider.get_tracer("raystack")


def stop_tracing() -> None:
    """Send what is left (a replica that stops)."""
    if _provider is not None:
        _provider.shutdown()


def carrier() -> Carrier | None:
    """The current trace context, for a call to another deployment; None when tracing is off."""
    if _tracer is None:
        return None
    found: Carrier = {}
    _PROPAGATOR.inject(found)
    return found or None


@contextmanager
def span(name: str, parent: Carrier | None = None, kind: SpanKind = SpanKind.INTERNAL,
         links: tuple[Carrier, ...] = (), **attributes: Any) -> Iterator[trace.Span | None]:
    """A span around the block, the current one inside it, under `parent` when given, linked to the
    spans of `links` (other requests whose work it does too)."""
    if _tracer is None:
        yield None
        return
    context = _PROPAGATOR.extract(parent) if parent else None
    linked = [trace.Link(trace.get_current_span(_PROPAGATOR.extract(link)).get_span_context()) for link in links]
    with _tracer.start_as_current_span(name, context=context, kind=kind, links=linked, attributes=attributes) as current:
        yield current


def for_tasks() -> dict[str, Any] | None:
    """What a Ray Data task needs to trace its work under the current span; None when tracing is off."""
    if _options is None:
        return None
    return {"options": _options.model_dump(), "parent": carrier()}


@contextmanager
def task_span(name: str, traced: dict[str, Any] | None, **attributes: Any) -> Iterator[trace.Span | None]:
    """A span in a Ray Data task, under the span `for_tasks()` was called in; the task's process
    starts its tracer on the first."""
    if traced is None:
        yield None
        return
    start_tracing(traced["options"], "ray-data")
    with span(name, traced["parent"], **attributes) as current:
        yield current


async def traced_stream(name: str, parent: Carrier | None, items: AsyncIterator[Any], **attributes: Any) -> AsyncIterator[Any]:
    """`items`, each step of which runs inside one span that lasts the whole stream."""
    if _tracer is None:
        async for item in items:
            yield item
        return
    context = _PROPAGATOR.extract(parent) if parent else None
    current = _tracer.start_span(name, context=context, kind=SpanKind.SERVER, attributes=attributes)
    try:
        while True:
            token = otel_context.attach(trace.set_span_in_context(current))
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            yield item
    except BaseException as exc:
        current.record_exception(exc)
        current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        current.end()


class TracingMiddleware:
    """The ingress's span for each HTTP request, named by method and route once routed, with the
    status and Serve's request id; a client's `traceparent` header makes it part of the client's trace."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if _tracer is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with span(f"{scope['method']} {scope['path']}", parent=headers, kind=SpanKind.SERVER,
                  **{"http.request.method": scope["method"], "url.path": scope["path"]}) as current:
            if "x-request-id" in headers:
                current.set_attribute("raystack.request_id", headers["x-request-id"])
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                if route is not None:
                    current.update_name(f"{scope['method']} {route.path}")
                current.set_attribute("http.response.status_code", status)
                if status >= 500:
                    current.set_status(Status(StatusCode.ERROR))
