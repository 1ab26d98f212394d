"""Files API: the OpenAI file object and the contract of a files provider (where the bytes live)."""

from __future__ import annotations

from typing import Literal, Protocol, get_args

FilePurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
PURPOSES: tuple[str, ...] = get_args(FilePurpose)  # what a caller may upload
StoredPurpose = Literal[FilePurpose, "batch_output"]  # batch_output: what a batch wrote


def file_object(file_id: str, filename: str, purpose: str, size: int, created_at: int) -> dict:
    return {
        "id": file_id, "object": "file", "bytes": size, "created_at": created_at, "expires_at": None,
        "filename": filename, "purpose": purpose, "status": "processed", "status_details": None,
    }


class FilesProvider(Protocol):
    """Stores file bytes by id; the file's metadata and owner live in the `files` store."""

    async def write(self, file_id: str, data: bytes, offset: int) -> None:
        """Part of a file being uploaded, at `offset` (0 starts it anew); invisible until committed."""

    async def commit(self, file_id: str, size: int) -> None:
        """Make the uploaded parts the file, once they come to `size` bytes."""

    async def get(self, file_id: str) -> bytes: ...

    async def delete(self, file_id: str) -> None: ...

    async def shutdown(self) -> None: ...
