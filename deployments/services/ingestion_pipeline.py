"""Bulk ingestion as a Ray Data pipeline: files → chunks → embeddings → vector IO.

One row per file goes in. A task reads each file through the files provider's deployment,
extracts and chunks its text (one row per chunk, in blocks of about `BLOCK_BYTES` so a large file
spreads over many tasks); tasks then embed batches of chunks through the embedding model's
deployment and insert them through the vector IO deployment. What comes out is one small row per
file per batch, `FileProgress`, so the caller can count each file's chunks in as they land.

`run_pipeline` blocks; the ingress runs it in a thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from deployments.clients import FilesClient, InferenceClient, ProviderClient, VectorIOClient
from deployments.services.text_chunks import UnsupportedFile, chunk_words, extract_text
from deployments.tracing import for_tasks, task_span
from providers.api.errors import APIError
from providers.api.inference import EmbeddingRequest
from providers.api.vector_io import Chunk

BLOCK_BYTES = 64 * 1024
# The tasks call deployments synchronously (`.result()`), which needs the handle's router in its own
# event loop; throughput-optimized Serve turns that off by default.
TASK_RUNTIME_ENV = {"env_vars": {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"}}
NO_CHUNK = -1  # position of the one row of a file that yielded no chunk (empty, or failed)
_HANDLES: dict[tuple[str, str], Any] = {}
C = TypeVar("C", bound=ProviderClient)


def reused(client: C) -> C:
    """Clients arrive pickled with every task; keep the first handle of each deployment per worker
    process, so its router, and the replicas it has learned of, serve the tasks that follow."""
    handle = client.handle
    return type(client)(_HANDLES.setdefault((handle.app_name, handle.deployment_name), handle))


@dataclass(frozen=True)
class FileJob:
    """One file to ingest into one store, and how to chunk it."""

    store_id: str
    file_id: str
    filename: str
    attributes: dict[str, Any]
    max_words: int
    overlap_words: int


@dataclass(frozen=True)
class EmbeddingTarget:
    """The embedding model the chunks go through: its id, the provider's own name for it and its deployment."""

    model_id: str
    provider_model_id: str
    inference: InferenceClient


@dataclass(frozen=True)
class FileProgress:
    store_id: str
    file_id: str
    chunks: int  # chunks inserted by this batch
    total: int  # chunks the file has
    usage_bytes: int
    error_code: str
    error: str


@dataclass(frozen=True)
class PipelineResources:
    batch_size: int
    concurrency: int
    num_cpus: float


def _failure(exc: Exception) -> tuple[str, str]:
    code = "unsupported_file" if isinstance(exc, UnsupportedFile) else "server_error"
    return code, exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"


def chunk_file(row: dict[str, Any], files: FilesClient, traced: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The file's chunks as rows; a file that cannot be read is one row carrying the error."""
    base = {"store_id": row["store_id"], "file_id": row["file_id"], "attributes": row["attributes"]}
    try:
        with task_span("ingest.chunk_file", traced, **{"raystack.file_id": row["file_id"]}):
            data = reused(files).get(row["file_id"]).result()
            texts = chunk_words(extract_text(row["filename"], data), row["max_words"], row["overlap_words"])
    except Exception as exc:
        code, message = _failure(exc)
        return [{**base, "position": NO_CHUNK, "total": 0, "text": "", "error_code": code, "error": message}]
    if not texts:
        return [{**base, "position": NO_CHUNK, "total": 0, "text": "", "error_code": "", "error": ""}]
    return [{**base, "position": i, "total": len(texts), "text": text, "error_code": "", "error": ""}
            for i, text in enumerate(texts)]


def embed_and_insert(batch: dict[str, Any], target: EmbeddingTarget, vector_io: VectorIOClient,
                     traced: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Embed the batch's chunks in one call, insert them per store, and report per file."""
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    chunks = [r for r in rows if r["position"] != NO_CHUNK and not r["error"]]
    failure = ("", "")
    if chunks:
        try:
            with task_span("ingest.embed_and_insert", traced, **{"raystack.chunks": len(chunks)}):
                _embed_and_insert(chunks, target, vector_io)
        except Exception as exc:
            failure = _failure(exc)
    progress: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["store_id"], row["file_id"])
        entry = progress.setdefault(key, {"chunks": 0, "total": int(row["total"]), "usage_bytes": 0,
                                          "error_code": row["error_code"], "error": row["error"]})
        if row["position"] != NO_CHUNK and not row["error"]:
            entry["chunks"] += 1
            entry["usage_bytes"] += len(row["text"].encode())
            if failure[1]:
                entry["error_code"], entry["error"] = failure
    columns: dict[str, list[Any]] = {name: [] for name in ("store_id", "file_id", "chunks", "total", "usage_bytes",
                                                          "error_code", "error")}
    for (store_id, file_id), entry in progress.items():
        for name, value in {"store_id": store_id, "file_id": file_id, **entry}.items():
            columns[name].append(value)
    return columns


def _embed_and_insert(chunks: list[dict[str, Any]], target: EmbeddingTarget, vector_io: VectorIOClient) -> None:
    request = EmbeddingRequest(model=target.model_id, input=[r["text"] for r in chunks])
    result = reused(target.inference).embeddings(request, target.provider_model_id).result()
    vectors = [item["embedding"] for item in sorted(result["data"], key=lambda item: item["index"])]
    by_store: dict[str, list[Chunk]] = {}
    for row, vector in zip(chunks, vectors, strict=True):
        by_store.setdefault(row["store_id"], []).append(Chunk(
            id=f"{row['file_id']}-{int(row['position']):06d}", file_id=row["file_id"], text=row["text"],
            embedding=vector, attributes=json.loads(row["attributes"])))
    for store_id, store_chunks in by_store.items():
        reused(vector_io).insert(store_id, store_chunks).result()


def job_rows(jobs: list[FileJob]) -> list[dict[str, Any]]:
    """The pipeline's input: a row per file."""
    return [{"store_id": j.store_id, "file_id": j.file_id, "filename": j.filename,
             "attributes": json.dumps(j.attributes), "max_words": j.max_words, "overlap_words": j.overlap_words}
            for j in jobs]


Pipeline = Callable[[list[FileJob], FilesClient, EmbeddingTarget, VectorIOClient, PipelineResources,
                     Callable[[list[FileProgress]], None], threading.Event], None]


def run_pipeline(jobs: list[FileJob], files: FilesClient, target: EmbeddingTarget, vector_io: VectorIOClient,
                 resources: PipelineResources, on_progress: Callable[[list[FileProgress]], None],
                 stop: threading.Event) -> None:
    """Run the pipeline over `jobs`, calling `on_progress` with each output batch, until done or `stop` is set."""
    import ray.data

    rows = job_rows(jobs)
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    dataset.context.enable_progress_bars = False
    dataset.context.target_max_block_size = BLOCK_BYTES
    stage = {"num_cpus": resources.num_cpus, "compute": ray.data.TaskPoolStrategy(size=resources.concurrency),
             "runtime_env": TASK_RUNTIME_ENV}
    traced = for_tasks()
    dataset = dataset.flat_map(chunk_file, fn_kwargs={"files": files, "traced": traced}, **stage)
    dataset = dataset.map_batches(embed_and_insert, fn_kwargs={"target": target, "vector_io": vector_io, "traced": traced},
                                  batch_size=resources.batch_size, **stage)
    for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
        on_progress([FileProgress(**record) for record in batch.to_dict("records")])
        if stop.is_set():
            return
