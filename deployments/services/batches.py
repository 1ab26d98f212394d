"""Batches: OpenAI's Batches API over the graph's deployments.

A batch is a record in the `jobs` store naming the replica that runs it (`runner`). That replica
reads the input file, checks it (deployments/services/batch_lines.py), and answers its requests with
the Ray Data pipeline of deployments/services/batch_pipeline.py in a thread. Each answer is stored as a
result row keyed by the batch and line as it lands, so a batch whose replica stopped is taken over
by another, which answers only the lines with no result yet. At the end the results are written as
the output and error files, in OpenAI's line shapes.

Status: validating -> in_progress -> finalizing -> completed; or failed (the file is unusable),
cancelling -> cancelled, expired (the 24 h window passed); cancelled and expired batches keep the
answers they have, and list their unanswered lines in the error file."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator

from deployments.clients import AgentsClient
from deployments.metrics import service_metrics
from deployments.services.batch_lines import MODEL_TYPES, FileErrors, Line, checked_file, parse_lines, request_rows
from deployments.services.batch_pipeline import BatchResources, BatchRun, BatchTargets, run_batch
from deployments.services.files import FileService
from deployments.services.models import ModelService
from deployments.services.replica import Replica
from deployments.tracing import span
from providers.access import Identity
from providers.api.batches import COMPLETION_WINDOW_S, UNFINISHED, CreateBatchRequest, batch_object
from providers.api.errors import APIError, ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.service_configs import BatchesConfig
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

PROGRESS_PERIOD_S = 0.5
CLOSE_WAIT_S = 5.0
FILE_PART_BYTES = 1 << 20
MAX_RUNNING_PIPELINES = 16
NOT_RUN = {"cancelled": ("batch_cancelled", "the batch was cancelled before this request ran"),
           "expired": ("batch_expired", "the completion window ended before this request ran")}


class BatchService:
    def __init__(self, batches: OwnedRecords, results: OwnedRecords, files: FileService, models: ModelService,
                 agents: AgentsClient | None, config: BatchesConfig, replica: Replica, run: BatchRun = run_batch):
        """Each unfinished batch names the replica running it (`replica.id`); one whose replica is
        gone is taken over. `run` answers the requests (run_batch: as Ray Data tasks)."""
        self.batches = batches
        self.results = results
        self.files = files
        self.models = models
        self.agents = agents
        self.config = config
        self.resources = BatchResources(config.batch_size, config.concurrency, config.num_cpus,
                                        config.request_timeout_s)
        self.replica = replica
        self.run = run
        self._running: dict[str, tuple[asyncio.Task, threading.Event]] = {}
        # Pipelines block their thread for the whole batch: they get threads of their own, so
        # the replica's other work in threads (files, datasets, vectors) never waits behind them.
        self._pipelines = ThreadPoolExecutor(max_workers=MAX_RUNNING_PIPELINES, thread_name_prefix="batch")
        self._closing = False

    # ------------------------------------------------------------ API

    async def create(self, user: Identity | None, request: CreateBatchRequest) -> dict[str, Any]:
        """A new batch; with an `idempotency_key` the caller used before, that batch again (a 409 if
        it was asked with other parameters)."""
        batch_id = _batch_id(user, request.idempotency_key)
        if not self.batches.policy.allows(user, "create", "batch", batch_id, user):
            raise PermissionDeniedError("not allowed to create batches")
        try:
            file = await self.files.records.get(user, request.input_file_id)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, param="input_file_id") from None
        if file["purpose"] != "batch":
            raise InvalidRequestError(f"input_file_id: file '{file['id']}' has purpose '{file['purpose']}', "
                                      "a batch needs one uploaded with purpose 'batch'", param="input_file_id")
        if request.endpoint == "/v1/responses" and self.agents is None:
            raise InvalidRequestError("endpoint: this graph serves no /v1/responses", param="endpoint")
        now = int(time.time())
        record = {"id": batch_id, "object": "batch", "endpoint": request.endpoint, "model": None, "errors": None,
                  "input_file_id": file["id"], "completion_window": request.completion_window, "status": "validating",
                  "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                  "expires_at": now + COMPLETION_WINDOW_S, "finalizing_at": None, "completed_at": None,
                  "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                  "request_counts": {"total": 0, "completed": 0, "failed": 0}, "usage": None,
                  "metadata": request.metadata, "owner": user.model_dump(mode="json") if user else None}
        if not await self.batches.insert_new(self.batches.row(record, user, status="validating", runner=self.replica.id)):
            earlier = await self.batches.get(user, batch_id)
            asked = ("input_file_id", "endpoint", "completion_window", "metadata")
            if any(earlier[key] != record[key] for key in asked):
                raise ConflictError("idempotency_key: used before for a batch with other parameters",
                                    param="idempotency_key")
            return batch_object(earlier)
        self._start(batch_id)
        return batch_object(record)

    async def get(self, user: Identity | None, batch_id: str) -> dict[str, Any]:
        return batch_object(await self.batches.get(user, batch_id))

    async def list(self, user: Identity | None, after: str | None, limit: int) -> dict[str, Any]:
        page = await self.batches.list(user, after=after, limit=limit, order="desc")
        return {**page, "data": [batch_object(record) for record in page["data"]]}

    async def cancel(self, user: Identity | None, batch_id: str) -> dict[str, Any]:
        """Ask the batch's runner to stop; it stays `cancelling` until the runner has written what was answered."""
        for _ in range(3):
            record = await self.batches.authorize(user, batch_id, "update")
            if record["status"] == "cancelling":
                return batch_object(record)
            if record["status"] not in ("validating", "in_progress"):
                raise ConflictError(f"batch '{batch_id}' is {record['status']} and cannot be cancelled",
                                    param="batch_id")
            cancelling = {**record, "status": "cancelling", "cancelling_at": int(time.time())}
            if await self.batches.replace(batch_id, cancelling, {"status": record["status"]}, status="cancelling"):
                return batch_object(cancelling)
        raise ConflictError(f"batch '{batch_id}' changed while being cancelled; retry", param="batch_id")

    # ------------------------------------------------------------ running

    def _start(self, batch_id: str) -> None:
        stop = threading.Event()
        task = asyncio.get_running_loop().create_task(self._run(batch_id, stop))
        self._running[batch_id] = (task, stop)
        task.add_done_callback(lambda _: self._running.pop(batch_id, None))

    async def _run(self, batch_id: str, stop: threading.Event) -> None:
        record = await self.batches.load(batch_id)
        owner = Identity.model_validate(record["owner"]) if record["owner"] else None
        with span("batches.run", **{"raystack.batch_id": batch_id, "raystack.endpoint": record["endpoint"]}):
            try:
                outcome = await self._answer_all(record, owner, stop)
                if outcome is not None:
                    await self._finalize(batch_id, owner, outcome)
            except Exception as exc:
                logger.warning("batch %s failed: %r", batch_id, exc)
                message = exc.message if isinstance(exc, APIError) else f"{type(exc).__name__}: {exc}"
                await self._end(batch_id, "failed", errors={"object": "list", "data": [
                    {"code": "server_error", "message": message, "param": None, "line": None}]})

    async def _answer_all(self, record: dict[str, Any], owner: Identity | None, stop: threading.Event) -> str | None:
        """Check and answer the lines without a result; the batch's outcome, or None when this
        replica is closing and leaves the rest to another."""
        batch_id, endpoint = record["id"], record["endpoint"]
        try:
            data = await self.files.provider.get(record["input_file_id"])
        except NotFoundError:
            raise InvalidRequestError(f"the input file '{record['input_file_id']}' is gone") from None
        checked = await asyncio.to_thread(checked_file, data, endpoint, await self._answered(batch_id))
        if isinstance(checked, FileErrors):
            await self._end(batch_id, "failed", errors=checked.errors())
            return None
        models: dict[str, Any] = {}
        for model_id in checked.model_ids:
            try:
                models[model_id] = await self.models.model_of_type(owner, model_id, MODEL_TYPES[endpoint], endpoint)
            except APIError as exc:
                models[model_id] = exc
        prioritized = {model_id for model_id, model in models.items()
                       if not isinstance(model, APIError) and self.models.providers.schedules_by_priority(model.provider_id)}
        rows = await asyncio.to_thread(request_rows, checked.pending, models, prioritized, self.config.priority)
        await self._store_results(batch_id, [row for row in rows if "status_code" in row])
        rows = [row for row in rows if "status_code" not in row]
        if record["status"] == "validating":
            started = {**record, "status": "in_progress", "in_progress_at": int(time.time()),
                       "model": checked.model_ids[0] if len(checked.model_ids) == 1 else None,
                       "request_counts": {"total": checked.total, "completed": 0, "failed": 0}}
            if not await self.batches.replace(batch_id, started, {"status": "validating"}, status="in_progress"):
                return "cancelled"
            record = started
        if record["status"] == "cancelling":
            return "cancelled"
        if rows and not stop.is_set():
            clients = {model_id: (self.models.client(model), model.provider_resource_id)
                       for model_id, model in models.items() if not isinstance(model, APIError)}
            return await self._answer(batch_id, rows, BatchTargets(endpoint, clients, self.agents, owner), stop)
        return None if self._closing else "completed"

    async def _answered(self, batch_id: str) -> set[int]:
        """The line numbers with a result stored."""
        return {int(row_id.rsplit(":", 1)[1]) for row_id in await self.results.ids_where(batch_id=batch_id)}

    async def _answer(self, batch_id: str, rows: list[dict[str, Any]], targets: BatchTargets,
                      stop: threading.Event) -> str | None:
        """Run the pipeline; it goes on only once each output block is stored, so a crash loses
        no more than the blocks in flight."""
        loop = asyncio.get_running_loop()

        def store(results: list[dict[str, Any]]) -> None:  # in the pipeline's thread
            asyncio.run_coroutine_threadsafe(self._store_results(batch_id, results), loop).result()

        traced = contextvars.copy_context()
        pipeline = loop.run_in_executor(self._pipelines, traced.run, self.run, rows, targets, self.resources, store, stop)
        outcome = "completed"
        try:
            while not pipeline.done():
                await asyncio.wait({pipeline}, timeout=PROGRESS_PERIOD_S)
                if not stop.is_set() and (ended := await self._progress(batch_id)):
                    outcome = ended
                    stop.set()
            await pipeline
        finally:
            stop.set()
        return None if self._closing else outcome

    async def _progress(self, batch_id: str) -> str | None:
        """Store the request counts; 'cancelled' or 'expired' when the batch must stop."""
        record = await self.batches.load(batch_id)
        if record["status"] != "in_progress":
            return "cancelled"
        if time.time() >= record["expires_at"]:
            return "expired"
        record["request_counts"] = await self._counts(batch_id, record["request_counts"]["total"])
        if not await self.batches.replace(batch_id, record, {"status": "in_progress"}):
            return "cancelled"
        return None

    async def _counts(self, batch_id: str, total: int) -> dict[str, int]:
        outcomes = await self.results.count_by("outcome", batch_id=batch_id)
        return {"total": total, "completed": outcomes.get("completed", 0), "failed": outcomes.get("failed", 0)}

    async def _store_results(self, batch_id: str, results: list[dict[str, Any]]) -> None:
        if not results:
            return
        outcome = {row["line"]: "completed" if row["status_code"] == 200 else "failed" for row in results}
        await self.results.insert([self.results.row(
            {"id": f"{batch_id}:{int(row['line']):06d}", "line": int(row["line"]), "custom_id": row["custom_id"],
             "status_code": int(row["status_code"]), "request_id": row.get("request_id") or f"req_{uuid.uuid4().hex}",
             "body": row["body"]}, None, batch_id=batch_id, outcome=outcome[row["line"]])
            for row in results])
        service_metrics().batch_requests.inc(len(results))

    # ------------------------------------------------------------ the end

    async def _finalize(self, batch_id: str, owner: Identity | None, outcome: str) -> None:
        """Write the answers as the output and error files, then end the batch as `outcome`."""
        record = await self.batches.load(batch_id)
        if outcome == "completed":
            record.update(status="finalizing", finalizing_at=int(time.time()))
            await self.batches.replace(batch_id, record, status="finalizing")
        unanswered: list[Line] = []
        if outcome in NOT_RUN:
            data = await self.files.provider.get(record["input_file_id"])
            lines = await asyncio.to_thread(parse_lines, data, record["endpoint"])
            answered = await self._answered(batch_id)
            unanswered = [line for line in lines if line.number not in answered] if isinstance(lines, list) else []
        usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
        output = await self._write_file(owner, f"{batch_id}_output.jsonl", self._lines(batch_id, "completed", usage))
        errors = await self._write_file(owner, f"{batch_id}_error.jsonl",
                                        self._lines(batch_id, "failed", usage, unanswered, NOT_RUN.get(outcome)))
        await self._end(batch_id, outcome, output_file_id=output, error_file_id=errors, usage=usage)

    async def _lines(self, batch_id: str, outcome: str, usage: dict[str, Any], unanswered: list[Line] = (),
                     reason: tuple[str, str] | None = None) -> AsyncIterator[bytes]:
        """The file's JSONL in parts of about FILE_PART_BYTES, adding each answer's usage to `usage`."""
        part: list[bytes] = []
        size = 0
        after = None
        while True:
            page = await self.results.list(None, after=after, limit=500, order="asc", batch_id=batch_id,
                                           outcome=outcome)
            for result in page["data"]:
                body = json.loads(result["body"])
                _add_usage(usage, body.get("usage") if result["status_code"] == 200 else None)
                line = {"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": result["custom_id"],
                        "response": {"status_code": result["status_code"], "request_id": result["request_id"],
                                     "body": body}, "error": None}
                part.append(json.dumps(line).encode() + b"\n")
                size += len(part[-1])
                if size >= FILE_PART_BYTES:
                    yield b"".join(part)
                    part, size = [], 0
            if not page["has_more"]:
                break
            after = page["last_id"]
        for line in unanswered:
            code, message = reason
            part.append(json.dumps({"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": line.custom_id,
                                    "response": None, "error": {"code": code, "message": message}}).encode() + b"\n")
        if part:
            yield b"".join(part)

    async def _write_file(self, owner: Identity | None, filename: str, parts: AsyncIterator[bytes]) -> str | None:
        """The file's id, or None when it would be empty (as OpenAI leaves error_file_id unset)."""
        first = await anext(parts, None)
        if first is None:
            return None

        async def all_parts() -> AsyncIterator[bytes]:
            yield first
            async for part in parts:
                yield part

        return (await self.files.upload(owner, filename, "batch_output", all_parts()))["id"]

    async def _end(self, batch_id: str, status: str, **changes: Any) -> None:
        record = await self.batches.load(batch_id)
        now = int(time.time())
        stamp = {"completed": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at",
                 "expired": "expired_at"}[status]
        record.update(status=status, **{stamp: now}, **changes)
        if status != "failed":
            record["request_counts"] = await self._counts(batch_id, record["request_counts"]["total"])
        await self.batches.replace(batch_id, record, status=status, runner="")
        service_metrics().batches.inc(tags={"status": status})
        logger.info("batch %s %s: %s", batch_id, status, record["request_counts"])

    # ------------------------------------------------------------ takeover

    async def resume_orphans(self) -> int:
        """Take over unfinished batches whose replica is gone (crashed, or stopped before it
        finished); they go on from the lines with no result yet. Returns how many were taken."""
        taken = 0
        for status in UNFINISHED:
            runners = await self.batches.count_by("runner", status=status)
            for runner in runners:
                if runner == self.replica.id or (runner and await asyncio.to_thread(self.replica.alive, runner)):
                    continue
                for batch_id in await self.batches.ids_where(status=status, runner=runner):
                    if await self.batches.set_columns_if(batch_id, {"runner": runner}, runner=self.replica.id):
                        self._start(batch_id)
                        taken += 1
        if taken:
            logger.info("took over %d batches left by stopped replicas", taken)
        return taken

    async def watch_orphans(self) -> None:
        while True:
            try:
                await self.resume_orphans()
            except Exception as exc:  # storage down for a moment: look again next period
                logger.warning("looking for orphaned batches failed: %r", exc)
            await asyncio.sleep(self.config.resume_check_period_s)

    async def close(self) -> None:
        """Stop the batches this replica runs, storing the answers that land within `CLOSE_WAIT_S`
        (the deployments they wait on may be stopping too), and hand them over: the next replica
        to look takes them at once and asks again what was in flight."""
        self._closing = True
        running = list(self._running.items())
        for _, (_, stop) in running:
            stop.set()
        tasks = [task for _, (task, _) in running]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
            for task in late:
                task.cancel()
        for batch_id, _ in running:
            await self.batches.set_columns_if(batch_id, {"runner": self.replica.id}, runner="")
        self._pipelines.shutdown(wait=False, cancel_futures=True)


def _batch_id(user: Identity | None, idempotency_key: str | None) -> str:
    """A new id, or the one the caller's idempotency key always names (per caller)."""
    if idempotency_key is None:
        return f"batch_{uuid.uuid4().hex}"
    named = json.dumps([user.principal if user else None, idempotency_key])
    return f"batch_{hashlib.sha256(named.encode()).hexdigest()[:32]}"


def _add_usage(usage: dict[str, Any], found: dict[str, Any] | None) -> None:
    if not found:
        return
    input_tokens = found.get("prompt_tokens", found.get("input_tokens")) or 0
    output_tokens = found.get("completion_tokens", found.get("output_tokens")) or 0
    details = found.get("prompt_tokens_details") or found.get("input_tokens_details") or {}
    usage["input_tokens"] += input_tokens
    usage["output_tokens"] += output_tokens
    usage["input_tokens_details"]["cached_tokens"] += details.get("cached_tokens") or 0
    usage["total_tokens"] += input_tokens + output_tokens
