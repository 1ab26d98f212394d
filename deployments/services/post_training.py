"""Post-training jobs: the request is checked and the job recorded here (owned, in the `jobs`
store); the training runs as a detached actor of the post-training provider. Each read of an
unfinished job fetches the actor's live state and stores it, so status, progress and checkpoints
survive restarts of the ingress, and a job whose actor vanished (the cluster restarted) ends failed.
The replica that starts a job also follows it to its end, so that a finished LoRA job's adapter is a
model (`fine_tuned_model`) as soon as it is done, whoever asks."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deployments.clients import PostTrainingClient, ProviderDirectory
from deployments.services.datasets import DatasetService
from deployments.services.models import ModelService
from providers.access import Identity
from providers.api.errors import APIError, InvalidRequestError, PermissionDeniedError
from providers.api.models import Model
from providers.api.post_training import FINISHED, LoraFinetuningConfig, SupervisedFineTuneRequest, TrainingConfig
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

LOST = "the job's training run is gone: the Ray cluster restarted while it ran"
FOLLOW_PERIOD_S = 2.0
_SUPPORTED_MODEL_TYPES = ("llama",)


class PostTrainingService:
    def __init__(self, records: OwnedRecords, provider: PostTrainingClient, models: ModelService,
                 providers: ProviderDirectory, datasets: DatasetService):
        """`providers` tells which provider serves a base model, and with what config."""
        self.records = records
        self.provider = provider
        self.models = models
        self.providers = providers
        self.datasets = datasets
        self._followed: set[asyncio.Task] = set()

    async def supervised_fine_tune(self, user: Identity | None, request: SupervisedFineTuneRequest) -> dict[str, Any]:
        record = await self.start(user, request)
        return {"job_uuid": record["job_uuid"]}

    async def start(self, user: Identity | None, request: SupervisedFineTuneRequest, seed: int = 0,
                    openai: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record and launch the job; its stored record. `openai` holds an OpenAI job's own fields
        (training and validation files, suffix, metadata), kept in the record for its routes."""
        job_uuid = request.job_uuid or f"ft-{uuid.uuid4().hex[:20]}"
        if not self.records.policy.allows(user, "create", "post_training_job", job_uuid, user):
            raise PermissionDeniedError("not allowed to start post-training jobs", param="job_uuid")
        algorithm = request.algorithm_config
        if algorithm is not None and not isinstance(algorithm, LoraFinetuningConfig):
            raise InvalidRequestError(f"algorithm_config.type: '{algorithm.type}' is not supported (supported: LoRA, "
                                      "or no algorithm_config for full fine-tuning)", param="algorithm_config.type")
        checkpoint_dir = await self._weights(user, request.model)
        if algorithm is not None and algorithm.apply_lora_to_output and _tied(checkpoint_dir):
            raise InvalidRequestError(f"algorithm_config.apply_lora_to_output: '{request.model}' ties its output "
                                      "projection to its embeddings, which LoRA cannot adapt",
                                      param="algorithm_config.apply_lora_to_output")
        training = request.training_config
        data = training.data_config
        dataset, dataset_dir = await self.datasets.location(user, data.dataset_id,
                                                            "training_config.data_config.dataset_id")
        validation_dir = None
        if data.validation_dataset_id:
            _, validation_dir = await self.datasets.location(user, data.validation_dataset_id,
                                                             "training_config.data_config.validation_dataset_id")
        spec = _train_spec(request, checkpoint_dir, seed)
        record = {"id": job_uuid, "job_uuid": job_uuid, "status": "scheduled", "scheduled_at": _now(),
                  "started_at": None, "completed_at": None, "model": request.model, "dataset_id": data.dataset_id,
                  "validation_dataset_id": data.validation_dataset_id,
                  "algorithm": algorithm.type if algorithm else "full", "resources_allocated": None, "seed": seed,
                  "hyperparameters": {"n_epochs": training.n_epochs, "batch_size": data.batch_size,
                                      "learning_rate": training.optimizer_config.lr},
                  "total_steps": None, "trained_tokens": 0, "progress": [], "checkpoints": [], "error": None,
                  "fine_tuned_model": None, "openai": openai, "owner": user.model_dump(mode="json") if user else None}
        if not await self.records.insert_new(self.records.row(record, user)):
            raise InvalidRequestError(f"job_uuid: a job '{job_uuid}' exists already", param="job_uuid")
        try:
            resources = await self.provider.start(job_uuid, spec, dataset_dir, validation_dir, data.shuffle,
                                                  bool(data.train_on_input))
        except Exception as exc:
            await self._store({**record, "status": "failed", "completed_at": _now(), "error": f"could not start: {exc}"})
            raise
        record = {**record, "resources_allocated": resources,
                  "total_steps": _total_steps(training, dataset.metadata.get("num_rows"), resources["num_workers"])}
        await self._store(record)
        follower = asyncio.create_task(self._follow(job_uuid))
        self._followed.add(follower)
        follower.add_done_callback(self._followed.discard)
        return record

    async def _follow(self, job_uuid: str) -> None:
        """Refresh the job until it ends, so its end (and its model) is stored without a read."""
        while True:
            await asyncio.sleep(FOLLOW_PERIOD_S)
            try:
                record = await self.records.load(job_uuid)  # as stored now: a cancel elsewhere is seen
                if record is None or record["status"] in FINISHED:
                    return
                await self._fresh(record)
            except Exception:  # the store or the provider is restarting: the next round, or a read, tries again
                logger.warning("post-training job %s: could not refresh its state", job_uuid, exc_info=True)

    async def status(self, user: Identity | None, job_uuid: str) -> dict[str, Any]:
        return _public(await self.record(user, job_uuid))

    async def record(self, user: Identity | None, job_uuid: str) -> dict[str, Any]:
        """The job's stored record, refreshed from its run."""
        return await self._fresh(await self.records.get(user, job_uuid))

    async def artifacts(self, user: Identity | None, job_uuid: str) -> dict[str, Any]:
        return {"job_uuid": job_uuid, "checkpoints": _public(await self.record(user, job_uuid))["checkpoints"]}

    async def list(self, user: Identity | None) -> dict[str, Any]:
        page = await self.page(user, after=None, limit=100)
        return {"data": [{"job_uuid": r["job_uuid"], "status": r["status"]} for r in page["data"]]}

    async def page(self, user: Identity | None, after: str | None, limit: int) -> dict[str, Any]:
        """The caller's jobs, newest first, each refreshed from its run."""
        page = await self.records.list(user, after=after, limit=limit, order="desc")
        return {**page, "data": await asyncio.gather(*(self._fresh(r) for r in page["data"]))}

    async def cancel(self, user: Identity | None, job_uuid: str, param: str = "job_uuid") -> dict[str, Any]:
        record = await self.records.authorize(user, job_uuid, "update")
        record = await self._fresh(record)
        if record["status"] in FINISHED:
            raise InvalidRequestError(f"{param}: job '{job_uuid}' has already ended ({record['status']})", param=param)
        await self.provider.cancel(job_uuid)
        record = {**record, "status": "cancelled", "completed_at": _now()}
        await self._store(record)
        return record

    async def _fresh(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The record with the run's live state merged in and stored; a finished run's actor is let go.
        Refreshes race (the follower, reads, other replicas): only one that finds the record as it
        loaded it stores, so a finished job is never stored again as running, nor as lost once the
        refresh that finished it let its actor go; the others return what was stored."""
        if stored["status"] in FINISHED:
            return stored
        live = await self.provider.state(stored["job_uuid"])
        if live is None:
            record = {**stored, "status": "failed", "error": LOST, "completed_at": stored["completed_at"] or _now()}
        else:
            record = {**stored, "status": live["status"], "progress": live["progress"], "error": live["error"],
                      "checkpoints": live["checkpoints"], "started_at": _iso(live["started_at"]),
                      "completed_at": _iso(live["completed_at"]), "trained_tokens": live.get("trained_tokens", 0)}
        if record["status"] == "completed":
            record["fine_tuned_model"] = await self._register_fine_tuned(record)
        if not await self.records.replace_unchanged(stored["id"], stored, record):
            return await self.records.load(stored["id"]) or record
        if record["status"] in FINISHED and live is not None:
            await self.provider.release(record["job_uuid"])
        return record

    async def _register_fine_tuned(self, record: dict[str, Any]) -> str | None:
        """The LoRA job's adapters as models of the engine that serves its base, owned by the job's
        owner: the last one as the job's `fine_tuned_model`, each earlier one as
        `<fine_tuned_model>:ckpt-step-<n>`. None for a full fine-tune, or adapters that engine does not
        serve (its `adapters_dir` is not the provider's `artifacts_dir`)."""
        if record["algorithm"] != "LoRA" or not record["checkpoints"]:
            return None
        try:
            base = await self.models.get(record["model"])
            served = {m.provider_model_id: m for m in await self.models.client(base).list_models()}
        except APIError as exc:
            logger.warning("post-training job %s: no model for its adapter: %s", record["job_uuid"], exc.message)
            return None
        owner = Identity.model_validate(record["owner"]) if record.get("owner") else None
        for index, checkpoint in enumerate(record["checkpoints"]):
            adapter = f"{record['job_uuid']}/epoch_{checkpoint['epoch']}"
            if adapter not in served:
                logger.warning("post-training job %s: provider '%s' does not serve its adapter '%s'",
                               record["job_uuid"], base.provider_id, adapter)
                return None
            metadata = {k: v for k, v in served[adapter].metadata.items() if k != "adapter_path"}
            await self.models.register_as(Model(
                identifier=checkpoint_model(record, index), provider_id=base.provider_id,
                provider_resource_id=adapter, model_type="llm", owner=owner, metadata=metadata))
        return fine_tuned_model(record)

    async def _store(self, record: dict[str, Any]) -> None:
        await self.records.replace(record["id"], record)

    async def _weights(self, user: Identity | None, model_id: str) -> str:
        """The HF folder of a registered llm that an inline::vllm provider serves."""
        model = await self.models.model_for(user, model_id)
        entry = self.providers.route(model.provider_id).entry
        folder = None
        if model.model_type == "llm" and entry.provider_type == "inline::vllm" and not model.metadata.get("adapter_path"):
            folder = await self.models.client(model).weights_dir(model.provider_resource_id)
        if folder is None:
            raise InvalidRequestError(f"model: '{model_id}' is not a base llm of an inline::vllm provider, whose "
                                      "weights fine-tuning starts from", param="model")
        config_file = Path(folder) / "config.json"
        if not config_file.exists():
            raise InvalidRequestError(f"model: '{model_id}' has no local HF folder to fine-tune ({folder})", param="model")
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type not in _SUPPORTED_MODEL_TYPES:
            raise InvalidRequestError(f"model: '{model_id}' is a '{model_type}' model; fine-tuning supports "
                                      f"{', '.join(_SUPPORTED_MODEL_TYPES)}", param="model")
        return folder


def fine_tuned_model(record: dict[str, Any]) -> str:
    """`ft:<base>:<job_uuid>`, or `ft:<base>:<suffix>:<job id>` for an OpenAI job given a suffix."""
    suffix = (record.get("openai") or {}).get("suffix")
    return f"ft:{record['model']}:{suffix + ':' if suffix else ''}{record['job_uuid']}"


def checkpoint_model(record: dict[str, Any], index: int) -> str:
    """The model of the job's `index`th checkpoint: the last is the job's model itself."""
    name = fine_tuned_model(record)
    checkpoints = record["checkpoints"]
    return name if index == len(checkpoints) - 1 else f"{name}:ckpt-step-{checkpoints[index].get('step')}"


def _total_steps(training: TrainingConfig, rows: int | None, workers: int) -> int | None:
    """The optimizer steps the job will take, given its rows split over the workers."""
    if not rows:
        return None
    batches = -(-rows // (workers * training.data_config.batch_size))
    per_epoch = min(training.max_steps_per_epoch, max(1, batches // training.gradient_accumulation_steps))
    return training.n_epochs * per_epoch


def _train_spec(request: SupervisedFineTuneRequest, checkpoint_dir: str, seed: int) -> dict[str, Any]:
    training = request.training_config
    lora = request.algorithm_config
    optimizer = training.optimizer_config
    return {
        "checkpoint_dir": checkpoint_dir,
        "lora": None if lora is None else {
            "attn_modules": list(lora.lora_attn_modules), "apply_to_mlp": lora.apply_lora_to_mlp,
            "apply_to_output": lora.apply_lora_to_output, "rank": lora.rank, "alpha": lora.alpha,
            "use_dora": bool(lora.use_dora), "quantize_base": bool(lora.quantize_base)},
        "n_epochs": training.n_epochs, "max_steps_per_epoch": training.max_steps_per_epoch,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "batch_size": training.data_config.batch_size, "optimizer": optimizer.optimizer_type, "lr": optimizer.lr,
        "weight_decay": optimizer.weight_decay, "num_warmup_steps": optimizer.num_warmup_steps,
        "dtype": training.dtype or "bf16", "max_seq_len": training.max_seq_len, "seed": seed,
    }


def _tied(checkpoint_dir: str) -> bool:
    return bool(json.loads((Path(checkpoint_dir) / "config.json").read_text()).get("tie_word_embeddings"))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """The status response: Llama Stack's fields, plus per-step `progress`, the failure's `error` and
    OpenAI's `fine_tuned_model`."""
    checkpoints = [{
        "identifier": f"{record['job_uuid']}/epoch_{c['epoch']}",
        "created_at": _iso(c["created_at"]),
        "epoch": c["epoch"],
        "post_training_job_id": record["job_uuid"],
        "path": c["path"],
        "training_metrics": None if c.get("train_loss") is None else {
            "epoch": c["epoch"], "train_loss": c["train_loss"], "validation_loss": c.get("valid_loss"),
            "perplexity": None},
    } for c in record["checkpoints"]]
    return {key: record[key] for key in ("job_uuid", "status", "scheduled_at", "started_at", "completed_at",
                                         "resources_allocated", "progress", "error")} | {
        "checkpoints": checkpoints, "fine_tuned_model": record.get("fine_tuned_model")}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _iso(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return datetime.fromtimestamp(value, timezone.utc).isoformat()
