"""OpenAI fine-tuning jobs (`/v1/fine_tuning/jobs`) as post-training jobs. The training file's chat
lines are checked and stored as the job's dataset. The job runs as any post-training job, with the
provider's `job_defaults` where OpenAI's request leaves the choice to the server. Its record answers
in OpenAI's shapes: the job, its events (derived from the run's steps and checkpoints), and its
checkpoints (each a model of the owner's once the job succeeds)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime
from typing import Any

from deployments.services.datasets import DatasetService
from deployments.services.files import FileService
from deployments.services.pages import page_after
from deployments.services.post_training import PostTrainingService, checkpoint_model
from providers.access import Identity
from providers.api.datasets import RegisterDatasetRequest, RowsDataSource
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.fine_tuning import STATUSES, CreateFineTuningJobRequest, Hyperparameters
from providers.api.post_training import (
    FINISHED,
    DataConfig,
    LoraFinetuningConfig,
    OptimizerConfig,
    SupervisedFineTuneRequest,
    TrainingConfig,
)

_ROLES = ("system", "user", "assistant")
_UNCAPPED_STEPS = 10**9  # OpenAI's jobs run every epoch to its end


class FineTuningService:
    def __init__(self, post_training: PostTrainingService, files: FileService, datasets: DatasetService):
        self.post_training = post_training
        self.files = files
        self.datasets = datasets

    async def create(self, user: Identity | None, request: CreateFineTuningJobRequest) -> dict[str, Any]:
        hyperparameters = _hyperparameters(request)
        defaults = await self.post_training.provider.job_defaults()
        job_id = f"ftjob-{random.randbytes(12).hex()}"
        datasets: list[str] = []  # removed again if the job does not start
        try:
            for kind, file_id in (("training", request.training_file), ("validation", request.validation_file)):
                if file_id:
                    datasets.append(await self._dataset(user, job_id, kind, file_id))
            multiplier = _chosen(hyperparameters.learning_rate_multiplier, 1.0)
            job = _job(request, job_id, datasets, defaults, hyperparameters, multiplier)
            openai = {"training_file": request.training_file, "validation_file": request.validation_file,
                      "suffix": request.suffix, "metadata": request.metadata, "learning_rate_multiplier": multiplier}
            seed = request.seed if request.seed is not None else random.randrange(2**31)
            record = await self.post_training.start(user, job, seed, openai)
        except Exception:
            for dataset_id in datasets:
                await self.datasets.delete(user, dataset_id)
            raise
        return job_object(record)

    async def _dataset(self, user: Identity | None, job_id: str, kind: str, file_id: str) -> str:
        """The file's chat lines as the job's `<job id>-<kind>` dataset, owned by the caller."""
        param = f"{kind}_file"
        try:
            record, content = await self.files.read(user, file_id)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, param=param) from None
        if record["purpose"] != "fine-tune":
            raise InvalidRequestError(f"{param}: file '{file_id}' was uploaded with purpose '{record['purpose']}'; "
                                      "fine-tuning reads files of purpose 'fine-tune'", param=param)
        rows = await asyncio.to_thread(chat_rows, content, param)
        dataset = await self.datasets.register(user, RegisterDatasetRequest(
            dataset_id=f"{job_id}-{kind}", purpose="post-training/messages", source=RowsDataSource(rows=rows),
            metadata={"fine_tuning_job_id": job_id, "file_id": file_id}))
        return dataset.identifier

    async def retrieve(self, user: Identity | None, job_id: str) -> dict[str, Any]:
        return job_object(await self._record(user, job_id))

    async def list(self, user: Identity | None, after: str | None, limit: int) -> dict[str, Any]:
        page = await self.post_training.page(user, after, limit)
        return {"object": "list", "data": [job_object(r) for r in page["data"]], "has_more": page["has_more"]}

    async def cancel(self, user: Identity | None, job_id: str) -> dict[str, Any]:
        return job_object(await self.post_training.cancel(user, job_id, param="fine_tuning_job_id"))

    async def events(self, user: Identity | None, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        return page_after(job_events(await self._record(user, job_id)), after, limit,
                          f"after: no event '{after}' to list after")

    async def checkpoints(self, user: Identity | None, job_id: str, after: str | None, limit: int) -> dict[str, Any]:
        record = await self._record(user, job_id)
        items = [_checkpoint(record, i) for i in range(len(record["checkpoints"]))] \
            if record["status"] == "completed" else []
        return page_after(items[::-1], after, limit, f"after: no checkpoint '{after}' to list after")

    async def _record(self, user: Identity | None, job_id: str) -> dict[str, Any]:
        try:
            return await self.post_training.record(user, job_id)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, param="fine_tuning_job_id") from None


def chat_rows(content: bytes, param: str) -> list[dict[str, Any]]:
    """The file's JSONL chat examples as training rows; a 400 naming the first bad line."""
    rows = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError:
            raise InvalidRequestError(f"{param}: line {number} is not JSON", param=param) from None
        problem = _chat_problem(example)
        if problem:
            raise InvalidRequestError(f"{param}: line {number}: {problem}", param=param)
        rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in example["messages"]]})
    if not rows:
        raise InvalidRequestError(f"{param}: the file holds no examples", param=param)
    return rows


def _chat_problem(example: Any) -> str | None:
    messages = example.get("messages") if isinstance(example, dict) else None
    if not isinstance(messages, list) or not messages:
        return 'expected {"messages": [{"role": ..., "content": ...}, ...]}'
    for j, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES or not isinstance(message.get("content"), str):
            return f"messages.{j}: expected {{role: system|user|assistant, content: string}}"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's: the answer the model learns"
    return None


def _job(request: CreateFineTuningJobRequest, job_id: str, datasets: list[str], defaults: dict[str, Any],
         hyperparameters: Hyperparameters, multiplier: float) -> SupervisedFineTuneRequest:
    """The post-training job of an OpenAI one: `datasets` holds its training and validation rows."""
    algorithm = None if defaults["algorithm"] == "full" else LoraFinetuningConfig(
        lora_attn_modules=defaults["lora_attn_modules"], apply_lora_to_mlp=defaults["lora_apply_to_mlp"],
        apply_lora_to_output=defaults["lora_apply_to_output"], rank=defaults["lora_rank"], alpha=defaults["lora_alpha"])
    data = DataConfig(dataset_id=datasets[0], validation_dataset_id=datasets[1] if len(datasets) > 1 else None,
                      shuffle=True, batch_size=_chosen(hyperparameters.batch_size, defaults["batch_size"]))
    return SupervisedFineTuneRequest(job_uuid=job_id, model=request.model, algorithm_config=algorithm,
                                     training_config=TrainingConfig(
        n_epochs=_chosen(hyperparameters.n_epochs, defaults["n_epochs"]), max_steps_per_epoch=_UNCAPPED_STEPS,
        dtype=defaults["dtype"], max_seq_len=defaults["max_seq_len"], data_config=data,
        optimizer_config=OptimizerConfig(lr=defaults["learning_rate"] * multiplier)))


def _hyperparameters(request: CreateFineTuningJobRequest) -> Hyperparameters:
    method = request.method
    if method is not None and method.type != "supervised":
        raise InvalidRequestError(f"method.type: '{method.type}' is not supported (supported: supervised)",
                                  param="method.type")
    chosen = method.supervised.hyperparameters if method and method.supervised else None
    if chosen is not None and request.hyperparameters is not None:
        raise InvalidRequestError("hyperparameters: give them in method.supervised.hyperparameters only",
                                  param="hyperparameters")
    return chosen or request.hyperparameters or Hyperparameters()


def _chosen(value: Any, default: Any) -> Any:
    return default if value in (None, "auto") else value


def job_object(record: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's fine-tuning job of a post-training job's record (an OpenAI job's or Llama Stack's)."""
    openai = record.get("openai") or {}
    stored = record.get("hyperparameters") or {}
    hyperparameters = {"n_epochs": stored.get("n_epochs"), "batch_size": stored.get("batch_size"),
                       "learning_rate_multiplier": openai.get("learning_rate_multiplier")}
    finished = record["status"] in FINISHED
    return {
        "id": record["job_uuid"], "object": "fine_tuning.job", "model": record["model"],
        "created_at": _epoch(record["scheduled_at"]), "status": STATUSES[record["status"]],
        "finished_at": _epoch(record["completed_at"]) if finished else None,
        "estimated_finish": None if finished else _estimated_finish(record),
        "fine_tuned_model": record.get("fine_tuned_model"),
        "error": {"code": "training_failed", "message": record["error"], "param": None} if record["error"] else None,
        "hyperparameters": hyperparameters,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        "organization_id": (record.get("owner") or {}).get("principal", "local"),
        "result_files": [], "seed": record.get("seed"),
        "trained_tokens": record.get("trained_tokens") if finished else None,
        "training_file": openai.get("training_file"), "validation_file": openai.get("validation_file"),
        "integrations": [], "metadata": openai.get("metadata"), "user_provided_suffix": openai.get("suffix"),
    }


def job_events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's events, newest first: created, started, one per optimizer step (type `metrics`,
    with the step and its loss), one per checkpoint, and its end."""
    job_id, total = record["job_uuid"], record.get("total_steps")
    timed: list[tuple[float, dict[str, Any]]] = []

    def event(key: str, at: float, message: str, level: str = "info", kind: str = "message", data=None) -> None:
        timed.append((at, {"object": "fine_tuning.job.event", "id": f"ftevent-{job_id}-{key}", "created_at": int(at),
                           "level": level, "message": message, "type": kind, "data": data or {}}))

    event("created", _seconds(record["scheduled_at"]), f"Created fine-tuning job: {job_id}")
    if record["started_at"]:
        event("started", _seconds(record["started_at"]), "Fine-tuning job started")
    for step in record["progress"]:
        event(f"step-{step['step']}", step["time"], f"Step {step['step']}/{total or '?'}: training loss={step['loss']:.4f}",
              kind="metrics", data={"step": step["step"], "total_steps": total, "epoch": step["epoch"],
                                    "train_loss": step["loss"], "tokens": step["tokens"],
                                    "tokens_per_second": step["tokens_per_second"]})
    for checkpoint in record["checkpoints"]:
        validation = f", validation loss={checkpoint['valid_loss']:.4f}" if checkpoint.get("valid_loss") is not None else ""
        event(f"checkpoint-{checkpoint['epoch']}", checkpoint["created_at"],
              f"Checkpoint created at step {checkpoint.get('step')} (epoch {checkpoint['epoch'] + 1}){validation}",
              data={"step": checkpoint.get("step"), "train_loss": checkpoint.get("train_loss"),
                    "valid_loss": checkpoint.get("valid_loss")})
    if record["status"] in FINISHED:
        ended = _seconds(record["completed_at"])
        if record["status"] == "completed":
            if record.get("fine_tuned_model"):
                event("model", ended, f"New fine-tuned model created: {record['fine_tuned_model']}")
            event("end", ended, "The job has successfully completed")
        elif record["status"] == "failed":
            event("end", ended, f"The job failed: {record['error']}", level="error")
        else:
            event("end", ended, "The job was cancelled")
    timed.sort(key=lambda pair: pair[0])
    return [e for _, e in reversed(timed)]


def _checkpoint(record: dict[str, Any], index: int) -> dict[str, Any]:
    checkpoint = record["checkpoints"][index]
    step = checkpoint.get("step")
    return {"object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{record['job_uuid']}-{checkpoint['epoch']}",
            "created_at": int(checkpoint["created_at"]), "fine_tuning_job_id": record["job_uuid"],
            "fine_tuned_model_checkpoint": checkpoint_model(record, index), "step_number": step,
            "metrics": {"step": step, "train_loss": checkpoint.get("train_loss"),
                        "valid_loss": checkpoint.get("valid_loss"), "full_valid_loss": checkpoint.get("valid_loss")}}


def _estimated_finish(record: dict[str, Any]) -> int | None:
    """When the job ends at its pace so far; None before its first step."""
    progress, total = record["progress"], record.get("total_steps")
    if not progress or not total or not record["started_at"]:
        return None
    started = _seconds(record["started_at"])
    per_step = (progress[-1]["time"] - started) / progress[-1]["step"]
    return int(started + per_step * total)


def _seconds(value: str | float) -> float:
    return value if isinstance(value, (int, float)) else datetime.fromisoformat(value).timestamp()


def _epoch(value: str | float | None) -> int | None:
    return None if value is None else int(_seconds(value))
