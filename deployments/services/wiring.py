"""The graph's services as a replica opens them from the run config: the model registry, the
stores, and the file, vector store, safety, tool, prompt, conversation, response, dataset,
post-training, scoring and eval services.
The ingress and the agents deployment open the same ones."""

from __future__ import annotations

from typing import Any

from ray import serve

from deployments.services.conversations import ConversationService
from deployments.services.datasets import DatasetService
from deployments.services.eval import EvalService
from deployments.services.files import FileService
from deployments.services.gateway import Gateway
from deployments.services.post_training import PostTrainingService
from deployments.services.prompts import PromptService
from deployments.services.responses import MAX_STEPS, ResponseService
from deployments.services.safety import SafetyService
from deployments.services.scoring import ScoringService
from deployments.services.tools import ToolService
from deployments.services.vector_stores import VectorStoreService, replica_alive
from providers.access import AccessPolicy
from providers.api.datasets import Dataset
from providers.api.eval import Benchmark
from deployments.services.eval_generation import GenerationResources
from providers.registry import get_spec
from providers.storage.model_registry import ModelRegistry
from providers.storage.owned_resources import OwnedResources
from providers.run_config import RunConfig
from providers.storage import Storage
from providers.storage.owned_records import OwnedRecords


async def open_gateway(config: RunConfig, handles: dict[str, Any], storage: Storage, *,
                       max_steps: int = MAX_STEPS) -> Gateway:
    """A gateway to the providers in `handles`, with every service the run config declares (but
    what only the ingress needs: the authenticator and the inference store)."""
    policy = AccessPolicy(config.server.access_policy)
    gateway = Gateway(config, handles, ModelRegistry(storage.kv("metadata")), policy)
    if config.providers.get("files"):
        gateway.files = await _file_service(config, storage, policy, gateway)
    if config.providers.get("vector_io"):
        gateway.vector_stores = await _vector_store_service(config, storage, policy, gateway)
    if config.providers.get("safety"):
        gateway.safety = SafetyService(gateway)
    if config.providers.get("tool_runtime"):
        gateway.tools = ToolService(gateway)
    if "prompts" in config.apis:
        gateway.prompts = await _prompt_service(storage, policy)
    if "conversations" in config.apis:
        gateway.conversations = await _conversation_service(storage, policy)
    if "responses" in config.apis:
        records = await _records(storage, "responses", policy, resource_type="response", noun="response",
                                 id_param="response_id", filter_columns=("model",))
        gateway.responses = ResponseService(gateway, records, max_steps=max_steps)
    await _open_training_and_eval(config, storage, policy, gateway)
    return gateway


async def _open_training_and_eval(config: RunConfig, storage: Storage, policy: AccessPolicy, gateway: Gateway) -> None:
    if config.providers.get("datasetio"):
        registry = OwnedResources(storage.kv("metadata"), policy, Dataset, resource_type="dataset", noun="dataset",
                                  id_param="dataset_id")
        gateway.datasets = DatasetService(registry, gateway.call, config.providers["datasetio"][0].provider_id,
                                          gateway.files)
    if config.providers.get("post_training"):
        jobs = await _records(storage, "jobs", policy, "_post_training", resource_type="post_training_job",
                              noun="post-training job", id_param="job_uuid")
        gateway.post_training = PostTrainingService(gateway, jobs, config.providers["post_training"][0].provider_id,
                                                    gateway.datasets)
    if "scoring" in config.apis or "eval" in config.apis:
        gateway.scoring = ScoringService(gateway, gateway.datasets)
    if "eval" in config.apis:
        benchmarks = OwnedResources(storage.kv("metadata"), policy, Benchmark, resource_type="benchmark",
                                    noun="benchmark", id_param="benchmark_id")
        jobs = await _records(storage, "jobs", policy, "_eval", resource_type="eval_job", noun="job", id_param="job_id",
                              filter_columns=("benchmark_id",))
        resources = GenerationResources(config.eval.batch_size, config.eval.concurrency, config.eval.num_cpus)
        runner = serve.get_replica_context().replica_id.to_full_id_str()
        gateway.eval = EvalService(gateway, benchmarks, jobs, gateway.datasets, gateway.scoring, resources, runner,
                                   replica_alive)


async def _records(storage: Storage, store: str, policy: AccessPolicy, suffix: str = "", **options: Any) -> OwnedRecords:
    engine, table_name = storage.sql(store)
    records = OwnedRecords(engine, f"{table_name}{suffix}", policy, **options)
    await records.create_table()
    return records


async def _file_service(config: RunConfig, storage: Storage, policy: AccessPolicy, gateway: Gateway) -> FileService:
    entry = config.providers["files"][0]
    records = await _records(storage, "files", policy, resource_type="file", noun="file", id_param="file_id",
                             filter_columns=("purpose",))
    max_bytes = get_spec(entry.provider_type).parse_config(entry.config).max_file_size_bytes
    return FileService(records, gateway.call, entry.provider_id, max_bytes)


async def _prompt_service(storage: Storage, policy: AccessPolicy) -> PromptService:
    heads = await _records(storage, "prompts", policy, resource_type="prompt", noun="prompt", id_param="prompt_id")
    versions = await _records(storage, "prompts", policy, "_versions", resource_type="prompt_version",
                              noun="prompt version", id_param="version", filter_columns=("prompt_id",))
    return PromptService(heads, versions)


async def _conversation_service(storage: Storage, policy: AccessPolicy) -> ConversationService:
    records = await _records(storage, "conversations", policy, resource_type="conversation", noun="conversation",
                             id_param="conversation_id")
    items = await _records(storage, "conversations", policy, "_items", resource_type="conversation_item",
                           noun="conversation item", id_param="item_id", filter_columns=("conversation_id",))
    return ConversationService(records, items)


async def _vector_store_service(config: RunConfig, storage: Storage, policy: AccessPolicy,
                                gateway: Gateway) -> VectorStoreService:
    stores = await _records(storage, "vector_stores", policy, resource_type="vector_store", noun="vector store",
                            id_param="vector_store_id")
    store_files = await _records(storage, "vector_stores", policy, "_files", resource_type="vector_store_file",
                                 noun="vector store file", id_param="file_id",
                                 filter_columns=("vector_store_id", "status", "batch_id", "ingester"))
    batches = await _records(storage, "vector_stores", policy, "_file_batches", resource_type="vector_store_file_batch",
                             noun="file batch", id_param="batch_id", filter_columns=("vector_store_id",))
    provider_id = config.providers["vector_io"][0].provider_id
    ingester = serve.get_replica_context().replica_id.to_full_id_str()
    return VectorStoreService(gateway, gateway.files, stores, store_files, batches, provider_id,
                              config.vector_stores.ingestion, ingester)
