"""Prompts in MLflow's prompt registry (`remote::mlflow`) against a real `mlflow server` on loopback:
what the Prompts API writes is what MLflow's own client reads, a prompt registered in MLflow drives
a Responses turn, owners hold across users, and a stopped MLflow is a 503 for prompts only."""

import time

import httpx
import openai
import pytest
from mlflow import MlflowClient
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.e2e.test_remote_graph import wait_for
from tests.mlflow_server import MLflowServer

APP = "mlflow-prompts"
TOKENS = {"tok-alice": {"principal": "alice"}, "tok-bob": {"principal": "bob"},
          "tok-admin": {"principal": "ops", "attributes": {"roles": ["admin"]}}}
CACHE_TTL_S = 1.0


def run_config(mock_url: str, mlflow_url: str, state) -> dict:
    none = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "prompts", "responses", "agents", "inspect", "providers"],
        "providers": {
            "inference": [{"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url},
                           "deployment": none}],
            "prompts": [{"provider_id": "mlflow", "provider_type": "remote::mlflow",
                         "config": {"tracking_uri": mlflow_url, "cache_ttl_s": CACHE_TTL_S, "timeout_s": 3},
                         "deployment": none}],
            "agents": [{"provider_id": "agents", "provider_type": "inline::builtin", "deployment": none}],
        },
        "registered_resources": {"models": [{"model_id": "chat", "provider_id": "mock", "provider_model_id": "mock-model"}]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": f"{state}/kv.db"},
                         "sql": {"type": "sql_sqlite", "db_path": f"{state}/sql.db"}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                       "responses": {"backend": "sql", "table_name": "responses"},
                       "conversations": {"backend": "sql", "table_name": "conversations"}},
        },
        "server": {"ingress": {"num_replicas": 1, **none},
                   "auth": {"provider_config": {"type": "static_tokens", "tokens": TOKENS}}},
    }


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory):
    server = MLflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def graph(serve_session, mlflow, tmp_path_factory):
    mock_url, stop_mock = start_mock_server(config=MockConfig(reply="Ahoy.", chunks=2))
    config = parse_run_config(run_config(mock_url, mlflow.url, tmp_path_factory.mktemp("state")), APP)
    serve.run(build_app(config), name=APP, route_prefix="/")
    yield serve_session
    serve.delete(APP)
    stop_mock()


@pytest.fixture
def users(graph):
    clients = {token.removeprefix("tok-"): httpx.Client(base_url=graph, timeout=30, headers={"Authorization": f"Bearer {token}"})
               for token in TOKENS}
    yield clients
    for client in clients.values():
        client.close()


def registry(mlflow: MLflowServer) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow.url, registry_uri=mlflow.url)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def test_what_the_prompts_api_writes_is_what_mlflow_reads(users, mlflow):
    alice = users["alice"]
    created = ok(alice.post("/v1/prompts", json={"prompt": "Greet {{ name }} warmly.", "variables": ["name"]}))
    prompt_id = created["prompt_id"]
    assert (created["version"], created["is_default"], created["variables"]) == (1, True, ["name"])
    ok(alice.put(f"/v1/prompts/{prompt_id}", json={"prompt": "Greet {{ name }} from {{ town }}.", "version": 1}))
    ok(alice.put(f"/v1/prompts/{prompt_id}", json={"prompt": "Wave at {{ name }}.", "version": 2, "set_as_default": False}))
    mlflow_client = registry(mlflow)
    assert mlflow_client.get_prompt_version(prompt_id, 2).template == "Greet {{ name }} from {{ town }}."
    assert mlflow_client.get_prompt_version(prompt_id, 3).template == "Wave at {{ name }}."
    assert mlflow_client.get_prompt_version_by_alias(prompt_id, "default").version == 2
    assert mlflow_client.get_prompt(prompt_id).tags["raystack.owner"] == "alice"
    versions = ok(alice.get(f"/v1/prompts/{prompt_id}/versions"))["data"]
    assert [(v["version"], v["is_default"]) for v in versions] == [(1, False), (2, True), (3, False)]
    assert ok(alice.get(f"/v1/prompts/{prompt_id}"))["variables"] == ["name", "town"]
    assert ok(alice.put(f"/v1/prompts/{prompt_id}/set-default-version", json={"version": 3}))["version"] == 3
    assert mlflow_client.get_prompt_version_by_alias(prompt_id, "default").version == 3
    stale = alice.put(f"/v1/prompts/{prompt_id}", json={"prompt": "Hi {{ name }}.", "version": 2})
    assert stale.status_code == 409 and stale.json()["error"]["param"] == "version"
    assert prompt_id in {p["prompt_id"] for p in ok(alice.get("/v1/prompts"))["data"]}
    # Another user sees nothing of it; an administrator may change it.
    assert users["bob"].get(f"/v1/prompts/{prompt_id}").status_code == 404
    assert prompt_id not in {p["prompt_id"] for p in ok(users["bob"].get("/v1/prompts"))["data"]}
    assert users["bob"].delete(f"/v1/prompts/{prompt_id}").status_code == 404
    assert users["admin"].delete(f"/v1/prompts/{prompt_id}").status_code == 204
    assert mlflow_client.get_prompt(prompt_id) is None


def test_a_prompt_registered_in_mlflow_drives_a_responses_turn(users, mlflow, graph):
    mlflow_client = registry(mlflow)
    mlflow_client.register_prompt("pirate-voice", "You are a pirate. Call the user {{ nickname }}.")
    client = openai.OpenAI(base_url=f"{graph}/v1", api_key="tok-bob", max_retries=0, timeout=30)
    plain = client.responses.create(model="chat", input="Hello")
    turn = client.responses.create(model="chat", input="Hello",
                                   prompt={"id": "pirate-voice", "variables": {"nickname": "matey"}})
    assert turn.output_text == "Ahoy." and turn.prompt.id == "pirate-voice"
    assert turn.usage.input_tokens > plain.usage.input_tokens + 5, "the prompt reached the model"
    missing = users["bob"].post("/v1/responses", json={"model": "chat", "input": "Hello", "prompt": {"id": "pirate-voice"}})
    assert missing.status_code == 400 and "nickname" in missing.json()["error"]["message"]
    # Every user reads it; only an administrator changes it.
    assert ok(users["alice"].get("/v1/prompts/pirate-voice"))["prompt"].startswith("You are a pirate.")
    refused = users["alice"].put("/v1/prompts/pirate-voice", json={"prompt": "Arr {{ nickname }}", "version": 1})
    assert refused.status_code == 403
    # A version made in MLflow, and its alias, show within the cache's few seconds.
    mlflow_client.register_prompt("pirate-voice", "You are a pirate captain. Call the user {{ nickname }}.")
    mlflow_client.set_prompt_alias("pirate-voice", "default", 2)
    shown = wait_for(lambda: (p := ok(users["bob"].get("/v1/prompts/pirate-voice")))["version"] == 2 and p,
                     timeout_s=CACHE_TTL_S + 10)
    assert shown["prompt"].startswith("You are a pirate captain.") and shown["is_default"]
    # A chat prompt (a list of messages) has no shape in the Prompts API: a 400 naming it, left out of lists.
    mlflow_client.register_prompt("pirate-chat", [{"role": "system", "content": "Arr, {{ nickname }}."}])
    chat_prompt = users["bob"].get("/v1/prompts/pirate-chat")
    assert chat_prompt.status_code == 400 and "chat prompt" in chat_prompt.json()["error"]["message"]
    listed = {p["prompt_id"] for p in ok(users["bob"].get("/v1/prompts"))["data"]}
    assert "pirate-voice" in listed and "pirate-chat" not in listed


def test_a_stopped_mlflow_is_a_503_for_prompts_and_the_rest_keeps_serving(users, mlflow, graph):
    alice = users["alice"]
    prompt_id = ok(alice.post("/v1/prompts", json={"prompt": "Be brief."}))["prompt_id"]
    mlflow.stop()
    try:
        time.sleep(CACHE_TTL_S)
        for response in (alice.get(f"/v1/prompts/{prompt_id}"), alice.get("/v1/prompts"),
                         alice.post("/v1/prompts", json={"prompt": "Be kind."}),
                         alice.post("/v1/responses", json={"model": "chat", "input": "Hi", "prompt": {"id": prompt_id}})):
            assert response.status_code == 503, response.text
            assert "prompt registry" in response.json()["error"]["message"]
        assert ok(alice.post("/v1/chat/completions", json={"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}))
        assert openai.OpenAI(base_url=f"{graph}/v1", api_key="tok-alice", max_retries=0).responses.create(
            model="chat", input="Hi").output_text == "Ahoy."
    finally:
        mlflow.start()
    assert ok(alice.get(f"/v1/prompts/{prompt_id}"))["prompt"] == "Be brief."
