"""SQLAlchemy async engines: one connection pool per backend per process.

SQLite runs in WAL mode with a busy timeout, so several replicas on one node can write one file
without "database is locked" reaching a client; PostgreSQL pools are sized from the config.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from providers.run_config import PostgresConnection, SqliteKVBackend, SqliteSQLBackend

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(backend: SqliteKVBackend | SqliteSQLBackend | PostgresConnection) -> AsyncEngine:
    if isinstance(backend, (SqliteKVBackend, SqliteSQLBackend)):
        return _sqlite_engine(Path(backend.db_path).expanduser())
    url = URL.create(
        "postgresql+asyncpg", username=backend.user, password=backend.password or None,
        host=backend.host, port=backend.port, database=backend.db,
    )
    return create_async_engine(
        url, pool_size=backend.pool_size, max_overflow=backend.max_overflow,
        pool_timeout=backend.pool_timeout_s, pool_pre_ping=True,
    )


def _sqlite_engine(path: Path) -> AsyncEngine:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def _wal_and_busy_timeout(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


async def create_tables(engine: AsyncEngine, metadata: MetaData, attempts: int = 3) -> None:
    """Create missing tables. Processes starting together race to create them: the losers fail
    with "already exists" and see the winner's tables on the next check."""
    for attempt in range(attempts):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all, checkfirst=True)
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
