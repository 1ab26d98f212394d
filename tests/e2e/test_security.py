"""The attacks of the security review, each sent as an attacker sends it, against a graph with
authentication on and the default access policy, on SQLite and on PostgreSQL + Redis. Each asserts
the refusal (status, and the field or cause it names) and that the graph goes on serving."""

import concurrent.futures
import re
import socket
import time
import uuid

import anthropic
import httpx
import pytest
from playwright.sync_api import expect
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.browser import chromium
from tests.conftest import free_port
from tests.e2e.test_remote_graph import wait_for
from tests.mcp_server import start_mcp_server
from tests.unit.test_kvstore import POSTGRES

TOKENS = {"alice": {"principal": "alice", "attributes": {"teams": ["ml"]}},
          "bob": {"principal": "bob", "attributes": {"teams": ["ml"]}},
          "admin": {"principal": "ops", "attributes": {"roles": ["admin"]}}}
OPERATOR_KEY = "sk-operator-secret"
REUSED_ID = "chatcmpl-1"


def storage(backend: str, state) -> dict:
    suffix = uuid.uuid4().hex[:10]
    backends = ({"kv": {"type": "kv_sqlite", "db_path": f"{state}/kv.db"}, "sql": {"type": "sql_sqlite", "db_path": f"{state}/sql.db"}}
                if backend == "sqlite" else
                {"kv": {"type": "kv_redis", "url": "redis://127.0.0.1:6379/0"}, "sql": {**POSTGRES, "type": "sql_postgres"}})
    tables = ("inference", "files", "vector_stores", "prompts", "conversations", "responses", "jobs")
    return {"backends": backends, "stores": {"metadata": {"backend": "kv", "namespace": f"registry-{suffix}"},
                                             **{t: {"backend": "sql", "table_name": f"{t}_{suffix}"} for t in tables}}}


def run_config(urls: dict[str, str], backend: str, state) -> dict:
    none = {"ray_actor_options": {"num_cpus": 0}}
    remote = {"base_url": urls["remote"], "api_key": OPERATOR_KEY, "extra_headers": {"Authorization": "Bearer hidden"}}
    return {
        "apis": ["inference", "models", "files", "vector_io", "prompts", "conversations", "responses", "agents", "safety",
                 "tool_runtime", "datasetio", "eval", "scoring", "inspect", "providers"],
        "providers": {
            "inference": [{"provider_id": "operator", "provider_type": "remote::openai", "config": remote, "deployment": none},
                          {"provider_id": "reuses-ids", "provider_type": "remote::openai",
                           "config": {"base_url": urls["reuses-ids"]}, "deployment": none}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": f"{state}/files"}, "deployment": none}],
            "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                           "config": {"db_path": f"{state}/milvus.db"}}],
            "safety": [{"provider_id": "profanity", "provider_type": "inline::profanity-check", "deployment": none}],
            "tool_runtime": [{"provider_id": "mcp", "provider_type": "remote::model-context-protocol", "deployment": none}],
            "agents": [{"provider_id": "agents", "provider_type": "inline::builtin", "deployment": none}],
            "datasetio": [{"provider_id": "parquet", "provider_type": "inline::parquet", "deployment": none,
                           "config": {"storage_dir": f"{state}/datasets", "allowed_paths": [urls["imports"]]}}],
        },
        "registered_resources": {
            "models": [{"model_id": "chat", "provider_id": "operator", "provider_model_id": "mock-model"},
                       {"model_id": "reused", "provider_id": "reuses-ids", "provider_model_id": "mock-model"},
                       {"model_id": "embedder", "provider_id": "operator", "provider_model_id": "mock-model",
                        "model_type": "embedding", "metadata": {"embedding_dimension": 8}}],
            "shields": [{"shield_id": "content-safety", "provider_id": "profanity"}],
            "tool_groups": [{"toolgroup_id": "mcp::forecast", "provider_id": "mcp", "mcp_endpoint": {"uri": urls["mcp"]}}],
        },
        "responses": {"guardrails": ["content-safety"]},
        "storage": storage(backend, state),
        "server": {"ingress": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}},
                   "auth": {"provider_config": {"type": "static_tokens", "tokens": {f"tok-{n}": i for n, i in TOKENS.items()}}}},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres+redis"])
def graph(request, serve_session, tmp_path_factory):
    state, imports = tmp_path_factory.mktemp("security"), tmp_path_factory.mktemp("imports")
    (imports / "leaky.csv").write_bytes(b'input_query,expected_answer\n"top-secret-row,unterminated\n1,2,3,4\n')
    (mcp_url, stop_mcp) = start_mcp_server()
    remote_url, stop_remote = start_mock_server(config=MockConfig(reply="Fine.", chunks=3))
    reusing_url, stop_reusing = start_mock_server(config=MockConfig(reply="Same id again.", fixed_id=REUSED_ID))
    urls = {"remote": remote_url, "reuses-ids": reusing_url, "mcp": mcp_url, "imports": str(imports)}
    serve.run(build_app(parse_run_config(run_config(urls, request.param, state), "security")), name="security",
              route_prefix="/")
    yield {"state": state, "imports": imports}
    serve.delete("security")
    for stop in (stop_mcp, stop_remote, stop_reusing):
        stop()


@pytest.fixture
def users(serve_session, graph):
    clients = {name: httpx.Client(base_url=serve_session, timeout=30, headers={"Authorization": f"Bearer tok-{name}"})
               for name in TOKENS}
    clients["anonymous"] = httpx.Client(base_url=serve_session, timeout=30)
    yield clients
    assert clients["alice"].get("/v1/models").status_code == 200, "the graph keeps serving"
    for client in clients.values():
        client.close()


def refused(response: httpx.Response, status: int, param: str | None = None, says: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if param is not None:
        assert error["param"] == param, error
    assert says.lower() in error["message"].lower(), error
    return error


# ---------------------------------------------------------------- the door


@pytest.mark.parametrize("method, path", [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/v1/files"),
                                          ("GET", "/v1/chat/completions"), ("GET", "/v1/providers"), ("GET", "/docs"),
                                          ("GET", "/openapi.json"), ("POST", "/v1beta/datasets"), ("GET", "/v1/no-such")])
def test_without_a_token_every_route_is_a_401_but_health(users, method, path):
    refused(users["anonymous"].request(method, path, json={}), 401)
    assert users["anonymous"].get("/v1/health").json() == {"status": "OK"}


def test_the_console_loads_without_a_token_and_calls_the_api_with_the_one_typed(users, serve_session):
    page_response = users["anonymous"].get("/ui/")
    assert page_response.status_code == 200 and "script-src 'self'" in page_response.headers["content-security-policy"]
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{serve_session}/ui/#/logs")
        expect(page.get_by_role("alert").first).to_contain_text("401")
        page.get_by_label("API token").fill("tok-alice")
        page.get_by_label("API token").press("Enter")
        expect(page.locator("main table").first).to_be_visible()
        expect(page.get_by_role("alert")).to_have_count(0)
        assert page.evaluate("sessionStorage.getItem('raystack.token')") == "tok-alice"
        other_tab = context.new_page()  # session storage is the tab's own: a new tab asks again
        other_tab.goto(f"{serve_session}/ui/#/logs")
        expect(other_tab.get_by_role("alert").first).to_contain_text("missing bearer token")


def test_an_anonymous_upload_is_refused_before_its_body_is_read(serve_session):
    """The request announces 100 MB (under the upload cap) and sends a kilobyte: the 401 comes back at
    once, so nothing waited for, or spooled, the rest."""
    host, port = serve_session.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/files HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                     f"Content-Length: {100 * 1024**2}\r\n\r\n".encode() + b"--x\r\n" + b"\0" * 1024)
        sock.settimeout(5)
        head = sock.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 401"), head[:200]


def test_anthropic_clients_authenticate_with_x_api_key(serve_session, users):
    ask = {"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    reply = anthropic.Anthropic(base_url=serve_session, api_key="tok-alice", max_retries=0).messages.create(**ask)
    assert reply.content[0].text == "Fine."
    for headers in ({}, {"x-api-key": "tok-mallory"}):
        response = users["anonymous"].post("/v1/messages", json=ask, headers=headers)
        assert response.status_code == 401
        assert response.json()["type"] == "error" and response.json()["error"]["type"] == "authentication_error"


def test_a_foreign_host_is_refused(users):
    error = refused(users["alice"].get("/v1/models", headers={"host": "attacker.example:8000"}), 421, "host")
    assert error["code"] == "misdirected_request"


def test_a_body_over_the_limit_is_a_413_before_it_is_parsed(users):
    huge = b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"a" * (17 * 1024 * 1024) + b'"}]}'
    try:
        refused(users["alice"].post("/v1/chat/completions", content=huge, headers={"content-type": "application/json"}),
                413, says="max_request_bytes")
    except httpx.TransportError:
        pass


# ---------------------------------------------------------------- owners, others, admins


def ok(response: httpx.Response) -> dict:
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


def created_by(alice: httpx.Client) -> dict[str, tuple[str, str, str | None]]:
    """Alice's records: kind -> (item path, list path, an update as 'METHOD body-key')."""
    completion = ok(alice.post("/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
    file = ok(alice.post("/v1/files", files={"file": ("notes.txt", b"alice's notes")}, data={"purpose": "assistants"}))
    store = ok(alice.post("/v1/vector_stores", json={"name": "alice's"}))
    prompt = ok(alice.post("/v1/prompts", json={"prompt": "Hello {{ name }}"}))
    conversation = ok(alice.post("/v1/conversations", json={"items": [{"role": "user", "content": "mine"}]}))
    response = ok(alice.post("/v1/responses", json={"model": "chat", "input": "Remember this."}))
    ok(alice.post("/v1beta/datasets", json={"dataset_id": f"alice-{uuid.uuid4().hex[:8]}", "purpose": "eval/question-answer",
                                            "source": {"type": "rows", "rows": [{"input_query": "q", "expected_answer": "a"}]}}))
    dataset = ok(alice.get("/v1beta/datasets"))["data"][-1]["identifier"]
    wait_for(lambda: alice.get(f"/v1/chat/completions/{completion['id']}").status_code == 200, timeout_s=15)
    return {
        "chat_completion": (f"/v1/chat/completions/{completion['id']}", "/v1/chat/completions", None),
        "file": (f"/v1/files/{file['id']}", "/v1/files", None),
        "vector_store": (f"/v1/vector_stores/{store['id']}", "/v1/vector_stores", "name"),
        "prompt": (f"/v1/prompts/{prompt['prompt_id']}", "/v1/prompts", None),
        "conversation": (f"/v1/conversations/{conversation['id']}", None, "metadata"),
        "response": (f"/v1/responses/{response['id']}", "/v1/responses", None),
        "dataset": (f"/v1beta/datasets/{dataset}", "/v1beta/datasets", None),
    }


def listed(client: httpx.Client, path: str) -> set[str]:
    body = ok(client.get(path))
    return {item.get("id") or item.get("identifier") or item.get("prompt_id") for item in body["data"]}


def update(client: httpx.Client, path: str, key: str) -> httpx.Response:
    return client.post(path, json={key: {"note": "changed"} if key == "metadata" else "changed"})


def test_owner_other_user_and_admin_on_every_resource(users):
    """Bob shares a team with Alice, which shares nothing by default: her records are 404 to him for
    read, update and delete and absent from his lists; the administrator reads and deletes them."""
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    records = created_by(alice)
    for kind, (path, list_path, update_key) in records.items():
        record_id = path.rsplit("/", 1)[1]
        assert alice.get(path).status_code == 200, kind
        refused(bob.get(path), 404)
        refused(bob.delete(path), 404)
        if update_key:
            refused(update(bob, path, update_key), 404)
            assert update(alice, path, update_key).status_code == 200, kind
        if list_path:
            assert record_id in listed(alice, list_path), kind
            assert record_id not in listed(bob, list_path), kind
            assert record_id in listed(admin, list_path), kind
        assert admin.get(path).status_code == 200, kind
    for kind, (path, _, _) in records.items():
        assert admin.delete(path).status_code in (200, 204), kind
        refused(alice.get(path), 404)


def test_a_remote_that_reuses_ids_loses_no_record_and_mixes_no_users(users):
    mine = {}
    for name in ("alice", "bob"):
        answer = ok(users[name].post("/v1/chat/completions", json={"model": "reused", "messages": [{"role": "user", "content": name}]}))
        assert answer["id"] != REUSED_ID
        mine[name] = answer["id"]
    for name, other in (("alice", "bob"), ("bob", "alice")):
        stored = wait_for(lambda: (r := users[name].get(f"/v1/chat/completions/{mine[name]}")).status_code == 200 and r.json(),
                          timeout_s=15)
        assert stored["input_messages"] == [{"role": "user", "content": name}]
        refused(users[name].get(f"/v1/chat/completions/{mine[other]}"), 404)
    streamed = users["alice"].post("/v1/chat/completions", json={"model": "reused", "stream": True,
                                                                 "messages": [{"role": "user", "content": "stream"}]})
    ids = set(re.findall(r'^data: \{"id":"([^"]+)"', streamed.text, re.MULTILINE))
    assert len(ids) == 1 and REUSED_ID not in ids, ids


def test_models_on_the_operators_remote_and_its_config_are_the_admins(users):
    alice, admin = users["alice"], users["admin"]
    refused(alice.post("/v1/models", json={"model_id": "gpt-4o", "provider_id": "operator"}), 403, "provider_id")
    assert admin.post("/v1/models", json={"model_id": "ops-model", "provider_id": "operator",
                                          "provider_model_id": "mock-model"}).status_code == 200
    refused(alice.delete("/v1/models/chat"), 403)
    shown = {p["provider_id"]: p for p in ok(alice.get("/v1/providers"))["data"]}
    assert shown["operator"]["config"] == {}
    config = {p["provider_id"]: p for p in ok(admin.get("/v1/providers"))["data"]}["operator"]["config"]
    assert OPERATOR_KEY not in str(config) and "Bearer hidden" not in str(config)
    assert config["base_url"].startswith("http://127.0.0.1")
    assert admin.delete("/v1/models/ops-model").status_code == 200


# ---------------------------------------------------------------- server files and internal hosts


@pytest.mark.parametrize("uri", ["~/.local/share/raystack/starter/datasets/other", "/etc/passwd.csv", "hf://csv"])
def test_a_user_cannot_import_server_paths(users, uri):
    refused(users["alice"].post("/v1beta/datasets", json={"purpose": "eval/question-answer",
                                                          "source": {"type": "uri", "uri": uri}}), 403, "source.uri", "admin role")


@pytest.mark.parametrize("uri, says", [("hf://csv", "org/name"), ("hf://json", "org/name"), ("hf://x/../..", "org/name"),
                                       ("~/.bashrc.csv", "allowed_paths"), ("/etc/passwd.csv", "allowed_paths")])
def test_an_admin_imports_only_from_allowed_paths_and_hub_ids(users, uri, says):
    started = time.monotonic()
    refused(users["admin"].post("/v1beta/datasets", json={"purpose": "eval/question-answer",
                                                          "source": {"type": "uri", "uri": uri}}), 400, "source.uri", says)
    assert time.monotonic() - started < 10


def test_a_file_that_does_not_parse_is_named_without_its_rows(users, graph):
    error = refused(users["admin"].post("/v1beta/datasets", json={
        "purpose": "eval/question-answer", "source": {"type": "uri", "uri": str(graph["imports"] / "leaky.csv")}}),
        400, "source", "could not read 'leaky.csv' as csv")
    assert "top-secret-row" not in error["message"]


def test_an_mcp_server_on_an_internal_address_is_refused_to_a_user(users, serve_session):
    dashboard = f"http://127.0.0.1:{free_port()}/mcp"
    for url in (dashboard, "http://169.254.169.254/latest/meta-data", serve_session + "/v1/models"):
        tool = {"type": "mcp", "server_label": "internal", "server_url": url, "require_approval": "never"}
        error = refused(users["alice"].post("/v1/responses", json={"model": "chat", "input": "x", "tools": [tool]}),
                        403, "tools.0.server_url")
        assert "reached" not in error["message"] and "HTTP" not in error["message"]


def test_more_than_128_tools_is_a_400(users):
    tools = [{"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(129)]
    refused(users["alice"].post("/v1/responses", json={"model": "chat", "input": "x", "tools": tools}), 400, "tools")


# ---------------------------------------------------------------- one request cannot stall a replica


def test_a_catastrophic_regex_does_not_stall_the_replica(users):
    rows = [{"expected_answer": "a", "generated_answer": "a" * 40 + "!"}] * 200
    scoring = {"basic::regex_parser_multiple_choice_answer": {"type": "regex_parser", "parsing_regexes": ["(a+)+$"]}}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        scored = pool.submit(users["alice"].post, "/v1/scoring/score",
                             json={"input_rows": rows, "scoring_functions": scoring})
        started = time.monotonic()
        assert users["bob"].get("/v1/models", timeout=5).status_code == 200
        assert time.monotonic() - started < 5
        assert scored.result().status_code == 200


@pytest.mark.parametrize("params, param", [
    ({"type": "regex_parser", "parsing_regexes": ["(a)\\1"]}, "parsing_regexes"),
    ({"type": "llm_as_judge", "judge_model": "chat", "prompt_template": "{input_query:>999999999}"}, "prompt_template"),
    ({"type": "llm_as_judge", "judge_model": "chat", "prompt_template": "{x}"}, "prompt_template"),
])
def test_bad_regexes_and_templates_are_400s_naming_them(users, params, param):
    fn = "basic::regex_parser_multiple_choice_answer" if params["type"] == "regex_parser" else "llm-as-judge::base"
    refused(users["alice"].post("/v1/scoring/score", json={
        "input_rows": [{"input_query": "q", "expected_answer": "a", "generated_answer": "a"}],
        "scoring_functions": {fn: params}}), 400, f"scoring_functions.{fn}.{param}")


# ---------------------------------------------------------------- bad input at the door, not turns later


def test_a_function_call_item_without_name_or_arguments_is_not_stored(users):
    conversation = ok(users["alice"].post("/v1/conversations", json={}))
    refused(users["alice"].post(f"/v1/conversations/{conversation['id']}/items",
                                json={"items": [{"type": "function_call", "call_id": "x"}]}), 400, "items.0.name")
    answer = users["alice"].post("/v1/responses", json={"model": "chat", "input": "go on", "conversation": conversation["id"]})
    assert answer.status_code == 200, answer.text


def test_file_search_filters_are_checked_when_the_response_is_created(users):
    tool = {"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "eq", "key": "a b", "value": 1}}
    refused(users["alice"].post("/v1/responses", json={"model": "chat", "input": "x", "tools": [tool]}), 400)


def test_evaluate_rows_without_the_columns_scoring_reads_is_a_400(users):
    alice = users["alice"]
    dataset = f"bench-{uuid.uuid4().hex[:8]}"
    ok(alice.post("/v1beta/datasets", json={"dataset_id": dataset, "purpose": "eval/question-answer",
                                            "source": {"type": "rows", "rows": [{"input_query": "q", "expected_answer": "a"}]}}))
    ok(alice.post("/v1alpha/eval/benchmarks", json={"benchmark_id": dataset, "dataset_id": dataset,
                                                    "scoring_functions": ["basic::equality"]}))
    refused(alice.post(f"/v1alpha/eval/benchmarks/{dataset}/evaluations", json={
        "input_rows": [{"input_query": "q"}], "scoring_functions": ["basic::equality"],
        "benchmark_config": {"eval_candidate": {"model": "chat"}}}), 400, "input_rows.0")


def test_the_operators_guardrails_hold_when_a_request_sends_none(users):
    answer = ok(users["alice"].post("/v1/responses", json={"model": "chat", "input": "I will kill you, idiot.",
                                                          "guardrails": []}))
    assert answer["output"][0]["content"][0]["type"] == "refusal", answer["output"]
