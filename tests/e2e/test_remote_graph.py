"""The graph with `remote::openai` in front of a loopback OpenAI-compatible server, through the
official SDK: routing by model id, streaming, persistence of registrations, and errors."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx
import jsonschema
import openai
import pytest
import ray
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.conftest import free_port
from tests.prometheus import samples, scrape, total

REPLY = "Paris is the capital of France, said the mock."
CONFIG_MODELS = [
    {"model_id": "gpt-mock", "provider_id": "remote", "provider_model_id": "mock-model"},
    {"model_id": "broken-500", "provider_id": "remote", "provider_model_id": "fail-500"},
    {"model_id": "limited", "provider_id": "remote", "provider_model_id": "fail-429"},
    {"model_id": "picky", "provider_id": "remote", "provider_model_id": "fail-400"},
    {"model_id": "drops", "provider_id": "remote", "provider_model_id": "drop-stream"},
    {"model_id": "slow", "provider_id": "impatient", "provider_model_id": "hang"},
    {"model_id": "stuck", "provider_id": "doomed", "provider_model_id": "hang"},
    {"model_id": "gone", "provider_id": "down", "provider_model_id": "mock-model"},
    {"model_id": "mock-embed", "provider_id": "remote", "provider_model_id": "mock-model", "model_type": "embedding"},
    {"model_id": "beside-mock", "provider_id": "beside", "provider_model_id": "mock-model"},
    {"model_id": "beside-500", "provider_id": "beside", "provider_model_id": "fail-500"},
    {"model_id": "beside-gone", "provider_id": "beside-down", "provider_model_id": "mock-model"},
]


def run_config(base_url: str, state_dir) -> dict:
    small = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "inspect", "providers"],
        "providers": {"inference": [
            {"provider_id": "remote", "provider_type": "remote::openai", "config": {"base_url": base_url}, "deployment": small},
            {"provider_id": "impatient", "provider_type": "remote::openai", "config": {"base_url": base_url, "timeout_s": 1}, "deployment": small},
            {"provider_id": "doomed", "provider_type": "remote::openai", "config": {"base_url": base_url}, "deployment": small},
            {"provider_id": "down", "provider_type": "remote::openai", "config": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}, "deployment": small},
            {"provider_id": "beside", "provider_type": "remote::openai", "config": {"base_url": base_url},
             "deployment": {**small, "colocate": "ingress"}},
            {"provider_id": "beside-down", "provider_type": "remote::openai",
             "config": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}, "deployment": {**small, "colocate": "ingress"}},
        ]},
        "registered_resources": {"models": CONFIG_MODELS},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": f"{state_dir}/kv.db"}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"}},
        },
        "server": {"ingress": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0}}, "logging": {"encoding": "JSON"}},
    }


@pytest.fixture(scope="module")
def graph(serve_session, tmp_path_factory):
    base_url, stop_mock = start_mock_server(config=MockConfig(reply=REPLY, chunks=5, embedding_dim=16))
    config = parse_run_config(run_config(base_url, tmp_path_factory.mktemp("state")), "test")
    serve.run(build_app(config), name="remote-graph", route_prefix="/")
    yield config
    serve.delete("remote-graph")
    stop_mock()


@pytest.fixture
def client(serve_session, graph):
    return openai.OpenAI(base_url=f"{serve_session}/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.fixture
def http(serve_session, graph):
    with httpx.Client(base_url=serve_session, timeout=30) as http:
        yield http


def test_models_from_the_config_are_listed(client):
    ids = {m.id for m in client.models.list()}
    assert {m["model_id"] for m in CONFIG_MODELS} <= ids
    model = client.models.retrieve("gpt-mock")
    assert model.owned_by == "remote"


def test_chat_routes_by_model_id_and_echoes_the_client_id(client):
    reply = client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "Capital of France?"}])
    assert reply.choices[0].message.content == REPLY
    assert reply.model == "gpt-mock"
    assert reply.usage.completion_tokens > 0


def test_chat_stream_arrives_whole_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-mock", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert all(c.model == "gpt-mock" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_completions_stream_and_not(client):
    whole = client.completions.create(model="gpt-mock", prompt="Say something")
    assert whole.choices[0].text == REPLY
    streamed = "".join(c.choices[0].text for c in client.completions.create(model="gpt-mock", prompt="x", stream=True) if c.choices)
    assert streamed == REPLY


def test_embeddings_through_the_remote(client):
    result = client.embeddings.create(model="mock-embed", input=["one", "two"])
    assert [len(d.embedding) for d in result.data] == [16, 16]
    assert result.data[0].embedding != result.data[1].embedding


def test_unknown_model_is_404_naming_it(http):
    response = http.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "model" and "nope" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "gpt-mock"}, "messages"),
        ({"model": "gpt-mock", "messages": []}, "messages"),
        ({"model": "gpt-mock", "messages": [{"role": "user", "content": "x"}], "temperature": 5}, "temperature"),
        ({"model": "gpt-mock", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0"),
        ({"model": "gpt-mock", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool.tool_call_id"),
        ({"model": "gpt-mock", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
        ({"model": "gpt-mock", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "gpt-mock", "messages": [{"role": "user", "content": "x"}],
          "tools": [{"type": "function", "function": {"name": "f"}}],
          "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
    ],
)
def test_bad_chat_requests_are_400_naming_the_field(http, body, param):
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize(
    "body, param",
    [({"model": "mock-embed", "input": []}, "input"), ({"model": "mock-embed", "input": ""}, "input"),
     ({"model": "mock-embed", "input": "x", "encoding_format": "hex"}, "encoding_format"),
     ({"input": "x"}, "model")],
)
def test_bad_embedding_requests_are_400_naming_the_field(http, body, param):
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_bad_json_and_unknown_route_get_openai_error_bodies(http):
    response = http.post("/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    response = http.get("/v1/nowhere")
    assert response.status_code == 404 and "error" in response.json()


def test_embedding_model_refuses_chat_and_llm_refuses_embeddings(http):
    response = http.post("/v1/chat/completions", json={"model": "mock-embed", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"
    response = http.post("/v1/embeddings", json={"model": "gpt-mock", "input": "x"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


@pytest.mark.parametrize(
    "model, status, error_type",
    [("broken-500", 502, "provider_error"), ("limited", 429, "rate_limit_error"), ("picky", 400, "invalid_request_error"),
     ("slow", 504, "timeout_error"), ("gone", 502, "provider_error")],
)
def test_remote_faults_fail_that_request_only(http, client, model, status, error_type):
    response = http.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type
    streamed = http.post("/v1/chat/completions", json={"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert streamed.status_code == status
    assert client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "x"}]).choices[0].message.content == REPLY


def test_provider_replica_crash_fails_its_requests_only(http, client):
    """A request in flight when its provider replica dies gets a 503; Serve replaces the replica."""
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(http.post, "/v1/chat/completions", json={"model": "stuck", "messages": [{"role": "user", "content": "x"}]})
        replica = wait_for(lambda: _replica_actor("provider-doomed"))
        time.sleep(1)  # let the request reach the replica
        ray.kill(replica, no_restart=True)
        response = in_flight.result(timeout=60)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "service_unavailable"
    assert client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "x"}]).choices[0].message.content == REPLY
    wait_for(lambda: _replica_actor("provider-doomed") not in (None, replica))


def _replica_actor(deployment: str):
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == "serve" and f"#{deployment}#" in actor["name"]:
            handle = ray.get_actor(actor["name"], namespace="serve")
            return handle
    return None


def wait_for(condition, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError("condition not met")


def test_stream_cut_mid_way_ends_with_an_error_event(client):
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="drops", messages=[{"role": "user", "content": "x"}], stream=True):
            pass
    assert client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": "x"}]).choices[0].message.content == REPLY


def test_register_use_and_delete_a_model_at_run_time(http, client):
    """The ingress runs two replicas: what one registers or deletes, every request sees."""
    created = http.post("/v1/models", json={"model_id": "team/alias", "provider_id": "remote", "provider_model_id": "mock-model"})
    assert created.status_code == 200, created.text
    for _ in range(6):
        assert "team/alias" in {m.id for m in client.models.list()}
        assert client.chat.completions.create(model="team/alias", messages=[{"role": "user", "content": "x"}]).model == "team/alias"
    assert http.post("/v1/models", json={"model_id": "team/alias", "provider_id": "remote"}).status_code == 409
    assert client.models.delete("team/alias").deleted
    assert all(http.get("/v1/models/team/alias").status_code == 404 for _ in range(6))


def test_registration_errors_name_the_field(http):
    response = http.post("/v1/models", json={"model_id": "x", "provider_id": "ghost"})
    assert response.status_code == 404 and response.json()["error"]["param"] == "provider_id"
    response = http.post("/v1/models", json={"model_id": "x"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "provider_id"
    response = http.post("/v1/models", json={"modelid": "x"})
    assert response.status_code == 400


def test_registered_model_survives_a_restart_of_the_graph(http, graph):
    assert http.post("/v1/models", json={"model_id": "kept", "provider_id": "remote", "provider_model_id": "mock-model"}).status_code == 200
    serve.delete("remote-graph")
    serve.run(build_app(graph), name="remote-graph", route_prefix="/")
    assert http.get("/v1/models/kept").json()["provider_id"] == "remote"
    assert http.delete("/v1/models/kept").status_code == 200


def test_providers_and_routes_are_inspectable(http):
    providers = {p["provider_id"]: p for p in http.get("/v1/providers").json()["data"]}
    assert providers["remote"]["health"]["status"] == "OK"
    assert providers["down"]["health"]["status"] == "Error"
    assert providers["remote"]["provider_type"] == "remote::openai"
    routes = http.get("/v1/inspect/routes").json()["data"]
    chat = next(r for r in routes if r["route"] == "/v1/chat/completions")
    assert chat["method"] == "POST" and chat["provider_types"] == ["remote::openai"]
    assert http.get("/v1/health").json() == {"status": "OK"}
    assert http.get("/v1/version").json()["version"]


def test_traffic_shows_in_prometheus_by_route_status_provider_and_model(http, client, ray_cluster):
    def figures():
        scraped = scrape(ray_cluster)
        return {
            "chat_200": total(scraped, "ray_raystack_http_requests_total", route="/v1/chat/completions", status="200"),
            "chat_502": total(scraped, "ray_raystack_http_requests_total", route="/v1/chat/completions", status="502"),
            "provider_errors": total(scraped, "ray_raystack_provider_errors_total", provider="remote",
                                     method="chat_completion", status="502"),
            "tokens_out": total(scraped, "ray_raystack_tokens_total", model="mock-model", direction="out"),
            "tokens_in": total(scraped, "ray_raystack_tokens_total", model="mock-model", direction="in"),
            "first_tokens": total(scraped, "ray_raystack_time_to_first_token_ms_count", provider="remote"),
            "latencies": total(scraped, "ray_raystack_http_request_latency_ms_count", route="/v1/chat/completions"),
            "provider_latencies": total(scraped, "ray_raystack_provider_latency_ms_count", provider="remote",
                                        method="chat_completion"),
        }

    before = figures()
    message = [{"role": "user", "content": "x"}]
    reply = client.chat.completions.create(model="gpt-mock", messages=message)
    list(client.chat.completions.create(model="gpt-mock", messages=message, stream=True))
    assert http.post("/v1/chat/completions", json={"model": "broken-500", "messages": message}).status_code == 502
    wanted = {"chat_200": 2, "chat_502": 1, "provider_errors": 1, "first_tokens": 1, "latencies": 3, "provider_latencies": 3,
              "tokens_in": reply.usage.prompt_tokens, "tokens_out": reply.usage.completion_tokens + 1}
    wait_for(lambda: all(figures()[k] - before[k] >= n for k, n in wanted.items()), timeout_s=30)
    labels, _ = samples(ray_cluster, "ray_raystack_provider_requests_total", provider="remote", method="chat_completion")[0]
    assert labels["deployment"] == "provider-remote" and labels["application"] == "remote-graph"


def test_a_request_id_follows_a_failed_request_through_the_ingress_and_provider_logs(http):
    request_id = f"trace-{time.time_ns()}"
    response = http.post("/v1/chat/completions", headers={"X-Request-ID": request_id},
                         json={"model": "broken-500", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 502 and response.headers["x-request-id"] == request_id
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"

    def records_with_the_id():
        found = {}
        for path in logs.glob("replica_remote-graph_*.log"):
            for line in path.read_text().splitlines():
                if request_id in line:
                    record = json.loads(line)
                    if record["filename"] == "metrics.py":  # ours, not Serve's own "Request failed."
                        found[record["deployment"].removeprefix("remote-graph_")] = record
        return found if {"ingress", "provider-remote"} <= found.keys() else None

    records = wait_for(records_with_the_id, timeout_s=20)
    assert records["provider-remote"]["request_id"] == records["ingress"]["request_id"] == request_id
    assert records["provider-remote"]["levelname"] == "ERROR" and "chat_completion failed" in records["provider-remote"]["message"]
    assert "answered 502" in records["ingress"]["message"]


def test_a_provider_colocated_in_the_ingress_answers_there_with_its_own_metrics(http, client, ray_cluster):
    """`colocate: ingress`: the same answers, streams and errors, and its calls counted by the ingress's replicas."""
    message = [{"role": "user", "content": "x"}]
    before = total(scrape(ray_cluster), "ray_raystack_provider_requests_total", provider="beside", deployment="ingress")
    reply = client.chat.completions.create(model="beside-mock", messages=message)
    assert reply.choices[0].message.content == REPLY and reply.model == "beside-mock"
    streamed = list(client.chat.completions.create(model="beside-mock", messages=message, stream=True,
                                                   stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == REPLY
    assert streamed[-1].usage.completion_tokens == reply.usage.completion_tokens
    for model, status in (("beside-500", 502), ("beside-gone", 502)):
        for stream in (False, True):
            response = http.post("/v1/chat/completions", json={"model": model, "stream": stream, "messages": message})
            assert response.status_code == status and response.json()["error"]["type"] == "provider_error"
    assert http.get("/v1/providers/beside").json()["health"]["status"] == "OK"
    wait_for(lambda: total(scrape(ray_cluster), "ray_raystack_provider_requests_total", provider="beside",
                           deployment="ingress") - before >= 4, timeout_s=30)


def test_a_seed_beyond_64_bits_reaches_the_remote(http):
    for model in ("gpt-mock", "beside-mock"):
        response = http.post("/v1/chat/completions", json={"model": model, "seed": 2**70, "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == REPLY


# ---------------------------------------------------------------- Anthropic's Messages API

WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "required": ["city", "unit"],
                            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}}}}
ASK = {"role": "user", "content": "What is the weather in Paris?"}


@pytest.fixture
def claude(serve_session, graph):
    return anthropic.Anthropic(base_url=serve_session, api_key="unused", max_retries=0, timeout=30)


def test_a_message_answers_in_anthropics_shape(claude):
    reply = claude.messages.create(model="gpt-mock", max_tokens=64, system="Answer in one line.", messages=[ASK])
    assert (reply.type, reply.role, reply.model) == ("message", "assistant", "gpt-mock")
    assert reply.id.startswith("msg_")
    assert [block.type for block in reply.content] == ["text"] and reply.content[0].text == REPLY
    assert (reply.stop_reason, reply.stop_sequence) == ("end_turn", None)
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens == 5
    cut = claude.messages.create(model="gpt-mock", max_tokens=2, messages=[ASK])
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 2 and REPLY.startswith(cut.content[0].text)


def test_a_forced_tool_gives_a_tool_use_block_and_its_result_continues_the_turn(claude):
    reply = claude.messages.create(model="gpt-mock", max_tokens=64, messages=[ASK], tools=[WEATHER],
                                   tool_choice={"type": "tool", "name": "get_weather"})
    assert reply.stop_reason == "tool_use"
    (call,) = reply.content
    assert call.type == "tool_use" and call.name == "get_weather"
    jsonschema.validate(call.input, WEATHER["input_schema"])
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "14 degrees, rain"}]}
    history = [ASK, {"role": "assistant", "content": reply.content}, result]
    follow = claude.messages.create(model="gpt-mock", max_tokens=64, tools=[WEATHER], messages=history)
    assert follow.stop_reason == "end_turn" and follow.content[0].text == REPLY
    counted = claude.messages.count_tokens(model="gpt-mock", tools=[WEATHER], messages=history).input_tokens
    assert counted > claude.messages.count_tokens(model="gpt-mock", tools=[WEATHER], messages=[ASK]).input_tokens


def test_a_stream_sends_anthropics_events_in_order(http):
    """Read off the wire: the SDK drops `ping` events."""
    ask = {"model": "gpt-mock", "max_tokens": 64, "messages": [ASK], "stream": True}
    with http.stream("POST", "/v1/messages", json=ask) as response:
        frames = [frame.split("\n") for frame in response.read().decode().strip().split("\n\n")]
    kinds = [kind.removeprefix("event: ") for kind, _ in frames]
    events = [json.loads(data.removeprefix("data: ")) for _, data in frames]
    assert kinds == ["message_start", "ping", "content_block_start", *["content_block_delta"] * 5,
                     "content_block_stop", "message_delta", "message_stop"]
    assert [event["type"] for event in events] == kinds
    assert "".join(event["delta"]["text"] for event in events if event["type"] == "content_block_delta") == REPLY
    end = events[-2]
    assert end["delta"]["stop_reason"] == "end_turn" and end["usage"]["output_tokens"] == 5 and end["usage"]["input_tokens"] > 0


def test_a_streamed_tool_call_arrives_as_input_json_deltas(claude):
    with claude.messages.stream(model="gpt-mock", max_tokens=64, messages=[ASK], tools=[WEATHER],
                                tool_choice={"type": "any"}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert len(deltas) == 2 and all(delta.type == "input_json_delta" for delta in deltas)
    assert final.stop_reason == "tool_use" and final.content[0].type == "tool_use"
    jsonschema.validate(final.content[0].input, WEATHER["input_schema"])


def test_count_tokens_counts_what_the_system_prompt_adds(claude):
    bare = claude.messages.count_tokens(model="gpt-mock", messages=[ASK]).input_tokens
    assert bare > 0
    assert claude.messages.count_tokens(model="gpt-mock", system="You are a meteorologist. " * 10,
                                        messages=[ASK]).input_tokens > bare + 20


@pytest.mark.parametrize(
    "body, named",
    [
        ({"model": "gpt-mock", "messages": [ASK]}, "max_tokens"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [{"role": "assistant", "content": "hi"}, ASK]}, "messages.0.role"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [ASK, {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}]}, "messages.1.content.0.tool_use_id"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [ASK], "temperature": 1.5}, "temperature"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [{"role": "user", "content": []}]}, "messages.0.content"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [ASK], "tool_choice": {"type": "tool", "name": "nope"},
          "tools": [WEATHER]}, "tool_choice.name"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [ASK], "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
         "tools.0"),
        ({"model": "gpt-mock", "max_tokens": 8, "messages": [ASK], "tools": [{**WEATHER, "input_schema": {"type": "string"}}]},
         "input_schema.type"),
    ],
)
def test_a_bad_message_request_is_a_400_in_anthropics_shape(http, body, named):
    response = http.post("/v1/messages", json=body)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert named in body["error"]["message"]


def test_message_errors_reach_the_anthropic_sdk_as_its_own_exceptions(claude):
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=8, messages=[ASK])
    assert missing.value.body["error"]["type"] == "not_found_error" and "nope" in missing.value.body["error"]["message"]
    with pytest.raises(anthropic.InternalServerError) as failed:
        claude.messages.create(model="broken-500", max_tokens=8, messages=[ASK])
    assert failed.value.status_code == 502 and failed.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError, match="mid-stream"):
        for _ in claude.messages.create(model="drops", max_tokens=8, messages=[ASK], stream=True):
            pass
