"""What operators rely on, on a graph with PostgreSQL and Redis servers of its own and tracing on.

Faults in the shared state, under load: the servers are stopped and started again while clients keep
calling. Requests that need what is down fail fast with a 503 naming it; answered records are kept;
the graph recovers by itself. Traces: one request is one trace across the deployments it reaches,
and through the Ray Data tasks of the ingestion it starts."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.conftest import free_port, listening
from tests.e2e.test_remote_graph import wait_for
from tests.mcp_server import start_mcp_server
from tests.otlp_receiver import start_otlp_receiver

pytestmark = pytest.mark.timeout(300)
APP = "operations"
FAST_FAILURE_S = 5.0


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb into a temporary folder), to stop and start."""

    def __init__(self):
        self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self.folder = Path(tempfile.mkdtemp(prefix="raystack-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_postgres, str(self.bin / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A Redis server of the test's own, keeping its data in an append-only file across restarts."""

    def __init__(self):
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="raystack-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder,
                                         "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                                        stdout=subprocess.DEVNULL)
        wait_for(lambda: listening(self.port), timeout_s=10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_config(urls: dict[str, str], postgres: PrivatePostgres, redis: PrivateRedis, state_dir: str) -> dict:
    sql = {"type": "sql_postgres", "host": "127.0.0.1", "port": postgres.port, "user": "postgres", "db": "postgres"}
    small = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "conversations", "responses", "agents", "tool_runtime", "files", "vector_io"],
        "providers": {
            "inference": [{"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": urls["mock"]},
                           "deployment": small}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": f"{state_dir}/files"}, "deployment": small}],
            "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                           "config": {"db_path": f"{state_dir}/milvus.db"}, "deployment": small}],
            "agents": [{"provider_id": "builtin", "provider_type": "inline::builtin", "deployment": small}],
            "tool_runtime": [{"provider_id": "mcp", "provider_type": "remote::model-context-protocol", "deployment": small}],
        },
        "registered_resources": {"models": [
            {"model_id": "m", "provider_id": "mock", "provider_model_id": "mock-model"},
            {"model_id": "e", "provider_id": "mock", "provider_model_id": "mock-model", "model_type": "embedding",
             "metadata": {"embedding_dimension": 8}}]},
        "storage": {
            "backends": {"kv": {"type": "kv_redis", "url": f"redis://127.0.0.1:{redis.port}/0"}, "sql": sql},
            "stores": {
                "metadata": {"backend": "kv", "namespace": "registry"},
                "inference": {"backend": "sql", "table_name": "chat_completions", "outbox_dir": f"{state_dir}/outbox"},
                "responses": {"backend": "sql", "table_name": "responses"},
                "conversations": {"backend": "sql", "table_name": "conversations"},
                "files": {"backend": "sql", "table_name": "files"},
                "vector_stores": {"backend": "sql", "table_name": "vector_stores"},
            },
        },
        "responses": {"mcp_servers": [urls["mcp"]]},
        "server": {"ingress": {"num_replicas": 2, **small}, "tracing": {"endpoint": urls["otlp"]}},
    }


@pytest.fixture(scope="module")
def services():
    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    yield postgres, redis
    postgres.remove()
    redis.stop()
    shutil.rmtree(redis.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def urls():
    (mock, stop_mock), (mcp, stop_mcp) = start_mock_server(config=MockConfig(reply="still here", chunks=2)), start_mcp_server()
    otlp, spans, stop_otlp = start_otlp_receiver()
    yield {"mock": mock, "mcp": mcp, "otlp": otlp, "spans": spans}
    for stop in (stop_mock, stop_mcp, stop_otlp):
        stop()


@pytest.fixture(scope="module")
def http(serve_session, services, urls, tmp_path_factory):
    config = parse_run_config(run_config(urls, *services, str(tmp_path_factory.mktemp("operations"))), "operations")
    serve.run(build_app(config), name=APP, route_prefix="/")
    with httpx.Client(base_url=f"{serve_session}/v1", timeout=30) as client:
        yield client
    serve.delete(APP)


class Load:
    """Clients calling one route in a loop; keeps (finished at, status or error, seconds, body)."""

    def __init__(self, http: httpx.Client, path: str, body: dict, clients: int = 4):
        self.outcomes: list[tuple[float, int | str, float, dict | None]] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(clients)
        for _ in range(clients):
            self._pool.submit(self._loop, http, path, body)

    def _loop(self, http: httpx.Client, path: str, body: dict) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                reply = http.post(path, json=body)
                outcome, payload = reply.status_code, reply.json()
            except httpx.HTTPError as exc:
                outcome, payload = type(exc).__name__, None
            self.outcomes.append((time.monotonic(), outcome, time.monotonic() - started, payload))

    def successes_after(self, moment: float) -> int:
        return sum(1 for t, o, _, _ in self.outcomes if t > moment and o == 200)

    def between(self, start: float, end: float) -> list[tuple[float, int | str, float, dict | None]]:
        return [o for o in self.outcomes if start <= o[0] - o[2] and o[0] <= end]

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown()

    def longest_gap(self) -> float:
        times = sorted(t for t, o, _, _ in self.outcomes if o == 200)
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def test_a_database_restart_mid_load_fails_fast_keeps_every_record_and_recovers(http, services):
    """PostgreSQL stops for 8 s under load. Chat answers go on (their records wait in the write-behind
    queue and its outbox); stored responses, which are written before they answer, fail within
    seconds with a 503 naming the database; once it is back both recover with no restart, and every
    answered completion and response is stored."""
    postgres, _ = services
    chat = Load(http, "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    responses = Load(http, "/responses", {"model": "m", "input": "hi", "store": True})
    try:
        wait_for(lambda: chat.successes_after(0) >= 20 and responses.successes_after(0) >= 20, timeout_s=60)
        postgres.stop()
        stopped_at = time.monotonic()
        time.sleep(8)
        restarting_at = time.monotonic()  # it takes connections before pg_ctl returns
        postgres.start()
        started_at = time.monotonic()
        wait_for(lambda: responses.successes_after(started_at) >= 20 and chat.successes_after(started_at) >= 20,
                 timeout_s=60)
    finally:
        chat.stop()
        responses.stop()
    down = responses.between(stopped_at + 1, restarting_at)
    print("while down: chat", Counter(o for _, o, _, _ in chat.between(stopped_at, restarting_at)),
          "responses", Counter(o for _, o, _, _ in down))
    recovered = min(t for t, o, _, _ in responses.outcomes if t > started_at and o == 200) - started_at
    print(f"responses: first success {recovered:.1f} s after the database was back; longest gap "
          f"{responses.longest_gap():.1f} s; chat's longest gap {chat.longest_gap():.1f} s")
    assert down and {o for _, o, _, _ in down} == {503}, Counter(o for _, o, _, _ in down)
    assert {body["error"]["code"] for _, _, _, body in down} == {"database_unavailable"}
    assert max(seconds for _, _, seconds, _ in down) < FAST_FAILURE_S
    assert all(o == 200 for _, o, _, _ in chat.between(stopped_at, started_at)), "chat does not wait for the database"
    assert recovered < 15

    answered_chats = {body["id"] for _, o, _, body in chat.outcomes if o == 200}
    answered_responses = {body["id"] for _, o, _, body in responses.outcomes if o == 200}

    def stored(table: str) -> set[str]:
        async def ids():
            connection = await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="postgres", database="postgres")
            try:
                return {row["id"] for row in await connection.fetch(f"SELECT id FROM {table}")}
            finally:
                await connection.close()
        import asyncio
        return asyncio.run(ids())

    wait_for(lambda: answered_chats <= stored("chat_completions"), timeout_s=30)
    assert answered_responses <= stored("responses")


def test_redis_down_fails_registry_requests_fast_routes_chat_from_the_last_table_and_recovers(http, services):
    """The metadata store (Redis) stops: the models API answers 503 naming the database at once, chat
    to a known model is still routed (from the table each replica last read), and once Redis is back
    the models API recovers with no restart."""
    _, redis = services
    ask = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert http.get("/models").status_code == 200
    redis.stop()
    try:
        started = time.monotonic()
        listing = http.get("/models")
        took = time.monotonic() - started
        assert listing.status_code == 503, listing.text
        assert listing.json()["error"]["code"] == "database_unavailable" and took < FAST_FAILURE_S
        assert [http.post("/chat/completions", json=ask).status_code for _ in range(5)] == [200] * 5
    finally:
        redis.start()
    wait_for(lambda: http.get("/models").status_code == 200, timeout_s=15)
    assert http.post("/chat/completions", json=ask).status_code == 200


def ancestors(span, by_id: dict) -> list[str]:
    found = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        found.append(span.span_id)
    return found


def test_one_responses_turn_is_one_trace_through_the_ingress_the_agents_loop_and_the_providers(http, urls):
    """A client's `traceparent` continues into the graph: the ingress's span, the agents deployment's
    turn under it, and under that the model call, the MCP tool listing and the response's store write,
    each from the process that did it."""
    trace_id = os.urandom(16).hex()
    client_span = os.urandom(8).hex()
    tool = {"type": "mcp", "server_label": "forecast", "server_url": urls["mcp"], "require_approval": "never"}
    reply = http.post("/responses", json={"model": "m", "input": "Weather?", "tools": [tool]},
                      headers={"traceparent": f"00-{trace_id}-{client_span}-01"})
    assert reply.status_code == 200, reply.text

    def spans_of_the_trace():
        found = [s for s in urls["spans"] if s.trace_id == trace_id]
        components = {s.component for s in found}
        return found if {"ingress", "provider-builtin", "provider-mock", "provider-mcp"} <= components else None
    spans = wait_for(spans_of_the_trace, timeout_s=20)
    by_id = {s.span_id: s for s in spans}
    (ingress,) = [s for s in spans if s.component == "ingress" and s.parent_span_id == client_span]
    assert ingress.name == "POST /v1/responses" and ingress.attributes["http.response.status_code"] == 200
    (turn,) = [s for s in spans if s.name == "builtin.create_response"]
    assert turn.component == "provider-builtin" and turn.parent_span_id == ingress.span_id
    model_call = next(s for s in spans if s.name == "mock.chat_completion")
    tool_listing = next(s for s in spans if s.component == "provider-mcp")
    store_write = next(s for s in spans if s.name == "store.insert" and s.attributes["db.collection.name"] == "responses")
    for child in (model_call, tool_listing, store_write):
        assert turn.span_id in ancestors(child, by_id), f"{child.name} is not under the turn"
    assert {s.service for s in spans} == {"raystack"}



def test_an_ingestion_is_traced_from_the_request_through_its_ray_data_tasks_to_the_providers(http, urls):
    """Creating a store with a file: the ingestion pipeline's span under the request's, the spans of
    its Ray Data tasks (from the tasks' own processes) under the pipeline's, and under the tasks the
    calls to the files, embedding and vector IO providers."""
    trace_id = os.urandom(16).hex()
    file_id = http.post("/files", files={"file": ("traced.txt", b"Traces follow the work into the tasks.")},
                        data={"purpose": "assistants"}).json()["id"]
    reply = http.post("/vector_stores", json={"name": "traced", "file_ids": [file_id], "embedding_model": "e"},
                      headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"})
    assert reply.status_code == 200, reply.text
    wanted = {"ingress", "ray-data", "provider-localfs", "provider-mock", "provider-milvus"}
    calls = {"localfs.get": "ingest.chunk_file", "mock.embeddings": "ingest.embed_and_insert",
             "milvus.insert": "ingest.embed_and_insert"}

    def spans_of_the_trace():
        """Each process sends its spans on its own schedule: wait for all of them."""
        found = [s for s in urls["spans"] if s.trace_id == trace_id]
        names = {s.name for s in found}
        ended = wanted <= {s.component for s in found} and {"vector_stores.ingest", *calls.values(), *calls} <= names
        return found if ended else None
    spans = wait_for(spans_of_the_trace, timeout_s=60)
    by_id = {s.span_id: s for s in spans}
    (request,) = [s for s in spans if s.name == "POST /v1/vector_stores"]
    (pipeline,) = [s for s in spans if s.name == "vector_stores.ingest"]
    assert pipeline.parent_span_id == request.span_id and pipeline.attributes["raystack.files"] == 1
    tasks = [s for s in spans if s.component == "ray-data"]
    assert {s.name for s in tasks} == {"ingest.chunk_file", "ingest.embed_and_insert"}
    assert all(pipeline.span_id in ancestors(task, by_id) for task in tasks)
    for call_name, task_name in calls.items():
        call = next(s for s in spans if s.name == call_name)
        assert any(by_id[a].name == task_name for a in ancestors(call, by_id)), f"{call.name} is not under {task_name}"
