"""Vector stores: records in the `vector_stores` store, chunks in the vector IO deployment.

Attaching a file answers at once with status `in_progress` and queues the file for this replica's
ingestion runner (deployments/services/ingestion.py), a Ray Data pipeline that reads, chunks, embeds and
inserts; the file then becomes `completed`, or `failed` with `last_error`. Each in-progress file
names the replica ingesting it, so files of a replica that is gone are taken over by another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from deployments.clients import VectorIOClient
from deployments.services.files import FileService
from deployments.services.ingestion import IngestionRunner
from deployments.services.ingestion_pipeline import FileJob, Pipeline, PipelineResources, run_pipeline
from deployments.services.models import ModelService
from deployments.services.replica import Replica
from providers.access import Identity
from providers.api.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.api.inference import EmbeddingRequest
from providers.api.models import Model
from providers.api.vector_stores import (
    AttachFileRequest,
    AutoChunkingStrategy,
    CreateFileBatchRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreRequest,
    search_result,
)
from providers.service_configs import IngestionConfig
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

# "auto" chunking: OpenAI's 800/400, capped to what the embedding model reads (MiniLM: 256 tokens).
AUTO_MAX_WORDS, AUTO_OVERLAP_WORDS, WORDS_PER_TOKEN = 800, 400, 0.75
STATUSES = ("in_progress", "completed", "failed", "cancelled")


class VectorStoreService:
    def __init__(self, stores: OwnedRecords, store_files: OwnedRecords, batches: OwnedRecords, models: ModelService,
                 files: FileService, provider_id: str, vector_io: VectorIOClient, ingestion: IngestionConfig,
                 replica: Replica, pipeline: Pipeline = run_pipeline):
        """Each file in progress names the replica ingesting it (`replica.id`); one whose replica is
        gone is taken over. `pipeline` runs the ingestion stages (run_pipeline: as Ray Data tasks)."""
        self.stores = stores
        self.store_files = store_files
        self.batches = batches
        self.models = models
        self.files = files
        self.provider_id = provider_id
        self.vector_io = vector_io
        self.replica = replica
        resources = PipelineResources(ingestion.embedding_batch_size, ingestion.concurrency, ingestion.num_cpus)
        self.ingestion = IngestionRunner(models, files.provider, vector_io, resources, self._settle,
                                         self._still_wanted, self._flush, pipeline)

    # ------------------------------------------------------------ stores

    async def create(self, user: Identity | None, request: CreateVectorStoreRequest) -> dict[str, Any]:
        store_id = f"vs_{uuid.uuid4().hex}"
        if not self.stores.policy.allows(user, "create", "vector_store", store_id, user):
            raise PermissionDeniedError("not allowed to create vector stores")
        if request.provider_id not in (None, self.provider_id):
            raise NotFoundError(f"no vector IO provider '{request.provider_id}'", param="provider_id")
        model = await self._embedding_model(user, request.embedding_model)
        for file_id in request.file_ids:  # every file must be readable before the store exists
            await self.files.records.get(user, file_id)
        dimension = model.metadata.get("embedding_dimension") or len((await self._embed(model, ["dimension"]))[0])
        await self.vector_io.create_store(store_id, dimension)
        now = int(time.time())
        record = {"id": store_id, "object": "vector_store", "created_at": now, "last_active_at": now,
                  "name": request.name, "metadata": request.metadata or {},
                  "expires_after": request.expires_after.model_dump() if request.expires_after else None,
                  "embedding_model": model.identifier, "embedding_dimension": dimension}
        await self.stores.insert([self.stores.row(record, user)])
        if request.file_ids:
            await self._attach_files(user, store_id, [AttachFileRequest(file_id=file_id, chunking_strategy=request.chunking_strategy)
                                                      for file_id in dict.fromkeys(request.file_ids)])
        return await self.view(record)

    async def _embedding_model(self, user: Identity | None, model_id: str | None) -> Model:
        if model_id is not None:
            return await self.models.model_of_type(user, model_id, "embedding", "a vector store", "embedding_model")
        candidates = [m for m in await self.models.visible(user) if m.model_type == "embedding"]
        if not candidates:
            raise InvalidRequestError("no embedding model is registered; register one or name it", param="embedding_model")
        return candidates[0]

    async def view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with its file counts, usage and status as they are now."""
        counts = await self.store_files.count_by("status", vector_store_id=record["id"])
        completed = await self.store_files.list(None, after=None, limit=10_000, order="asc",
                                                vector_store_id=record["id"], status="completed")
        expires_after = record.get("expires_after")
        expires_at = record["last_active_at"] + 86_400 * expires_after["days"] if expires_after else None
        status = "expired" if expires_at and expires_at < time.time() else "in_progress" if counts.get("in_progress") else "completed"
        return {
            **record, "status": status, "expires_at": expires_at,
            "usage_bytes": sum(f["usage_bytes"] for f in completed["data"]),
            "file_counts": {**{s: counts.get(s, 0) for s in STATUSES}, "total": sum(counts.values())},
        }

    async def get(self, user: Identity | None, store_id: str) -> dict[str, Any]:
        return await self.view(await self.stores.get(user, store_id))

    async def list(self, user: Identity | None, **page: Any) -> dict[str, Any]:
        listed = await self.stores.list(user, **page)
        return {**listed, "data": [await self.view(r) for r in listed["data"]]}

    async def update(self, user: Identity | None, store_id: str, request: UpdateVectorStoreRequest) -> dict[str, Any]:
        changes = request.model_dump(exclude_unset=True, mode="json")
        if "metadata" in changes and changes["metadata"] is None:  # `metadata: null` clears it, as `{}` does
            changes["metadata"] = {}
        return await self.view(await self.stores.update(user, store_id, {**changes, "last_active_at": int(time.time())}))

    async def delete(self, user: Identity | None, store_id: str) -> None:
        await self.stores.delete(user, store_id)
        await self.store_files.delete_where(vector_store_id=store_id)
        await self.vector_io.delete_store(store_id)

    # ------------------------------------------------------------ files

    async def attach(self, user: Identity | None, store_id: str, request: AttachFileRequest) -> dict[str, Any]:
        return (await self._attach_files(user, store_id, [request]))[0]

    async def _attach_files(self, user: Identity | None, store_id: str, requests: list[AttachFileRequest],
                            batch_id: str = "") -> list[dict[str, Any]]:
        """Attach files in one write and queue them together, so they share one pipeline; every
        file must be readable by the caller before any is attached."""
        store = await self.stores.update(user, store_id, {"last_active_at": int(time.time())})
        files = [await self.files.records.get(user, request.file_id) for request in requests]
        model = await self.models.get(store["embedding_model"])
        records, rows = [], []
        for request in requests:
            strategy = request.chunking_strategy or AutoChunkingStrategy(type="auto")
            record = {"id": request.file_id, "object": "vector_store.file", "created_at": int(time.time()),
                      "vector_store_id": store_id, "status": "in_progress", "last_error": None, "usage_bytes": 0,
                      "attributes": request.attributes or {}, "chunking_strategy": strategy.model_dump()}
            records.append(record)
            rows.append(self.store_files.row(record, None, row_id=f"{store_id}/{request.file_id}", vector_store_id=store_id,
                                             status="in_progress", batch_id=batch_id, ingester=self.replica.id))
        await self.store_files.insert(rows)
        for file, record in zip(files, records):
            self._submit(store, file, record, model)
        return records

    def _submit(self, store: dict[str, Any], file: dict[str, Any], record: dict[str, Any], model: Model) -> None:
        max_words, overlap_words = self._chunk_sizes(model, record["chunking_strategy"])
        job = FileJob(store_id=store["id"], file_id=file["id"], filename=file["filename"],
                      attributes=record["attributes"], max_words=max_words, overlap_words=overlap_words)
        self.ingestion.submit(job, model)

    async def _settle(self, job: FileJob, outcome: dict[str, Any]) -> None:
        """Record how a file's ingestion ended (outcomes: deployments/services/ingestion.py). A file that
        failed, was cancelled or was detached meanwhile keeps none of its chunks. A completed file is
        searchable at once; the runner flushes each store once its pipeline ends, so search then
        uses the index."""
        row_id = f"{job.store_id}/{job.file_id}"
        try:
            status = (await self.store_files.get(None, row_id))["status"]
        except NotFoundError:  # detached, or its store deleted, while it was being ingested
            status = None
        if outcome["status"] in ("discarded", "cancelled"):  # cancelled itself is written by cancel_batch
            if status in (None, "cancelled", "failed"):  # not if another replica has taken the file over
                await self._drop_chunks(job)
            return
        if outcome["status"] != "completed" or status != "in_progress":
            await self._drop_chunks(job)
        if status != "in_progress":
            return
        if outcome["status"] == "failed":
            logger.warning("ingesting %s into %s failed: %s", job.file_id, job.store_id, outcome["last_error"]["message"])
        await self.store_files.update(None, row_id, outcome, status=outcome["status"])

    async def _drop_chunks(self, job: FileJob) -> None:
        try:
            await self.vector_io.delete_file(job.store_id, job.file_id)
        except NotFoundError:  # the store is gone, and its chunks with it
            pass

    async def _flush(self, store_id: str) -> None:
        await self.vector_io.flush(store_id)

    async def _still_wanted(self, jobs: list[FileJob]) -> set[tuple[str, str]]:
        mine = await self.store_files.list(None, after=None, limit=100_000, order="asc", status="in_progress",
                                           ingester=self.replica.id)
        return {(record["vector_store_id"], record["id"]) for record in mine["data"]}

    async def resume_orphans(self) -> int:
        """Take over files left `in_progress` by ingress replicas that are gone (crashed, or stopped
        before their pipeline finished) and ingest them again; chunk ids are the file id and position,
        so chunks stored before the replica went are replaced, not doubled. Returns how many were taken."""
        ingesters = await self.store_files.count_by("ingester", status="in_progress")
        taken = 0
        for ingester in ingesters:
            if ingester == self.replica.id or await asyncio.to_thread(self.replica.alive, ingester):
                continue
            orphans = await self.store_files.list(None, after=None, limit=100_000, order="asc", status="in_progress",
                                                  ingester=ingester)
            for record in orphans["data"]:
                row_id = f"{record['vector_store_id']}/{record['id']}"
                try:
                    store = await self.stores.get(None, record["vector_store_id"])
                    file = await self.files.records.get(None, record["id"])
                except NotFoundError as exc:
                    await self.store_files.update(None, row_id, {"status": "failed", "last_error": {
                        "code": "server_error", "message": exc.message}}, status="failed")
                    continue
                if not await self.store_files.set_columns_if(row_id, {"ingester": ingester}, ingester=self.replica.id):
                    continue  # another replica took it over first
                self._submit(store, file, record, await self.models.get(store["embedding_model"]))
                taken += 1
        if taken:
            logger.info("resumed the ingestion of %d files left by stopped replicas", taken)
        return taken

    async def watch_orphans(self, period_s: float) -> None:
        while True:
            try:
                await self.resume_orphans()
            except Exception as exc:  # storage down for a moment: look again next period
                logger.warning("looking for orphaned ingestions failed: %r", exc)
            await asyncio.sleep(period_s)

    @staticmethod
    def _chunk_sizes(model: Model, strategy: dict[str, Any]) -> tuple[int, int]:
        if strategy["type"] == "static":
            static = strategy["static"]
            return (max(1, int(static["max_chunk_size_tokens"] * WORDS_PER_TOKEN)),
                    int(static["chunk_overlap_tokens"] * WORDS_PER_TOKEN))
        context_words = int(model.metadata.get("context_length", 1024) * WORDS_PER_TOKEN)
        max_words = min(AUTO_MAX_WORDS, context_words)
        return max_words, min(AUTO_OVERLAP_WORDS, max_words // 4)

    async def _embed(self, model: Model, texts: list[str]) -> list[list[float]]:
        request = EmbeddingRequest(model=model.identifier, input=texts)
        result = await self.models.client(model).embeddings(request, model.provider_resource_id)
        return [item["embedding"] for item in sorted(result["data"], key=lambda item: item["index"])]

    async def list_files(self, user: Identity | None, store_id: str, *, after: str | None, status: str | None,
                         **page: Any) -> dict[str, Any]:
        await self.stores.get(user, store_id)
        return await self.store_files.list(None, after=f"{store_id}/{after}" if after else None,
                                           vector_store_id=store_id, status=status, **page)

    async def get_file(self, user: Identity | None, store_id: str, file_id: str) -> dict[str, Any]:
        await self.stores.get(user, store_id)
        return await self.store_files.get(None, f"{store_id}/{file_id}")

    async def file_content(self, user: Identity | None, store_id: str, file_id: str) -> dict[str, Any]:
        record = await self.get_file(user, store_id, file_id)
        texts = await self.vector_io.file_chunks(store_id, file_id)
        return {"object": "vector_store.file_content.page", "file_id": file_id, "attributes": record["attributes"],
                "data": [{"type": "text", "text": t} for t in texts], "has_more": False, "next_page": None}

    async def detach(self, user: Identity | None, store_id: str, file_id: str) -> None:
        await self.stores.update(user, store_id, {"last_active_at": int(time.time())})
        await self.store_files.delete(None, f"{store_id}/{file_id}")
        await self.vector_io.delete_file(store_id, file_id)

    # ------------------------------------------------------------ file batches

    async def create_batch(self, user: Identity | None, store_id: str, request: CreateFileBatchRequest) -> dict[str, Any]:
        await self.stores.get(user, store_id)
        for file_id in request.file_ids:  # every file must be readable before the batch exists
            await self.files.records.get(user, file_id)
        record = {"id": f"vsfb_{uuid.uuid4().hex}", "object": "vector_store.file_batch",
                  "created_at": int(time.time()), "vector_store_id": store_id, "cancelled": False}
        await self.batches.insert([self.batches.row(record, None, vector_store_id=store_id)])
        attach = [AttachFileRequest(file_id=file_id, attributes=request.attributes, chunking_strategy=request.chunking_strategy)
                  for file_id in dict.fromkeys(request.file_ids)]
        await self._attach_files(user, store_id, attach, batch_id=record["id"])
        return await self.batch_view(record)

    async def batch_view(self, record: dict[str, Any]) -> dict[str, Any]:
        counts = await self.store_files.count_by("status", vector_store_id=record["vector_store_id"], batch_id=record["id"])
        total = sum(counts.values())
        status = ("in_progress" if counts.get("in_progress") else "cancelled" if record["cancelled"]
                  else "failed" if total and counts.get("failed") == total else "completed")
        view = {k: v for k, v in record.items() if k != "cancelled"}
        return {**view, "status": status, "file_counts": {**{s: counts.get(s, 0) for s in STATUSES}, "total": total}}

    async def get_batch(self, user: Identity | None, store_id: str, batch_id: str) -> dict[str, Any]:
        await self.stores.get(user, store_id)
        record = await self.batches.get(None, batch_id)
        if record["vector_store_id"] != store_id:
            raise NotFoundError(f"File batch '{batch_id}' not found", param="batch_id")
        return record

    async def cancel_batch(self, user: Identity | None, store_id: str, batch_id: str) -> dict[str, Any]:
        """Files still in progress become `cancelled`; their ingestion drops what it inserted."""
        await self.get_batch(user, store_id, batch_id)
        await self.stores.update(user, store_id, {"last_active_at": int(time.time())})
        record = await self.batches.update(None, batch_id, {"cancelled": True})
        pending = await self.store_files.list(None, after=None, limit=10_000, order="asc", vector_store_id=store_id,
                                              batch_id=batch_id, status="in_progress")
        for file in pending["data"]:
            await self.store_files.update(None, f"{store_id}/{file['id']}", {"status": "cancelled"}, status="cancelled")
        return await self.batch_view(record)

    async def list_batch_files(self, user: Identity | None, store_id: str, batch_id: str, *, after: str | None,
                               status: str | None, **page: Any) -> dict[str, Any]:
        await self.get_batch(user, store_id, batch_id)
        return await self.store_files.list(None, after=f"{store_id}/{after}" if after else None, vector_store_id=store_id,
                                           batch_id=batch_id, status=status, **page)

    # ------------------------------------------------------------ search

    async def search(self, user: Identity | None, store_id: str, request: SearchRequest) -> dict[str, Any]:
        store = await self.stores.get(user, store_id)
        text = request.text()
        embedding = None
        if request.search_mode != "keyword":
            embedding = (await self._embed(await self.models.get(store["embedding_model"]), [text]))[0]
        ranking = request.ranking_options
        hits = await self.vector_io.search(store_id, embedding=embedding, text=text, mode=request.search_mode,
                                           limit=request.max_num_results, filters=request.filters,
                                           ef=ranking.ef if ranking else None)
        threshold = ranking.score_threshold if ranking else float("-inf")
        names = {}
        for file_id in {h.file_id for h in hits}:
            try:
                names[file_id] = (await self.files.records.get(None, file_id))["filename"]
            except NotFoundError:
                names[file_id] = ""
        data = [search_result(h.file_id, names[h.file_id], h.score, h.attributes, h.text) for h in hits if h.score >= threshold]
        return {"object": "vector_store.search_results.page", "search_query": [text] if isinstance(request.query, str) else request.query,
                "data": data, "has_more": False, "next_page": None}

    async def close(self) -> None:
        """Wait for ingestions in flight; what a replica stopped too soon leaves is resumed by another."""
        await self.ingestion.close()
