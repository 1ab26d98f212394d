"""Batches without Serve (tests/unit/in_process.py): the input file's checks, a batch to its output
and error files, cancel, and a batch taken over from a replica that stopped, against the loopback
mock through the real remote::openai provider and SQLite stores."""

import json
import threading

import pytest

from bench.mock_openai import MockConfig, start_mock_server
from deployments.services.batch_lines import FileErrors, parse_lines
from providers.api.batches import CreateBatchRequest
from providers.api.errors import ConflictError, InvalidRequestError, NotFoundError
from tests.unit.in_process import serial_batch
from tests.unit.test_services import REPLY, graph, parts, wait_for

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:coroutine .ProviderDeployment.__del__. was never awaited")]

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def mock_url():
    url, stop = start_mock_server(config=MockConfig(reply=REPLY, models=("mock-model",)))
    yield url
    stop()


def request_line(custom_id: str, body: dict | None = None, url: str = CHAT) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": body or {"model": "mock-llm", "messages": [{"role": "user", "content": f"question {custom_id}"}]}}


def jsonl(lines: list) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_a_well_formed_file_gives_its_requests_with_line_numbers_and_skips_blank_lines():
    lines = parse_lines(jsonl([request_line("a"), b"", request_line("b")]), CHAT)
    assert [(line.number, line.custom_id) for line in lines] == [(1, "a"), (3, "b")]


def test_each_line_that_breaks_the_files_shape_is_listed_with_its_number():
    data = jsonl([request_line("a"), b"{not json", request_line("a"), {**request_line("c"), "method": "GET"},
                  request_line("d", url="/v1/embeddings"), {"custom_id": "e", "method": "POST", "url": CHAT}, [1, 2]])
    found = parse_lines(data, CHAT)
    assert isinstance(found, FileErrors) and found.count == 6
    assert [(e["line"], e["code"]) for e in found.data] == [
        (2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "invalid_method"), (5, "mismatched_endpoint"),
        (6, "missing_required_parameter"), (7, "invalid_request")]
    assert parse_lines(b"\n\n", CHAT).data[0]["code"] == "empty_file"


async def upload(services, lines: list, purpose: str = "batch") -> str:
    return (await services.files.upload(None, "requests.jsonl", purpose, parts(jsonl(lines))))["id"]


async def ended(services, batch_id: str) -> dict:
    async def check():
        batch = await services.batches.get(None, batch_id)
        return batch if batch["status"] in ("completed", "failed", "cancelled", "expired") else None

    return await wait_for(check)


async def file_lines(services, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in (await services.files.content(None, file_id)).splitlines()]


async def test_a_batch_answers_each_valid_line_and_puts_the_invalid_ones_in_the_error_file(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        lines = [request_line(f"q{i}") for i in range(10)] + [
            request_line("no-messages", {"model": "mock-llm"}),
            request_line("hot", {"model": "mock-llm", "messages": [{"role": "user", "content": "x"}], "temperature": 9}),
            request_line("nowhere", {"model": "nonesuch", "messages": [{"role": "user", "content": "x"}]}),
            request_line("embedder", {"model": "mock-embed", "messages": [{"role": "user", "content": "x"}]})]
        request = CreateBatchRequest(input_file_id=await upload(services, lines), endpoint=CHAT,
                                     completion_window="24h", metadata={"team": "red"})
        created = await services.batches.create(None, request)
        assert created["status"] == "validating" and created["metadata"] == {"team": "red"}
        batch = await ended(services, created["id"])

        assert batch["status"] == "completed", batch
        assert batch["request_counts"] == {"total": 14, "completed": 10, "failed": 4}
        assert batch["model"] is None and batch["completed_at"] >= batch["in_progress_at"] >= batch["created_at"]
        output = await file_lines(services, batch["output_file_id"])
        assert sorted(line["custom_id"] for line in output) == sorted(f"q{i}" for i in range(10))
        assert all(line["response"]["status_code"] == 200 and line["error"] is None and
                   line["response"]["body"]["choices"][0]["message"]["content"] == REPLY for line in output)
        errors = {line["custom_id"]: line["response"] for line in await file_lines(services, batch["error_file_id"])}
        assert {custom_id: (r["status_code"], r["body"]["error"]["param"]) for custom_id, r in errors.items()} == {
            "no-messages": (400, "messages"), "hot": (400, "temperature"), "nowhere": (404, "model"),
            "embedder": (400, "model")}
        assert batch["usage"]["input_tokens"] > 0 and batch["usage"]["output_tokens"] > 0
        output_file = await services.files.records.get(None, batch["output_file_id"])
        assert output_file["purpose"] == "batch_output"
        listed = await services.batches.list(None, None, 20)
        assert [b["id"] for b in listed["data"]] == [batch["id"]] and "owner" not in listed["data"][0]
        with pytest.raises(ConflictError):
            await services.batches.cancel(None, batch["id"])


async def test_a_file_that_breaks_the_shape_fails_the_batch_with_each_line_named(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        file_id = await upload(services, [request_line("a"), request_line("a"), request_line("b", url="/v1/completions")])
        batch = await ended(services, (await services.batches.create(None, CreateBatchRequest(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h")))["id"])
        assert batch["status"] == "failed" and batch["failed_at"] and batch["output_file_id"] is None
        assert [(e["line"], e["code"]) for e in batch["errors"]["data"]] == [(2, "duplicate_custom_id"),
                                                                             (3, "mismatched_endpoint")]


async def test_the_input_file_must_exist_and_be_uploaded_for_batches(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        with pytest.raises(NotFoundError) as missing:
            await services.batches.create(None, CreateBatchRequest(input_file_id="file-nowhere", endpoint=CHAT,
                                                                   completion_window="24h"))
        assert missing.value.param == "input_file_id"
        other = await upload(services, [request_line("a")], purpose="assistants")
        with pytest.raises(InvalidRequestError) as wrong:
            await services.batches.create(None, CreateBatchRequest(input_file_id=other, endpoint=CHAT,
                                                                   completion_window="24h"))
        assert wrong.value.param == "input_file_id"
        with pytest.raises(NotFoundError):
            await services.batches.get(None, "batch_nowhere")


class FirstBlockThenWait:
    """run_batch as a replica that answers one block, then waits until told to stop; counts the
    requests it was given."""

    def __init__(self):
        self.given: list[str] = []
        self.first_block_stored = threading.Event()

    def __call__(self, rows, targets, resources, on_progress, stop):
        self.given += [row["custom_id"] for row in rows]
        serial_batch(rows[:resources.batch_size], targets, resources, on_progress, stop)
        self.first_block_stored.set()
        stop.wait(60)


async def started_batch(services, run: FirstBlockThenWait, count: int) -> str:
    file_id = await upload(services, [request_line(f"q{i}") for i in range(count)])
    batch = await services.batches.create(None, CreateBatchRequest(input_file_id=file_id, endpoint=CHAT,
                                                                   completion_window="24h"))

    async def first_block_counted():
        return (await services.batches.get(None, batch["id"]))["request_counts"]["completed"] > 0

    await wait_for(first_block_counted)
    return batch["id"]


async def test_a_cancelled_batch_keeps_its_answers_and_lists_the_rest_as_cancelled(tmp_path, mock_url):
    run = FirstBlockThenWait()
    async with graph(tmp_path, mock_url, batch=run) as services:
        batch_id = await started_batch(services, run, 20)
        assert (await services.batches.cancel(None, batch_id))["status"] == "cancelling"
        batch = await ended(services, batch_id)
        assert batch["status"] == "cancelled" and batch["cancelling_at"] <= batch["cancelled_at"]
        answered = {line["custom_id"] for line in await file_lines(services, batch["output_file_id"])}
        assert len(answered) == 8 == batch["request_counts"]["completed"]
        not_run = await file_lines(services, batch["error_file_id"])
        assert {line["custom_id"] for line in not_run} == {f"q{i}" for i in range(20)} - answered
        assert {line["error"]["code"] for line in not_run} == {"batch_cancelled"}


async def test_a_batch_left_by_a_stopped_replica_is_finished_by_the_next_without_answering_a_line_twice(tmp_path,
                                                                                                          mock_url):
    first = FirstBlockThenWait()
    async with graph(tmp_path, mock_url, batch=first) as services:
        batch_id = await started_batch(services, first, 20)
    given_to_next: list[str] = []

    def next_replica(rows, *args):
        given_to_next.extend(row["custom_id"] for row in rows)
        serial_batch(rows, *args)

    async with graph(tmp_path, mock_url, batch=next_replica) as services:
        stored = await services.batches.get(None, batch_id)
        assert stored["status"] == "in_progress" and stored["request_counts"]["completed"] == 8
        assert await services.batches.resume_orphans() == 1
        batch = await ended(services, batch_id)
        assert batch["status"] == "completed" and batch["request_counts"] == {"total": 20, "completed": 20, "failed": 0}
        output = [line["custom_id"] for line in await file_lines(services, batch["output_file_id"])]
        assert sorted(output) == sorted(f"q{i}" for i in range(20))
    assert sorted(given_to_next) == sorted(set(output) - set(first.given[:8]))


async def test_a_batch_past_its_window_expires_keeping_its_answers(tmp_path, mock_url):
    run = FirstBlockThenWait()
    async with graph(tmp_path, mock_url, batch=run) as services:
        batch_id = await started_batch(services, run, 20)
        record = await services.batches.batches.load(batch_id)
        assert await services.batches.batches.replace(batch_id, {**record, "expires_at": 0}, {"status": "in_progress"})
        batch = await ended(services, batch_id)
        assert batch["status"] == "expired" and batch["expired_at"]
        assert len(await file_lines(services, batch["output_file_id"])) == 8
        not_run = await file_lines(services, batch["error_file_id"])
        assert len(not_run) == 12 and {line["error"]["code"] for line in not_run} == {"batch_expired"}


async def test_an_idempotency_key_gives_the_same_batch_and_refuses_other_parameters(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        file_id = await upload(services, [request_line("a")])
        request = CreateBatchRequest(input_file_id=file_id, endpoint=CHAT, completion_window="24h", idempotency_key="k1")
        first = await services.batches.create(None, request)
        assert (await services.batches.create(None, request))["id"] == first["id"]
        with pytest.raises(ConflictError) as conflict:
            await services.batches.create(None, request.model_copy(update={"metadata": {"other": "run"}}))
        assert conflict.value.param == "idempotency_key"
        assert len((await services.batches.list(None, None, 20))["data"]) == 1
        await ended(services, first["id"])
