"""Candidate generation for an evaluation as a Ray Data pipeline: the dataset's Parquet rows are
read, and tasks send each batch's rows to the candidate model's inference deployment at once (at
most `concurrency` tasks, so at most concurrency x batch_size requests in flight). What comes out
is one row per input row with its `generated_answer` (or the `error` of its request).

`run_generation` blocks; the ingress runs it in a thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from deployments.clients import InferenceClient
from deployments.services.ingestion_pipeline import TASK_RUNTIME_ENV, reused
from deployments.tracing import for_tasks, task_span
from providers.api.datasets import column_value
from providers.api.errors import APIError
from providers.api.inference import ChatCompletionRequest
from providers.storage.dataset_files import read_dataset


@dataclass(frozen=True)
class Candidate:
    """The model under evaluation: its id, the provider's own name for it, its deployment and sampling."""

    model_id: str
    provider_model_id: str
    inference: InferenceClient
    sampling: dict[str, Any]
    system_message: str | None


@dataclass(frozen=True)
class GenerationResources:
    batch_size: int
    concurrency: int
    num_cpus: float


def messages_of(row: dict[str, Any], system_message: str | None) -> list[dict[str, str]]:
    """The prompt of an eval row: its `messages`, else its `input_query` as the user's turn."""
    if row.get("messages"):
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    else:
        messages = [{"role": "user", "content": str(column_value(row, "input_query"))}]
    return ([{"role": "system", "content": system_message}] if system_message else []) + messages


def generate(batch: Any, candidate: Candidate, traced: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    rows = batch.to_pylist()
    inference = reused(candidate.inference)
    answers, errors = [], []
    with task_span("eval.generate_batch", traced, **{"raystack.rows": len(rows)}):
        pending = [inference.chat_completion(ChatCompletionRequest(
            model=candidate.model_id, messages=messages_of(row, candidate.system_message), **candidate.sampling),
            candidate.provider_model_id) for row in rows]
        for response in pending:
            try:
                result = response.result()
                answers.append(result["choices"][0]["message"]["content"] or "")
                errors.append("")
            except Exception as exc:  # one failed row is reported with its reason; the rest are scored
                answers.append(None)
                errors.append(exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}")
    return {"generated_answer": answers, "error": errors}


Generation = Callable[[str, int | None, Candidate, GenerationResources, Callable[[list[dict[str, Any]]], None],
                      threading.Event], None]


def run_generation(dataset_dir: str, num_examples: int | None, candidate: Candidate, resources: GenerationResources,
                   on_progress: Callable[[list[dict[str, Any]]], None], stop: threading.Event) -> None:
    """Generate for the first `num_examples` rows (all when None), passing each output batch's rows
    ({generated_answer, error}, in dataset order) to `on_progress`, until done or `stop` is set."""
    import ray.data

    rows = read_dataset(dataset_dir, resources.num_cpus)
    if num_examples is not None:
        rows = rows.limit(num_examples)
    rows.context.execution_options.preserve_order = True
    answers = rows.map_batches(generate, fn_kwargs={"candidate": candidate, "traced": for_tasks()},
                               batch_size=resources.batch_size, batch_format="pyarrow", num_cpus=resources.num_cpus,
                               runtime_env=TASK_RUNTIME_ENV, compute=ray.data.TaskPoolStrategy(size=resources.concurrency))
    for batch in answers.iter_batches(batch_size=None, batch_format="pandas"):
        on_progress(batch.to_dict("records"))
        if stop.is_set():
            return

