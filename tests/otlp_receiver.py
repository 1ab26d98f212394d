"""An OpenTelemetry collector's trace receiver on loopback: OTLP over HTTP with protobuf bodies
(`POST /v1/traces`, an ExportTraceServiceRequest), read with the opentelemetry-proto types."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    component: str  # the resource's raystack.component
    service: str
    attributes: dict


def _value(any_value) -> object:
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


def start_otlp_receiver() -> tuple[str, list[ReceivedSpan], callable]:
    """(the traces URL, the spans received so far, stop)."""
    spans: list[ReceivedSpan] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404 if self.path != "/v1/traces" else 415)
                self.end_headers()
                return
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans.append(ReceivedSpan(
                            span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                            str(resource.get("raystack.component")), str(resource.get("service.name")),
                            {a.key: _value(a.value) for a in span.attributes}))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop():
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/v1/traces", spans, stop
