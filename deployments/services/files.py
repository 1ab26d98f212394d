"""Files: bytes in the files provider's deployment, metadata and owner in the `files` store."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, AsyncIterator

from deployments.clients import FilesClient
from providers.access import Identity
from providers.api.errors import PayloadTooLargeError, PermissionDeniedError
from providers.api.files import file_object
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

class FileService:
    def __init__(self, records: OwnedRecords, provider: FilesClient, max_bytes: int):
        self.records = records
        self.provider = provider
        self.max_bytes = max_bytes

    async def upload(self, user: Identity | None, filename: str, purpose: str,
                     parts: AsyncIterator[bytes]) -> dict[str, Any]:
        """Bytes first, part by part (no call carries a whole large file), then the record: a file is
        listed only once its content is stored. More than `max_bytes` is a 413, and nothing is kept."""
        file_id = f"file-{uuid.uuid4().hex}"
        if not self.records.policy.allows(user, "create", "file", file_id, user):
            raise PermissionDeniedError("not allowed to upload files", param="file")
        size = 0
        try:
            async for part in parts:
                if size + len(part) > self.max_bytes:
                    raise PayloadTooLargeError(f"file is larger than the {self.max_bytes} bytes allowed", param="file")
                await self.provider.write(file_id, part, size)
                size += len(part)
            await self.provider.commit(file_id, size)
        except BaseException:
            await self.provider.delete(file_id)
            raise
        record = file_object(file_id, filename, purpose, size, int(time.time()))
        try:
            await self.records.insert([self.records.row(record, user, purpose=purpose)])
        except Exception:
            await self.provider.delete(file_id)
            raise
        return record

    async def content(self, user: Identity | None, file_id: str) -> bytes:
        return (await self.read(user, file_id))[1]

    async def read(self, user: Identity | None, file_id: str) -> tuple[dict[str, Any], bytes]:
        """The file's record and bytes; 404 unless the caller may read it."""
        record = await self.records.get(user, file_id)
        return record, await self.provider.get(file_id)

    async def delete(self, user: Identity | None, file_id: str) -> None:
        """The record goes first, so the file disappears for every caller at once; bytes left
        behind by a failing provider are logged, not shown."""
        await self.records.delete(user, file_id)
        try:
            await self.provider.delete(file_id)
        except Exception as exc:
            logger.warning("file %s: record deleted, content not removed: %r", file_id, exc)
