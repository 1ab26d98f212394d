"""Storage backends (kv and sql) and the stores built on them."""

from providers.run_config import KVStoreRef, RedisKVBackend, SqliteKVBackend, StorageConfig
from providers.storage.kvstore import KVStore


def open_kvstore(storage: StorageConfig, store_name: str) -> KVStore:
    """The kv store `store_name` as declared under storage.stores, on its named backend."""
    ref = storage.stores[store_name]
    if not isinstance(ref, KVStoreRef):
        raise ValueError(f"storage.stores.{store_name} is not a kv store")
    backend = storage.backends[ref.backend]
    if isinstance(backend, SqliteKVBackend):
        from providers.storage.sqlite_kv import SqliteKVStore

        return SqliteKVStore(backend.db_path, ref.namespace)
    if isinstance(backend, RedisKVBackend):
        from providers.storage.redis_kv import RedisKVStore

        return RedisKVStore(backend.url, ref.namespace)
    raise ValueError(f"backend type {backend.type} cannot hold a kv store")
