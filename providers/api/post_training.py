"""Post-training API wire types (Llama Stack's shapes) and the job record."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import Field

from providers.api.base import WireModel

JobStatus = Literal["scheduled", "in_progress", "completed", "failed", "cancelled"]
FINISHED: tuple[str, ...] = ("completed", "failed", "cancelled")


class LoraFinetuningConfig(WireModel):
    type: Literal["LoRA"] = "LoRA"
    lora_attn_modules: list[Literal["q_proj", "k_proj", "v_proj", "output_proj"]] = Field(min_length=1)
    apply_lora_to_mlp: bool = False
    apply_lora_to_output: bool = False
    rank: int = Field(ge=1, le=256)
    alpha: int = Field(ge=1)
    use_dora: bool | None = False
    quantize_base: bool | None = False  # QLoRA: the frozen base weights in NF4


class QATFinetuningConfig(WireModel):
    type: Literal["QAT"] = "QAT"
    quantizer_name: str
    group_size: int = Field(ge=1)


AlgorithmConfig = Annotated[Union[LoraFinetuningConfig, QATFinetuningConfig], Field(discriminator="type")]


class DataConfig(WireModel):
    dataset_id: str = Field(min_length=1)
    batch_size: int = Field(ge=1, le=1024)
    shuffle: bool = True
    data_format: Literal["instruct", "dialog"] = "dialog"
    validation_dataset_id: str | None = None
    packed: bool | None = False
    train_on_input: bool | None = False


class OptimizerConfig(WireModel):
    optimizer_type: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = Field(gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    num_warmup_steps: int = Field(default=0, ge=0)


class EfficiencyConfig(WireModel):
    enable_activation_checkpointing: bool | None = False
    enable_activation_offloading: bool | None = False
    memory_efficient_fsdp_wrap: bool | None = False
    fsdp_cpu_offload: bool | None = False


class TrainingConfig(WireModel):
    n_epochs: int = Field(ge=1, le=100)
    max_steps_per_epoch: int = Field(default=1000, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_validation_steps: int | None = None
    data_config: DataConfig
    optimizer_config: OptimizerConfig = OptimizerConfig(lr=3e-4)
    efficiency_config: EfficiencyConfig | None = None
    dtype: Literal["fp32", "bf16"] | None = "bf16"
    max_seq_len: int = Field(default=512, ge=8, le=32768, description="longer rows are truncated")


class SupervisedFineTuneRequest(WireModel):
    job_uuid: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})?$",
                          description="empty: the server picks one; starts with a letter or digit")
    model: str = Field(min_length=1, description="a registered llm whose weights an inline::vllm provider serves")
    training_config: TrainingConfig
    algorithm_config: AlgorithmConfig | None = None  # none: full fine-tuning
    hyperparam_search_config: dict[str, Any] = {}
    logger_config: dict[str, Any] = {}
    checkpoint_dir: str | None = None


class CancelTrainingJobRequest(WireModel):
    job_uuid: str = Field(min_length=1)


class PostTrainingProvider(Protocol):
    """Runs fine-tuning jobs; the job's record and owner live in the `jobs` store."""

    async def start(self, job_uuid: str, spec: dict[str, Any], dataset_dir: str, validation_dir: str | None,
                    shuffle: bool, train_on_input: bool) -> dict[str, Any]:
        """Launch the job; returns the resources it asked for."""
        ...

    async def state(self, job_uuid: str) -> dict[str, Any] | None:
        """The job's live state, or None once nothing runs it."""
        ...

    async def cancel(self, job_uuid: str) -> None: ...

    async def release(self, job_uuid: str) -> None:
        """Free what a finished job still holds."""
        ...

    async def artifacts_dir(self) -> str: ...

    async def job_defaults(self) -> dict[str, Any]:
        """What an OpenAI fine-tuning job runs with where its request leaves a choice to the server."""
        ...

    async def shutdown(self) -> None: ...
