"""kv_sqlite: one table per database file, rows keyed by (namespace, key); WAL and a busy timeout
so several replicas on one node can write the same file."""

import asyncio
from pathlib import Path

import aiosqlite

_BUSY_TIMEOUT_MS = 30_000


class SqliteKVStore:
    def __init__(self, db_path: str, namespace: str):
        self.db_path = Path(db_path).expanduser()
        self.namespace = namespace
        self._conn: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()

    async def _connection(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._conn is None:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                conn = await aiosqlite.connect(self.db_path, timeout=_BUSY_TIMEOUT_MS / 1000)
                await conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS kv (namespace TEXT NOT NULL, key TEXT NOT NULL, "
                    "value TEXT NOT NULL, PRIMARY KEY (namespace, key))"
                )
                await conn.commit()
                self._conn = conn
            return self._conn

    async def get(self, key: str) -> str | None:
        conn = await self._connection()
        async with conn.execute(
            "SELECT value FROM kv WHERE namespace = ? AND key = ?", (self.namespace, key)
        ) as cursor:
            row = await cursor.fetchone()
        return row[0] if row else None

    async def set(self, key: str, value: str) -> None:
        conn = await self._connection()
        await conn.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            (self.namespace, key, value),
        )
        await conn.commit()

    async def delete(self, key: str) -> bool:
        conn = await self._connection()
        cursor = await conn.execute(
            "DELETE FROM kv WHERE namespace = ? AND key = ?", (self.namespace, key)
        )
        await conn.commit()
        return cursor.rowcount > 0

    async def items_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        conn = await self._connection()
        async with conn.execute(
            "SELECT key, value FROM kv WHERE namespace = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (self.namespace, len(prefix), prefix),
        ) as cursor:
            return [(k, v) async for k, v in cursor]

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
