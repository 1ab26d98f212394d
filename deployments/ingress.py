"""The ingress deployment: one FastAPI app with a router per API, in front of the providers."""

from __future__ import annotations

import logging
import asyncio
from typing import Any

from fastapi import FastAPI
from ray import serve

from deployments.errors import install_error_handlers
from deployments.gateway import Gateway
from deployments.files import FileService
from deployments.prompts import PromptService
from deployments.conversations import ConversationService
from deployments.responses import ResponseService
from deployments.routers import (conversations, files, inference, inspect, models, prompts, responses, safety,
                                 stored_completions, tools, vector_stores)
from deployments.safety import SafetyService
from deployments.tools import ToolService
from deployments.vector_stores import VectorStoreService
from providers.access import AccessPolicy
from providers.auth.authenticators import build_authenticator
from providers.registry import get_spec
from providers.resources.models import ModelRegistry
from providers.run_config import RunConfig
from providers.storage import Storage
from providers.storage.inference_store import InferenceStore
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

INGRESS_DEFAULTS: dict[str, Any] = {
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 64},
    "max_ongoing_requests": 256,
    "ray_actor_options": {"num_cpus": 0.25},
    # Long enough for the inference store's queue to be written out (WriteBehindQueue.close: 20 s).
    "graceful_shutdown_timeout_s": 30,
}


def build_fastapi_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="raystack", docs_url="/docs", openapi_url="/openapi.json")
    for module in (inference, stored_completions, models, files, vector_stores, prompts, safety, tools, conversations,
                   responses, inspect):
        app.include_router(module.router)
    install_error_handlers(app)
    app.state.gateway = gateway
    return app


class Ingress:
    """Validates requests, routes them by resource through the registry to provider handles."""

    async def __init__(self, run_config: dict[str, Any], handles: dict[str, Any]):
        config = RunConfig.model_validate(run_config)
        self.storage = Storage(config.storage)
        policy = AccessPolicy(config.server.access_policy)
        inference_store = None
        if "inference" in config.storage.stores:
            engine, _ = self.storage.sql("inference")
            inference_store = InferenceStore(engine, config.storage.stores["inference"], policy)
            await inference_store.create_table()
        self.gateway = Gateway(
            config, handles, ModelRegistry(self.storage.kv("metadata")), inference_store=inference_store,
            authenticator=build_authenticator(config.server.auth), policy=policy,
        )
        if config.providers.get("files"):
            self.gateway.files = await self._file_service(config, policy)
        self._orphan_watch: asyncio.Task | None = None
        if config.providers.get("vector_io"):
            self.gateway.vector_stores = await self._vector_store_service(config, policy)
            period_s = config.vector_stores.ingestion.resume_check_period_s
            self._orphan_watch = asyncio.get_running_loop().create_task(self.gateway.vector_stores.watch_orphans(period_s))
        if config.providers.get("safety"):
            self.gateway.safety = SafetyService(self.gateway)
        if config.providers.get("tool_runtime"):
            self.gateway.tools = ToolService(self.gateway)
        if "prompts" in config.apis:
            self.gateway.prompts = await self._prompt_service(policy)
        if "conversations" in config.apis:
            self.gateway.conversations = await self._conversation_service(policy)
        if "responses" in config.apis:
            engine, table_name = self.storage.sql("responses")
            records = OwnedRecords(engine, table_name, policy, resource_type="response", noun="response",
                                   id_param="response_id", filter_columns=("model",))
            await records.create_table()
            self.gateway.responses = ResponseService(self.gateway, records)
        await self.gateway.seed_models()

    async def _file_service(self, config: RunConfig, policy: AccessPolicy) -> FileService:
        entry = config.providers["files"][0]
        engine, table_name = self.storage.sql("files")
        records = OwnedRecords(engine, table_name, policy, resource_type="file", noun="file", id_param="file_id",
                               filter_columns=("purpose",))
        await records.create_table()
        max_bytes = get_spec(entry.provider_type).parse_config(entry.config).max_file_size_bytes
        return FileService(records, self.gateway.call, entry.provider_id, max_bytes)

    async def _prompt_service(self, policy: AccessPolicy) -> PromptService:
        engine, table_name = self.storage.sql("prompts")
        heads = OwnedRecords(engine, table_name, policy, resource_type="prompt", noun="prompt", id_param="prompt_id")
        versions = OwnedRecords(engine, f"{table_name}_versions", policy, resource_type="prompt_version",
                                noun="prompt version", id_param="version", filter_columns=("prompt_id",))
        for records in (heads, versions):
            await records.create_table()
        return PromptService(heads, versions)

    async def _conversation_service(self, policy: AccessPolicy) -> ConversationService:
        engine, table_name = self.storage.sql("conversations")
        records = OwnedRecords(engine, table_name, policy, resource_type="conversation", noun="conversation",
                               id_param="conversation_id")
        items = OwnedRecords(engine, f"{table_name}_items", policy, resource_type="conversation_item",
                             noun="conversation item", id_param="item_id", filter_columns=("conversation_id",))
        for table in (records, items):
            await table.create_table()
        return ConversationService(records, items)

    async def _vector_store_service(self, config: RunConfig, policy: AccessPolicy) -> VectorStoreService:
        engine, table_name = self.storage.sql("vector_stores")
        stores = OwnedRecords(engine, table_name, policy, resource_type="vector_store", noun="vector store",
                              id_param="vector_store_id")
        store_files = OwnedRecords(engine, f"{table_name}_files", policy, resource_type="vector_store_file",
                                   noun="vector store file", id_param="file_id",
                                   filter_columns=("vector_store_id", "status", "batch_id", "ingester"))
        batches = OwnedRecords(engine, f"{table_name}_file_batches", policy, resource_type="vector_store_file_batch",
                               noun="file batch", id_param="batch_id", filter_columns=("vector_store_id",))
        for records in (stores, store_files, batches):
            await records.create_table()
        provider_id = config.providers["vector_io"][0].provider_id
        ingester = serve.get_replica_context().replica_id.to_full_id_str()
        return VectorStoreService(self.gateway, self.gateway.files, stores, store_files, batches, provider_id,
                                  config.vector_stores.ingestion, ingester)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi_app(self.gateway)

    async def __del__(self):
        """Serve calls this when the replica stops (drain, `serve shutdown`, SIGTERM to `serve run`):
        stored records still queued are written before the connections close."""
        if self._orphan_watch is not None:
            self._orphan_watch.cancel()
        if self.gateway.vector_stores is not None:
            await self.gateway.vector_stores.close()
        store = self.gateway.inference_store
        if store is not None:
            await store.close()
            logger.info("inference store closed: %d records written, %d lost", store.queue.written, store.queue.lost)
        if self.gateway.authenticator is not None:
            await self.gateway.authenticator.close()
        await self.storage.close()
