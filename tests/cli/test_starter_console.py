"""The web console at /ui of the starter graph (`serve run graphs.starter:app`), in Debian's
Chromium driven headless by Playwright: each page's main task as a user does it, checked against
the API, with a screenshot of each page in test-output/console/."""

import json
import os
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.browser import chromium
from tests.cli.conftest import BASE
from tests.cli.processes import REPO
from tests.e2e.test_remote_graph import wait_for

CHAT = "SmolLM2-135M-Instruct"
SHOTS = Path(os.environ.get("RAYSTACK_TEST_OUTPUT", REPO / "test-output")) / "console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
QUESTION = "Describe a rainbow in three sentences."  # long enough to arrive in many chunks
FACT = "The keeper of the harbour lighthouse in 2026 is Marisol Quayle, who paints the tower blue."


# The reply's text length at each change of the page, in the page (its own CSP allows no injected script).
WATCH_REPLY_LENGTHS = """() => {
  window.replyLengths = [];
  new MutationObserver(() => {
    const text = document.querySelector(".bubble.assistant .text");
    if (text) window.replyLengths.push(text.textContent.length);
  }).observe(document.querySelector(".transcript"), {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser(starter):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    """A fresh tab at 1280x800 that fails the test on any script error in the page."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def client(starter):
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key="unused", max_retries=0, timeout=120)


def shoot(page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_the_playground_streams_a_reply_that_the_logs_show_stored(page, client):
    page.goto(f"{BASE}/ui/#/playground")
    page.get_by_label("Model").select_option(CHAT)
    page.get_by_label("System prompt").fill("You are a helpful assistant.")
    page.get_by_label("Temperature").fill("0")
    page.evaluate(WATCH_REPLY_LENGTHS)
    page.get_by_label("Message").fill(QUESTION)
    page.get_by_label("Message").press("Enter")
    reply = page.locator(".bubble.assistant")
    expect(reply.locator(".usage")).to_be_visible(timeout=120_000)
    answer = reply.locator(".text").inner_text()
    lengths = page.evaluate("window.replyLengths")
    assert answer.strip() and len({n for n in lengths if 0 < n < len(answer)}) >= 2, (lengths, answer)
    shoot(page, "playground")

    stored = wait_for(lambda: next((c for c in client.chat.completions.list(order="desc", limit=20).data
                                 if QUESTION in json.dumps(c.model_extra["input_messages"])), None))
    assert stored.choices[0].message.content.strip() == answer.strip()

    page.goto(f"{BASE}/ui/#/logs")
    page.get_by_label("Model").select_option(CHAT)
    row = page.locator("tr.pickable").filter(has_text=QUESTION[:30]).first
    row.focus()
    page.keyboard.press("Enter")  # rows open from the keyboard
    detail = page.locator(".detail")
    expect(detail.locator("h3")).to_have_text(stored.id)
    expect(detail).to_contain_text(answer.strip()[:40])
    expect(detail).to_contain_text(f"{stored.usage.completion_tokens}")
    expect(detail).to_contain_text("ms")  # the latency
    shoot(page, "logs")


def test_an_uploaded_file_is_searchable_in_a_new_vector_store_in_every_mode(page, client):
    page.goto(f"{BASE}/ui/#/stores")
    page.get_by_label("Files", exact=True).set_input_files({"name": "lighthouse.txt", "mimeType": "text/plain",
                                                            "buffer": FACT.encode()})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("table").first).to_contain_text("lighthouse.txt")
    page.get_by_label("New store").fill("console-docs")
    page.get_by_role("button", name="Create").click()
    detail = page.locator(".detail")
    expect(detail.locator("h3")).to_contain_text("console-docs")
    detail.get_by_label("File to attach").select_option(label=next(
        o for o in detail.get_by_label("File to attach").locator("option").all_inner_texts() if "lighthouse.txt" in o))
    detail.get_by_role("button", name="Attach").click()
    expect(detail.locator(".file-counts")).to_contain_text("1 completed", timeout=60_000)

    detail.get_by_label("Search query").fill("Who keeps the harbour lighthouse?")
    detail.get_by_role("button", name="Search").click()
    for mode in ("vector", "keyword", "hybrid"):
        expect(detail.locator(f'.mode[data-mode="{mode}"] .hit').first).to_contain_text("lighthouse.txt")
    store = next(s for s in client.vector_stores.list().data if s.name == "console-docs")
    assert store.file_counts.completed == 1
    found = client.vector_stores.search(store.id, query="Who keeps the harbour lighthouse?")
    assert "Marisol Quayle" in found.data[0].content[0].text
    shoot(page, "stores")

    page.goto(f"{BASE}/ui/#/playground")  # a Responses turn that searches the store, its call shown inline
    page.get_by_label("Use the Responses API").check()
    page.get_by_label("file_search over (Responses)").select_option(store.id)
    page.get_by_label("Require a tool call (Responses)").check()
    page.get_by_label("Message").fill("Who keeps the harbour lighthouse?")
    page.get_by_label("Message").press("Enter")
    call = page.locator('.bubble.assistant .tool-call[data-type="file_search_call"]')
    expect(call).to_contain_text("Marisol Quayle", timeout=90_000)
    expect(page.locator(".bubble.assistant .usage")).to_be_visible(timeout=90_000)
    shoot(page, "playground-file-search")


def test_a_prompt_gets_a_second_version_a_diff_and_its_default_back(page):
    page.goto(f"{BASE}/ui/#/prompts")
    page.get_by_label("Template ({{ variable }} placeholders)").fill("Answer as a {{ persona }} would.")
    page.get_by_role("button", name="Create prompt").click()
    detail = page.locator(".detail")
    prompt_id = wait_for(lambda: (detail.locator("h3").inner_text() if detail.locator("h3").count() else "").strip())
    detail.get_by_label("Template of the new version").fill("Answer as a {{ persona }} would,\nin {{ language }}.")
    detail.get_by_role("button", name="Save as version 2").click()
    expect(detail.locator(".diff .removed")).to_have_text("- Answer as a {{ persona }} would.")
    expect(detail.locator(".diff .added")).to_have_text(["+ Answer as a {{ persona }} would,", "+ in {{ language }}."])
    head = httpx.get(f"{BASE}/v1/prompts/{prompt_id}").json()
    assert (head["version"], head["variables"]) == (2, ["persona", "language"])

    detail.locator("tr").filter(has_text="would.").get_by_role("button", name="Set default").click()
    wait_for(lambda: httpx.get(f"{BASE}/v1/prompts/{prompt_id}").json()["version"] == 1)
    expect(page.locator("table").nth(0)).to_contain_text(prompt_id)
    shoot(page, "prompts")


def test_a_fine_tuning_job_started_in_the_console_draws_its_loss_curve(page, client):
    rows = [{"messages": [{"role": "user", "content": "Best lighthouse?"}, {"role": "assistant", "content": "Quayle Point"}]}] * 32
    upload = client.files.create(file=("lighthouse.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()),
                                 purpose="fine-tune")
    page.goto(f"{BASE}/ui/#/training")
    page.get_by_label("Base model").select_option(CHAT)
    page.get_by_label("Training file (purpose fine-tune)").select_option(upload.id)
    page.get_by_role("button", name="Start fine-tuning").click()
    points = page.locator("svg.loss-curve circle.point")
    expect(points.nth(1)).to_be_attached(timeout=150_000)
    job_id = page.locator(".detail h3").inner_text()
    metrics = [e for e in client.fine_tuning.jobs.list_events(job_id, limit=100).data if e.type == "metrics"]
    assert len(metrics) >= points.count() >= 2
    shoot(page, "training")
    page.get_by_role("button", name="Cancel job").click()
    wait_for(lambda: client.fine_tuning.jobs.retrieve(job_id).status == "cancelled", 60)


def test_an_evaluation_run_from_the_console_shows_its_results_as_a_table(page):
    api = httpx.Client(base_url=BASE, timeout=60)
    api.post("/v1beta/datasets", json={"dataset_id": "capitals", "purpose": "eval/question-answer", "source": {
        "type": "rows", "rows": [{"question": "What is the capital of France?", "answer": "Paris"}] * 3}}).raise_for_status()
    api.post("/v1alpha/eval/benchmarks", json={"benchmark_id": "capitals", "dataset_id": "capitals",
                                               "scoring_functions": ["basic::subset_of"]}).raise_for_status()
    page.goto(f"{BASE}/ui/#/training")
    evaluation = page.locator("section").filter(has=page.get_by_role("heading", name="Evaluation"))
    evaluation.locator("tr.pickable").filter(has_text="capitals").click()
    evaluation.get_by_label("Candidate model").select_option(CHAT)
    evaluation.get_by_role("button", name="Run evaluation").click()
    done = evaluation.locator("tr.pickable").filter(has_text="completed")
    expect(done).to_contain_text("3/3", timeout=120_000)
    done.click()
    job_id = api.get("/v1alpha/eval/benchmarks/capitals/jobs").json()["data"][0]["job_id"]
    result = api.get(f"/v1alpha/eval/benchmarks/capitals/jobs/{job_id}/result").json()
    table = evaluation.locator("table").last
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_contain_text("What is the capital of France?")
    expect(table.locator("tbody tr").first).to_contain_text(result["generations"][0]["generated_answer"].strip()[:40])
    expect(evaluation).to_contain_text(f'"num_total": {result["scores"]["basic::subset_of"]["aggregated_results"]["num_total"]}')
    shoot(page, "evaluation")


def test_the_graph_page_lists_the_deployments_and_links_the_ray_dashboard(page):
    page.goto(f"{BASE}/ui/#/graph")
    table = page.locator("table")
    for deployment in ("ingress", "provider-vllm", "provider-milvus", "provider-torchtune"):
        expect(table.locator("tr").filter(has_text=deployment).first).to_contain_text("HEALTHY", timeout=60_000)
    expect(table.locator("tr").filter(has_text="provider-vllm")).to_contain_text("1 running")
    link = page.get_by_role("link", name="Open the Ray dashboard's Serve tab")
    assert link.get_attribute("href").endswith("/#/serve")
    assert httpx.get(link.get_attribute("href").removesuffix("/#/serve"), timeout=10).status_code == 200
    shoot(page, "graph")


def test_pages_are_reached_by_keyboard_and_fit_a_phone(browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{BASE}/ui/#/playground")
    expect(page.get_by_label("Message")).to_be_focused()  # the playground is ready to type into
    page.goto(f"{BASE}/ui/#/graph")
    page.reload()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")  # the pages, in order
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Logs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_have_attribute("data-page", "logs")
    for name in ("playground", "logs", "stores", "prompts", "training", "graph"):
        page.goto(f"{BASE}/ui/#/{name}")
        expect(page.locator("main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], f"{name} is wider than a phone"
    shoot(page, "graph-phone")
    context.close()


def test_an_api_error_is_shown_as_a_message(page):
    page.goto(f"{BASE}/ui/#/playground?model=no-such-model")
    page.get_by_label("Message").fill("Hello?")
    page.get_by_label("Message").press("Enter")
    error = page.locator(".bubble.assistant .error")
    expect(error).to_contain_text("404")
    expect(error).to_contain_text("no-such-model")
    expect(page.get_by_role("alert")).to_be_visible()
