"""The key-value contract every kv backend implements."""

from typing import Protocol


class KVStore(Protocol):
    """String keys to string values inside one namespace; connections belong to the process's
    `Storage`, which closes them."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when it existed."""
        ...

    async def items_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """All (key, value) pairs whose key starts with `prefix`, ordered by key."""
        ...
