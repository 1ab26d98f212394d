"""The model routing table persists in the metadata store and is shared by every reader."""

import asyncio

import pytest

from providers.api.errors import ConflictError, NotFoundError
from providers.api.models import Model
from providers.storage import Storage
from providers.storage.model_registry import ModelRegistry
from tests.unit.test_kvstore import storage_for


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def make_store(request, tmp_path):
    """Stores on one backend, each from its own Storage, as separate replicas would have."""
    first = storage_for(request.param, tmp_path)
    storages = [first]

    def make():
        storage = Storage(first.config)
        storages.append(storage)
        return storage.kv("metadata")

    yield make
    store = first.kv("metadata")
    for key, _ in await store.items_with_prefix(""):
        await store.delete(key)
    for storage in storages:
        await storage.close()


async def test_registered_model_is_seen_by_another_registry_and_after_reopen(make_store):
    writer, reader = ModelRegistry(make_store()), ModelRegistry(make_store())
    await reader.list()
    await writer.register(Model(identifier="a/b", provider_id="p", provider_resource_id="b"))
    assert (await reader.get("a/b")).provider_resource_id == "b"
    assert [m.identifier for m in await ModelRegistry(make_store()).list()] == ["a/b"]


async def test_unregister_and_missing_model_errors(make_store):
    registry = ModelRegistry(make_store())
    await registry.register(Model(identifier="m", provider_id="p", provider_resource_id="m"))
    with pytest.raises(ConflictError):
        await registry.register(Model(identifier="m", provider_id="p", provider_resource_id="m"))
    await registry.unregister("m")
    with pytest.raises(NotFoundError):
        await registry.get("m")
    with pytest.raises(NotFoundError):
        await registry.unregister("m")


async def test_deletion_is_seen_by_other_readers(make_store):
    writer, reader = ModelRegistry(make_store()), ModelRegistry(make_store(), ttl_s=0)
    await writer.register(Model(identifier="m", provider_id="p", provider_resource_id="m"))
    await reader.get("m")
    await writer.unregister("m")
    with pytest.raises(NotFoundError):
        await reader.get("m")


class CountingStore:
    """The real store, counting the whole-table reads routing makes."""

    def __init__(self, store):
        self.store = store
        self.table_reads = 0

    async def items_with_prefix(self, prefix):
        self.table_reads += 1
        return await self.store.items_with_prefix(prefix)

    def __getattr__(self, name):
        return getattr(self.store, name)


async def test_requests_that_find_the_table_expired_share_one_read(make_store):
    store = CountingStore(make_store())
    registry = ModelRegistry(store, ttl_s=0.05)
    await registry.register(Model(identifier="m", provider_id="p", provider_resource_id="m"))
    await registry.get("m")
    await asyncio.sleep(0.1)
    models = await asyncio.gather(*(registry.get("m") for _ in range(50)))
    assert {m.identifier for m in models} == {"m"}
    assert store.table_reads == 2
