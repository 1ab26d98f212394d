"""The graph's services without Serve: each provider is the real ProviderDeployment object in this
process, reached through a handle that calls it as a Serve handle would (awaited in the event
loop, or `.result()` from a pipeline thread). Ray Data's stages run serially in the calling thread,
through the same stage functions the pipelines schedule as tasks."""

import asyncio
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deployments.provider_host import ProviderDeployment
from deployments.services.batch_pipeline import BatchResources, BatchTargets, answer_requests
from deployments.services.eval_generation import Candidate, GenerationResources, generate
from deployments.services.ingestion_pipeline import (
    EmbeddingTarget,
    FileJob,
    FileProgress,
    PipelineResources,
    chunk_file,
    embed_and_insert,
    job_rows,
)
from providers.storage.dataset_files import dataset_files


class LocalReply:
    def __init__(self, call, loop: asyncio.AbstractEventLoop):
        self.call = call
        self.loop = loop

    def __await__(self):
        return self.call().__await__()

    def result(self, timeout_s: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(self.call(), self.loop).result(timeout_s)


class LocalMethod:
    def __init__(self, function, loop: asyncio.AbstractEventLoop, streams: bool):
        self.function = function
        self.loop = loop
        self.streams = streams

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if self.streams:
            return self.function(*args, **kwargs)
        return LocalReply(lambda: self.function(*args, **kwargs), self.loop)


class LocalHandle:
    """A DeploymentHandle's surface over a provider deployment object of this process."""

    def __init__(self, deployment: ProviderDeployment, loop: asyncio.AbstractEventLoop):
        # Unique per object: pipelines keep the first handle of each (app, deployment) per process.
        self.app_name, self.deployment_name = f"in-process-{id(deployment)}", deployment.provider_id
        self.deployment = deployment
        self.call = LocalMethod(deployment.call, loop, streams=False)
        self.stream = LocalMethod(deployment.stream, loop, streams=True)

    def options(self, stream: bool = False) -> "LocalHandle":
        return self


def local_handles(config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> dict[str, LocalHandle]:
    """A handle per provider of a run config (as a dict), but the agents provider."""
    return {entry["provider_id"]: LocalHandle(ProviderDeployment(entry["provider_id"], entry["provider_type"],
                                                                 entry.get("config", {})), loop)
            for api, entries in config["providers"].items() if api != "agents" for entry in entries}


def serial_ingestion(jobs: list[FileJob], files, target: EmbeddingTarget, vector_io, resources: PipelineResources,
                     on_progress, stop) -> None:
    """run_pipeline's stages in this thread: chunk each file, then embed and insert batches of chunks."""
    chunks = [chunk for row in job_rows(jobs) for chunk in chunk_file(row, files)]
    for start in range(0, len(chunks), resources.batch_size):
        batch = chunks[start:start + resources.batch_size]
        columns = embed_and_insert({name: [row[name] for row in batch] for name in batch[0]}, target, vector_io)
        on_progress([FileProgress(**dict(zip(columns, values))) for values in zip(*columns.values())])
        if stop.is_set():
            return


def serial_generation(dataset_dir: str, num_examples: int | None, candidate: Candidate,
                      resources: GenerationResources, on_progress, stop) -> None:
    """run_generation's stage in this thread: the candidate answers each batch of the dataset's rows."""
    rows = [row for path in dataset_files(Path(dataset_dir)) for row in pq.read_table(path).to_pylist()]
    rows = rows[:num_examples] if num_examples is not None else rows
    for start in range(0, len(rows), resources.batch_size):
        answers = generate(pa.Table.from_pylist(rows[start:start + resources.batch_size]), candidate)
        on_progress([dict(zip(answers, values)) for values in zip(*answers.values())])
        if stop.is_set():
            return


def serial_batch(rows: list[dict[str, Any]], targets: BatchTargets, resources: BatchResources, on_progress, stop) -> None:
    """run_batch's stage in this thread: each block of requests is sent at once, then collected."""
    for start in range(0, len(rows), resources.batch_size):
        block = rows[start:start + resources.batch_size]
        answers = answer_requests({name: [row[name] for row in block] for name in block[0]}, targets,
                                  resources.request_timeout_s)
        on_progress([dict(zip(answers, values)) for values in zip(*answers.values())])
        if stop.is_set():
            return
