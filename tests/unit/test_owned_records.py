"""OwnedRecords on real databases: a row id is stored once, whoever races for it."""

import asyncio
import uuid

import pytest

from providers.access import AccessPolicy
from providers.run_config import StorageConfig
from providers.storage import Storage
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
