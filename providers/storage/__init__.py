"""Storage backends (kv and sql) and the stores built on them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from providers.run_config import KVStoreRef, RedisKVBackend, SQLStoreRef, StorageConfig
from providers.storage.kvstore import KVStore


class Storage:
    """The backends of one run config in one process: each backend's connection pool is made once,
    on first use, and shared by every store that names it."""

    def __init__(self, config: StorageConfig):
        self.config = config
        self._engines: dict[str, AsyncEngine] = {}
        self._redis: dict[str, Any] = {}

    def engine(self, backend_name: str) -> AsyncEngine:
        if backend_name not in self._engines:
            from providers.storage.sql_engine import create_engine

            self._engines[backend_name] = create_engine(self.config.backends[backend_name])
        return self._engines[backend_name]

    def redis(self, backend_name: str):
        if backend_name not in self._redis:
            import redis.asyncio as redis

            url = self.config.backends[backend_name].url
            self._redis[backend_name] = redis.from_url(url, decode_responses=True)
        return self._redis[backend_name]

    def kv(self, store_name: str) -> KVStore:
        """The kv store `store_name` as declared under storage.stores."""
        ref = self.config.stores[store_name]
        if not isinstance(ref, KVStoreRef):
            raise ValueError(f"storage.stores.{store_name} is not a kv store")
        backend = self.config.backends[ref.backend]
        if isinstance(backend, RedisKVBackend):
            from providers.storage.redis_kv import RedisKVStore

            return RedisKVStore(self.redis(ref.backend), ref.namespace)
        from providers.storage.sql_kv import SqlKVStore

        return SqlKVStore(self.engine(ref.backend), ref.namespace)

    def sql(self, store_name: str) -> tuple[AsyncEngine, str]:
        """The engine and table name of the sql store `store_name`."""
        ref = self.config.stores[store_name]
        if not isinstance(ref, SQLStoreRef):
            raise ValueError(f"storage.stores.{store_name} is not a sql store")
        return self.engine(ref.backend), ref.table_name

    async def close(self) -> None:
        for client in self._redis.values():
            await client.aclose()
        for engine in self._engines.values():
            await engine.dispose()
