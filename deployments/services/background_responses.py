"""Background responses (`background: true`): a turn that runs on after its request returns.

The response is stored at once as `queued`, beside a run row (the `<responses>_runs` table) holding
its status and the agents replica that runs it (`runner`): queued -> in_progress -> completed,
incomplete or failed; or cancelled. Reads of the response take its status from the run row until
the turn stores its end. Every event of the turn is stored under its sequence number (the
`<responses>_events` table), so its stream can be read again from any point
(`GET /v1/responses/{id}?stream=true&starting_after=N`), from any replica.

A cancel marks the run row `cancelled`; the runner sees it within `POLL_PERIOD_S` and stops the
turn. A turn whose runner stopped is marked `failed`, with the reason, by the next agents replica
that looks (every `ORPHAN_CHECK_PERIOD_S`, and as it starts): none stays `in_progress` forever."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

from deployments.services.replica import Replica
from deployments.services.response_turn import Emit
from providers.access import Identity
from providers.api.errors import ConflictError, InvalidRequestError, RateLimitError
from providers.storage.group_commit import GroupCommit
from providers.storage.owned_records import OwnedRecords

logger = logging.getLogger("ray.serve")

POLL_PERIOD_S = 0.5
ORPHAN_CHECK_PERIOD_S = 10.0
REPLAY_POLL_S = 0.2
REPLAY_PAGE = 200
CLOSE_WAIT_S = 5.0
MAX_RUNNING = 64
UNFINISHED = ("queued", "in_progress")
TERMINAL_EVENTS = {"response.completed", "response.failed", "response.incomplete"}
RUNNER_STOPPED = {"code": "server_error",
                  "message": "the agents replica running this response stopped before it finished; create it again"}


class BackgroundRuns:
    def __init__(self, responses: OwnedRecords, runs: OwnedRecords, events: OwnedRecords, replica: Replica):
        self.responses = responses
        self.runs = runs
        self.events = events
        self.replica = replica
        self.writes = GroupCommit(events.insert)
        self.max_running = MAX_RUNNING
        self._tasks: dict[str, asyncio.Task] = {}

    # ------------------------------------------------------------ the runner's side

    async def queue(self, owner: Identity | None, record: dict[str, Any], model: str) -> None:
        """Store the queued response's record and its run row, this replica its runner; a 429 when
        this replica runs `max_running` turns already (their requests returned: nothing else bounds them)."""
        if len(self._tasks) >= self.max_running:
            raise RateLimitError(f"this agents replica runs {self.max_running} background responses already; "
                                 "retry when one has ended", param="background")
        response_id = record["id"]
        await self.responses.insert([self.responses.row(record, owner, model=model)])
        await self.runs.insert([self.runs.row({"id": response_id, "status": "queued"}, owner, status="queued",
                                              runner=self.replica.id)])

    def start(self, response_id: str, turn: Callable[[Emit], Awaitable[None]]) -> None:
        """Run `turn` here, its events stored as it emits them."""
        events = _EventLog(self.writes, self.events, response_id)

        async def run() -> None:
            try:
                await turn(events.emit)
            finally:
                await events.flushed()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks[response_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(response_id, None))

    async def begin(self, response_id: str) -> bool:
        """queued -> in_progress; False when it was cancelled first."""
        return await self._move(response_id, "queued", "in_progress")

    async def end(self, response_id: str, status: str) -> bool:
        """in_progress -> `status`; False when it was cancelled (or failed by another) first: the
        turn then stores nothing."""
        return await self._move(response_id, "in_progress", status)

    async def _move(self, response_id: str, before: str, after: str) -> bool:
        return await self.runs.replace(response_id, {"id": response_id, "status": after}, {"status": before}, status=after)

    # ------------------------------------------------------------ any replica

    async def status(self, response_id: str) -> str | None:
        run = await self.runs.load(response_id)
        return run["status"] if run else None

    async def current(self, response: dict[str, Any]) -> dict[str, Any]:
        """`response` with the status of its run while its record still says queued."""
        if response.get("background") and response["status"] == "queued":
            return {**response, "status": _shown_status(await self.status(response["id"]))}
        return response

    async def current_page(self, responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        waiting = [r["id"] for r in responses if r.get("background") and r["status"] == "queued"]
        runs = await self.runs.load_many(waiting)
        return [{**r, "status": _shown_status(runs[r["id"]]["status"])} if r["id"] in runs else r for r in responses]

    async def cancel(self, user: Identity | None, response_id: str) -> dict[str, Any]:
        """Mark the run cancelled and store the response as cancelled; cancelling a cancelled one
        gives it again, as OpenAI does. 409 for a response that is not a background one or has ended."""
        record = await self.responses.authorize(user, response_id, "update")
        if not record["response"].get("background"):
            raise ConflictError(f"response '{response_id}' was not created with background: true; only a background "
                                "response can be cancelled", param="response_id")
        for before in UNFINISHED:
            if await self._move(response_id, before, "cancelled"):
                cancelled = {**record["response"], "status": "cancelled"}
                await self.responses.replace(response_id, {**record, "response": cancelled})
                return cancelled
        status = await self.status(response_id)
        if status == "cancelled":
            return {**record["response"], "status": "cancelled"}
        raise ConflictError(f"response '{response_id}' has already ended ({status}); it cannot be cancelled",
                            param="response_id")

    async def replay(self, response_id: str, starting_after: int | None) -> AsyncIterator[str]:
        """The run's events after `starting_after` as Server-Sent Events, then each as it is stored,
        until the turn ends."""
        following = -1 if starting_after is None else starting_after
        ended = False
        while True:
            ids = [_event_id(response_id, n) for n in range(following + 1, following + 1 + REPLAY_PAGE)]
            found = await self.events.load_many(ids)
            for event_id in ids:
                if event_id not in found:
                    break
                event = found[event_id]
                following = event["sequence_number"]
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                if event["type"] in TERMINAL_EVENTS:
                    return
            else:
                continue
            if ended:  # a cancelled or failed run stores no closing event
                return
            ended = await self.status(response_id) not in UNFINISHED
            if not ended:
                await asyncio.sleep(REPLAY_POLL_S)

    def check_replay(self, response: dict[str, Any]) -> None:
        if not response.get("background"):
            raise InvalidRequestError(f"response '{response['id']}' was not created with background: true; only a "
                                      "background response's events are kept to stream again", param="stream")

    # ------------------------------------------------------------ watching

    async def watch(self) -> None:
        """On agents replicas: stop the turns cancelled here, and fail the runs of stopped replicas."""
        ticks = 0
        while True:
            try:
                if ticks % round(ORPHAN_CHECK_PERIOD_S / POLL_PERIOD_S) == 0:
                    await self.fail_orphans()
                if self._tasks:
                    for response_id in await self.runs.ids_where(runner=self.replica.id, status="cancelled"):
                        if response_id in self._tasks:
                            self._tasks[response_id].cancel()
            except Exception as exc:  # storage down for a moment: look again next period
                logger.warning("watching background responses failed: %r", exc)
            ticks += 1
            await asyncio.sleep(POLL_PERIOD_S)

    async def fail_orphans(self) -> int:
        """Mark failed the unfinished runs whose replica is gone; how many."""
        failed = 0
        for status in UNFINISHED:
            for runner in await self.runs.count_by("runner", status=status):
                if runner == self.replica.id or await asyncio.to_thread(self.replica.alive, runner):
                    continue
                for response_id in await self.runs.ids_where(status=status, runner=runner):
                    failed += await self._fail(response_id, {"status": status, "runner": runner})
        if failed:
            logger.info("marked failed %d background responses whose replica stopped", failed)
        return failed

    async def _fail(self, response_id: str, expected: dict[str, str]) -> bool:
        if not await self.runs.replace(response_id, {"id": response_id, "status": "failed"}, expected, status="failed"):
            return False
        record = await self.responses.load(response_id)
        failed = {**record["response"], "status": "failed", "error": RUNNER_STOPPED}
        await self.responses.replace(response_id, {**record, "response": failed})
        return True

    async def close(self) -> None:
        """Let the running turns finish for `CLOSE_WAIT_S`, then stop the rest as failed."""
        running = dict(self._tasks)
        if not running:
            return
        _, late = await asyncio.wait(running.values(), timeout=CLOSE_WAIT_S)
        for response_id, task in running.items():
            if task in late:
                task.cancel()
                for status in UNFINISHED:
                    await self._fail(response_id, {"status": status, "runner": self.replica.id})


class _EventLog:
    """A run's events, numbered and stored in order without holding up the turn; `flushed` waits
    until every one is stored."""

    def __init__(self, writes: GroupCommit, events: OwnedRecords, response_id: str):
        self.writes = writes
        self.events = events
        self.response_id = response_id
        self.sequence = 0
        self.pending: list[asyncio.Future] = []

    async def emit(self, event: dict[str, Any]) -> None:
        event = {**event, "sequence_number": self.sequence}
        row = self.events.row(event, None, row_id=_event_id(self.response_id, self.sequence), response_id=self.response_id)
        self.sequence += 1
        self.pending = [write for write in self.pending if not write.done()]
        self.pending.append(asyncio.ensure_future(self.writes.insert([row])))

    async def flushed(self) -> None:
        await asyncio.gather(*self.pending)


def _shown_status(run_status: str | None) -> str:
    """A run that has ended but whose response is not stored yet reads as in progress: the stored
    response, with its output or error, follows within moments."""
    return run_status if run_status in UNFINISHED else "in_progress" if run_status else "queued"


def _event_id(response_id: str, sequence: int) -> str:
    return f"{response_id}:{sequence:08d}"
