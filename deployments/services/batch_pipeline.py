"""A batch's requests as a Ray Data pipeline: tasks send each block's requests to their deployments
at once (at most `concurrency` tasks, so at most concurrency x batch_size requests in flight), and
what comes out is one row per request with its status code and body.

`run_batch` blocks; the ingress runs it in a thread."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from deployments.clients import AgentsClient, InferenceClient
from deployments.errors import as_api_error
from deployments.services.batch_lines import REQUEST_TYPES
from deployments.services.ingestion_pipeline import TASK_RUNTIME_ENV, reused
from deployments.tracing import for_tasks, task_span
from providers.access import Identity
from providers.api.errors import ProviderTimeoutError

_CALLS = {"/v1/chat/completions": "chat_completion", "/v1/completions": "completion", "/v1/embeddings": "embeddings"}


@dataclass(frozen=True)
class BatchTargets:
    """Where the batch's requests go: each model's deployment and the provider's own name for it,
    or (for /v1/responses) the agents deployment, which makes the response as the batch's owner."""

    endpoint: str
    models: dict[str, tuple[InferenceClient, str]]
    agents: AgentsClient | None
    owner: Identity | None


@dataclass(frozen=True)
class BatchResources:
    batch_size: int
    concurrency: int
    num_cpus: float
    request_timeout_s: float


def answer_requests(batch: dict[str, Any], targets: BatchTargets, timeout_s: float,
                    traced: dict[str, Any] | None = None) -> dict[str, list]:
    """Send the block's requests at once, then collect each one's status code and body; one that
    takes longer than `timeout_s` is that line's 504."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    request_type = REQUEST_TYPES[targets.endpoint]
    with task_span("batch.answer_requests", traced, **{"raystack.requests": len(rows)}):
        pending = []
        for row in rows:
            request = request_type.model_validate_json(row["body"])
            try:
                pending.append(_send(targets, request))
            except Exception as exc:  # the handle refused it at once (backpressure)
                pending.append(exc)
        statuses, bodies = [], []
        for reply in pending:
            try:
                if isinstance(reply, Exception):
                    raise reply
                result = reply.result(timeout_s=timeout_s)
                body = result if isinstance(result, dict) else result.model_dump(mode="json", exclude_unset=True)
                statuses.append(200)
                bodies.append(json.dumps(body))
            except Exception as exc:  # one failed request is that line's error; the rest are answered
                error = ProviderTimeoutError(f"no answer within {timeout_s:g} s") if isinstance(exc, TimeoutError) \
                    else as_api_error(exc)
                statuses.append(error.status_code)
                bodies.append(json.dumps(error.body()))
    return {"line": [row["line"] for row in rows], "custom_id": [row["custom_id"] for row in rows],
            "status_code": statuses, "body": bodies, "request_id": [f"req_{uuid.uuid4().hex}" for _ in rows]}


def _send(targets: BatchTargets, request: Any) -> Any:
    if targets.endpoint == "/v1/responses":
        return reused(targets.agents).handle.create.remote(targets.owner, request, None)
    client, provider_model_id = targets.models[request.model]
    return getattr(reused(client), _CALLS[targets.endpoint])(request, provider_model_id)


BatchRun = Callable[[list[dict[str, Any]], BatchTargets, BatchResources, Callable[[list[dict[str, Any]]], None],
                     threading.Event], None]


def run_batch(rows: list[dict[str, Any]], targets: BatchTargets, resources: BatchResources,
              on_progress: Callable[[list[dict[str, Any]]], None], stop: threading.Event) -> None:
    """Answer `rows` ({line, custom_id, body}), passing each output block's result rows to
    `on_progress`, until done or `stop` is set."""
    import ray.data

    blocks = max(1, min(len(rows) // resources.batch_size, 1000))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    dataset.context.enable_progress_bars = False
    answers = dataset.map_batches(answer_requests, fn_kwargs={"targets": targets, "timeout_s": resources.request_timeout_s,
                                                                     "traced": for_tasks()},
                                  batch_size=resources.batch_size, num_cpus=resources.num_cpus,
                                  runtime_env=TASK_RUNTIME_ENV,
                                  compute=ray.data.TaskPoolStrategy(size=resources.concurrency))
    for batch in answers.iter_batches(batch_size=None, batch_format="pandas"):
        on_progress(batch.to_dict("records"))
        if stop.is_set():
            return
