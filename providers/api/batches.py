"""Batches API: OpenAI's request and batch object, and the lines of a batch's input file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from providers.api.base import Metadata, WireModel

Endpoint = Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
STATUSES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")
UNFINISHED = ("validating", "in_progress", "finalizing", "cancelling")
COMPLETION_WINDOW_S = 24 * 3600
MAX_LINES = 50_000  # requests in one batch, as on OpenAI
MAX_LINE_BYTES = 1 << 20  # one request line; a larger one is an error of that line
MAX_FILE_ERRORS = 100  # errors listed in a failed batch's `errors`; the count says how many there were


class CreateBatchRequest(WireModel):
    input_file_id: Annotated[str, Field(min_length=1, max_length=255)]
    endpoint: Endpoint
    completion_window: Literal["24h"]
    metadata: Metadata | None = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = None  # Llama Stack's


def batch_object(record: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI batch object of a stored batch (which keeps its runner and owner beside it)."""
    return {key: record.get(key) for key in (
        "id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window", "status",
        "output_file_id", "error_file_id", "created_at", "in_progress_at", "expires_at", "finalizing_at",
        "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "request_counts", "usage",
        "metadata")}
