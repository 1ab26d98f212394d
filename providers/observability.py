"""How the graph reports what it does: replica logs and OpenTelemetry traces (the `server.logging`
and `server.tracing` keys of the run config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LoggingOptions(BaseModel):
    """Replica logs (Ray's session `logs/serve/`). Each line carries the request id (Serve's
    `x-request-id`, which follows a request through its handle calls): in Serve's text format, or as
    JSON lines for a log pipeline (about 0.5 ms more CPU per request). Per-request access logs are
    off: they cost a gateway more than half its throughput; errors still log."""

    model_config = ConfigDict(extra="forbid")
    encoding: Literal["TEXT", "JSON"] = "TEXT"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def serve_logging_config(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "log_level": self.level, "enable_access_log": False}


class TracingOptions(BaseModel):
    """OpenTelemetry traces, sent over OTLP/HTTP (protobuf) to `endpoint`, a collector's traces URL
    (`http://collector:4318/v1/traces`). One trace per request: a span in the ingress, and one in
    every deployment the request reaches (providers, the agents loop and its model and tool calls,
    store writes, the tasks of an ingestion), joined by W3C trace context; a `traceparent` header from the client continues
    its trace. `sample_ratio` of the traces begun here are kept."""

    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(pattern=r"^https?://")
    service_name: str = Field(default="raystack", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
