"""The one place services are built: `open_services` makes each in dependency order and hands it
exactly what it uses. The ingress opens every API it routes; the agents deployment opens the
Responses API and what a turn calls."""

from dataclasses import dataclass
from typing import Any

from deployments.clients import (
    AgentsClient,
    DatasetIOClient,
    FilesClient,
    PostTrainingClient,
    PromptsClient,
    ProviderDirectory,
    SafetyClient,
    ToolRuntimeClient,
    VectorIOClient,
)
from deployments.services.background_responses import BackgroundRuns
from deployments.services.batch_pipeline import BatchRun, run_batch
from deployments.services.batches import BatchService
from deployments.services.conversations import ConversationService
from deployments.services.datasets import DatasetService
from deployments.services.eval import EvalService
from deployments.services.eval_generation import Generation, GenerationResources, run_generation
from deployments.services.files import FileService
from deployments.services.fine_tuning import FineTuningService
from deployments.services.ingestion_pipeline import Pipeline, run_pipeline
from deployments.services.mcp_servers import MCPServerPolicy
from deployments.services.models import ModelService
from deployments.services.post_training import PostTrainingService
from deployments.services.prompt_registry import RegistryPromptService
from deployments.services.prompts import Prompts, PromptService
from deployments.services.replica import Replica
from deployments.services.response_tools import ToolRunner
from deployments.services.responses import MAX_STEPS, ResponseService
from deployments.services.safety import SafetyService
from deployments.services.scoring import ScoringService
from deployments.services.tools import ToolService
from deployments.services.vector_stores import VectorStoreService
from providers.access import AccessPolicy
from providers.access.authenticators import Authenticator, build_authenticator
from providers.api.datasets import Dataset
from providers.api.eval import Benchmark
from providers.registry import get_spec
from providers.run_config import RunConfig
from providers.storage import Storage
from providers.storage.inference_store import InferenceStore
from providers.storage.model_registry import ModelRegistry
from providers.storage.owned_records import OwnedRecords
from providers.storage.owned_resources import OwnedResources


@dataclass(frozen=True)
class Services:
    """What a replica serves; a service is None when the run config does not declare it (the
    authenticator when authentication is off), or when the replica does not serve it."""

    providers: ProviderDirectory
    models: ModelService
    files: FileService | None = None
    vector_stores: VectorStoreService | None = None
    prompts: Prompts | None = None
    safety: SafetyService | None = None
    tools: ToolService | None = None
    conversations: ConversationService | None = None
    responses: ResponseService | None = None
    datasets: DatasetService | None = None
    post_training: PostTrainingService | None = None
    fine_tuning: FineTuningService | None = None
    scoring: ScoringService | None = None
    eval: EvalService | None = None
    inference_store: InferenceStore | None = None
    batches: BatchService | None = None
    authenticator: Authenticator | None = None
    agents: AgentsClient | None = None

    def write_queues(self) -> dict[str, Any]:
        """The queues of records being written, by store: the inference store's write-behind queue,
        and the rows waiting for the responses' and conversations' next group commit."""
        queues: dict[str, Any] = {}
        if self.inference_store is not None:
            queues["inference"] = self.inference_store.queue
        if self.responses is not None:
            queues["responses"] = self.responses.writes
        if self.conversations is not None:
            queues["conversations"] = self.conversations.item_writes
        return queues

    async def close(self) -> None:
        """Finish what is in flight: ingestions, queued records, the authenticator's connections."""
        if self.batches is not None:
            await self.batches.close()
        if self.responses is not None:
            await self.responses.background.close()
        if self.vector_stores is not None:
            await self.vector_stores.close()
        if self.inference_store is not None:
            await self.inference_store.close()
        if self.authenticator is not None:
            await self.authenticator.close()


@dataclass(frozen=True)
class Execution:
    """How the services' bulk work runs: as Ray Data pipelines on the cluster."""

    ingestion: Pipeline = run_pipeline
    generation: Generation = run_generation
    batch: BatchRun = run_batch


class _Opener:
    """The run config's services over one storage, each opened once, its dependencies first."""

    def __init__(self, config: RunConfig, providers: ProviderDirectory, storage: Storage, replica: Replica,
                 max_steps: int, execution: Execution):
        self.config = config
        self.execution = execution
        self.providers = providers
        self.storage = storage
        self.replica = replica
        self.max_steps = max_steps
        self.policy = AccessPolicy(config.server.access_policy)
        self.models = ModelService(ModelRegistry(storage.kv("metadata")), self.policy, providers)

    async def records(self, store: str, suffix: str = "", **options: Any) -> OwnedRecords:
        engine, table_name = self.storage.sql(store)
        records = OwnedRecords(engine, f"{table_name}{suffix}", self.policy, **options)
        await records.create_table()
        return records

    def _provider(self, api: str):
        entries = self.config.providers.get(api)
        return entries[0] if entries else None

    async def files(self) -> FileService | None:
        entry = self._provider("files")
        if entry is None:
            return None
        records = await self.records("files", resource_type="file", noun="file", id_param="file_id",
                                     filter_columns=("purpose",))
        max_bytes = get_spec(entry.provider_type).parse_config(entry.config).max_file_size_bytes
        return FileService(records, self.providers.client(entry.provider_id, FilesClient), max_bytes)

    async def vector_stores(self, files: FileService | None) -> VectorStoreService | None:
        entry = self._provider("vector_io")
        if entry is None or files is None:
            return None
        stores = await self.records("vector_stores", resource_type="vector_store", noun="vector store",
                                    id_param="vector_store_id")
        store_files = await self.records("vector_stores", "_files", resource_type="vector_store_file",
                                         noun="vector store file", id_param="file_id",
                                         filter_columns=("vector_store_id", "status", "batch_id", "ingester"))
        batches = await self.records("vector_stores", "_file_batches", resource_type="vector_store_file_batch",
                                     noun="file batch", id_param="batch_id", filter_columns=("vector_store_id",))
        return VectorStoreService(stores, store_files, batches, self.models, files,
                                  entry.provider_id, self.providers.client(entry.provider_id, VectorIOClient),
                                  self.config.vector_stores.ingestion, self.replica, self.execution.ingestion)

    async def prompts(self) -> Prompts | None:
        if "prompts" not in self.config.apis:
            return None
        entry = self._provider("prompts")
        if entry is not None:
            cache_ttl_s = get_spec(entry.provider_type).parse_config(entry.config).cache_ttl_s
            return RegistryPromptService(self.providers.client(entry.provider_id, PromptsClient), self.policy, cache_ttl_s)
        heads = await self.records("prompts", resource_type="prompt", noun="prompt", id_param="prompt_id")
        versions = await self.records("prompts", "_versions", resource_type="prompt_version", noun="prompt version",
                                      id_param="version", filter_columns=("prompt_id",))
        return PromptService(heads, versions)

    def safety(self) -> SafetyService | None:
        if not self.config.providers.get("safety"):
            return None
        return SafetyService(self.config.registered_resources.shields, self.providers.clients(SafetyClient))

    def tools(self) -> ToolService | None:
        if not self.config.providers.get("tool_runtime"):
            return None
        types = {route.entry.provider_id: route.entry.provider_type for route in self.providers.of_api("tool_runtime")}
        return ToolService(self.config.registered_resources.tool_groups, self.providers.clients(ToolRuntimeClient),
                           types)

    async def conversations(self) -> ConversationService | None:
        if "conversations" not in self.config.apis:
            return None
        records = await self.records("conversations", resource_type="conversation", noun="conversation",
                                     id_param="conversation_id")
        items = await self.records("conversations", "_items", resource_type="conversation_item",
                                   noun="conversation item", id_param="item_id", filter_columns=("conversation_id",))
        return ConversationService(records, items)

    async def responses(self, vector_stores: VectorStoreService | None, tools: ToolService | None,
                        prompts: Prompts | None, safety: SafetyService | None,
                        conversations: ConversationService | None) -> ResponseService | None:
        if "responses" not in self.config.apis:
            return None
        records = await self.records("responses", resource_type="response", noun="response", id_param="response_id",
                                     filter_columns=("model",))
        groups = [group.mcp_endpoint.uri for group in self.config.registered_resources.tool_groups if group.mcp_endpoint]
        servers = MCPServerPolicy(groups + self.config.responses.mcp_servers, self.config.responses.any_mcp_server)
        runs = await self.records("responses", "_runs", resource_type="response", noun="response",
                                  id_param="response_id", filter_columns=("status", "runner"))
        events = await self.records("responses", "_events", resource_type="response_event", noun="response event",
                                    id_param="starting_after", filter_columns=("response_id",))
        return ResponseService(records, self.models, ToolRunner(vector_stores, tools, servers), prompts=prompts, safety=safety,
                               conversations=conversations, guardrails=self.config.responses.guardrails,
                               background=BackgroundRuns(records, runs, events, self.replica), max_steps=self.max_steps)

    def datasets(self, files: FileService | None) -> DatasetService | None:
        entry = self._provider("datasetio")
        if entry is None:
            return None
        registry = OwnedResources(self.storage.kv("metadata"), self.policy, Dataset, resource_type="dataset",
                                  noun="dataset", id_param="dataset_id")
        return DatasetService(registry, entry.provider_id, self.providers.client(entry.provider_id, DatasetIOClient),
                              files)

    async def post_training(self, datasets: DatasetService | None) -> PostTrainingService | None:
        entry = self._provider("post_training")
        if entry is None or datasets is None:
            return None
        jobs = await self.records("jobs", "_post_training", resource_type="post_training_job",
                                  noun="post-training job", id_param="job_uuid")
        return PostTrainingService(jobs, self.providers.client(entry.provider_id, PostTrainingClient), self.models,
                                   self.providers, datasets)

    def scoring(self, datasets: DatasetService | None) -> ScoringService | None:
        if "scoring" not in self.config.apis and "eval" not in self.config.apis:
            return None
        return ScoringService(self.models, datasets)

    async def eval(self, datasets: DatasetService | None, scoring: ScoringService | None) -> EvalService | None:
        if "eval" not in self.config.apis or datasets is None or scoring is None:
            return None
        benchmarks = OwnedResources(self.storage.kv("metadata"), self.policy, Benchmark, resource_type="benchmark",
                                    noun="benchmark", id_param="benchmark_id")
        jobs = await self.records("jobs", "_eval", resource_type="eval_job", noun="job", id_param="job_id",
                                  filter_columns=("benchmark_id",))
        resources = GenerationResources(self.config.eval.batch_size, self.config.eval.concurrency,
                                        self.config.eval.num_cpus)
        return EvalService(self.models, benchmarks, jobs, datasets, scoring, resources, self.replica,
                           self.execution.generation)

    async def batches(self, files: FileService | None) -> BatchService | None:
        if "batches" not in self.config.apis or files is None:
            return None
        batches = await self.records("jobs", "_batches", resource_type="batch", noun="batch", id_param="batch_id",
                                     filter_columns=("status", "runner"))
        results = await self.records("jobs", "_batch_results", resource_type="batch_result", noun="batch result",
                                     id_param="batch_id", filter_columns=("batch_id", "outcome"))
        return BatchService(batches, results, files, self.models, self.agents(), self.config.batches, self.replica,
                            self.execution.batch)

    async def inference_store(self) -> InferenceStore | None:
        if "inference" not in self.config.storage.stores:
            return None
        engine, _ = self.storage.sql("inference")
        store = InferenceStore(engine, self.config.storage.stores["inference"], self.policy)
        await store.create_table()
        store.queue.start()
        return store

    def agents(self) -> AgentsClient | None:
        entry = self._provider("agents")
        return None if entry is None else self.providers.client(entry.provider_id, AgentsClient)



async def open_services(config: RunConfig, handles: dict[str, Any], storage: Storage, replica: Replica, *,
                        ingress: bool, max_steps: int = MAX_STEPS, execution: Execution = Execution()) -> Services:
    """The services of the run config over the providers in `handles` (provider id ->
    DeploymentHandle), dependencies first: in the ingress every one, in the agents deployment
    (`ingress=False`) the responses service and what its turns call."""
    opener = _Opener(config, ProviderDirectory(config, handles), storage, replica, max_steps, execution)
    files = await opener.files()
    vector_stores = await opener.vector_stores(files)
    prompts = await opener.prompts()
    safety = opener.safety()
    tools = opener.tools()
    conversations = await opener.conversations()
    responses = await opener.responses(vector_stores, tools, prompts, safety, conversations)
    turn_services = {"files": files, "vector_stores": vector_stores, "prompts": prompts, "safety": safety,
                     "tools": tools, "conversations": conversations, "responses": responses}
    if not ingress:
        return Services(opener.providers, opener.models, **turn_services)
    datasets = opener.datasets(files)
    scoring = opener.scoring(datasets)
    post_training = await opener.post_training(datasets)
    fine_tuning = None if post_training is None or files is None else FineTuningService(post_training, files, datasets)
    return Services(opener.providers, opener.models, **turn_services, datasets=datasets,
                    post_training=post_training, fine_tuning=fine_tuning, scoring=scoring,
                    eval=await opener.eval(datasets, scoring), inference_store=await opener.inference_store(),
                    batches=await opener.batches(files),
                    authenticator=build_authenticator(config.server.auth), agents=opener.agents())
