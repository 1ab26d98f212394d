"""Group commit: concurrent inserts into one table share transactions, and each caller still
returns only once its rows are stored (so what it wrote can be read the moment it answers)."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

Rows = list[dict[str, Any]]


class GroupCommit:
    """While one insert runs, the rows that arrive wait and then go in together in the next. A
    failed insert fails the callers whose rows it held, and the next batch goes on."""

    def __init__(self, insert: Callable[[Rows], Awaitable[None]]):
        self._insert = insert
        self._waiting: list[tuple[Rows, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        """Rows waiting for the next insert."""
        return sum(len(rows) for rows, _ in self._waiting)

    async def insert(self, rows: Rows) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_all())
        await done

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._insert([row for rows, _ in batch for row in rows])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
