"""File bytes as files in a directory: written to a temporary name and renamed, so a crash never
leaves half a file under a real id. Disk IO runs in a thread, off the replica's event loop."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from providers.api.errors import InvalidRequestError, NotFoundError
from providers.inline.localfs.config import LocalFSConfig

_FILE_ID = re.compile(r"file-[0-9a-f]{32}")


class LocalFSFiles:
    def __init__(self, config: LocalFSConfig):
        self.root = Path(config.storage_dir).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, file_id: str) -> Path:
        if not _FILE_ID.fullmatch(file_id):
            raise InvalidRequestError(f"'{file_id}' is not a file id", param="file_id")
        return self.root / file_id

    async def put(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(_write_atomically, self._path(file_id), data)

    async def get(self, file_id: str) -> bytes:
        path = self._path(file_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFoundError(f"the content of file '{file_id}' is missing from {self.root}", param="file_id") from None

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self._path(file_id).unlink, missing_ok=True)

    async def shutdown(self) -> None:
        pass


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
