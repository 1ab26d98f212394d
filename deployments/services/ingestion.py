"""The ingress replica's side of bulk ingestion: it queues files, runs the Ray Data pipeline of
deployments/services/ingestion_pipeline.py over them in a thread, and settles each file as its last chunk
lands. Files attached within `COLLECT_S` of each other, or while a pipeline runs, share the next
pipeline, so a burst of attaches or a file batch becomes one pipeline."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from deployments.clients import FilesClient, VectorIOClient
from deployments.metrics import service_metrics
from deployments.services.ingestion_pipeline import (
    EmbeddingTarget,
    FileJob,
    FileProgress,
    Pipeline,
    PipelineResources,
    run_pipeline,
)
from deployments.services.models import ModelService
from deployments.tracing import Carrier, carrier, span
from providers.api.models import Model

logger = logging.getLogger("ray.serve")

COLLECT_S = 0.1

Key = tuple[str, str]  # (vector store id, file id)
# Called once per file with the job and its outcome: {"status": "completed", "usage_bytes": n},
# {"status": "failed", "last_error": {...}}, or {"status": "cancelled"} for a file no longer wanted
# (cancelled, detached, or taken over by another replica);
# then, for a file that failed or was cancelled, once more with {"status": "discarded"} after the
# pipeline has stopped, to remove what tasks still in flight stored of it.
Settle = Callable[[FileJob, dict[str, Any]], Awaitable[None]]
# Which of these files are still wanted (attached and in progress).
StillWanted = Callable[[list[FileJob]], Awaitable[set[Key]]]
# Seal a store's inserted chunks into indexed segments.
Flush = Callable[[str], Awaitable[None]]


@dataclass
class _Run:
    """One pipeline's files: those not settled yet, their chunk counts, and those dropped (failed or
    cancelled), whose chunks are removed again once the pipeline has stopped."""

    unsettled: dict[Key, FileJob]
    tallies: dict[Key, "_Tally"] = field(default_factory=dict)
    dropped: list[FileJob] = field(default_factory=list)


@dataclass
class _Tally:
    chunks: int = 0
    total: int = -1
    usage_bytes: int = 0
    error_code: str = ""
    error: str = ""


class IngestionRunner:
    def __init__(self, models: ModelService, files: FilesClient, vector_io: VectorIOClient,
                 resources: PipelineResources, settle: Settle, still_wanted: StillWanted, flush: Flush,
                 pipeline: Pipeline = run_pipeline, poll_s: float = 1.0):
        """`models` gives each embedding model's inference client; `pipeline` runs the stages
        (run_pipeline: as Ray Data tasks)."""
        self.models = models
        self.files = files
        self.vector_io = vector_io
        self.resources = resources
        self.pipeline = pipeline
        self.settle = settle
        self.still_wanted = still_wanted
        self.flush = flush
        self.poll_s = poll_s
        self._pending: list[tuple[FileJob, Model, Carrier | None]] = []
        self._runner: asyncio.Task | None = None

    def submit(self, job: FileJob, model: Model) -> None:
        """Queue the file; its pipeline's span links to the trace of the request that submitted it."""
        self._pending.append((job, model, carrier()))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await asyncio.sleep(COLLECT_S)
        while self._pending:
            pending, self._pending = self._pending, []
            by_model: dict[str, tuple[Model, list[FileJob], list[Carrier]]] = {}
            for job, model, submitted_in in pending:
                _, jobs, requests = by_model.setdefault(model.identifier, (model, [], []))
                jobs.append(job)
                if submitted_in is not None and submitted_in not in requests:
                    requests.append(submitted_in)
            for model, jobs, requests in by_model.values():
                try:
                    with span("vector_stores.ingest", links=tuple(requests),
                              **{"raystack.files": len(jobs), "raystack.embedding_model": model.identifier}):
                        await self._run_pipeline(model, jobs)
                except Exception:  # settling failed (storage down): the files stay in progress until resumed
                    logger.exception("ingesting %d files failed", len(jobs))
                for store_id in {job.store_id for job in jobs}:
                    try:
                        await self.flush(store_id)
                    except Exception as exc:  # the store was deleted meanwhile, or Milvus is down: search still finds the rows
                        logger.warning("flushing %s after ingestion failed: %r", store_id, exc)

    async def _run_pipeline(self, model: Model, jobs: list[FileJob]) -> None:
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[list[FileProgress]] = asyncio.Queue()
        stop = threading.Event()
        target = EmbeddingTarget(model.identifier, model.provider_resource_id, self.models.client(model))
        pipeline = asyncio.ensure_future(asyncio.to_thread(
            self.pipeline, jobs, self.files, target, self.vector_io, self.resources,
            lambda progress: loop.call_soon_threadsafe(arrived.put_nowait, progress), stop))
        run = _Run({(job.store_id, job.file_id): job for job in jobs})
        logger.info("ingesting %d files with %s", len(jobs), model.identifier)
        try:
            while run.unsettled and not (pipeline.done() and arrived.empty()):
                try:
                    progress = await asyncio.wait_for(arrived.get(), timeout=self.poll_s)
                except asyncio.TimeoutError:
                    progress = []
                for item in progress:
                    await self._count(run, item)
                if not progress or arrived.empty():
                    await self._drop_unwanted(run)
            if not run.unsettled:
                stop.set()
            await pipeline
            ended = "ingestion ended before all of the file's chunks were stored"
        except Exception as exc:  # the pipeline itself failed: every file it had not settled fails with it
            logger.warning("ingestion pipeline failed: %r", exc)
            ended = f"ingestion pipeline failed: {type(exc).__name__}: {exc}"
        for key in list(run.unsettled):
            await self._settle(run, key, _failed("server_error", ended))
        for job in run.dropped:  # tasks in flight when it was dropped may have stored more of it since
            await self.settle(job, {"status": "discarded"})

    async def _settle(self, run: _Run, key: Key, outcome: dict[str, Any]) -> None:
        job = run.unsettled.pop(key)
        service_metrics().ingested_files.inc(tags={"status": outcome["status"]})
        if outcome["status"] != "completed":
            run.dropped.append(job)
        await self.settle(job, outcome)

    async def _count(self, run: _Run, item: FileProgress) -> None:
        key = (item.store_id, item.file_id)
        if key not in run.unsettled:
            return
        tally = run.tallies.setdefault(key, _Tally())
        tally.chunks += item.chunks
        if item.chunks:
            service_metrics().ingested_chunks.inc(item.chunks)
        tally.total = item.total
        tally.usage_bytes += item.usage_bytes
        if item.error:
            tally.error_code, tally.error = item.error_code, item.error
        if tally.error:
            await self._settle(run, key, _failed(tally.error_code, tally.error))
        elif tally.chunks >= tally.total:
            await self._settle(run, key, {"status": "completed", "usage_bytes": tally.usage_bytes})

    async def _drop_unwanted(self, run: _Run) -> None:
        """Cancelled or detached files are settled now; the pipeline stops once none is left."""
        wanted = await self.still_wanted(list(run.unsettled.values()))
        for key in [k for k in run.unsettled if k not in wanted]:
            await self._settle(run, key, {"status": "cancelled"})

    async def close(self) -> None:
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "last_error": {"code": code, "message": message}}
