"""A write-behind queue: requests hand records over and go on; writer tasks store them in batches.

Bounded: when `max_size` records wait, the next `put` waits for room (backpressure reaches the
client as latency, never as a dropped record). A failed write is retried with backoff until it
lands; `close` writes everything still queued before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Generic, TypeVar

logger = logging.getLogger("ray.serve")

T = TypeVar("T")
_MAX_BATCH = 200
_MAX_RETRY_DELAY_S = 2.0


class WriteBehindQueue(Generic[T]):
    def __init__(self, write_batch: Callable[[list[T]], Awaitable[None]], *, max_size: int, num_writers: int, name: str):
        self.name = name
        self._write_batch = write_batch
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize=max_size)
        self._num_writers = num_writers
        self._writers: list[asyncio.Task] = []
        self._waiting_puts: set[asyncio.Task] = set()
        self._give_up_at: float | None = None
        self.written = 0
        self.failed_attempts = 0
        self.lost = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize() + len(self._waiting_puts)

    async def put(self, item: T) -> None:
        """Queue `item`, waiting while the queue is full."""
        self._start_writers()
        await self._queue.put(item)

    def put_soon(self, item: T) -> None:
        """Queue `item` without awaiting: for code that may be cancelled (a stream whose client left)."""
        self._start_writers()
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            task = asyncio.get_running_loop().create_task(self._queue.put(item))
            self._waiting_puts.add(task)
            task.add_done_callback(self._waiting_puts.discard)

    def _start_writers(self) -> None:
        if not self._writers:
            loop = asyncio.get_running_loop()
            self._writers = [loop.create_task(self._drain()) for _ in range(self._num_writers)]

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write_with_retries(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_with_retries(self, batch: list[T]) -> None:
        delay = 0.05
        while True:
            try:
                await self._write_batch(batch)
                self.written += len(batch)
                return
            except Exception as exc:  # the database is down or busy: keep the records, try again
                self.failed_attempts += 1
                logger.warning("%s: writing %d records failed (%s: %s); retrying", self.name, len(batch), type(exc).__name__, exc)
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                self.lost += len(batch)
                logger.error("%s: shutting down with the database unreachable; %d records not stored", self.name, len(batch))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY_S)

    async def flush(self) -> None:
        """Wait until every record queued so far is written."""
        if self._waiting_puts:
            await asyncio.gather(*self._waiting_puts, return_exceptions=True)
        if self._writers:
            await self._queue.join()

    async def close(self, timeout_s: float = 20.0) -> None:
        """Write everything queued (retrying for at most `timeout_s`), then stop the writers."""
        self._give_up_at = time.monotonic() + timeout_s
        await self.flush()
        for task in self._writers:
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []
