"""kv_sqlite and kv_postgres: one `kvstore` table per database, rows keyed by (namespace, key)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

_metadata = MetaData()
KV_TABLE = Table(
    "kvstore", _metadata,
    Column("namespace", String(255), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("value", Text, nullable=False),
)
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class SqlKVStore:
    def __init__(self, engine: AsyncEngine, namespace: str):
        self.engine = engine
        self.namespace = namespace
        self._insert = _INSERTS[engine.dialect.name]
        self._ready = asyncio.Lock()
        self._created = False

    async def _table(self) -> Table:
        async with self._ready:
            if not self._created:
                async with self.engine.begin() as conn:
                    await conn.run_sync(_metadata.create_all, checkfirst=True)
                self._created = True
        return KV_TABLE

    async def get(self, key: str) -> str | None:
        table = await self._table()
        async with self.engine.connect() as conn:
            row = await conn.execute(
                select(table.c.value).where(table.c.namespace == self.namespace, table.c.key == key)
            )
            return row.scalar_one_or_none()

    async def set(self, key: str, value: str) -> None:
        table = await self._table()
        statement = self._insert(table).values(namespace=self.namespace, key=key, value=value)
        statement = statement.on_conflict_do_update(index_elements=["namespace", "key"], set_={"value": value})
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def delete(self, key: str) -> bool:
        table = await self._table()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(table.c.namespace == self.namespace, table.c.key == key)
            )
            return result.rowcount > 0

    async def items_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        table = await self._table()
        query = (
            select(table.c.key, table.c.value)
            .where(table.c.namespace == self.namespace, table.c.key.startswith(prefix, autoescape=True))
            .order_by(table.c.key)
        )
        async with self.engine.connect() as conn:
            return [(k, v) for k, v in await conn.execute(query)]
