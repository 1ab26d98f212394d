"""Background responses without Serve (tests/unit/in_process.py): queued to completed, cancel, a
stream read again after a sequence number, and a run whose replica stopped, against the loopback
mock through the real remote::openai provider and SQLite stores."""

import asyncio
import json

import pytest

from bench.mock_openai import MockConfig, start_mock_server
from deployments.services.background_responses import RUNNER_STOPPED, BackgroundRuns
from deployments.services.replica import Replica
from providers.api.errors import ConflictError, InvalidRequestError, RateLimitError
from tests.unit.test_services import GONE, REPLY, graph, output_text, response, wait_for

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore:coroutine .ProviderDeployment.__del__. was never awaited")]

CHUNKS = 8


@pytest.fixture(scope="module")
def mock_url():
    """A model that streams its answer in 8 chunks 0.25 s apart: a turn takes about 2 s."""
    url, stop = start_mock_server(config=MockConfig(reply=REPLY, chunks=CHUNKS, chunk_delay_s=0.25,
                                                    models=("mock-model",)))
    yield url
    stop()


async def ended(services, response_id: str) -> dict:
    async def check():
        found = await services.responses.get(None, response_id)
        return found if found["status"] not in ("queued", "in_progress") else None

    return await wait_for(check)


async def events_of(stream) -> list[dict]:
    return [json.loads(text.split("data: ", 1)[1]) async for text in stream]


async def test_a_background_response_returns_queued_and_is_read_as_it_runs_to_its_end(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        queued = await services.responses.create(None, response(input="Capital of France?", background=True))
        assert queued["status"] == "queued" and queued["background"] is True and queued["output"] == []
        done = await ended(services, queued["id"])
        assert done["status"] == "completed" and output_text(done) == REPLY and done["background"] is True
        listed = await services.responses.list(None, after=None, limit=10, order="desc", model=None)
        assert [(r["id"], r["status"]) for r in listed["data"]] == [(queued["id"], "completed")]
        with pytest.raises(ConflictError):
            await services.responses.cancel(None, queued["id"])


async def test_a_cancelled_background_response_stops_and_stays_cancelled(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        watcher = asyncio.ensure_future(services.responses.background.watch())
        try:
            stream = await services.responses.create(None, response(input="Capital?", background=True, stream=True))
            first = [json.loads(text.split("data: ", 1)[1]) async for text in _take(stream, 3)]
            assert [e["type"] for e in first] == ["response.created", "response.in_progress",
                                                  "response.output_item.added"]
            running = await services.responses.get(None, first[0]["response"]["id"])
            assert running["status"] == "in_progress" and running["output"] == []
            cancelled = await services.responses.cancel(None, running["id"])
            assert cancelled["status"] == "cancelled"
            assert (await services.responses.cancel(None, cancelled["id"]))["status"] == "cancelled"
            await asyncio.sleep(CHUNKS * 0.25 + 1)  # longer than the whole turn would have taken
            stored = await services.responses.get(None, cancelled["id"])
            assert stored["status"] == "cancelled" and output_text(stored) == ""
            events = await events_of(await services.responses.events(None, cancelled["id"], None))
            assert events[-1]["type"] not in ("response.completed", "response.failed")
            assert len(events) < 3 + CHUNKS, "the turn stopped before the model's last chunk"
        finally:
            watcher.cancel()


async def test_a_background_stream_is_read_again_after_any_sequence_number(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        live = await events_of(await services.responses.create(None, response(input="Q?", background=True, stream=True)))
        assert [e["sequence_number"] for e in live] == list(range(len(live)))
        assert live[-1]["type"] == "response.completed" and output_text(live[-1]["response"]) == REPLY
        deltas = "".join(e["delta"] for e in live if e["type"] == "response.output_text.delta")
        assert deltas == REPLY
        response_id = live[0]["response"]["id"]
        again = await events_of(await services.responses.events(None, response_id, 2))
        assert again == live[3:]
        assert await events_of(await services.responses.events(None, response_id, len(live) - 1)) == []

        plain = await services.responses.create(None, response(input="Q?"))
        with pytest.raises(InvalidRequestError) as not_background:
            await services.responses.events(None, plain["id"], None)
        assert not_background.value.param == "stream"
        with pytest.raises(ConflictError):
            await services.responses.cancel(None, plain["id"])
        with pytest.raises(InvalidRequestError) as unstored:
            await services.responses.create(None, response(input="Q?", background=True, store=False))
        assert unstored.value.param == "store"


async def test_a_replica_refuses_background_turns_beyond_the_ones_it_runs(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        services.responses.background.max_running = 1
        first = await services.responses.create(None, response(input="Q?", background=True, stream=True))
        with pytest.raises(RateLimitError) as refused:
            await services.responses.create(None, response(input="Q?", background=True))
        assert refused.value.status_code == 429 and refused.value.param == "background"
        assert (await events_of(first))[-1]["type"] == "response.completed"

        async def accepted():
            try:
                return await services.responses.create(None, response(input="Q?", background=True))
            except RateLimitError:
                return None
        assert (await wait_for(accepted, timeout_s=10))["status"] == "queued"


async def test_a_run_whose_replica_stopped_is_marked_failed_with_the_reason(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        here = services.responses.background
        gone = BackgroundRuns(here.responses, here.runs, here.events, Replica(GONE, lambda name: False))
        plain = await services.responses.create(None, response(input="Q?"))
        record = {"id": "resp_orphan", "response": {**plain, "id": "resp_orphan", "status": "queued",
                                                     "background": True, "output": []},
                  "input_items": [], "context": []}
        await gone.queue(None, record, "mock-llm")
        assert (await services.responses.get(None, "resp_orphan"))["status"] == "queued"

        assert await here.fail_orphans() == 1
        failed = await services.responses.get(None, "resp_orphan")
        assert failed["status"] == "failed" and failed["error"] == RUNNER_STOPPED
        assert await here.fail_orphans() == 0


async def _take(stream, count: int):
    async for text in stream:
        yield text
        count -= 1
        if count == 0:
            return
