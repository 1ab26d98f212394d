"""The inference store on the real SQLite and PostgreSQL: listing pages and filters in SQL, reads
and deletes respect owners, the write-behind queue never drops a record."""

import asyncio
import uuid

import pytest
from sqlalchemy.exc import DBAPIError

from providers.access import AccessPolicy, Identity
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.run_config import StorageConfig
from providers.storage import Storage
from providers.storage.inference_store import InferenceStore
from tests.unit.test_kvstore import POSTGRES

ALICE = Identity(principal="alice", attributes={"teams": ["red"]})
ALICE_TEAMMATE = Identity(principal="carol", attributes={"teams": ["red"]})
BOB = Identity(principal="bob", attributes={"teams": ["green"]})
ADMIN = Identity(principal="root", attributes={"roles": ["admin"]})


def make_storage(kind: str, tmp_path, **store_options) -> Storage:
    backend = {"type": "sql_sqlite", "db_path": str(tmp_path / "sql.db")} if kind == "sqlite" else {**POSTGRES, "type": "sql_postgres"}
    table = f"completions_{uuid.uuid4().hex[:12]}"
    return Storage(StorageConfig.model_validate({
        "backends": {"db": backend}, "stores": {"inference": {"backend": "db", "table_name": table, **store_options}},
    }))


async def open_store(storage: Storage) -> InferenceStore:
    engine, _ = storage.sql("inference")
    store = InferenceStore(engine, storage.config.stores["inference"], AccessPolicy())
    await store.create_table()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    storage = make_storage(request.param, tmp_path)
    store = await open_store(storage)
    yield store
    await store.close()
    async with store.engine.begin() as conn:
        await conn.run_sync(store.table.metadata.drop_all)
    await storage.close()


def completion(n: int, model: str = "m1", created: int = 1_700_000_000) -> dict:
    return {
        "id": f"chatcmpl-{n:03d}", "object": "chat.completion", "created": created + n, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {n}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


async def put(store: InferenceStore, n: int, owner: Identity | None = None, **kwargs) -> None:
    await store.queue.put(store.completion_row(completion(n, **kwargs), [{"role": "user", "content": f"question {n}"}], owner))


async def flushed(store: InferenceStore) -> None:
    await store.queue.flush()


async def test_a_stored_completion_comes_back_with_its_input_messages(store):
    await put(store, 1)
    await flushed(store)
    record = await store.get(None, "chatcmpl-001")
    assert record["choices"][0]["message"]["content"] == "answer 1"
    assert record["input_messages"] == [{"role": "user", "content": "question 1"}]
    assert record["usage"]["total_tokens"] == 5


async def test_listing_pages_in_both_orders_and_filters_by_model(store):
    for n in range(7):
        await put(store, n, model="m1" if n % 2 == 0 else "m2")
    await flushed(store)
    seen, after = [], None
    while True:
        page = await store.list(None, after=after, limit=3, model=None, order="asc")
        seen += [r["id"] for r in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == [f"chatcmpl-{n:03d}" for n in range(7)]
    newest = await store.list(None, after=None, limit=2, model=None, order="desc")
    assert [r["id"] for r in newest["data"]] == ["chatcmpl-006", "chatcmpl-005"] and newest["has_more"]
    only_m2 = await store.list(None, after=None, limit=10, model="m2", order="asc")
    assert [r["id"] for r in only_m2["data"]] == ["chatcmpl-001", "chatcmpl-003", "chatcmpl-005"]
    assert not only_m2["has_more"]
    with pytest.raises(InvalidRequestError) as err:
        await store.list(None, after="chatcmpl-nope", limit=2, model=None, order="asc")
    assert err.value.param == "after"


async def test_same_second_completions_list_in_the_order_they_came(store):
    made = [f"chatcmpl-{uuid.uuid4().hex}" for _ in range(5)]
    for completion_id in made:
        await store.queue.put(store.completion_row({**completion(0), "id": completion_id, "created": 1_700_000_000}, [], None))
    await flushed(store)
    first = await store.list(None, after=None, limit=2, model=None, order="desc")
    second = await store.list(None, after=first["last_id"], limit=10, model=None, order="desc")
    assert [r["id"] for r in first["data"] + second["data"]] == made[::-1]


async def test_owners_see_their_records_and_records_without_owner_are_the_admins(store):
    await put(store, 1, ALICE)
    await put(store, 2, BOB)
    await put(store, 3, None)
    await flushed(store)

    async def ids(user):
        return [r["id"] for r in (await store.list(user, after=None, limit=10, model=None, order="asc"))["data"]]

    assert await ids(ALICE) == ["chatcmpl-001"]
    assert await ids(ALICE_TEAMMATE) == [], "a shared team shares nothing by default"
    assert await ids(BOB) == ["chatcmpl-002"]
    assert await ids(ADMIN) == ["chatcmpl-001", "chatcmpl-002", "chatcmpl-003"]
    assert await ids(None) == ["chatcmpl-001", "chatcmpl-002", "chatcmpl-003"]
    page = await store.list(ADMIN, after=None, limit=1, model=None, order="asc")
    assert [r["id"] for r in page["data"]] == ["chatcmpl-001"] and page["has_more"], "pagination counts only visible rows"
    for stranger in (BOB, ALICE_TEAMMATE):
        with pytest.raises(NotFoundError):
            await store.get(stranger, "chatcmpl-001")
        with pytest.raises(NotFoundError):
            await store.delete(stranger, "chatcmpl-001")
    with pytest.raises(NotFoundError):
        await store.get(BOB, "chatcmpl-003")
    with pytest.raises(InvalidRequestError):
        await store.list(BOB, after="chatcmpl-001", limit=1, model=None, order="asc")
    await store.delete(ADMIN, "chatcmpl-003")
    await store.delete(ALICE, "chatcmpl-001")
    with pytest.raises(NotFoundError):
        await store.get(ALICE, "chatcmpl-001")


async def test_a_full_queue_makes_writers_wait_and_loses_nothing(tmp_path):
    storage = make_storage("sqlite", tmp_path, max_write_queue_size=2, num_writers=1)
    store = await open_store(storage)
    release = asyncio.Event()
    write = store.insert

    async def slow_write(rows):
        await release.wait()
        await write(rows)

    store.queue._write_batch = slow_write
    await put(store, 0)  # taken by the writer, which waits
    await asyncio.sleep(0)
    await put(store, 1)
    await put(store, 2)
    blocked = asyncio.create_task(put(store, 3))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "the fourth record waits for room instead of being dropped"
    release.set()
    await blocked
    store.queue.put_soon(store.completion_row(completion(4), [], None))
    await store.close()
    listed = await store.list(None, after=None, limit=10, model=None, order="asc")
    assert [r["id"] for r in listed["data"]] == [f"chatcmpl-{n:03d}" for n in range(5)]
    await storage.close()


async def test_failed_writes_are_retried_until_they_land(tmp_path):
    storage = make_storage("sqlite", tmp_path)
    store = await open_store(storage)
    failures = 3
    write = store.insert

    async def flaky_write(rows):
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("database restarting")
        await write(rows)

    store.queue._write_batch = flaky_write
    await put(store, 1)
    await store.close()
    assert store.queue.failed_attempts == 3 and store.queue.lost == 0
    assert (await store.get(None, "chatcmpl-001"))["id"] == "chatcmpl-001"
    await storage.close()


async def test_a_database_starting_up_is_waited_for_not_dead_lettered(tmp_path):
    """PostgreSQL answers "the database system is starting up" (SQLSTATE 57P03, a DBAPIError, not an
    OperationalError) for a while after a restart: the record waits for it instead of being refused."""
    storage = make_storage("sqlite", tmp_path)
    store = await open_store(storage)
    failures = 4
    write = store.insert

    class StartingUp(Exception):
        sqlstate = "57P03"

    async def restarting_write(rows):
        nonlocal failures
        if failures:
            failures -= 1
            raise DBAPIError("INSERT", {}, StartingUp("the database system is starting up"))
        await write(rows)

    store.queue._write_batch = restarting_write
    await put(store, 1)
    await store.close()
    assert store.queue.dead_letters == 0 and store.queue.failed_attempts == 4
    assert (await store.get(None, "chatcmpl-001"))["id"] == "chatcmpl-001"
    await storage.close()


async def test_records_survive_closing_and_reopening_the_store(tmp_path):
    writer_storage = make_storage("sqlite", tmp_path)
    writer = await open_store(writer_storage)
    for n in range(3):
        await put(writer, n, ALICE)
    await writer.close()
    await writer_storage.close()
    reader_storage = Storage(writer_storage.config)
    reader = await open_store(reader_storage)
    assert len((await reader.list(ALICE, after=None, limit=10, model=None, order="asc"))["data"]) == 3
    await reader_storage.close()


async def test_a_row_that_can_never_insert_is_dead_lettered_and_its_batch_lands(tmp_path):
    """On PostgreSQL an id over 255 characters never fits its column: that row is logged and counted,
    the rows batched with it land, and the writer goes on."""
    storage = make_storage("postgres", tmp_path, num_writers=1)
    store = await open_store(storage)
    rows = [store.completion_row(completion(n), [], ALICE) for n in range(3)]
    rows[1] = {**rows[1], "id": "chatcmpl-" + "x" * 300}
    for row in rows:
        store.queue.put_soon(row)
    await asyncio.wait_for(flushed(store), timeout=30)
    assert store.queue.dead_letters == 1 and store.queue.written == 2
    await put(store, 7, ALICE)
    await asyncio.wait_for(flushed(store), timeout=30)
    assert [r["id"] for r in (await store.list(ALICE, after=None, limit=10, model=None, order="asc"))["data"]] == [
        "chatcmpl-000", "chatcmpl-002", "chatcmpl-007"]
    await store.close()
    async with store.engine.begin() as conn:
        await conn.run_sync(store.table.metadata.drop_all)
    await storage.close()


async def test_put_soon_on_a_full_queue_keeps_every_record_in_order_without_a_task_each(tmp_path):
    storage = make_storage("sqlite", tmp_path, max_write_queue_size=2, num_writers=1)
    store = await open_store(storage)
    for n in range(50):
        store.queue.put_soon(store.completion_row(completion(n), [], ALICE))
    assert store.queue.depth == 50
    assert len([t for t in asyncio.all_tasks() if "_feed_overflow" in repr(t)]) == 1
    await asyncio.wait_for(flushed(store), timeout=30)
    assert store.queue.written == 50
    await store.close()
    await storage.close()
