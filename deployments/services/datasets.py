"""Datasets: the registry entry (owner, purpose, source) in the metadata store, the rows in the
datasetio provider's deployment. Rows are checked against the purpose before they are stored."""

from __future__ import annotations

import re
import uuid
from typing import Any

from deployments.clients import DatasetIOClient
from deployments.services.files import FileService
from providers.access import Identity
from providers.api.datasets import (
    COLUMN_ALIASES,
    PURPOSE_COLUMNS,
    Dataset,
    RegisterDatasetRequest,
    RowsDataSource,
    column_value,
    missing_columns,
)
from providers.api.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from providers.storage.owned_resources import OwnedResources

_FILE_ID = re.compile(r"^file-[A-Za-z0-9]+$")
_ROLES = {"system", "user", "assistant", "tool"}


class DatasetService:
    def __init__(self, registry: OwnedResources[Dataset], provider_id: str, provider: DatasetIOClient,
                 files: FileService | None):
        self.registry = registry
        self.provider_id = provider_id
        self.provider = provider
        self.files = files  # for sources that name an uploaded file

    async def register(self, user: Identity | None, request: RegisterDatasetRequest) -> Dataset:
        dataset_id = request.dataset_id or f"dataset-{uuid.uuid4().hex[:24]}"
        self.registry.check_create(user, dataset_id)
        if await self.registry.exists(dataset_id):  # before the import, which would replace its rows
            raise ConflictError(f"Dataset '{dataset_id}' already exists", param="dataset_id")
        metadata = request.metadata or {}
        source = request.source
        if isinstance(source, RowsDataSource):
            check_rows(request.purpose, source.rows, "source.rows")
            stored = await self.provider.import_rows(dataset_id, source.rows)
        elif _FILE_ID.match(source.uri):
            if self.files is None:
                raise InvalidRequestError("source.uri: this graph has no files provider to read uploads from",
                                          param="source.uri")
            record, content = await self.files.read(user, source.uri)
            stored = await self.provider.import_file(dataset_id, record["filename"], content)
        else:
            if not self.registry.policy.is_admin(user):
                raise PermissionDeniedError("source.uri: importing a server path or hf:// dataset needs the admin role; "
                                            "upload the file (POST /v1/files) and name its file id", param="source.uri")
            stored = await self.provider.import_uri(dataset_id, source.uri, metadata)
        missing = missing_columns(request.purpose, stored["columns"])
        if missing:
            await self.provider.delete(dataset_id)
            raise InvalidRequestError(f"source: a {request.purpose} dataset needs the columns "
                                      f"{', '.join(PURPOSE_COLUMNS[request.purpose])}; missing {', '.join(missing)}",
                                      param="source")
        dataset = Dataset(identifier=dataset_id, provider_id=self.provider_id, provider_resource_id=dataset_id,
                          purpose=request.purpose, source=source if not isinstance(source, RowsDataSource) else
                          RowsDataSource(rows=source.rows[:1]), metadata={**metadata, "num_rows": stored["num_rows"]},
                          owner=user)
        return await self.registry.add(dataset)

    async def get(self, user: Identity | None, dataset_id: str) -> Dataset:
        return await self.registry.get(user, dataset_id)

    async def list(self, user: Identity | None) -> list[Dataset]:
        return await self.registry.list(user)

    async def delete(self, user: Identity | None, dataset_id: str) -> None:
        await self.registry.get(user, dataset_id, "delete")
        await self.registry.remove(dataset_id)
        await self.provider.delete(dataset_id)

    async def iterrows(self, user: Identity | None, dataset_id: str, start_index: int, limit: int | None) -> dict[str, Any]:
        await self.registry.get(user, dataset_id)
        return await self.provider.iterrows(dataset_id, start_index, limit)

    async def append_rows(self, user: Identity | None, dataset_id: str, rows: list[dict[str, Any]]) -> None:
        dataset = await self.registry.get(user, dataset_id, "update")
        check_rows(dataset.purpose, rows, "rows")
        stored = await self.provider.append_rows(dataset_id, rows)
        metadata = {**dataset.metadata, "num_rows": stored["num_rows"]}
        await self.registry.replace(dataset.model_copy(update={"metadata": metadata}))

    async def location(self, user: Identity | None, dataset_id: str, param: str) -> tuple[Dataset, str]:
        """The dataset and the folder its rows are in, for Ray Data readers; `param` names the field in errors."""
        try:
            dataset = await self.registry.get(user, dataset_id)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, param=param) from None
        return dataset, await self.provider.location(dataset_id)


def check_rows(purpose: str, rows: list[dict[str, Any]], where: str) -> None:
    """Each row has the purpose's columns; messages are lists of {role, content}."""
    for i, row in enumerate(rows):
        for column in PURPOSE_COLUMNS[purpose]:
            if column_value(row, column) is None:
                alias = f" (or '{COLUMN_ALIASES[column]}')" if column in COLUMN_ALIASES else ""
                raise InvalidRequestError(f"{where}.{i}.{column}: a {purpose} row needs '{column}'{alias}",
                                          param=f"{where}.{i}.{column}")
        if "messages" in PURPOSE_COLUMNS[purpose]:
            _check_messages(row["messages"], f"{where}.{i}.messages")


def _check_messages(messages: Any, where: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(f"{where}: expected a non-empty list of messages", param=where)
    for j, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES or not isinstance(message.get("content"), str):
            raise InvalidRequestError(f"{where}.{j}: expected {{role: system|user|assistant|tool, content: string}}",
                                      param=f"{where}.{j}")
