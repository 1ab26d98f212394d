"""Config of inline::vllm. Imports nothing heavy, so the ingress can validate it without vLLM."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers.inline.vllm.local_models import BUILTIN_MODELS

# Keys that the provider sets itself from the fields above them.
_RESERVED_ENGINE_ARGS = {"model", "served_model_name"}


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
    response_role: str = "assistant"
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

    def model_name(self) -> str:
        """The name the engine serves the model under (the provider_model_id)."""
        if self.served_model_name:
            return self.served_model_name
        if self.model in BUILTIN_MODELS:
            return self.model
        return PurePath(self.model.rstrip("/")).name
