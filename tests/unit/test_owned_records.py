"""OwnedRecords on real databases: a row id is stored once, whoever races for it."""

import asyncio
import uuid

import pytest

from providers.access import AccessPolicy
from providers.run_config import StorageConfig
from providers.storage import Storage
from providers.storage.group_commit import GroupCommit
from providers.storage.owned_records import OwnedRecords
from tests.unit.test_kvstore import POSTGRES


@pytest.fixture(params=["sqlite", "postgres"])
async def records(request, tmp_path):
    backend = {"type": "sql_sqlite", "db_path": str(tmp_path / "r.db")} if request.param == "sqlite" else {**POSTGRES, "type": "sql_postgres"}
    storage = Storage(StorageConfig.model_validate({"backends": {"db": backend}, "stores": {}}))
    table = OwnedRecords(storage.engine("db"), f"records_{uuid.uuid4().hex[:12]}", AccessPolicy(), resource_type="thing",
                         noun="thing", id_param="thing_id")
    await table.create_table()
    yield table
    async with table.engine.begin() as conn:
        await conn.run_sync(table.table.metadata.drop_all)
    await storage.close()


async def test_insert_new_lets_exactly_one_of_racing_writers_store_an_id(records):
    rows = [records.row({"id": "v2", "writer": n}, None) for n in range(8)]
    won = await asyncio.gather(*(records.insert_new(row) for row in rows))
    assert sum(won) == 1
    assert (await records.get(None, "v2"))["writer"] == won.index(True)


async def test_a_conditional_claim_lets_exactly_one_of_racing_claimants_take_a_row(tmp_path):
    storage = Storage(StorageConfig.model_validate({"backends": {"db": {"type": "sql_sqlite", "db_path": str(tmp_path / "c.db")}},
                                                    "stores": {}}))
    table = OwnedRecords(storage.engine("db"), "claims", AccessPolicy(), resource_type="thing", noun="thing",
                         id_param="thing_id", filter_columns=("holder",))
    await table.create_table()
    await table.insert([table.row({"id": "job"}, None, holder="gone")])
    claims = await asyncio.gather(*(table.set_columns_if("job", {"holder": "gone"}, holder=f"r{n}") for n in range(8)))
    assert sum(claims) == 1
    assert await table.count_by("holder") == {f"r{claims.index(True)}": 1}
    await storage.close()


async def test_of_writers_racing_from_the_same_loaded_record_only_the_first_stores(records):
    await records.insert([records.row({"id": "job", "status": "running", "progress": [0.5, 1e-9, "é"]}, None)])
    loaded = await records.load("job")
    statuses = ["completed", "running", "lost"]
    won = await asyncio.gather(*(records.replace_unchanged("job", loaded, {**loaded, "status": status})
                                 for status in statuses))
    assert sum(won) == 1
    assert (await records.load("job"))["status"] == statuses[won.index(True)]


async def test_concurrent_inserts_share_transactions_and_each_is_stored_when_its_caller_returns(records):
    transactions = []

    async def insert(rows):
        transactions.append(len(rows))
        await records.insert(rows)

    commit = GroupCommit(insert)

    async def write(n: int) -> bool:
        await commit.insert([records.row({"id": f"r{n}"}, None)])
        return (await records.get(None, f"r{n}"))["id"] == f"r{n}"

    assert all(await asyncio.gather(*(write(n) for n in range(40))))
    assert sum(transactions) == 40 and len(transactions) < 10, transactions


async def test_a_failed_group_fails_its_callers_only(records):
    failures = iter([RuntimeError("disk full")])

    async def insert(rows):
        failure = next(failures, None)
        if failure is not None:
            await asyncio.sleep(0.05)
            raise failure
        await records.insert(rows)

    commit = GroupCommit(insert)
    first = asyncio.ensure_future(commit.insert([records.row({"id": "lost"}, None)]))
    await asyncio.sleep(0.01)  # the first insert is running; these two wait and go in together
    later = await asyncio.gather(*(commit.insert([records.row({"id": f"kept{n}"}, None)]) for n in range(2)))
    with pytest.raises(RuntimeError, match="disk full"):
        await first
    assert later == [None, None] and (await records.get(None, "kept1"))["id"] == "kept1"
