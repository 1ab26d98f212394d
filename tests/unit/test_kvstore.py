"""Every kv backend behaves the same, on the real SQLite, PostgreSQL and Redis of this machine;
concurrent writers never see "database is locked"."""

import asyncio
import multiprocessing
import uuid

import pytest

from providers.run_config import StorageConfig
from providers.storage import Storage

POSTGRES = {"type": "kv_postgres", "host": "127.0.0.1", "port": 5432, "db": "test", "user": "postgres"}


def storage_for(kind: str, tmp_path) -> Storage:
    backend = {
        "sqlite": {"type": "kv_sqlite", "db_path": str(tmp_path / "kv.db")},
        "postgres": POSTGRES,
        "redis": {"type": "kv_redis", "url": "redis://127.0.0.1:6379/0"},
    }[kind]
    namespace = f"test-{uuid.uuid4().hex}"
    return Storage(StorageConfig.model_validate(
        {"backends": {"kv": backend}, "stores": {"metadata": {"backend": "kv", "namespace": namespace}}}
    ))


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def storage(request, tmp_path):
    storage = storage_for(request.param, tmp_path)
    yield storage
    store = storage.kv("metadata")
    for key, _ in await store.items_with_prefix(""):
        await store.delete(key)
    await storage.close()


async def test_set_get_overwrite_delete(storage):
    store = storage.kv("metadata")
    assert await store.get("a") is None
    await store.set("a", "1")
    await store.set("a", "2")
    assert await store.get("a") == "2"
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None


async def test_prefix_listing_is_ordered_and_takes_wildcards_literally(storage):
    store = storage.kv("metadata")
    for key in ["model:b", "model:a", "model_x", "model%:c", "other:z"]:
        await store.set(key, key.upper())
    assert await store.items_with_prefix("model:") == [("model:a", "MODEL:A"), ("model:b", "MODEL:B")]
    assert [k for k, _ in await store.items_with_prefix("model%")] == ["model%:c"]


async def test_namespaces_do_not_see_each_other(storage):
    store = storage.kv("metadata")
    other = Storage(storage.config.model_copy(update={"stores": {
        "metadata": storage.config.stores["metadata"].model_copy(update={"namespace": f"other-{uuid.uuid4().hex}"})}}))
    await store.set("k", "mine")
    assert await other.kv("metadata").get("k") is None
    await other.close()


async def test_one_pool_per_backend_shared_by_stores(tmp_path):
    storage = storage_for("sqlite", tmp_path)
    first, second = storage.kv("metadata"), storage.kv("metadata")
    assert first.engine is second.engine
    await storage.close()


def _write_many(db_path: str, namespace: str, writer: int, count: int) -> None:
    async def write():
        storage = Storage(StorageConfig.model_validate({
            "backends": {"kv": {"type": "kv_sqlite", "db_path": db_path}},
            "stores": {"metadata": {"backend": "kv", "namespace": namespace}},
        }))
        store = storage.kv("metadata")
        await asyncio.gather(*(store.set(f"{writer}-{i}", "x" * 200) for i in range(count)))
        await storage.close()

    asyncio.run(write())


def test_concurrent_writer_processes_on_one_sqlite_file_lose_nothing(tmp_path):
    db_path, namespace, count = str(tmp_path / "shared.db"), "shared", 300
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(db_path, namespace, w, count)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [p.exitcode for p in writers] == [0, 0, 0]

    async def count_rows():
        storage = Storage(StorageConfig.model_validate({
            "backends": {"kv": {"type": "kv_sqlite", "db_path": db_path}},
            "stores": {"metadata": {"backend": "kv", "namespace": namespace}},
        }))
        rows = await storage.kv("metadata").items_with_prefix("")
        await storage.close()
        return len(rows)

    assert asyncio.run(count_rows()) == 3 * count
