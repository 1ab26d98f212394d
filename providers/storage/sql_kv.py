"""kv_sqlite and kv_postgres: one `kvstore` table per database, rows keyed by (namespace, key)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from providers.storage.sql_engine import create_tables

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

    async def _ensure_table(self) -> None:
        """Create the table once per store; after that, no lock on the request path."""
        if self._created:
            return
        async with self._ready:
            if not self._created:
                await create_tables(self.engine, _metadata)
                self._created = True

    async def get(self, key: str) -> str | None:
        await self._ensure_table()
        async with self.engine.connect() as conn:
            row = await conn.execute(
                select(KV_TABLE.c.value).where(KV_TABLE.c.namespace == self.namespace, KV_TABLE.c.key == key)
            )
            return row.scalar_one_or_none()

    async def set(self, key: str, value: str) -> None:
        await self._ensure_table()
        statement = self._insert(KV_TABLE).values(namespace=self.namespace, key=key, value=value)
        statement = statement.on_conflict_do_update(index_elements=["namespace", "key"], set_={"value": value})
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def delete(self, key: str) -> bool:
        await self._ensure_table()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(KV_TABLE).where(KV_TABLE.c.namespace == self.namespace, KV_TABLE.c.key == key)
            )
            return result.rowcount > 0

    async def items_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        await self._ensure_table()
        query = (
            select(KV_TABLE.c.key, KV_TABLE.c.value)
            .where(KV_TABLE.c.namespace == self.namespace, KV_TABLE.c.key.startswith(prefix, autoescape=True))
            .order_by(KV_TABLE.c.key)
        )
        async with self.engine.connect() as conn:
            return [(k, v) for k, v in await conn.execute(query)]
