// Fine-tuning and evaluation: jobs with status, a live loss curve, checkpoints and a button to chat
// with the tuned model; benchmarks, their evaluation jobs and results as a table.
import { all, api, chatModelIds } from "../api.js";
import { lossCurve } from "../chart.js";
import { clear, every, field, guarded, h, json, section, select, table, when } from "../dom.js";

const RUNNING = ["validating_files", "queued", "running"];
const POLL_MS = 2000;

export async function render(main) {
  const stops = [];
  let stopJob = () => {};
  stops.push(() => stopJob());
  const jobs = h("div");
  const job = h("div", { class: "detail" });
  const models = (await chatModelIds().catch(() => [])).map((id) => [id]);

  async function loadJobs() {
    clear(jobs);
    const listed = await guarded(jobs, () => all("/v1/fine_tuning/jobs", 100));
    if (listed) jobs.append(table([["Job", (j) => j.id], ["Model", (j) => j.model], ["Status", (j) => j.status],
      ["Created", (j) => when(j.created_at)]], listed, (j) => openJob(j.id)));
  }

  function openJob(jobId) {
    stopJob();
    clear(job, h("h3", {}, jobId));
    const status = h("dl", { class: "facts", "aria-live": "polite" });
    const curve = h("div", { class: "curve" });
    const checkpoints = h("div");
    const actions = h("div", { class: "row" });
    job.append(status, h("h4", {}, "Training loss"), curve, h("h4", {}, "Checkpoints"), checkpoints, actions);
    const events = new Map(); // event id -> event, gathered newest first, page by page
    let shownStatus = null; // the job's status in the list
    stopJob = every(POLL_MS, async () => {
      const record = await api(`/v1/fine_tuning/jobs/${jobId}`);
      if (record.status !== shownStatus) { shownStatus = record.status; loadJobs(); }
      await newEvents(jobId, events);
      const points = [...events.values()].filter((e) => e.type === "metrics")
        .map((e) => ({ step: e.data.step, loss: e.data.train_loss, total: e.data.total_steps })).sort((a, b) => a.step - b.step);
      clear(status, [["Status", record.status], ["Model", record.model], ["Fine-tuned model", record.fine_tuned_model],
        ["Steps", points.length ? `${points[points.length - 1].step} of ${points[points.length - 1].total ?? "?"}` : "none yet"],
        ["Error", record.error && record.error.message]].filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
      clear(curve, lossCurve(points, points.length ? points[points.length - 1].total : 0));
      const saved = await api(`/v1/fine_tuning/jobs/${jobId}/checkpoints?limit=100`);
      clear(checkpoints, table([["Step", (c) => c.step_number], ["Model", (c) => c.fine_tuned_model_checkpoint],
        ["Train loss", (c) => (c.metrics.train_loss ?? "").toString().slice(0, 6)], ["", (c) => chatButton(c.fine_tuned_model_checkpoint)]],
      saved.data));
      clear(actions, record.fine_tuned_model ? chatButton(record.fine_tuned_model, "Chat with the fine-tuned model") : null,
        RUNNING.includes(record.status) ? h("button", { type: "button", onclick: () =>
          guarded(job, () => api(`/v1/fine_tuning/jobs/${jobId}/cancel`, { method: "POST" })) }, "Cancel job") : null);
      return RUNNING.includes(record.status);
    }, job);
  }

  main.append(h("h1", {}, "Fine-tuning & evaluation"), h("div", { class: "split" },
    h("div", {}, section("New fine-tuning job", await jobForm(models, async (made) => { await loadJobs(); openJob(made.id); })),
      section("Fine-tuning jobs", jobs)),
    section("Job", job)), section("Evaluation", await evaluation(models, stops)));
  await loadJobs();
  return () => { while (stops.length) stops.pop()(); };
}

/** Adds the events not seen yet to `seen`: the newest pages until one holds an event already there. */
async function newEvents(jobId, seen) {
  let after = null;
  for (let pages = 0; pages < 50; pages++) {
    const page = await api(`/v1/fine_tuning/jobs/${jobId}/events?limit=100${after ? `&after=${after}` : ""}`);
    let known = false;
    for (const event of page.data) {
      if (seen.has(event.id)) known = true;
      else seen.set(event.id, event);
    }
    if (known || !page.has_more || !page.data.length) return;
    after = page.data[page.data.length - 1].id;
  }
}

function chatButton(model, label = "Chat") {
  return h("a", { class: "button", href: `#/playground?model=${encodeURIComponent(model)}` }, label);
}

async function jobForm(models, made) {
  const files = await all("/v1/files?purpose=fine-tune", 200).catch(() => []);
  const model = select(models);
  const file = select(files.map((f) => [f.id, `${f.filename} (${f.id})`]));
  const epochs = h("input", { type: "number", min: 1, max: 50, value: 1 });
  const multiplier = h("input", { type: "number", min: 0.01, step: 0.01, value: 1 });
  const suffix = h("input", { type: "text", maxlength: 64, placeholder: "optional" });
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const job = await guarded(form, () => api("/v1/fine_tuning/jobs", { method: "POST", body: {
      model: model.value, training_file: file.value, suffix: suffix.value.trim() || undefined,
      method: { type: "supervised", supervised: { hyperparameters: {
        n_epochs: Number(epochs.value), learning_rate_multiplier: Number(multiplier.value) } } } } }));
    if (job) await made(job);
  } }, field("Base model", model), field("Training file (purpose fine-tune)", file), field("Epochs", epochs),
  field("Learning rate multiplier", multiplier), field("Suffix", suffix),
  h("button", { type: "submit", class: "primary" }, "Start fine-tuning"));
  return form;
}

async function evaluation(models, stops) {
  const wrap = h("div");
  const benchmarks = await guarded(wrap, () => api("/v1alpha/eval/benchmarks"));
  if (!benchmarks) return wrap;
  const runs = h("div");
  const result = h("div");
  let stopRuns = () => {};
  stops.push(() => stopRuns());
  async function openBenchmark(benchmark) {
    stopRuns();
    clear(runs); clear(result);
    const candidate = select(models);
    const run = h("form", { class: "row", onsubmit: async (e) => {
      e.preventDefault();
      if (await guarded(runs, () => api(`/v1alpha/eval/benchmarks/${benchmark.identifier}/jobs`, { method: "POST", body: {
        benchmark_config: { eval_candidate: { type: "model", model: candidate.value, sampling_params: { max_tokens: 64 } } } } }))) {
        openBenchmark(benchmark);
      }
    } }, field("Candidate model", candidate), h("button", { type: "submit" }, "Run evaluation"));
    const listed = h("div");
    runs.append(h("h3", {}, benchmark.identifier), run, listed);
    stopRuns = every(POLL_MS, async () => {
      const jobs = await all(`/v1alpha/eval/benchmarks/${benchmark.identifier}/jobs`, 100);
      clear(listed, table([["Job", (j) => j.job_id], ["Status", (j) => j.status],
        ["Progress", (j) => j.progress ? `${j.progress.generated}/${j.progress.total}` : ""], ["Created", (j) => when(j.created_at)]],
      jobs, (j) => j.status === "completed" && showResult(benchmark, j, result)));
      return jobs.some((j) => j.status === "in_progress");
    }, runs);
  }
  wrap.append(table([["Benchmark", (b) => b.identifier], ["Dataset", (b) => b.dataset_id],
    ["Scoring", (b) => b.scoring_functions.join(", ")]], benchmarks.data, openBenchmark), runs, result);
  return wrap;
}

const RESULT_ROWS = 500; // rows of a result shown at most

async function showResult(benchmark, job, target) {
  clear(target, h("h4", {}, `Results of ${job.job_id}`));
  const evaluation = await guarded(target, () => api(`/v1alpha/eval/benchmarks/${benchmark.identifier}/jobs/${job.job_id}/result`));
  if (!evaluation) return;
  const functions = Object.keys(evaluation.scores);
  for (const fn of functions) target.append(h("p", {}, `${fn}: `, json(evaluation.scores[fn].aggregated_results)));
  const shown = evaluation.generations.slice(0, RESULT_ROWS);
  const inputs = await guarded(target, () => datasetRows(benchmark.dataset_id, shown.length)) || [];
  const rows = shown.map((g, i) => ({ ...inputs[i], ...g, scores: functions.map((fn) => evaluation.scores[fn].score_rows[i]) }));
  const text = (v) => (typeof v === "string" ? v : JSON.stringify(v ?? "")).slice(0, 200);
  if (evaluation.generations.length > shown.length) target.append(h("p", { class: "muted" }, `the first ${shown.length} of ${evaluation.generations.length} rows`));
  target.append(table([["Input", (r) => text(r.input_query ?? r.question ?? r.messages)], ["Expected", (r) => text(r.expected_answer ?? r.answer)],
    ["Generated", (r) => text(r.generated_answer)],
    ...functions.map((fn, k) => [fn, (r) => text(r.scores[k] && r.scores[k].score)])], rows));
}

/** The first `count` rows of a dataset, which the generations answer in order. */
async function datasetRows(datasetId, count) {
  const rows = [];
  while (rows.length < count) {
    const page = await api(`/v1beta/datasetio/iterrows/${encodeURIComponent(datasetId)}?start_index=${rows.length}&limit=${Math.min(100, count - rows.length)}`);
    rows.push(...page.data);
    if (!page.has_more || !page.data.length) break;
  }
  return rows;
}
