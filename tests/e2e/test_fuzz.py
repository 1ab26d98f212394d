"""Schemathesis over the whole API, as a user runs it: `st run` against `/openapi.json` of a graph
with every API on but post-training (a loopback mock answers for the models), its coverage phase
(boundary and invalid values of every field) and a bounded number of random examples per
operation, with a fixed seed. Path ids name resources made beforehand, so operations on an existing
completion, file, store, file batch, conversation, prompt, response, dataset, benchmark or evaluation
job are fuzzed too.
No answer may be a 5xx or take past the timeout, and every 200 must fit the schema the document
declares for it (deployments/routes/replies.py)."""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.mcp_server import start_mcp_server

# The timeout counts the graph's start as well as the run (`ST_TIMEOUT_S`), which is cut short
# first, so that a slow run fails with schemathesis's output so far.
pytestmark = pytest.mark.timeout(900)
ST_TIMEOUT_S = 660
APP = "fuzz"
EXAMPLES_PER_OPERATION = 6
REQUEST_TIMEOUT_S = 20
OPERATIONS = 108


def run_config(mock_url: str, mcp_url: str, state: Path) -> dict:
    none = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "files", "vector_io", "prompts", "conversations", "responses", "agents", "safety",
                 "tool_runtime", "datasetio", "eval", "scoring", "batches", "inspect", "providers"],
        "providers": {
            "inference": [{"provider_id": "mock", "provider_type": "remote::openai", "config": {"base_url": mock_url},
                           "deployment": none}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": str(state / "files")}, "deployment": none}],
            "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                           "config": {"db_path": str(state / "milvus.db")}, "deployment": none}],
            "safety": [{"provider_id": "profanity-check", "provider_type": "inline::profanity-check", "deployment": none}],
            "agents": [{"provider_id": "builtin", "provider_type": "inline::builtin", "deployment": none}],
            "tool_runtime": [{"provider_id": "mcp", "provider_type": "remote::model-context-protocol", "deployment": none}],
            "datasetio": [{"provider_id": "parquet", "provider_type": "inline::parquet",
                           "config": {"storage_dir": str(state / "datasets")}, "deployment": none}],
        },
        "registered_resources": {
            "models": [{"model_id": "m", "provider_id": "mock", "provider_model_id": "mock-model"},
                       {"model_id": "e", "provider_id": "mock", "provider_model_id": "mock-model", "model_type": "embedding",
                        "metadata": {"embedding_dimension": 8}}],
            "shields": [{"shield_id": "content-safety", "provider_id": "profanity-check"}],
            "tool_groups": [{"toolgroup_id": "mcp::forecast", "provider_id": "mcp", "mcp_endpoint": {"uri": mcp_url}}],
        },
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")},
                         "sql": {"type": "sql_sqlite", "db_path": str(state / "sql.db")}},
            "stores": {name: {"backend": "sql", "table_name": name} for name in
                       ("jobs", "inference", "files", "vector_stores", "prompts", "conversations", "responses")}
            | {"metadata": {"backend": "kv", "namespace": "registry"}},
        },
        "server": {"ingress": {"num_replicas": 1, **none}},
    }


@pytest.fixture(scope="module")
def base_url(serve_session, tmp_path_factory):
    (mock_url, stop_mock), (mcp_url, stop_mcp) = start_mock_server(config=MockConfig(reply="fuzzed", chunks=2)), start_mcp_server()
    config = parse_run_config(run_config(mock_url, mcp_url, tmp_path_factory.mktemp("fuzz")), "fuzz")
    serve.run(build_app(config), name=APP, route_prefix="/")
    yield serve_session
    serve.delete(APP)
    stop_mock()
    stop_mcp()


def made_resources(base_url: str) -> dict[str, str]:
    """One of each resource the path ids name, made through the API: {path parameter: id}."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        def made(path: str, **kwargs) -> dict:
            reply = http.post(path, **kwargs)
            assert reply.status_code == 200, f"{path}: {reply.text}"
            return reply.json()
        file_id = made("/v1/files", files={"file": ("notes.txt", b"Fuzzing keeps servers honest.")},
                       data={"purpose": "assistants"})["id"]
        conversation = made("/v1/conversations", json={"items": [{"type": "message", "role": "user", "content": "hi"}]})["id"]
        dataset = made("/v1beta/datasets", json={"dataset_id": "fz", "purpose": "eval/question-answer", "source": {
            "type": "rows", "rows": [{"input_query": "q", "expected_answer": "a"}]}})["identifier"]
        made("/v1alpha/eval/benchmarks", json={"benchmark_id": "fz", "dataset_id": dataset, "scoring_functions": ["basic::equality"]})
        store = made("/v1/vector_stores", json={"name": "fz", "file_ids": [file_id], "embedding_model": "e"})["id"]
        return {
            "completion_id": made("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})["id"],
            "file_id": file_id,
            "vector_store_id": store,
            "batch_id": made(f"/v1/vector_stores/{store}/file_batches", json={"file_ids": [file_id]})["id"],
            "conversation_id": conversation,
            "item_id": http.get(f"/v1/conversations/{conversation}/items").json()["data"][0]["id"],
            "prompt_id": made("/v1/prompts", json={"prompt": "Hello {{ name }}"})["prompt_id"],
            "response_id": made("/v1/responses", json={"model": "m", "input": "hi"})["id"],
            "dataset_id": dataset,
            "benchmark_id": "fz",
            "job_id": made("/v1alpha/eval/benchmarks/fz/jobs", json={
                "benchmark_config": {"eval_candidate": {"type": "model", "model": "m"}}})["job_id"],
            "model_id": "m", "identifier": "content-safety", "toolgroup_id": "mcp::forecast", "tool_name": "get_forecast",
            "scoring_fn_id": "basic::equality", "provider_id": "mock",
        }


def test_no_operation_answers_a_server_error_hangs_or_answers_off_its_schema(base_url, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f'"path.{name}" = "{value}"\n' for name, value in made_resources(base_url).items()))
    try:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run", f"{base_url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance", "--phases", "examples,coverage,fuzzing",
             "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "1", "--request-timeout", str(REQUEST_TIMEOUT_S),
             "--workers", "1", "--no-color"],
            capture_output=True, text=True, timeout=ST_TIMEOUT_S, cwd=tmp_path)
    except subprocess.TimeoutExpired as slow:
        output = slow.stdout.decode(errors="replace") if isinstance(slow.stdout, bytes) else slow.stdout or ""
        pytest.fail(f"schemathesis ran past {ST_TIMEOUT_S} s; its output so far:\n{output[-8000:]}")
    summary = run.stdout[run.stdout.find("SUMMARY"):]
    print(summary)
    assert run.returncode == 0, run.stdout[-8000:]
    assert re.search(rf"Tested: {OPERATIONS}\b", summary), "every operation of the API was fuzzed"
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", summary).groups())
    assert generated == passed and generated > 20 * OPERATIONS
