"""File bytes as files in a directory: uploaded in parts to a temporary name and renamed once
whole, so a crash never leaves half a file under a real id. Disk IO runs in a thread, off the
replica's event loop."""

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

    async def write(self, file_id: str, data: bytes, offset: int) -> None:
        await asyncio.to_thread(_write_part, _partial(self._path(file_id)), data, offset)

    async def commit(self, file_id: str, size: int) -> None:
        await asyncio.to_thread(_commit, self._path(file_id), size)

    async def get(self, file_id: str) -> bytes:
        path = self._path(file_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFoundError(f"the content of file '{file_id}' is missing from {self.root}", param="file_id") from None

    async def delete(self, file_id: str) -> None:
        path = self._path(file_id)
        await asyncio.to_thread(lambda: [p.unlink(missing_ok=True) for p in (path, _partial(path))])

    async def shutdown(self) -> None:
        pass


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _write_part(partial: Path, data: bytes, offset: int) -> None:
    with open(partial, "r+b" if offset else "wb") as out:
        out.seek(offset)
        out.write(data)


def _commit(path: Path, size: int) -> None:
    partial = _partial(path)
    try:
        with open(partial, "r+b") as out:
            out.truncate(size)  # a retried part may have left bytes past the end
            os.fsync(out.fileno())
    except FileNotFoundError:
        if size:
            raise InvalidRequestError(f"no upload of '{path.name}' to commit", param="file_id") from None
        partial.touch()
    os.replace(partial, path)
