"""Benchmarks and evaluations. A benchmark (dataset + scoring functions) lives in the metadata
store; an evaluation job is recorded in the `jobs` store, generates the candidate's answers with
the Ray Data pipeline of deployments/services/eval_generation.py (in a thread of the replica that took the
job), then scores them. Progress is stored as batches land; a job whose replica died ends failed."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

from deployments.metrics import service_metrics
from deployments.services.datasets import DatasetService
from deployments.services.eval_generation import Candidate, Generation, GenerationResources, messages_of, run_generation
from deployments.services.models import ModelService
from deployments.services.replica import Replica
from deployments.services.scoring import ScoringService
from deployments.services.scoring_functions import ScoringParams, check_scored_rows
from deployments.tracing import span
from providers.access import Identity
from providers.api.errors import InvalidRequestError, NotFoundError, ProviderError
from providers.api.eval import Benchmark, BenchmarkConfig, EvaluateRowsRequest, RegisterBenchmarkRequest
from providers.api.inference import ChatCompletionRequest
from providers.storage.owned_records import OwnedRecords
from providers.storage.owned_resources import OwnedResources

logger = logging.getLogger("ray.serve")

FINISHED = ("completed", "failed", "cancelled")
ABANDONED = "the replica running this evaluation stopped before it finished"
PROGRESS_PERIOD_S = 0.5
ROWS_AT_ONCE = 8  # evaluate_rows: rows sent to the candidate at once


class EvalService:
    def __init__(self, models: ModelService, benchmarks: OwnedResources[Benchmark], jobs: OwnedRecords,
                 datasets: DatasetService, scoring: ScoringService, resources: GenerationResources, replica: Replica,
                 generation: Generation = run_generation):
        """Each job names the replica that runs it (`replica.id`); a job whose replica is gone is
        abandoned. `generation` runs the candidate over the dataset (run_generation: as Ray Data tasks)."""
        self.models = models
        self.benchmarks = benchmarks
        self.jobs = jobs
        self.datasets = datasets
        self.scoring = scoring
        self.resources = resources
        self.replica = replica
        self.generation = generation
        self._running: dict[str, threading.Event] = {}

    async def register(self, user: Identity | None, request: RegisterBenchmarkRequest) -> Benchmark:
        self.benchmarks.check_create(user, request.benchmark_id)
        await self.datasets.location(user, request.dataset_id, "dataset_id")
        await self.scoring.checked(user, {fn: None for fn in request.scoring_functions
                                          if not fn.startswith("llm-as-judge")}, "scoring_functions")
        benchmark = Benchmark(identifier=request.benchmark_id, provider_resource_id=request.provider_benchmark_id
                              or request.benchmark_id, dataset_id=request.dataset_id,
                              scoring_functions=request.scoring_functions, metadata=request.metadata or {}, owner=user)
        return await self.benchmarks.add(benchmark)

    async def unregister(self, user: Identity | None, benchmark_id: str) -> None:
        await self.benchmarks.get(user, benchmark_id, "delete")
        await self.benchmarks.remove(benchmark_id)

    async def run(self, user: Identity | None, benchmark_id: str, config: BenchmarkConfig) -> dict[str, Any]:
        benchmark = await self.benchmarks.get(user, benchmark_id)
        candidate, functions = await self._prepared(user, benchmark.scoring_functions, config)
        dataset, dataset_dir = await self.datasets.location(user, benchmark.dataset_id, "benchmark_id")
        total = min(dataset.metadata.get("num_rows", 0), config.num_examples or 1 << 62)
        job_id = f"evaljob-{uuid.uuid4().hex[:20]}"
        record = {"id": job_id, "job_id": job_id, "benchmark_id": benchmark_id, "status": "in_progress",
                  "runner": self.replica.id, "created_at": int(time.time()), "completed_at": None,
                  "progress": {"generated": 0, "total": total, "rows_per_second": None}, "error": None, "result": None}
        await self.jobs.insert([self.jobs.row(record, user, benchmark_id=benchmark_id)])
        stop = self._running[job_id] = threading.Event()
        asyncio.get_running_loop().create_task(self._evaluate(record, user, dataset_dir, config, candidate, functions,
                                                              stop))
        return _job(record)

    async def status(self, user: Identity | None, benchmark_id: str, job_id: str) -> dict[str, Any]:
        return _job(await self._job(user, benchmark_id, job_id))

    async def jobs_of(self, user: Identity | None, benchmark_id: str, after: str | None, limit: int) -> dict[str, Any]:
        """The caller's jobs of a benchmark, newest first."""
        await self.benchmarks.get(user, benchmark_id)
        page = await self.jobs.list(user, after=after, limit=limit, order="desc", benchmark_id=benchmark_id)
        return {**page, "data": [{**_job(r), "id": r["id"], "benchmark_id": benchmark_id, "created_at": r["created_at"],
                                  "completed_at": r["completed_at"]} for r in page["data"]]}

    async def result(self, user: Identity | None, benchmark_id: str, job_id: str) -> dict[str, Any]:
        record = await self._job(user, benchmark_id, job_id)
        if record["status"] != "completed":
            raise InvalidRequestError(f"job_id: job '{job_id}' is {record['status']}, it has no result yet"
                                      if record["status"] == "in_progress" else
                                      f"job_id: job '{job_id}' ended {record['status']}: {record['error']}",
                                      param="job_id")
        return record["result"]

    async def cancel(self, user: Identity | None, benchmark_id: str, job_id: str) -> None:
        record = await self._job(user, benchmark_id, job_id)
        await self.jobs.authorize(user, job_id, "update")
        if record["status"] in FINISHED:
            raise InvalidRequestError(f"job_id: job '{job_id}' has already ended ({record['status']})", param="job_id")
        stop = self._running.get(job_id)
        if stop is not None:
            stop.set()
        await self.jobs.replace(job_id, {**record, "status": "cancelled", "completed_at": int(time.time())})

    async def evaluate_rows(self, user: Identity | None, benchmark_id: str, request: EvaluateRowsRequest) -> dict[str, Any]:
        """Generate and score the given rows within the request (for small sets)."""
        await self.benchmarks.get(user, benchmark_id)
        candidate, functions = await self._prepared(user, request.scoring_functions, request.benchmark_config)
        check_scored_rows(functions, request.input_rows, "input_rows", generated=True)
        gate = asyncio.Semaphore(ROWS_AT_ONCE)

        async def generate(row: dict[str, Any]) -> str:
            async with gate:
                return await self._generate_one(candidate, row)

        replies = await asyncio.gather(*(generate(row) for row in request.input_rows))
        generations = [{"generated_answer": text} for text in replies]
        scored = [{**row, **generation} for row, generation in zip(request.input_rows, generations)]
        return {"generations": generations, "scores": await self.scoring.score(user, scored, functions)}

    async def _prepared(self, user: Identity | None, function_ids: list[str],
                        config: BenchmarkConfig) -> tuple[Candidate, dict[str, ScoringParams]]:
        model = await self.models.model_of_type(user, config.eval_candidate.model, "llm", "an eval candidate",
                                                "benchmark_config.eval_candidate.model")
        functions = await self.scoring.checked(user, {fn: config.scoring_params.get(fn) for fn in function_ids},
                                               "benchmark_config.scoring_params")
        system = config.eval_candidate.system_message
        candidate = Candidate(model.identifier, model.provider_resource_id, self.models.client(model),
                              config.eval_candidate.sampling_params.chat_options(), system.content if system else None)
        return candidate, functions

    async def _generate_one(self, candidate: Candidate, row: dict[str, Any]) -> str:
        request = ChatCompletionRequest(model=candidate.model_id, messages=messages_of(row, candidate.system_message),
                                        **candidate.sampling)
        reply = await candidate.inference.chat_completion(request, candidate.provider_model_id)
        return reply["choices"][0]["message"]["content"] or ""

    async def _evaluate(self, record: dict[str, Any], user: Identity | None, dataset_dir: str, config: BenchmarkConfig,
                        candidate: Candidate, functions: dict[str, ScoringParams], stop: threading.Event) -> None:
        job_id = record["id"]
        try:
            with span("eval.generate", **{"raystack.job_id": job_id, "raystack.model": candidate.model_id}):
                generations = await self._generations(record, dataset_dir, config, candidate, stop)
            if stop.is_set():
                return
            if generations and all("error" in g for g in generations):
                raise ProviderError(f"every generation failed, the first with: {generations[0]['error']}")
            rows = await self._scored_rows(user, record["benchmark_id"], generations)
            scores = await self.scoring.score(user, rows, functions)
            record.update(status="completed", result={"generations": generations, "scores": scores})
        except Exception as exc:
            logger.warning("evaluation %s failed: %r", job_id, exc)
            record.update(status="failed", error=getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
        finally:
            self._running.pop(job_id, None)
        if not stop.is_set():
            record["completed_at"] = int(time.time())
            await self.jobs.replace(job_id, record)

    async def _generations(self, record: dict[str, Any], dataset_dir: str, config: BenchmarkConfig,
                           candidate: Candidate, stop: threading.Event) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        pipeline = asyncio.ensure_future(asyncio.to_thread(
            self.generation, dataset_dir, config.num_examples, candidate, self.resources,
            lambda rows: loop.call_soon_threadsafe(arrived.put_nowait, rows), stop))
        generations: list[dict[str, Any]] = []
        started, stored_at = time.monotonic(), 0.0
        while not (pipeline.done() and arrived.empty()):
            try:
                rows = await asyncio.wait_for(arrived.get(), timeout=PROGRESS_PERIOD_S)
            except asyncio.TimeoutError:
                rows = []
            generations.extend(rows)
            if rows:
                service_metrics().eval_rows.inc(len(rows), tags={"benchmark_id": record["benchmark_id"]})
            if time.monotonic() - stored_at >= PROGRESS_PERIOD_S and not stop.is_set():
                elapsed = time.monotonic() - started
                record["progress"] = {**record["progress"], "generated": len(generations),
                                      "rows_per_second": len(generations) / elapsed if elapsed else None}
                await self.jobs.replace(record["id"], record)
                stored_at = time.monotonic()
        await pipeline
        record["progress"] = {**record["progress"], "generated": len(generations), "total": len(generations),
                              "rows_per_second": len(generations) / max(1e-9, time.monotonic() - started)}
        return [{"generated_answer": g["generated_answer"], **({"error": g["error"]} if g["error"] else {})}
                for g in generations]

    async def _scored_rows(self, user: Identity | None, benchmark_id: str,
                           generations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The dataset's rows, in order, each with its generation."""
        benchmark = await self.benchmarks.get(user, benchmark_id)
        rows: list[dict[str, Any]] = []
        while len(rows) < len(generations):
            page = await self.datasets.iterrows(user, benchmark.dataset_id, len(rows), len(generations) - len(rows))
            rows.extend(page["data"])
            if not page["has_more"]:
                break
        return [{**row, "generated_answer": g["generated_answer"] or ""} for row, g in zip(rows, generations)]

    async def _job(self, user: Identity | None, benchmark_id: str, job_id: str) -> dict[str, Any]:
        record = await self.jobs.get(user, job_id)
        if record["benchmark_id"] != benchmark_id:
            raise NotFoundError(f"Job '{job_id}' not found", param="job_id")
        if (record["status"] == "in_progress" and record["runner"] != self.replica.id
                and not await asyncio.to_thread(self.replica.alive, record["runner"])):
            record = {**record, "status": "failed", "error": ABANDONED, "completed_at": int(time.time())}
            await self.jobs.replace(job_id, record)
        return record


def _job(record: dict[str, Any]) -> dict[str, Any]:
    """Llama Stack's Job, plus progress and the failure's error."""
    return {"job_id": record["job_id"], "status": record["status"], "progress": record["progress"],
            "error": record["error"]}
