from pydantic import BaseModel, ConfigDict, Field


class TorchtuneConfig(BaseModel):
    """Where checkpoints land and how each job's Ray Train worker group is shaped.

    Sample (two GPU workers):

        provider_type: inline::torchtune
        config:
          artifacts_dir: /mnt/shared/raystack/checkpoints
          num_workers: 2
          use_gpu: true
          resources_per_worker: {CPU: 4, GPU: 1}
    """

    model_config = ConfigDict(extra="forbid")

    artifacts_dir: str = Field(description="each job's checkpoints go to <artifacts_dir>/<job_uuid>/epoch_<n>; "
                                           "a shared filesystem on a cluster")
    num_workers: int = Field(default=1, ge=1, description="Ray Train workers per job (data parallel)")
    use_gpu: bool = False
    resources_per_worker: dict[str, float] = Field(default_factory=lambda: {"CPU": 1.0})
    accelerator_type: str | None = None
    data_cpus: float = Field(default=0.25, ge=0, description="CPUs the tokenizing Ray Data stage reserves")
    max_seq_len: int = Field(default=2048, ge=8, description="the longest rows a job may ask for")
    progress_history: int = Field(default=1000, ge=1, description="the most per-step records a job's status keeps")
