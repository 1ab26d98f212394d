"""The services with the most logic, run without Serve (tests/unit/in_process.py): real providers
in this process (milvus-lite, local files, Parquet datasets, the profanity shield, remote::openai
against the loopback mock), real SQLite stores, and the wiring that the ingress and the agents
deployment use."""

import asyncio
import contextlib

import pytest

from bench.mock_openai import MockConfig, start_mock_server
from deployments.services.eval import ABANDONED
from deployments.services.replica import Replica
from deployments.services.wiring import Execution, open_services
from providers.api.conversations import CreateConversationRequest
from providers.api.datasets import RegisterDatasetRequest
from providers.api.errors import InvalidRequestError, NotFoundError
from providers.api.eval import BenchmarkConfig, RegisterBenchmarkRequest
from providers.api.responses import CreateResponseRequest
from providers.api.vector_stores import AttachFileRequest, CreateVectorStoreRequest, SearchRequest
from providers.run_config import RunConfig
from providers.storage import Storage
from tests.unit.in_process import local_handles, serial_batch, serial_generation, serial_ingestion

pytestmark = [pytest.mark.timeout(300),
              # Serve awaits a deployment's async __del__; here the provider is shut down by hand.
              pytest.mark.filterwarnings("ignore:coroutine .ProviderDeployment.__del__. was never awaited")]

REPLY = "The capital of France is Paris."
DIMENSION = 16
GONE = "replica-that-is-gone"


async def parts(data: bytes):
    """An upload's body as the files route hands it over: in parts."""
    for start in range(0, len(data), 16):
        yield data[start:start + 16]


@pytest.fixture(scope="module")
def mock_url():
    url, stop = start_mock_server(config=MockConfig(reply=REPLY, embedding_dim=DIMENSION, models=("mock-model",)))
    yield url
    stop()


def graph_config(state_dir, mock_url: str, *, responses: bool) -> dict:
    providers = {
        "inference": [{"provider_id": "mock", "provider_type": "remote::openai",
                       "config": {"base_url": mock_url, "api_key": "test"}}],
        "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                   "config": {"storage_dir": str(state_dir / "files")}}],
        "vector_io": [{"provider_id": "milvus", "provider_type": "inline::milvus",
                       "config": {"db_path": str(state_dir / "milvus.db")}}],
        "safety": [{"provider_id": "profanity-check", "provider_type": "inline::profanity-check",
                    "config": {"threshold": 0.5}}],
        "datasetio": [{"provider_id": "parquet", "provider_type": "inline::parquet",
                       "config": {"storage_dir": str(state_dir / "datasets")}}],
    }
    apis = ["inference", "models", "files", "vector_io", "safety", "datasetio", "eval", "scoring", "conversations",
            "batches"]
    stores = {"metadata": {"backend": "kv", "namespace": "registry"}, "jobs": {"backend": "sql", "table_name": "jobs"},
              "files": {"backend": "sql", "table_name": "files"},
              "vector_stores": {"backend": "sql", "table_name": "vector_stores"},
              "conversations": {"backend": "sql", "table_name": "conversations"}}
    if responses:
        providers["agents"] = [{"provider_id": "builtin", "provider_type": "inline::builtin", "config": {}}]
        apis += ["responses", "agents"]
        stores["responses"] = {"backend": "sql", "table_name": "responses"}
    return {
        "version": 1, "apis": apis, "providers": providers,
        "registered_resources": {
            "shields": [{"shield_id": "content-safety", "provider_id": "profanity-check"}],
            "models": [
                {"model_id": "mock-llm", "provider_id": "mock", "provider_model_id": "mock-model", "model_type": "llm"},
                {"model_id": "mock-embed", "provider_id": "mock", "provider_model_id": "mock-model",
                 "model_type": "embedding", "metadata": {"embedding_dimension": DIMENSION}},
            ],
        },
        "storage": {"backends": {"kv": {"type": "kv_sqlite", "db_path": str(state_dir / "kv.db")},
                                 "sql": {"type": "sql_sqlite", "db_path": str(state_dir / "sql.db")}},
                    "stores": stores},
    }


@contextlib.asynccontextmanager
async def graph(state_dir, mock_url: str, *, responses: bool = False, alive=lambda name: name != GONE,
                batch=serial_batch):
    """The services as the ingress (or, with `responses`, the agents deployment) opens them; `batch`
    answers batches' requests."""
    raw = graph_config(state_dir, mock_url, responses=responses)
    config = RunConfig.model_validate(raw)
    handles = local_handles(raw, asyncio.get_running_loop())
    storage = Storage(config.storage)
    services = await open_services(config, handles, storage, Replica("replica-under-test", alive),
                                   ingress=not responses, execution=Execution(serial_ingestion, serial_generation, batch))
    await services.models.seed(config.registered_resources.models)
    try:
        yield services
    finally:
        await services.close()
        await storage.close()
        for handle in handles.values():
            await handle.deployment.provider.shutdown()


async def wait_for(check, timeout_s: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


PARIS = "The Eiffel tower stands in Paris, the capital of France."
BANANAS = "Bananas are a yellow fruit that grows in bunches."


async def store_with_files(services, texts: dict[str, str]) -> tuple[str, dict[str, str]]:
    store = await services.vector_stores.create(None, CreateVectorStoreRequest(name="facts", embedding_model="mock-embed"))
    file_ids = {}
    for name, text in texts.items():
        file_ids[name] = (await services.files.upload(None, f"{name}.txt", "assistants", parts(text.encode())))["id"]
        await services.vector_stores.attach(None, store["id"], AttachFileRequest(file_id=file_ids[name]))
    return store["id"], file_ids


async def completed(services, store_id: str, count: int) -> bool:
    return (await services.vector_stores.get(None, store_id))["file_counts"]["completed"] == count


async def test_attached_files_are_ingested_by_this_replica_and_found_by_each_search_mode(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        store_id, file_ids = await store_with_files(services, {"paris": PARIS, "bananas": BANANAS})
        attached = await services.vector_stores.get_file(None, store_id, file_ids["paris"])
        assert attached["status"] in ("in_progress", "completed")
        await wait_for(lambda: completed(services, store_id, 2))
        rows = await services.vector_stores.store_files.list(None, after=None, limit=10, order="asc",
                                                             vector_store_id=store_id)
        assert {row["status"] for row in rows["data"]} == {"completed"}

        by_vector = await services.vector_stores.search(None, store_id, SearchRequest(query=PARIS, search_mode="vector"))
        assert by_vector["data"][0]["file_id"] == file_ids["paris"]
        assert by_vector["data"][0]["filename"] == "paris.txt"
        assert by_vector["data"][0]["score"] == pytest.approx(1.0, abs=1e-3)
        by_keyword = await services.vector_stores.search(None, store_id, SearchRequest(query="bananas",
                                                                                       search_mode="keyword"))
        assert [hit["file_id"] for hit in by_keyword["data"]] == [file_ids["bananas"]]
        content = await services.vector_stores.file_content(None, store_id, file_ids["bananas"])
        assert [part["text"] for part in content["data"]] == [BANANAS]


async def test_a_file_left_in_progress_by_a_replica_that_is_gone_is_taken_over(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        stores = services.vector_stores
        store = await stores.create(None, CreateVectorStoreRequest(name="orphans", embedding_model="mock-embed"))
        file = await services.files.upload(None, "paris.txt", "assistants", parts(PARIS.encode()))
        record = {"id": file["id"], "object": "vector_store.file", "created_at": 0, "vector_store_id": store["id"],
                  "status": "in_progress", "last_error": None, "usage_bytes": 0, "attributes": {},
                  "chunking_strategy": {"type": "auto"}}
        await stores.store_files.insert([stores.store_files.row(
            record, None, row_id=f"{store['id']}/{file['id']}", vector_store_id=store["id"], status="in_progress",
            batch_id="", ingester=GONE)])

        assert await stores.resume_orphans() == 1
        await wait_for(lambda: completed(services, store["id"], 1))
        assert await stores.resume_orphans() == 0
        hits = await stores.search(None, store["id"], SearchRequest(query=PARIS, search_mode="vector"))
        assert [hit["file_id"] for hit in hits["data"]] == [file["id"]]


async def test_attaching_a_file_that_does_not_exist_attaches_nothing(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        store = await services.vector_stores.create(None, CreateVectorStoreRequest(name="s", embedding_model="mock-embed"))
        with pytest.raises(NotFoundError):
            await services.vector_stores.attach(None, store["id"], AttachFileRequest(file_id="file-0123abcd"))
        assert (await services.vector_stores.get(None, store["id"]))["file_counts"]["total"] == 0


ROWS = [{"input_query": "What is the capital of France?", "expected_answer": "Paris"},
        {"input_query": "What is the capital of Spain?", "expected_answer": "Madrid"},
        {"input_query": "Name a city in France.", "expected_answer": "Paris"}]


async def benchmark(services) -> str:
    await services.datasets.register(None, RegisterDatasetRequest.model_validate(
        {"dataset_id": "capitals", "purpose": "eval/question-answer", "source": {"type": "rows", "rows": ROWS}}))
    await services.eval.register(None, RegisterBenchmarkRequest(benchmark_id="capitals-bench", dataset_id="capitals",
                                                                scoring_functions=["basic::subset_of"]))
    return "capitals-bench"


CONFIG = BenchmarkConfig.model_validate({"eval_candidate": {"type": "model", "model": "mock-llm"}})


async def test_an_eval_job_runs_to_completed_with_each_rows_score(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        bench_id = await benchmark(services)
        job = await services.eval.run(None, bench_id, CONFIG)
        assert job["status"] == "in_progress" and job["progress"]["total"] == 3
        stored = await services.eval.jobs.get(None, job["job_id"])
        assert stored["runner"] == "replica-under-test"
        with pytest.raises(InvalidRequestError, match="no result yet"):
            await services.eval.result(None, bench_id, job["job_id"])

        async def finished():
            status = await services.eval.status(None, bench_id, job["job_id"])
            return status if status["status"] != "in_progress" else None

        status = await wait_for(finished)
        assert status["status"] == "completed" and status["progress"]["generated"] == 3
        result = await services.eval.result(None, bench_id, job["job_id"])
        assert [g["generated_answer"] for g in result["generations"]] == [REPLY] * 3
        assert [row["score"] for row in result["scores"]["basic::subset_of"]["score_rows"]] == [1.0, 0.0, 1.0]


async def test_an_eval_job_whose_replica_is_gone_reads_as_failed_and_cannot_be_cancelled(tmp_path, mock_url):
    async with graph(tmp_path, mock_url) as services:
        bench_id = await benchmark(services)
        record = {"id": "evaljob-orphan", "job_id": "evaljob-orphan", "benchmark_id": bench_id,
                  "status": "in_progress", "runner": GONE, "created_at": 0, "completed_at": None,
                  "progress": {"generated": 1, "total": 3, "rows_per_second": None}, "error": None, "result": None}
        await services.eval.jobs.insert([services.eval.jobs.row(record, None, benchmark_id=bench_id)])

        status = await services.eval.status(None, bench_id, "evaljob-orphan")
        assert status["status"] == "failed" and status["error"] == ABANDONED
        assert (await services.eval.jobs.get(None, "evaljob-orphan"))["status"] == "failed"
        with pytest.raises(InvalidRequestError, match="already ended"):
            await services.eval.cancel(None, bench_id, "evaljob-orphan")
        with pytest.raises(NotFoundError):
            await services.eval.status(None, "another-benchmark", "evaljob-orphan")


async def test_the_agents_side_opens_only_the_responses_service_and_what_a_turn_calls(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        assert services.responses is not None and services.vector_stores is not None and services.safety is not None
        assert (services.datasets, services.eval, services.scoring, services.inference_store, services.agents) == \
            (None, None, None, None, None)


def response(**body) -> CreateResponseRequest:
    return CreateResponseRequest.model_validate({"model": "mock-llm", **body})


def output_text(answer: dict) -> str:
    return "".join(part["text"] for item in answer["output"] if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


async def test_a_turn_is_stored_and_the_next_one_continues_from_it(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        first = await services.responses.create(None, response(input="What is the capital of France?"))
        assert first["status"] == "completed" and output_text(first) == REPLY
        second = await services.responses.create(None, response(input="And of Spain?", previous_response_id=first["id"]))
        stored = await services.responses.records.get(None, second["id"])
        context = [item.get("content") for item in stored["context"]]
        assert context[0] == "What is the capital of France?" or \
            context[0][0]["text"] == "What is the capital of France?"
        assert output_text({"output": stored["context"][1:]}) == REPLY
        with pytest.raises(NotFoundError):
            await services.responses.create(None, response(input="x", previous_response_id="resp_missing"))


async def test_a_turn_in_a_conversation_appends_its_input_and_answer(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        conversation = await services.conversations.create(None, CreateConversationRequest())
        await services.responses.create(None, response(input="Hello there", conversation=conversation["id"]))
        items = await services.conversations.list_items(None, conversation["id"], after=None, limit=20, order="asc")
        roles = [item.get("role") for item in items["data"]]
        assert roles == ["user", "assistant"]
        assert items["data"][1]["content"][0]["text"] == REPLY


async def test_a_guardrail_answers_a_flagged_input_without_the_models_reply(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        answer = await services.responses.create(None, response(input="I will kill you", guardrails=["content-safety"]))
        [message] = answer["output"]
        [part] = message["content"]
        assert part["type"] == "refusal" and "flagged" in part["refusal"] and REPLY not in str(answer)
        clean = await services.responses.create(None, response(input="What is the capital of France?",
                                                               guardrails=["content-safety"]))
        assert output_text(clean) == REPLY
        with pytest.raises(NotFoundError):
            await services.responses.create(None, response(input="hi", guardrails=["no-such-shield"]))


async def test_a_forced_file_search_runs_over_the_store_before_the_model_answers(tmp_path, mock_url):
    async with graph(tmp_path, mock_url, responses=True) as services:
        store_id, file_ids = await store_with_files(services, {"paris": PARIS, "bananas": BANANAS})
        await wait_for(lambda: completed(services, store_id, 2))
        answer = await services.responses.create(None, response(
            input=PARIS, tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
            tool_choice={"type": "file_search"}, include=["file_search_call.results"]))
        call = next(item for item in answer["output"] if item["type"] == "file_search_call")
        assert call["status"] == "completed"
        assert call["results"][0]["file_id"] == file_ids["paris"] and call["results"][0]["text"] == PARIS
        assert output_text(answer) == REPLY
        with pytest.raises(NotFoundError):
            await services.responses.create(None, response(
                input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_missing"]}]))

