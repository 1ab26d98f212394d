from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class JobDefaults(BaseModel):
    """How an OpenAI fine-tuning job (`/v1/fine_tuning/jobs`) trains where its request says "auto" or
    nothing: OpenAI's API names no algorithm, so the provider's operator picks LoRA or full here."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["LoRA", "full"] = "LoRA"
    lora_rank: int = Field(default=8, ge=1, le=256)
    lora_alpha: int = Field(default=16, ge=1)
    lora_attn_modules: list[Literal["q_proj", "k_proj", "v_proj", "output_proj"]] = Field(
        default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    lora_apply_to_mlp: bool = False
    lora_apply_to_output: bool = False
    n_epochs: int = Field(default=3, ge=1, le=100)
    batch_size: int = Field(default=4, ge=1, le=1024)
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="the rate a learning_rate_multiplier of 1 gives")
    max_seq_len: int = Field(default=1024, ge=8, le=32768)
    dtype: Literal["fp32", "bf16"] = "fp32"


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
    job_defaults: JobDefaults = Field(default_factory=JobDefaults)
