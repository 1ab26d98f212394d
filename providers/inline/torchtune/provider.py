"""TorchtunePostTraining: each job is a detached Ray actor (`TrainingRun`) that builds the Ray Data
pipeline over the dataset and runs a `TorchTrainer` over it, outliving the request and the replica
that started it. The actor keeps the job's live state (status, per-step progress, checkpoints);
the post-training service in the ingress reads it and persists it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray

from providers.inline.torchtune.config import TorchtuneConfig
from providers.inline.torchtune.recipe import Tokenize, TrainSpec, train_loop
from providers.storage.dataset_files import read_dataset

NAMESPACE = "raystack"


def _actor_name(job_uuid: str) -> str:
    return f"post-training-{job_uuid}"


class TorchtunePostTraining:
    def __init__(self, config: TorchtuneConfig):
        self.config = config
        self.artifacts = Path(config.artifacts_dir).expanduser()
        self.artifacts.mkdir(parents=True, exist_ok=True)

    def scaling(self) -> dict[str, Any]:
        return {"num_workers": self.config.num_workers, "use_gpu": self.config.use_gpu,
                "resources_per_worker": self.config.resources_per_worker,
                "accelerator_type": self.config.accelerator_type}

    async def start(self, job_uuid: str, spec: dict[str, Any], dataset_dir: str, validation_dir: str | None,
                    shuffle: bool, train_on_input: bool) -> dict[str, Any]:
        """Launch the job; returns the resources it asked for."""
        cpus = self.config.resources_per_worker.get("CPU", 1.0)
        train = TrainSpec(**spec, output_dir=str(self.artifacts / job_uuid), threads_per_worker=max(1, int(cpus)),
                          shuffle=shuffle, validation=validation_dir is not None)
        run = TrainingRun.options(name=_actor_name(job_uuid), namespace=NAMESPACE, lifetime="detached").remote(
            job_uuid, train, {"train": dataset_dir, "validation": validation_dir}, train_on_input, self.scaling(),
            self.config.progress_history, self.config.data_cpus)
        run.run.remote()
        return self.scaling()

    async def state(self, job_uuid: str) -> dict[str, Any] | None:
        """The job's live state, or None when its actor is gone (the cluster restarted)."""
        run = _find(job_uuid)
        if run is None:
            return None
        try:
            return await run.snapshot.remote()
        except ray.exceptions.RayActorError:
            return None

    async def cancel(self, job_uuid: str) -> None:
        """Stop the job: its trainer and workers go down with the actor that owns them, and the
        workers' placement group is removed (Ray Train's own cleaner needs the dashboard's state API)."""
        run = _find(job_uuid)
        if run is not None:
            try:
                await run.remove_placement_group.remote()
            except ray.exceptions.RayActorError:
                pass
        await self.release(job_uuid)

    async def release(self, job_uuid: str) -> None:
        run = _find(job_uuid)
        if run is not None:
            ray.kill(run, no_restart=True)

    async def artifacts_dir(self) -> str:
        return str(self.artifacts)

    async def job_defaults(self) -> dict[str, Any]:
        return self.config.job_defaults.model_dump()

    async def shutdown(self) -> None:
        pass


def _find(job_uuid: str):
    try:
        return ray.get_actor(_actor_name(job_uuid), namespace=NAMESPACE)
    except ValueError:
        return None


def _training_gauges(job_uuid: str) -> dict[str, Any]:
    """The job's progress as Ray metrics (raystack_training_step, _loss, _tokens_per_second), tagged by job."""
    from ray.util.metrics import Gauge

    gauges = {name: Gauge(f"raystack_training_{name}", f"Post-training {description}, at the last optimizer step",
                          tag_keys=("job_uuid",))
              for name, description in (("step", "optimizer steps done"), ("loss", "training loss"),
                                        ("tokens_per_second", "trained tokens per second"))}
    for gauge in gauges.values():
        gauge.set_default_tags({"job_uuid": job_uuid})
    return gauges


@ray.remote(num_cpus=0, max_concurrency=8)
class TrainingRun:
    """One job: `run` trains (in one of the actor's threads) while `report`, `checkpoint` and
    `snapshot` are served by the others."""

    def __init__(self, job_uuid: str, spec: TrainSpec, dataset_dirs: dict[str, str | None], train_on_input: bool,
                 scaling: dict[str, Any], history: int, data_cpus: float):
        """`dataset_dirs`: the "train" rows' folder, and the "validation" rows' folder or None."""
        self.job_uuid = job_uuid
        self.spec = spec
        self.dataset_dirs = dataset_dirs
        self.train_on_input = train_on_input
        self.scaling = scaling
        self.history = history
        self.data_cpus = data_cpus
        self.workers_placement_group = None
        self.live = {"status": "scheduled", "progress": [], "checkpoints": [], "error": None,
                     "started_at": None, "completed_at": None, "trained_tokens": 0}
        self.gauges = _training_gauges(job_uuid)

    def run(self) -> None:
        from ray.train import DataConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        self.live.update(status="in_progress", started_at=time.time())
        try:
            trainer = TorchTrainer(
                train_loop,
                train_loop_config=self.spec.as_config(ray.get_runtime_context().current_actor),
                scaling_config=ScalingConfig(**self.scaling),
                datasets={name: self._tokens(folder) for name, folder in self.dataset_dirs.items() if folder},
                dataset_config=DataConfig(datasets_to_split=["train"]),  # rank 0 reads all the validation rows
                run_config=RunConfig(name=self.job_uuid, storage_path=str(Path(self.spec.output_dir) / "ray_train"),
                                     failure_config=FailureConfig(max_failures=0)),
            )
            trainer.fit()
            self.live.update(status="completed")
        except Exception as exc:  # a worker died or raised: the job fails with its reason
            self.live.update(status="failed", error=_reason(exc))
        self.live["completed_at"] = time.time()

    def _tokens(self, folder: str):
        return read_dataset(folder, self.data_cpus).map_batches(
            Tokenize, fn_constructor_args=(self.spec.checkpoint_dir, self.spec.max_seq_len, self.train_on_input),
            batch_format="pyarrow", concurrency=1, num_cpus=self.data_cpus)

    def report(self, metrics: dict[str, Any]) -> None:
        self.live["trained_tokens"] += metrics["tokens"]
        progress = self.live["progress"]
        progress.append({**metrics, "time": time.time()})
        del progress[:-self.history]
        for name, gauge in self.gauges.items():
            gauge.set(metrics[name])

    def checkpoint(self, info: dict[str, Any]) -> None:
        self.live["checkpoints"].append({**info, "created_at": time.time()})

    def placement_group(self, group) -> None:
        self.workers_placement_group = group

    def remove_placement_group(self) -> None:
        if self.workers_placement_group is not None:
            ray.util.remove_placement_group(self.workers_placement_group)

    def snapshot(self) -> dict[str, Any]:
        return {**self.live, "progress": list(self.live["progress"]), "checkpoints": list(self.live["checkpoints"])}


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    tail = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "")
    return f"{type(exc).__name__}: {tail[:500]}" if tail else type(exc).__name__
