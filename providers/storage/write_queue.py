"""A write-behind queue: requests hand records over and go on; writer tasks store them in batches.

Bounded: when `max_size` records wait, the next `put` waits for room (backpressure reaches the
client as latency, never as a dropped record). A write that fails because the database cannot be
reached is retried with backoff until it lands. One that fails for what is in it is retried a few
times, then row by row, and a row that can never be inserted (a value too long for its column) is
dead-lettered: logged with its id and counted, so it neither wedges a writer nor takes its batch
down with it. `close` writes everything still queued before the process exits.

With an `Outbox`, each record is also kept in a local file from `put` until it is written, so a
process killed with records queued loses none: the next process of the store on the node writes
them (`start` claims them, and a sweep every `SWEEP_INTERVAL_S` finds those of later deaths).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import time
from typing import Awaitable, Callable, Generic, TypeVar

from providers.storage.outbox import Outbox
from providers.storage.unreachable import unreachable

logger = logging.getLogger("ray.serve")

T = TypeVar("T")
_MAX_BATCH = 200
_MAX_RETRY_DELAY_S = 2.0
_TRIES_BEFORE_SPLITTING = 3
SWEEP_INTERVAL_S = 30.0
# Besides what `unreachable` names, a busy database times out and a socket fails: the rows are fine,
# only the moment is wrong.
_TRANSIENT = (OSError, TimeoutError)


class WriteBehindQueue(Generic[T]):
    def __init__(self, write_batch: Callable[[list[T]], Awaitable[None]], *, max_size: int, num_writers: int, name: str,
                 outbox: Outbox | None = None):
        self.name = name
        self._write_batch = write_batch
        self._outbox = outbox
        # (outbox sequence number or None, record)
        self._queue: asyncio.Queue[tuple[int | None, T]] = asyncio.Queue(maxsize=max_size)
        self._num_writers = num_writers
        self._writers: list[asyncio.Task] = []
        self._sweeper: asyncio.Task | None = None
        self._overflow: collections.deque[tuple[int | None, T]] = collections.deque()
        self._feeder: asyncio.Task | None = None
        self._give_up_at: float | None = None
        self.written = 0
        self.failed_attempts = 0
        self.lost = 0
        self.dead_letters = 0
        self.recovered = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize() + len(self._overflow)

    def start(self) -> None:
        """Start the writers, and with an outbox, queue what dead processes left in theirs."""
        self._start_writers()
        if self._outbox is not None and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def put(self, item: T) -> None:
        """Queue `item`, waiting while the queue is full."""
        self._start_writers()
        await self._queue.put(self._kept(item))

    def put_soon(self, item: T) -> None:
        """Queue `item` without awaiting: for code that may be cancelled (a stream whose client left)."""
        self._start_writers()
        self._put_nowait(self._kept(item))

    def _kept(self, item: T) -> tuple[int | None, T]:
        return (self._outbox.append(item) if self._outbox is not None else None), item

    def _put_nowait(self, entry: tuple[int | None, T]) -> None:
        if not self._overflow:
            try:
                return self._queue.put_nowait(entry)
            except asyncio.QueueFull:
                pass
        self._overflow.append(entry)  # one task feeds them in, in order, as room frees up
        if self._feeder is None or self._feeder.done():
            self._feeder = asyncio.get_running_loop().create_task(self._feed_overflow())

    async def _feed_overflow(self) -> None:
        while self._overflow:
            await self._queue.put(self._overflow[0])
            self._overflow.popleft()

    async def _sweep(self) -> None:
        while True:
            try:
                for entry in self._outbox.claim_orphans():
                    self.recovered += 1
                    self._put_nowait(entry)
            except Exception:
                logger.exception("%s: claiming the outboxes of dead processes failed", self.name)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    def _start_writers(self) -> None:
        if not self._writers:
            loop = asyncio.get_running_loop()
            # In a context of their own: the writers outlive the request that started them.
            self._writers = [loop.create_task(self._drain(), context=contextvars.Context()) for _ in range(self._num_writers)]

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

    async def _write_with_retries(self, batch: list[tuple[int | None, T]]) -> None:
        delay = 0.05
        tries = 0
        while True:
            try:
                await self._write_batch([item for _, item in batch])
                self.written += len(batch)
                return self._done_with(batch)
            except Exception as exc:
                self.failed_attempts += 1
                tries += 1
                logger.warning("%s: writing %d records failed (%s: %s); retrying", self.name, len(batch),
                               type(exc).__name__, str(exc)[:300])
                if not (isinstance(exc, _TRANSIENT) or unreachable(exc)) and tries >= _TRIES_BEFORE_SPLITTING:
                    return await self._write_rows_alone(batch, exc)
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                if self._outbox is not None:
                    logger.error("%s: shutting down with the database unreachable; %d records stay in the outbox %s "
                                 "for the next process on this node", self.name, len(batch), self._outbox.path)
                else:
                    self.lost += len(batch)
                    logger.error("%s: shutting down with the database unreachable; %d records not stored", self.name, len(batch))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY_S)

    def _done_with(self, batch: list[tuple[int | None, T]]) -> None:
        if self._outbox is not None:
            self._outbox.remove([seq for seq, _ in batch])

    async def _write_rows_alone(self, batch: list[tuple[int | None, T]], error: Exception) -> None:
        """A batch that keeps failing for what is in it: each row on its own, and a single row that
        still fails is dead-lettered."""
        if len(batch) > 1:
            for entry in batch:
                await self._write_with_retries([entry])
            return
        self.dead_letters += 1
        row = batch[0][1]
        row_id = row.get("id") if isinstance(row, dict) else None
        logger.error("%s: dead letter: record %r can never be stored (%s: %s)", self.name, row_id,
                     type(error).__name__, str(error)[:300])
        self._done_with(batch)

    async def flush(self) -> None:
        """Wait until every record queued so far is written."""
        if self._feeder is not None:
            await asyncio.gather(self._feeder, return_exceptions=True)
        if self._writers:
            await self._queue.join()

    async def close(self, timeout_s: float = 20.0) -> None:
        """Write everything queued (retrying for at most `timeout_s`), then stop the writers."""
        self._give_up_at = time.monotonic() + timeout_s
        await self.flush()
        tasks = self._writers + ([self._sweeper] if self._sweeper is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._writers, self._sweeper = [], None
        if self._outbox is not None:
            self._outbox.close()
