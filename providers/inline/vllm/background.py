"""BackgroundGate: an engine's background requests (a later `priority`, as batches send) make way
for interactive ones. vLLM's priority scheduling runs an interactive request first, but then decodes
it beside every background sequence already running. On a CPU, each step costs about as much as the
sequences it carries. So, while interactive requests run (and for `quiet_s` after the last one),
at most `while_interactive` background requests run at once; the rest wait here, not in the engine.
With no interactive traffic, background requests run with no limit but the engine's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator


class BackgroundGate:
    def __init__(self, while_interactive: int, quiet_s: float):
        self.while_interactive = while_interactive
        self.quiet_s = quiet_s
        self.interactive = 0
        self.background = 0
        self._last_interactive = float("-inf")
        self._changed = asyncio.Condition()

    def touch(self) -> None:
        """An interactive stream is still sending: its presence holds for `quiet_s` from now."""
        self._last_interactive = time.monotonic()

    @contextlib.asynccontextmanager
    async def interactive_request(self) -> AsyncIterator[None]:
        self.interactive += 1
        try:
            yield
        finally:
            self.interactive -= 1
            self._last_interactive = time.monotonic()
            async with self._changed:
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def background_request(self) -> AsyncIterator[None]:
        async with self._changed:
            while self._yielding() and self.background >= self.while_interactive:
                quiet_at = self._last_interactive + self.quiet_s
                timeout = None if self.interactive else max(0.0, quiet_at - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
            self.background += 1
        try:
            yield
        finally:
            self.background -= 1
            async with self._changed:
                self._changed.notify_all()

    def _yielding(self) -> bool:
        """Whether interactive requests run now, or ran within the last `quiet_s`."""
        return bool(self.interactive) or time.monotonic() - self._last_interactive < self.quiet_s
