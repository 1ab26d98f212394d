"""The graph with authentication, access control and the inference store, on SQLite and on
PostgreSQL + Redis: who sees which models and completions, what is stored, and what survives a
restart. Two ingress replicas share the state; the remote is a loopback OpenAI mock."""

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

import asyncpg
import httpx
import openai
import pytest
import ray
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.e2e.test_remote_graph import wait_for
from tests.fake_llama_guard import start_fake_llama_guard
from tests.mcp_server import start_mcp_server
from tests.prometheus import samples, total
from tests.unit.test_kvstore import POSTGRES

REPLY = "Stored answers are kept."
MCP_TOKEN = "mcp-secret"
HOSTILE_REPLY = "I will kill you, you idiot."
TOKENS = {
    "tok-alice": {"principal": "alice", "attributes": {"teams": ["red"]}},
    "tok-carol": {"principal": "carol", "attributes": {"teams": ["red"]}},
    "tok-bob": {"principal": "bob", "attributes": {"teams": ["green"]}},
    "tok-admin": {"principal": "root", "attributes": {"roles": ["admin"]}},
}
POLICY = [
    {"permit": {"actions": ["create", "read", "update", "delete"]}, "when": "user with admin in roles"},
    {"permit": {"actions": ["create"]}},
    {"permit": {"actions": ["read", "update", "delete"]}, "when": "user is owner"},
    {"permit": {"actions": ["read"]}, "when": "user in owners teams"},
    {"permit": {"actions": ["read"]}, "when": "resource is unowned"},
]


def storage_config(backend: str, state_dir) -> dict:
    suffix = uuid.uuid4().hex[:10]
    if backend == "sqlite":
        backends = {"kv": {"type": "kv_sqlite", "db_path": f"{state_dir}/kv.db"},
                    "sql": {"type": "sql_sqlite", "db_path": f"{state_dir}/sql.db"}}
    else:
        backends = {"kv": {"type": "kv_redis", "url": "redis://127.0.0.1:6379/0"}, "sql": {**POSTGRES, "type": "sql_postgres"}}
    return {"backends": backends, "stores": {
        "metadata": {"backend": "kv", "namespace": f"registry-{suffix}"},
        "inference": {"backend": "sql", "table_name": f"chat_completions_{suffix}", "outbox_dir": f"{state_dir}/outbox"},
        "files": {"backend": "sql", "table_name": f"files_{suffix}"},
        "vector_stores": {"backend": "sql", "table_name": f"vector_stores_{suffix}"},
        "prompts": {"backend": "sql", "table_name": f"prompts_{suffix}"},
        "conversations": {"backend": "sql", "table_name": f"conversations_{suffix}"},
        "responses": {"backend": "sql", "table_name": f"responses_{suffix}"},
        "jobs": {"backend": "sql", "table_name": f"jobs_{suffix}"},
    }}


MAX_FILE_BYTES = 64 * 1024
EMBEDDING_BATCH = 4


GUARD_MODEL = "meta-llama/Llama-Guard-3-1B"


def run_config(urls: dict[str, str], storage: dict, files_dir) -> dict:
    small = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "files", "vector_io", "prompts", "conversations", "responses", "agents", "safety",
                 "tool_runtime", "batches", "inspect"],
        "providers": {
            "inference": [
                {"provider_id": name, "provider_type": "remote::openai", "config": {"base_url": urls[name]}, "deployment": small,
                 "model_registration": "users" if name == "remote" else None}
                for name in ("remote", "slow", "hostile", "guard")
            ],
            "safety": [{"provider_id": "profanity-check", "provider_type": "inline::profanity-check", "deployment": small},
                       {"provider_id": "llama-guard", "provider_type": "inline::llama-guard", "deployment": small,
                        "config": {"model": "llama-guard"}}],
            "tool_runtime": [{"provider_id": "mcp", "provider_type": "remote::model-context-protocol", "deployment": small}],
            "agents": [{"provider_id": "agents", "provider_type": "inline::builtin",
                        "deployment": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0}}}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": str(files_dir), "max_file_size_bytes": MAX_FILE_BYTES}}],
            "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                           "config": {"db_path": str(files_dir.parent / "milvus.db")}}],
        },
        "registered_resources": {"models": [
            {"model_id": "shared", "provider_id": "remote", "provider_model_id": "mock-model"},
            {"model_id": "slow", "provider_id": "slow", "provider_model_id": "mock-model"},
            {"model_id": "hostile", "provider_id": "hostile", "provider_model_id": "mock-model"},
            {"model_id": "embedder", "provider_id": "remote", "provider_model_id": "mock-model", "model_type": "embedding",
             "metadata": {"embedding_dimension": 8}},
            {"model_id": "slow-embedder", "provider_id": "slow", "provider_model_id": "mock-model", "model_type": "embedding",
             "metadata": {"embedding_dimension": 8}},
            {"model_id": "llama-guard", "provider_id": "guard", "provider_model_id": GUARD_MODEL},
        ], "shields": [{"shield_id": "content-safety", "provider_id": "profanity-check"},
                       {"shield_id": "llama-guard", "provider_id": "llama-guard"}],
            "tool_groups": [{"toolgroup_id": "mcp::forecast", "provider_id": "mcp", "mcp_endpoint": {"uri": urls["mcp"]}}]},
        "vector_stores": {"ingestion": {"embedding_batch_size": EMBEDDING_BATCH, "resume_check_period_s": 2}},
        "responses": {"mcp_servers": [urls["mcp_guarded"]]},
        "batches": {"batch_size": 2, "concurrency": 1, "resume_check_period_s": 2},
        "storage": storage,
        "server": {
            "ingress": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0}},
            "auth": {"provider_config": {"type": "static_tokens", "tokens": TOKENS}},
            "access_policy": POLICY,
        },
    }


@pytest.fixture(scope="module")
def guard():
    """The hosted Llama Guard stand-in: (base URL, the request bodies it received)."""
    base_url, bodies, stop = start_fake_llama_guard()
    yield base_url, bodies
    stop()


@pytest.fixture(scope="module")
def mcp_servers():
    """An open MCP server and one that wants a bearer token."""
    (url, stop), (guarded_url, stop_guarded) = start_mcp_server(), start_mcp_server(required_token=MCP_TOKEN)
    yield {"open": url, "guarded": guarded_url}
    stop()
    stop_guarded()


@pytest.fixture(scope="module", params=["sqlite", "postgres+redis"])
def graph(request, serve_session, tmp_path_factory, guard, mcp_servers):
    stops, urls = [], {"guard": guard[0], "mcp": mcp_servers["open"], "mcp_guarded": mcp_servers["guarded"]}
    for name, mock in (("remote", MockConfig(reply=REPLY, chunks=4)),
                       ("slow", MockConfig(reply="one two three four five six", chunks=6, chunk_delay_s=0.3,
                                           embedding_delay_s=0.5)),
                       ("hostile", MockConfig(reply=HOSTILE_REPLY, chunks=3))):
        urls[name], stop = start_mock_server(config=mock)
        stops.append(stop)
    state_dir = tmp_path_factory.mktemp("state")
    storage = storage_config(request.param, state_dir)
    config = parse_run_config(run_config(urls, storage, state_dir / "files"), "test")
    serve.run(build_app(config), name="shared-state", route_prefix="/")
    yield config
    serve.delete("shared-state")
    for stop in stops:
        stop()


def as_user(base_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=token, max_retries=0, timeout=30)


@pytest.fixture
def users(serve_session, graph) -> dict[str, openai.OpenAI]:
    return {name: as_user(serve_session, f"tok-{name}") for name in ("alice", "carol", "bob", "admin")}


@pytest.fixture
def http(serve_session, graph):
    with httpx.Client(base_url=serve_session, timeout=30) as http:
        yield http


def ask(client: openai.OpenAI, model: str = "shared", **kwargs):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Who keeps answers?"}], **kwargs)


def stored(client: openai.OpenAI, completion_id: str) -> dict:
    """A completion once it is stored (the store writes behind the response, within milliseconds)."""
    def found():
        try:
            return client.chat.completions.retrieve(completion_id)
        except openai.NotFoundError:
            return None
    return wait_for(found, timeout_s=10).model_dump()


def test_requests_without_a_valid_token_are_401_but_health_is_open(http):
    for path in ("/v1/models", "/v1/chat/completions", "/v1/providers"):
        response = http.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_api_key"
    response = http.post("/v1/chat/completions", json={"model": "shared", "messages": []}, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "invalid bearer token" in response.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        ask(as_user(str(http.base_url).rstrip("/"), "forged"))
    assert http.get("/v1/health").json() == {"status": "OK"}
    assert http.get("/v1/version").status_code == 200


def test_health_is_a_503_while_the_metadata_store_does_not_answer(http, graph):
    metadata = graph.storage.backends[graph.storage.stores["metadata"].backend]
    if metadata.type != "kv_redis":
        pytest.skip("a SQLite file in WAL mode lets every reader in")
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "client", "pause", "6000", "ALL"], check=True, capture_output=True)
    stalled = http.get("/v1/health", timeout=30)
    assert stalled.status_code == 503 and stalled.json()["status"] == "Error", stalled.text
    wait_for(lambda: http.get("/v1/health").status_code == 200, timeout_s=30)


@pytest.mark.parametrize("query, param", [("limit=0", "limit"), ("limit=ten", "limit"), ("order=sideways", "order"),
                                          ("after=chatcmpl-unknown", "after")])
def test_bad_list_parameters_are_400_naming_them(http, query, param):
    response = http.get(f"/v1/chat/completions?{query}", headers={"Authorization": "Bearer tok-alice"})
    assert response.status_code == 400 and response.json()["error"]["param"] == param


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/vector_stores"])
def test_a_page_size_over_the_most_a_page_holds_is_capped_not_refused(http, users, path):
    for completion in [ask(users["alice"]) for _ in range(3)]:
        stored(users["alice"], completion.id)  # written behind the answer: both pages below see the same records
    headers = {"Authorization": "Bearer tok-alice"}
    large = http.get(path, params={"limit": 1000}, headers=headers)
    assert large.status_code == 200, large.text
    assert large.json()["data"] == http.get(path, params={"limit": 100}, headers=headers).json()["data"]
    assert len(http.get(path, params={"limit": 2}, headers=headers).json()["data"]) <= 2


def test_a_completion_is_stored_with_its_input_and_owner(users):
    reply = ask(users["alice"], metadata={"ticket": "T-1"})
    record = stored(users["alice"], reply.id)
    assert record["choices"][0]["message"]["content"] == REPLY
    assert record["input_messages"] == [{"role": "user", "content": "Who keeps answers?"}]
    assert record["usage"]["total_tokens"] == reply.usage.total_tokens
    messages = users["alice"].chat.completions.messages.list(reply.id)
    assert [m.content for m in messages.data] == ["Who keeps answers?"]


def test_store_false_is_not_stored(users):
    reply = ask(users["alice"], store=False)
    marker = ask(users["alice"])
    stored(users["alice"], marker.id)
    with pytest.raises(openai.NotFoundError):
        users["alice"].chat.completions.retrieve(reply.id)


def test_a_stream_is_stored_once_whole(users):
    chunks = list(ask(users["bob"], stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    record = stored(users["bob"], chunks[0].id)
    assert text == REPLY and record["choices"][0]["message"]["content"] == REPLY
    assert record["choices"][0]["finish_reason"] == "stop"
    assert record["usage"]["completion_tokens"] == chunks[-1].usage.completion_tokens
    assert "incomplete_details" not in record


def test_a_stream_the_client_leaves_is_stored_as_far_as_it_went(serve_session, users):
    with httpx.Client(base_url=serve_session, timeout=30, headers={"Authorization": "Bearer tok-carol"}) as http:
        with http.stream("POST", "/v1/chat/completions", json={
                "model": "slow", "stream": True, "messages": [{"role": "user", "content": "count"}]}) as response:
            first = next(line for line in response.iter_lines() if line.startswith("data: "))
    completion_id = httpx.Response(200, content=first[6:]).json()["id"]
    record = stored(users["carol"], completion_id)
    assert record["incomplete_details"] == {"reason": "client_disconnected"}
    assert len(record["choices"][0]["message"]["content"] or "") < len("one two three four five six")


def listed_ids(client: openai.OpenAI, **kwargs) -> list[str]:
    return [c.id for c in client.chat.completions.list(limit=100, **kwargs).data]


def test_access_matrix_for_chat_completions(serve_session, users):
    mine = {name: ask(users[name]).id for name in ("alice", "bob")}
    for completion_id in mine.values():
        stored(users["admin"], completion_id)
    # read
    assert users["carol"].chat.completions.retrieve(mine["alice"]).id == mine["alice"], "teammates read"
    for reader, other in (("bob", "alice"), ("alice", "bob")):
        with pytest.raises(openai.NotFoundError):
            users[reader].chat.completions.retrieve(mine[other])
    # list: only what each may read, and the page size counts only that
    assert mine["alice"] in listed_ids(users["alice"]) and mine["bob"] not in listed_ids(users["alice"])
    assert mine["bob"] in listed_ids(users["bob"]) and mine["alice"] not in listed_ids(users["bob"])
    assert {mine["alice"], mine["bob"]} <= set(listed_ids(users["admin"]))
    bob_total = len(listed_ids(users["bob"]))
    page = users["bob"].chat.completions.list(limit=bob_total)
    assert len(page.data) == bob_total and not page.has_more
    # anonymous: nothing at all
    for path in ("/v1/chat/completions", f"/v1/chat/completions/{mine['alice']}"):
        assert httpx.get(f"{serve_session}{path}").status_code == 401
    assert httpx.delete(f"{serve_session}/v1/chat/completions/{mine['alice']}").status_code == 401
    # delete
    with pytest.raises(openai.NotFoundError):
        users["bob"].chat.completions.delete(mine["alice"])
    with pytest.raises(openai.PermissionDeniedError):
        users["carol"].chat.completions.delete(mine["alice"])
    assert users["admin"].chat.completions.delete(mine["bob"]).deleted
    assert users["alice"].chat.completions.delete(mine["alice"]).deleted
    with pytest.raises(openai.NotFoundError):
        users["admin"].chat.completions.retrieve(mine["alice"])


def model_ids(client: openai.OpenAI) -> set[str]:
    return {m.id for m in client.models.list()}


def test_access_matrix_for_models(serve_session, users, http):
    def register(name: str, model_id: str):
        return http.post("/v1/models", headers={"Authorization": f"Bearer tok-{name}"},
                         json={"model_id": model_id, "provider_id": "remote", "provider_model_id": "mock-model"})

    assert register("alice", "alice-model").status_code == 200
    assert register("bob", "bob-model").status_code == 200
    assert http.post("/v1/models", json={"model_id": "anon-model", "provider_id": "remote"}).status_code == 401
    # read and list
    assert {"shared", "alice-model"} <= model_ids(users["alice"]) and "bob-model" not in model_ids(users["alice"])
    assert "alice-model" in model_ids(users["carol"])
    assert "alice-model" not in model_ids(users["bob"])
    assert {"shared", "alice-model", "bob-model"} <= model_ids(users["admin"])
    with pytest.raises(openai.NotFoundError):
        users["bob"].models.retrieve("alice-model")
    with pytest.raises(openai.NotFoundError):
        ask(users["bob"], model="alice-model")
    assert ask(users["carol"], model="alice-model").choices[0].message.content == REPLY
    # delete
    with pytest.raises(openai.NotFoundError):
        users["bob"].models.delete("alice-model")
    with pytest.raises(openai.PermissionDeniedError):
        users["alice"].models.delete("shared")
    with pytest.raises(openai.PermissionDeniedError):
        users["carol"].models.delete("alice-model")
    assert users["admin"].models.delete("bob-model").deleted
    assert users["alice"].models.delete("alice-model").deleted
    assert "alice-model" not in model_ids(users["admin"])


def upload(client: openai.OpenAI, content: bytes, name: str = "notes.txt", purpose: str = "assistants"):
    return client.files.create(file=(name, content), purpose=purpose)


def test_files_upload_read_list_and_delete(users):
    alice = users["alice"]
    created = upload(alice, b"The vault code is 4-8-15-16.\n", name="vault.txt")
    assert created.bytes == 29 and created.filename == "vault.txt" and created.purpose == "assistants"
    assert alice.files.retrieve(created.id).filename == "vault.txt"
    assert alice.files.content(created.id).content == b"The vault code is 4-8-15-16.\n"
    batch = upload(alice, b"{}", name="requests.jsonl", purpose="batch")
    assert [f.id for f in alice.files.list(purpose="batch")] == [batch.id]
    newest_first = [f.id for f in alice.files.list()]
    assert newest_first.index(batch.id) < newest_first.index(created.id)
    assert alice.files.delete(batch.id).deleted
    with pytest.raises(openai.NotFoundError):
        alice.files.content(batch.id)


def test_bad_uploads_are_4xx_naming_the_field(http, users):
    auth = {"Authorization": "Bearer tok-alice"}
    response = http.post("/v1/files", headers=auth, files={"file": ("a.txt", b"x")}, data={"purpose": "homework"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "purpose"
    response = http.post("/v1/files", headers=auth, data={"purpose": "assistants"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"
    with pytest.raises(openai.APIStatusError) as too_large:
        upload(users["alice"], b"x" * (MAX_FILE_BYTES + 1))
    assert too_large.value.status_code == 413 and too_large.value.body["param"] == "file"
    with pytest.raises(openai.NotFoundError):
        users["alice"].files.retrieve("file-00000000000000000000000000000000")
    response = http.get("/v1/files/..%2F..%2Fetc%2Fpasswd/content", headers=auth)
    assert response.status_code == 404


def test_access_matrix_for_files(serve_session, users):
    mine = upload(users["alice"], b"alice's notes").id
    assert mine in [f.id for f in users["carol"].files.list()]
    assert users["carol"].files.content(mine).content == b"alice's notes"
    assert mine not in [f.id for f in users["bob"].files.list()]
    for attempt in (users["bob"].files.retrieve, users["bob"].files.content, users["bob"].files.delete):
        with pytest.raises(openai.NotFoundError):
            attempt(mine)
    with pytest.raises(openai.PermissionDeniedError):
        users["carol"].files.delete(mine)
    for method, path in (("GET", "/v1/files"), ("GET", f"/v1/files/{mine}/content"), ("POST", "/v1/files")):
        assert httpx.request(method, f"{serve_session}{path}").status_code == 401
    assert mine in [f.id for f in users["admin"].files.list()]
    assert users["alice"].files.delete(mine).deleted


def ingested_store(client: openai.OpenAI, name: str, text: bytes):
    file_id = upload(client, text, name=f"{name}.txt").id
    store = client.vector_stores.create(name=name, file_ids=[file_id])
    wait_for(lambda: client.vector_stores.retrieve(store.id).file_counts.completed == 1, timeout_s=30)
    return store


def test_access_matrix_for_vector_stores(serve_session, users):
    store = ingested_store(users["alice"], "red-team-notes", b"The red team meets on Tuesdays.")
    assert users["carol"].vector_stores.retrieve(store.id).name == "red-team-notes"
    assert users["carol"].vector_stores.search(store.id, query="Tuesdays").data
    assert store.id not in [s.id for s in users["bob"].vector_stores.list()]
    bob = users["bob"]
    for attempt in (lambda: bob.vector_stores.retrieve(store.id),
                    lambda: bob.vector_stores.search(store.id, query="Tuesdays"),
                    lambda: bob.vector_stores.files.list(store.id),
                    lambda: bob.vector_stores.files.create(store.id, file_id=upload(bob, b"bob's").id),
                    lambda: bob.vector_stores.delete(store.id)):
        with pytest.raises(openai.NotFoundError):
            attempt()
    with pytest.raises(openai.PermissionDeniedError):
        users["carol"].vector_stores.delete(store.id)
    with pytest.raises(openai.PermissionDeniedError):
        users["carol"].vector_stores.update(store.id, name="renamed by carol")
    assert httpx.post(f"{serve_session}/v1/vector_stores/{store.id}/search", json={"query": "x"}).status_code == 401
    assert users["alice"].vector_stores.update(store.id, name="renamed", metadata={"k": "v"}).name == "renamed"
    assert users["admin"].vector_stores.delete(store.id).deleted


def test_a_file_batch_reports_progress_and_its_files(users):
    alice = users["alice"]
    store = alice.vector_stores.create(name="batch")
    file_ids = [upload(alice, f"note {n}: batches ingest many files".encode(), name=f"note{n}.txt").id for n in range(5)]
    batch = alice.vector_stores.file_batches.create(store.id, file_ids=file_ids, attributes={"source": "batch"})
    assert batch.file_counts.total == 5
    done = wait_for(lambda: (b := alice.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)).status != "in_progress" and b,
                    timeout_s=60)
    assert done.status == "completed" and done.file_counts.completed == 5
    listed = alice.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, limit=2)
    assert len(listed.data) == 2 and listed.has_more
    assert {f.id for f in alice.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)} == set(file_ids)
    hits = alice.vector_stores.search(store.id, query="batches", filters={"type": "eq", "key": "source", "value": "batch"})
    assert len(hits.data) == 5
    assert alice.vector_stores.search(store.id, query="batches", filters={"type": "eq", "key": "source", "value": "x"}).data == []
    with pytest.raises(openai.NotFoundError):
        users["bob"].vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)


# Static chunks of 100 tokens hold 75 words: 30 chunks, embedded 4 at a time at 0.5 s a call by the slow embedder.
LONG_TEXT = " ".join(f"word{n}" for n in range(30 * 75)).encode()
SMALL_CHUNKS = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}


def stored_chunks(client: openai.OpenAI, store_id: str, file_id: str) -> list[str]:
    return [part.text for part in client.vector_stores.files.content(file_id, vector_store_id=store_id)]


def test_cancelling_a_batch_stops_its_ingestion_and_keeps_none_of_its_chunks(users):
    alice = users["alice"]
    store = alice.vector_stores.create(name="cancelled", extra_body={"embedding_model": "slow-embedder"})
    file_ids = [upload(alice, LONG_TEXT, name=f"long{n}.txt").id for n in range(3)]
    batch = alice.vector_stores.file_batches.create(store.id, file_ids=file_ids, chunking_strategy=SMALL_CHUNKS)
    wait_for(lambda: any(stored_chunks(alice, store.id, f) for f in file_ids), timeout_s=60)
    cancelled = alice.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    assert cancelled.file_counts.cancelled >= 1
    assert cancelled.file_counts.cancelled + cancelled.file_counts.completed == 3
    statuses = {f.id: f.status for f in alice.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)}
    dropped = [f for f, status in statuses.items() if status == "cancelled"]
    wait_for(lambda: not any(stored_chunks(alice, store.id, f) for f in dropped), timeout_s=30)
    assert all(len(stored_chunks(alice, store.id, f)) == 30 for f, status in statuses.items() if status == "completed")
    later = alice.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert later.status == "cancelled" and later.file_counts.cancelled == cancelled.file_counts.cancelled


def replicas(deployment: str = "ingress") -> list:
    return [ray.get_actor(actor["name"], namespace="serve") for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["namespace"] == "serve" and f"#{deployment}#" in actor["name"]]


def test_an_ingestion_whose_replicas_die_is_finished_by_their_successors(users):
    alice = users["alice"]
    store = alice.vector_stores.create(name="resumed", extra_body={"embedding_model": "slow-embedder"})
    file_id = upload(alice, LONG_TEXT, name="long.txt").id
    alice.vector_stores.files.create(store.id, file_id=file_id, chunking_strategy=SMALL_CHUNKS)
    wait_for(lambda: stored_chunks(alice, store.id, file_id), timeout_s=60)
    for replica in replicas():
        ray.kill(replica, no_restart=True)

    def status():
        try:
            return alice.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status
        except (openai.APIConnectionError, openai.InternalServerError, openai.APIStatusError):
            return None  # the replicas are being replaced
    assert wait_for(lambda: status() not in (None, "in_progress") and status(), timeout_s=120) == "completed"
    chunks = stored_chunks(alice, store.id, file_id)
    assert len(chunks) == 30 and len(set(chunks)) == 30
    assert chunks[-1].split()[-1] == "word2249"


@pytest.mark.parametrize("body, param", [
    ({"query": "x", "max_num_results": 0}, "max_num_results"),
    ({"query": ""}, "query"),
    ({"query": "x", "filters": {"type": "eq", "key": "k"}}, "filters"),
    ({"query": "x", "filters": {"type": "in", "key": "k", "value": []}}, "filters"),
    ({"query": "x", "search_mode": "psychic"}, "search_mode"),
    ({"query": "x", "ranking_options": {"ef": 0}}, "ranking_options.ef"),
    ({"query": "x", "ranking_options": {"ef": 100_000}}, "ranking_options.ef"),
])
def test_bad_searches_are_400_naming_the_field(http, users, body, param):
    store = users["alice"].vector_stores.create(name="empty")
    response = http.post(f"/v1/vector_stores/{store.id}/search", json=body, headers={"Authorization": "Bearer tok-alice"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param)


def test_attaching_an_unknown_file_is_404_naming_it(users):
    store = users["alice"].vector_stores.create(name="no files")
    with pytest.raises(openai.NotFoundError) as missing:
        users["alice"].vector_stores.files.create(store.id, file_id="file-00000000000000000000000000000000")
    assert missing.value.body["param"] == "file_id"


def as_http(base_url: str, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url}/v1", headers={"Authorization": f"Bearer tok-{user}"}, timeout=30)


GREETING = "Hello {{ name }}, welcome to {{ place }}."


def test_a_prompt_is_versioned_and_only_the_latest_version_can_be_updated(serve_session, graph):
    with as_http(serve_session, "alice") as alice:
        created = alice.post("/prompts", json={"prompt": GREETING, "variables": ["name", "place"]}).json()
        prompt_id = created["prompt_id"]
        assert prompt_id.startswith("pmpt_") and created["version"] == 1 and created["is_default"]
        second = alice.post(f"/prompts/{prompt_id}", json={"prompt": "Hi {{ name }}!", "version": 1, "variables": ["name"]})
        assert second.status_code == 200 and second.json()["version"] == 2 and second.json()["variables"] == ["name"]
        stale = alice.put(f"/prompts/{prompt_id}", json={"prompt": "Hey {{ name }}", "version": 1})
        assert stale.status_code == 409 and stale.json()["error"]["param"] == "version"
        assert alice.get(f"/prompts/{prompt_id}").json()["prompt"] == "Hi {{ name }}!"
        first = alice.get(f"/prompts/{prompt_id}", params={"version": 1}).json()
        assert first["prompt"] == GREETING and not first["is_default"]
        kept = alice.put(f"/prompts/{prompt_id}", json={"prompt": "Yo {{ name }}", "version": 2, "set_as_default": False}).json()
        assert kept["version"] == 3 and not kept["is_default"]
        assert alice.put(f"/prompts/{prompt_id}/set-default-version", json={"version": 1}).json()["prompt"] == GREETING
        versions = alice.get(f"/prompts/{prompt_id}/versions").json()["data"]
        assert [(v["version"], v["is_default"]) for v in versions] == [(1, True), (2, False), (3, False)]
        assert prompt_id in [p["prompt_id"] for p in alice.get("/prompts").json()["data"]]
        assert alice.get(f"/prompts/{prompt_id}", params={"version": 9}).status_code == 404
        assert alice.delete(f"/prompts/{prompt_id}").status_code == 204
        assert alice.get(f"/prompts/{prompt_id}").status_code == 404
        assert alice.get(f"/prompts/{prompt_id}/versions").status_code == 404


@pytest.mark.parametrize("body, param", [
    ({"prompt": GREETING, "variables": ["name"]}, "variables"),
    ({"prompt": GREETING, "variables": ["name", "place", "time"]}, "variables"),
    ({"prompt": ""}, "prompt"),
    ({"variables": ["x"]}, "prompt"),
    ({"prompt": GREETING, "colour": "red"}, "colour"),
])
def test_bad_prompts_are_400_naming_the_field(serve_session, graph, body, param):
    with as_http(serve_session, "alice") as alice:
        response = alice.post("/prompts", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith(param)


def test_access_matrix_for_prompts(serve_session, graph):
    with as_http(serve_session, "alice") as alice, as_http(serve_session, "carol") as carol, \
            as_http(serve_session, "bob") as bob:
        prompt_id = alice.post("/prompts", json={"prompt": GREETING}).json()["prompt_id"]
        assert carol.get(f"/prompts/{prompt_id}").json()["variables"] == ["name", "place"]
        assert carol.put(f"/prompts/{prompt_id}", json={"prompt": "x", "version": 1}).status_code == 403
        assert carol.delete(f"/prompts/{prompt_id}").status_code == 403
        for attempt in (lambda: bob.get(f"/prompts/{prompt_id}"), lambda: bob.get(f"/prompts/{prompt_id}/versions"),
                        lambda: bob.put(f"/prompts/{prompt_id}", json={"prompt": "x", "version": 1})):
            assert attempt().status_code == 404
        assert prompt_id not in [p["prompt_id"] for p in bob.get("/prompts").json()["data"]]
        assert httpx.get(f"{serve_session}/v1/prompts/{prompt_id}").status_code == 401


def test_a_conversation_keeps_its_items_in_order(users):
    alice = users["alice"]
    conversation = alice.conversations.create(items=[{"role": "user", "content": "Where is the key?"}],
                                              metadata={"topic": "keys"})
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "keys"}
    added = alice.conversations.items.create(conversation.id, items=[
        {"type": "message", "role": "assistant", "content": "Under the blue flowerpot."},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "found"},
    ])
    assert [item.type for item in added.data] == ["message", "function_call", "function_call_output"]
    oldest_first = list(alice.conversations.items.list(conversation.id, order="asc", limit=2))
    assert [i.type for i in oldest_first] == ["message", "message", "function_call", "function_call_output"]
    first = oldest_first[0]
    assert first.role == "user" and first.content[0].type == "input_text" and first.content[0].text == "Where is the key?"
    assert oldest_first[1].content[0].type == "output_text"
    newest = alice.conversations.items.list(conversation.id, limit=1)
    assert newest.data[0].type == "function_call_output" and newest.has_more
    assert alice.conversations.items.retrieve(added.data[1].id, conversation_id=conversation.id).name == "lookup"
    assert alice.conversations.items.delete(added.data[1].id, conversation_id=conversation.id).id == conversation.id
    assert len(list(alice.conversations.items.list(conversation.id))) == 3
    assert alice.conversations.update(conversation.id, metadata={"topic": "doors"}).metadata == {"topic": "doors"}
    assert alice.conversations.delete(conversation.id).deleted
    with pytest.raises(openai.NotFoundError):
        alice.conversations.items.list(conversation.id)


@pytest.mark.parametrize("items, param", [
    ([{"type": "telepathy"}], "items.0.type"),
    ([{"role": "narrator", "content": "x"}], "items.0.role"),
    ([{"role": "user", "content": 42}], "items.0.content"),
    ([{"type": "function_call_output", "output": "x"}], "items.0.call_id"),
    ([{"role": "user", "content": "x"}] * 21, "items"),
])
def test_bad_conversation_items_are_400_naming_the_field(serve_session, graph, items, param):
    with as_http(serve_session, "alice") as alice:
        conversation_id = alice.post("/conversations", json={}).json()["id"]
        response = alice.post(f"/conversations/{conversation_id}/items", json={"items": items})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_access_matrix_for_conversations(users):
    conversation = users["alice"].conversations.create(items=[{"role": "user", "content": "team secret"}])
    carol, bob = users["carol"], users["bob"]
    assert carol.conversations.retrieve(conversation.id).id == conversation.id
    assert len(list(carol.conversations.items.list(conversation.id))) == 1
    with pytest.raises(openai.PermissionDeniedError):
        carol.conversations.items.create(conversation.id, items=[{"role": "user", "content": "carol was here"}])
    for attempt in (lambda: bob.conversations.retrieve(conversation.id), lambda: bob.conversations.items.list(conversation.id),
                    lambda: bob.conversations.delete(conversation.id)):
        with pytest.raises(openai.NotFoundError):
            attempt()


def test_responses_are_stored_and_owned(serve_session, users):
    alice, carol, bob = users["alice"], users["carol"], users["bob"]
    response = alice.responses.create(model="shared", input="Who keeps answers?", metadata={"case": "owned"})
    assert response.status == "completed" and response.output_text == REPLY and response.usage.output_tokens > 0
    assert carol.responses.retrieve(response.id).output_text == REPLY
    with as_http(serve_session, "alice") as http:
        listed = http.get("/responses", params={"model": "shared", "limit": 100}).json()["data"]
        assert response.id in [r["id"] for r in listed]
    with as_http(serve_session, "bob") as http:
        assert response.id not in [r["id"] for r in http.get("/responses", params={"limit": 100}).json()["data"]]
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as chained:
        bob.responses.create(model="shared", input="and then?", previous_response_id=response.id)
    assert chained.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.PermissionDeniedError):
        carol.responses.delete(response.id)
    unstored = alice.responses.create(model="shared", input="Forget this.", store=False)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(unstored.id)
    alice.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(response.id)


# The fields the Open Responses specification requires of every response object (ResponseResource),
# with the types a strict client checks: None where the spec allows null.
NUMBER, TEXT, NULLABLE_TEXT = (int, float), str, (str, type(None))
RESPONSE_FIELDS = {
    "id": TEXT, "object": TEXT, "created_at": int, "completed_at": int, "status": TEXT,
    "incomplete_details": type(None), "model": TEXT, "previous_response_id": NULLABLE_TEXT,
    "instructions": NULLABLE_TEXT, "output": list, "error": type(None), "tools": list, "tool_choice": (str, dict),
    "truncation": TEXT, "parallel_tool_calls": bool, "text": dict, "top_p": NUMBER, "presence_penalty": NUMBER,
    "frequency_penalty": NUMBER, "top_logprobs": int, "temperature": NUMBER, "reasoning": (dict, type(None)),
    "user": NULLABLE_TEXT, "usage": dict, "max_output_tokens": (int, type(None)), "max_tool_calls": (int, type(None)),
    "store": bool, "background": bool, "service_tier": TEXT, "metadata": dict, "safety_identifier": NULLABLE_TEXT,
    "prompt_cache_key": NULLABLE_TEXT,
}


def assert_complete_response(response: dict, completed: bool = True, background: bool = False):
    missing = sorted(set(RESPONSE_FIELDS) - set(response))
    assert not missing, f"missing {missing}"
    for name, kind in RESPONSE_FIELDS.items():
        if name == "completed_at" and not completed:
            assert response[name] is None
        else:
            assert isinstance(response[name], kind), (name, response[name])
    assert response["truncation"] in ("auto", "disabled") and response["background"] is background


def test_every_response_object_has_the_fields_the_open_responses_spec_requires(serve_session):
    with as_http(serve_session, "alice") as http:
        body = {"model": "shared", "input": "Who keeps answers?", "temperature": 0.5, "prompt_cache_key": "k-1",
                "safety_identifier": "user-7", "reasoning": {"effort": "low"}, "background": False}
        created = http.post("/responses", json=body).json()
        assert_complete_response(created)
        assert (created["temperature"], created["top_p"], created["presence_penalty"]) == (0.5, 1.0, 0.0)
        assert (created["prompt_cache_key"], created["safety_identifier"]) == ("k-1", "user-7")
        assert created["completed_at"] >= created["created_at"]
        assert_complete_response(http.get(f"/responses/{created['id']}").json())
        listed = http.get("/responses", params={"limit": 100}).json()["data"]
        assert_complete_response(next(r for r in listed if r["id"] == created["id"]))
        with http.stream("POST", "/responses", json={"model": "shared", "input": "Who?", "stream": True}) as events:
            embedded = [json.loads(line[6:])["response"] for line in events.iter_lines()
                        if line.startswith("data: ") and '"response": {' in line]
        assert len(embedded) == 3, "created, in_progress, completed"
        for response in embedded[:2]:
            assert_complete_response(response, completed=False)
        assert_complete_response(embedded[-1])
        queued = http.post("/responses", json={**body, "background": True}).json()
        assert queued["status"] == "queued"
        assert_complete_response(queued, completed=False, background=True)


@pytest.mark.parametrize("stream", [False, True])
def test_guardrails_answer_a_flagged_input_or_output_with_a_refusal(users, stream):
    alice = users["alice"]
    guarded = {"extra_body": {"guardrails": ["content-safety"]}, "stream": stream}

    def respond(model: str, text: str):
        result = alice.responses.create(model=model, input=text, **guarded)
        if not stream:
            return result, []
        events = list(result)
        assert events[-1].type == "response.completed"
        return events[-1].response, events
    for model, text in (("shared", "I will kill you"), ("hostile", "Say something nice.")):
        response, events = respond(model, text)
        [answer] = response.output
        assert answer.content[0].type == "refusal" and "harassment" in answer.content[0].refusal
        assert not any(e.type == "response.output_text.delta" for e in events), "flagged text never reaches the client"
        assert HOSTILE_REPLY not in str(alice.responses.retrieve(response.id).model_dump())
    response, events = respond("shared", "Who keeps answers?")
    assert response.output_text == REPLY
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ([REPLY] if stream else [])
    unguarded = alice.responses.create(model="hostile", input="Say something nice.")
    assert unguarded.output_text == HOSTILE_REPLY


@pytest.mark.parametrize("body, status, param", [
    ({"model": "shared", "input": "x", "guardrails": ["no-such-shield"]}, 404, "guardrails.0"),
    ({"model": "shared", "input": ""}, 400, "input"),
    ({"model": "embedder", "input": "x"}, 400, "model"),
    ({"model": "nowhere", "input": "x"}, 404, "model"),
    ({"model": "shared", "input": "x", "tools": [{"type": "telepathy"}]}, 400, "tools"),
    ({"model": "shared", "input": "x", "text": {"format": {"type": "json_schema"}}}, 400, "text.format"),
    ({"model": "shared", "input": "x", "tool_choice": "sometimes"}, 400, "tool_choice"),
    ({"model": "shared", "input": "x", "previous_response_id": "resp_1", "conversation": "conv_1"}, 400, "conversation"),
    ({"model": "shared", "input": [{"role": "user", "content": 7}]}, 400, "input.0.content"),
    ({"model": "shared", "input": "x", "conversation": "conv_missing"}, 404, "conversation_id"),
    ({"model": "shared", "input": "x", "tools": [{"type": "mcp", "server_label": "s"}]}, 400, "tools.0"),
    ({"model": "shared", "input": "x", "tools": [{"type": "mcp", "server_label": "s", "connector_id": "connector_gmail"}]},
     400, "tools.0"),
    ({"model": "shared", "input": "x", "tools": [{"type": "web_search"}]}, 400, "tools"),
    ({"model": "shared", "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_none", "approve": True}]},
     400, "input.0.approval_request_id"),
    ({"model": "shared", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, 400, "input.0.call_id"),
])
def test_bad_response_requests_name_the_field(serve_session, graph, body, status, param):
    with as_http(serve_session, "alice") as alice:
        response = alice.post("/responses", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"].startswith(param)


def reads_by_replica(cluster) -> dict[str, float]:
    """GETs of one stored completion that each ingress replica answered, from the graph's metrics."""
    return {labels["replica"]: value for labels, value in samples(
        cluster, "ray_raystack_http_requests_total", route="/v1/chat/completions/{completion_id}", method="GET",
        status="200", deployment="ingress")}


def embedding_lines(count: int) -> bytes:
    """`count` embedding requests to the slow mock (half a second each), and two that cannot run."""
    lines = [{"custom_id": f"line-{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "slow-embedder", "input": f"sentence {i}"}} for i in range(count)]
    lines += [{"custom_id": "no-input", "method": "POST", "url": "/v1/embeddings", "body": {"model": "slow-embedder"}},
              {"custom_id": "chat-model", "method": "POST", "url": "/v1/embeddings",
               "body": {"model": "shared", "input": "x"}}]
    return "\n".join(json.dumps(line) for line in lines).encode()


def slow_batch_midway(client: openai.OpenAI, count: int):
    """A batch of embeddings, once some but not all of its requests are answered."""
    file_id = upload(client, embedding_lines(count), name="requests.jsonl", purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h",
                                  metadata={"run": "restart"})
    assert batch.status == "validating" and batch.metadata == {"run": "restart"}
    midway = wait_for(lambda: (b := client.batches.retrieve(batch.id)).request_counts.completed >= 4 and b, timeout_s=60)
    assert midway.status == "in_progress" and midway.request_counts.total == count + 2
    assert midway.request_counts.completed < count, "the batch ended before the restart"
    return midway


def batch_goes_on_where_it_stopped(owner: openai.OpenAI, other: openai.OpenAI, batch, count: int) -> None:
    """After a restart the batch finishes, each request answered once, and only its owner sees it."""
    done = wait_for(lambda: (b := owner.batches.retrieve(batch.id)).status not in ("in_progress", "finalizing") and b,
                    timeout_s=120)
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (count + 2, count, 2)
    output = [json.loads(line) for line in owner.files.content(done.output_file_id).text.splitlines()]
    assert Counter(line["custom_id"] for line in output) == Counter(f"line-{i}" for i in range(count))
    assert all(len(line["response"]["body"]["data"][0]["embedding"]) == 8 for line in output)
    errors = {json.loads(line)["custom_id"]: json.loads(line)["response"]["status_code"]
              for line in owner.files.content(done.error_file_id).text.splitlines()}
    assert errors == {"no-input": 400, "chat-model": 400}
    assert [b.id for b in owner.batches.list()][:1] == [batch.id]
    for read in (lambda: other.batches.retrieve(batch.id), lambda: other.files.content(done.output_file_id),
                 lambda: other.batches.cancel(batch.id)):
        with pytest.raises(openai.NotFoundError):
            read()
    assert batch.id not in [b.id for b in other.batches.list()]


def test_a_batch_of_responses_makes_responses_stored_as_its_owners(users):
    lines = [{"custom_id": f"turn-{i}", "method": "POST", "url": "/v1/responses",
              "body": {"model": "shared", "input": f"Question {i}?"}} for i in range(2)]
    file_id = upload(users["alice"], "\n".join(json.dumps(line) for line in lines).encode(), name="turns.jsonl",
                     purpose="batch").id
    batch = users["alice"].batches.create(input_file_id=file_id, endpoint="/v1/responses", completion_window="24h")
    done = wait_for(lambda: (b := users["alice"].batches.retrieve(batch.id)).status not in ("validating", "in_progress",
                                                                                            "finalizing") and b,
                    timeout_s=120)
    assert done.status == "completed" and done.request_counts.completed == 2, done
    output = [json.loads(line) for line in users["alice"].files.content(done.output_file_id).text.splitlines()]
    responses = [line["response"]["body"] for line in output]
    assert {r["object"] for r in responses} == {"response"} and all(r["status"] == "completed" for r in responses)
    for response in responses:
        assert users["alice"].responses.retrieve(response["id"]).output_text == REPLY
        with pytest.raises(openai.NotFoundError):
            users["bob"].responses.retrieve(response["id"])


def test_completions_and_models_survive_a_restart_and_every_replica_sees_them(serve_session, graph, users, http,
                                                                               ray_cluster):
    kept_file = upload(users["bob"], b"kept across restarts").id
    kept_store = ingested_store(users["bob"], "kept", b"Chunks survive a restart of the graph.")
    with as_http(serve_session, "bob") as bob_http:
        kept_prompt = bob_http.post("/prompts", json={"prompt": GREETING}).json()["prompt_id"]
    kept_conversation = users["bob"].conversations.create(items=[{"role": "user", "content": "remember me"}]).id
    kept_response = users["bob"].responses.create(model="shared", input="Keep this answer.").id
    assert http.post("/v1/models", headers={"Authorization": "Bearer tok-bob"},
                     json={"model_id": "kept", "provider_id": "remote", "provider_model_id": "mock-model"}).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: ask(users["bob"], model="kept").id, range(40)))
    batch = slow_batch_midway(users["bob"], 16)
    serve.delete("shared-state")  # the ingress replicas write out their queues as they stop
    serve.run(build_app(graph), name="shared-state", route_prefix="/")
    bob = users["bob"]
    batch_goes_on_where_it_stopped(bob, users["alice"], batch, 16)
    listed = set(listed_ids(bob, model="kept"))
    assert listed == set(ids), f"{len(set(ids) - listed)} of {len(ids)} completions lost"
    assert bob.models.retrieve("kept").id == "kept"
    assert bob.files.content(kept_file).content == b"kept across restarts"
    assert "survive" in bob.vector_stores.search(kept_store.id, query="restart").data[0].content[0].text
    with as_http(serve_session, "bob") as bob_http:
        assert bob_http.get(f"/prompts/{kept_prompt}").json()["prompt"] == GREETING
    assert list(bob.conversations.items.list(kept_conversation))[0].content[0].text == "remember me"
    assert bob.responses.retrieve(kept_response).output_text == REPLY
    assert bob.responses.create(model="shared", input="and now?", previous_response_id=kept_response).status == "completed"
    before = reads_by_replica(ray_cluster)
    for completion_id in ids[:20]:  # Serve spreads the reads over both ingress replicas
        assert bob.chat.completions.retrieve(completion_id).model == "kept"
    grew = wait_for(lambda: (after := reads_by_replica(ray_cluster)) and sum(after.values()) - sum(before.values()) >= 20
                    and {r for r, n in after.items() if n > before.get(r, 0)}, timeout_s=30)
    assert len(grew) == 2, f"only replicas {grew} answered the reads"


@contextmanager
def writes_blocked(config):
    """Holds a lock on the inference store's table that lets readers in and keeps writers waiting."""
    ref = config.storage.stores["inference"]
    backend = config.storage.backends[ref.backend]
    locked, release = threading.Event(), threading.Event()

    def hold_sqlite():
        connection = sqlite3.connect(backend.db_path, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait()
        connection.execute("ROLLBACK")
        connection.close()

    async def hold_postgres():
        connection = await asyncpg.connect(host=backend.host, port=backend.port, user=backend.user, database=backend.db)
        async with connection.transaction():
            await connection.execute(f'LOCK TABLE "{ref.table_name}" IN EXCLUSIVE MODE')
            locked.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)
        await connection.close()

    holder = threading.Thread(target=hold_sqlite if backend.type == "sql_sqlite" else lambda: asyncio.run(hold_postgres()))
    holder.start()
    locked.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join()


def test_a_blocked_database_delays_no_answer_and_shutdown_writes_what_waited(graph, users):
    """Writes wait behind a lock while every answer goes out; deleting the application while they
    still wait loses none of them: the ingress replicas write their queues out as they stop."""
    with writes_blocked(graph):
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: ask(users["alice"]).id, range(24)))
        assert not set(ids) & set(listed_ids(users["alice"])), "every answer came back while its record waited"
        deleting = threading.Thread(target=serve.delete, args=("shared-state",))
        deleting.start()
        deleting.join(timeout=8)
        assert deleting.is_alive(), "the replicas stop only once their queued records are written"
    deleting.join()
    serve.run(build_app(graph), name="shared-state", route_prefix="/")
    assert set(ids) <= set(listed_ids(users["alice"])), "completions queued at shutdown were lost"


def test_sigkilled_ingress_replicas_lose_no_answered_completion(graph, users, ray_cluster):
    """Under load, with records queued behind a locked table, both ingress replicas are SIGKILLed
    (no drain): every completion a client got an answer for is stored by their successors, which
    find the records in the dead replicas' outboxes; a batch running then is finished by them, each
    line once."""
    alice = users["alice"]

    def embeddings_asked() -> float:
        return total(ray_cluster, "ray_raystack_provider_requests_total", provider="slow", method="embeddings")

    asked_before = embeddings_asked()
    batch = slow_batch_midway(users["carol"], 60)
    outcomes: list[tuple[float, str, str | None]] = []  # (when, outcome, completion id)
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                outcomes.append((time.monotonic(), "200", ask(alice).id))
            except openai.APIStatusError as exc:
                outcomes.append((time.monotonic(), str(exc.status_code), None))
            except openai.APIConnectionError as exc:
                outcomes.append((time.monotonic(), type(exc.__cause__ or exc).__name__, None))

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(load)
        with writes_blocked(graph):
            wait_for(lambda: sum(1 for _, o, _ in outcomes if o == "200") >= 100, timeout_s=60)
            pids = [actor["Pid"] for actor in ray._private.state.actors().values()
                    if "#ingress#" in actor["Name"] and actor["State"] == "ALIVE"]
            assert len(pids) == 2
            killed_at = time.monotonic()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        recovered_at = wait_for(lambda: next((t for t, o, _ in outcomes if t > killed_at + 0.5 and o == "200"), None),
                                timeout_s=120)
        wait_for(lambda: sum(1 for t, o, _ in outcomes if t > recovered_at and o == "200") >= 50, timeout_s=60)
        stop.set()
    answered = [completion_id for _, o, completion_id in outcomes if completion_id]
    statuses = Counter(o for t, o, _ in outcomes if t > killed_at)
    print(f"after the kill: {dict(statuses)}; first success {recovered_at - killed_at:.1f} s after it; "
          f"{len(answered)} answered")

    def missing() -> set[str]:
        return set(answered) - {c.id for c in alice.chat.completions.list(limit=100)}
    with suppress(TimeoutError):
        wait_for(lambda: not missing(), timeout_s=60)
    assert not missing(), f"{len(missing())} of {len(answered)} answered completions were lost"
    batch_goes_on_where_it_stopped(users["carol"], users["bob"], batch, 60)
    asked = wait_for(lambda: (n := embeddings_asked() - asked_before) >= 60 and n, timeout_s=30)
    print(f"batch of 60 embedding lines: {asked - 60:.0f} asked again after the SIGKILL")


def test_llama_guard_moderates_through_the_guard_model_of_the_graph(serve_session, users, guard):
    moderation = users["alice"].moderations.create(model="llama-guard", input=["I will kill him", "Lovely weather today"])
    violent, friendly = moderation.results
    assert moderation.model == "llama-guard"
    assert violent.flagged and violent.categories.violence and not violent.categories.hate
    assert not friendly.flagged
    prompt = guard[1][-1]["messages"][0]["content"]
    assert guard[1][-1]["model"] == GUARD_MODEL and "S1: Violent Crimes." in prompt
    with as_http(serve_session, "alice") as http:
        verdict = http.post("/safety/run-shield", json={"shield_id": "llama-guard", "messages": [
            {"role": "user", "content": "Hello"}, {"role": "user", "content": "I hate them all"}]}).json()["violation"]
        assert verdict["metadata"]["categories"] == ["hate"] and verdict["metadata"]["flagged_messages"] == [1]
    refused = users["alice"].responses.create(model="shared", input="I will kill him", extra_body={"guardrails": ["llama-guard"]})
    assert refused.output[0].content[0].type == "refusal" and "violence" in refused.output[0].content[0].refusal


def test_tool_groups_list_the_tools_of_their_mcp_server(serve_session, http):
    assert http.get("/v1/tools").status_code == 401
    with as_http(serve_session, "bob") as bob:
        tools = bob.get("/tools").json()["data"]
        assert {(t["toolgroup_id"], t["name"]) for t in tools} == {
            ("mcp::forecast", "get_forecast"), ("mcp::forecast", "add"), ("mcp::forecast", "explode")}
        assert next(t for t in tools if t["name"] == "add")["input_schema"]["required"] == ["a", "b"]
        assert bob.get("/tools", params={"toolgroup_id": "mcp::forecast"}).json()["data"] == tools
        assert bob.get("/tools/get_forecast").json()["description"] == "The weather forecast for a city"
        assert [g["identifier"] for g in bob.get("/toolgroups").json()["data"]] == ["mcp::forecast"]
        missing = bob.get("/tools", params={"toolgroup_id": "mcp::nowhere"})
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "toolgroup_id"


def test_mcp_credentials_reach_the_server_and_never_the_stored_response(serve_session, users, mcp_servers):
    tool = {"type": "mcp", "server_label": "vault", "server_url": mcp_servers["guarded"], "require_approval": "never",
            "authorization": MCP_TOKEN, "headers": {"X-Team": "red"}}
    response = users["alice"].responses.create(model="shared", input="What can you do?", tools=[tool])
    listing = response.output[0]
    assert listing.type == "mcp_list_tools" and {t.name for t in listing.tools} == {"get_forecast", "add", "explode"}
    stored = users["alice"].responses.retrieve(response.id).model_dump_json()
    assert MCP_TOKEN not in stored and "X-Team" not in stored and mcp_servers["guarded"] in stored
    chained = users["alice"].responses.create(model="shared", input="And now?", tools=[tool], previous_response_id=response.id)
    assert [item.type for item in chained.output] == ["message"], "the listing in the context is reused"
    with as_http(serve_session, "alice") as http:
        refused = http.post("/responses", json={"model": "shared", "input": "x", "tools": [{**tool, "authorization": "wrong"}]})
        assert refused.status_code == 424 and "401" in refused.json()["error"]["message"]
        closed = free_closed_url()
        unlisted = http.post("/responses", json={"model": "shared", "input": "x", "tools": [{**tool, "server_url": closed}]})
        assert unlisted.status_code == 403 and unlisted.json()["error"]["param"] == "tools.0.server_url"
        assert http.post("/responses", json={"model": "shared", "input": "still serving"}).status_code == 200
    with as_http(serve_session, "admin") as http:
        down = http.post("/responses", json={"model": "shared", "input": "x", "tools": [{**tool, "server_url": closed}]})
        assert down.status_code == 424 and closed in down.json()["error"]["message"], "the operator may name any server"


def free_closed_url() -> str:
    """The URL of a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


def test_background_responses_are_polled_streamed_again_and_cancelled_by_their_owner_only(users):
    alice, bob = users["alice"], users["bob"]
    queued = alice.responses.create(model="shared", input="Capital?", background=True)
    assert queued.status == "queued" and queued.background is True
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(queued.id)
    done = wait_for(lambda: (found := alice.responses.retrieve(queued.id)).status == "completed" and found)
    assert done.output_text == REPLY
    with pytest.raises(openai.ConflictError):
        alice.responses.cancel(queued.id)

    live = list(alice.responses.create(model="slow", input="Count slowly.", stream=True, background=True))
    assert live[-1].type == "response.completed" and [e.sequence_number for e in live] == list(range(len(live)))
    again = list(alice.responses.retrieve(live[0].response.id, stream=True, starting_after=3))
    assert [e.model_dump() for e in again] == [e.model_dump() for e in live[4:]]

    slow = alice.responses.create(model="slow", input="Count slowly.", stream=True, background=True)
    response_id = next(slow).response.id
    with pytest.raises(openai.NotFoundError):
        bob.responses.cancel(response_id)
    assert alice.responses.cancel(response_id).status == "cancelled"
    assert [e.type for e in slow][-1] != "response.completed"
    assert alice.responses.retrieve(response_id).status == "cancelled"


def test_a_dead_agents_deployment_fails_its_turns_only_and_comes_back(users):
    """Turns run in the agents deployment: when its replicas die, the turn in flight ends with an
    error event, a background one is marked failed with the reason, everything else keeps serving,
    and Serve brings the agents back."""
    alice = users["alice"]
    events = alice.responses.create(model="slow", input="Count slowly.", stream=True)  # six chunks, 0.3 s apart
    assert next(events).type == "response.created"
    background = alice.responses.create(model="slow", input="Count slowly.", stream=True, background=True)
    background_id = next(background).response.id
    doomed = replicas("provider-agents")
    for replica in doomed:
        ray.kill(replica, no_restart=True)
    rest = list(events)
    assert rest[-1].type == "error" and rest[-1].code == "service_unavailable", rest[-1]
    assert [e.sequence_number for e in rest] == list(range(1, len(rest) + 1))
    failed = wait_for(lambda: (found := alice.responses.retrieve(background_id)).status == "failed" and found,
                      timeout_s=90)
    assert "stopped before it finished" in failed.error.message
    background.close()
    assert ask(alice).choices[0].message.content == REPLY, "chat does not go through the agents deployment"

    def answered():
        try:
            return alice.responses.create(model="shared", input="Back?").output_text == REPLY
        except openai.APIStatusError:
            return False
    wait_for(answered, timeout_s=90)
    assert not set(replicas("provider-agents")) & set(doomed)
