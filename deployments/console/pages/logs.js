// Logs: stored chat completions and responses, newest first, paged, filtered by model; a detail
// view with input, output, usage and latency, and for a response its chain and conversation.
import { all, api } from "../api.js";
import { clear, errorBox, field, guarded, h, json, section, select, table, when } from "../dom.js";

const PAGE_SIZE = 20;
const CHAIN_LIMIT = 50; // previous responses followed at most

const KINDS = {
  completions: { title: "Chat completions", path: "/v1/chat/completions", detail: completionDetail,
    columns: [["Created", (r) => when(r.created)], ["Model", (r) => r.model], ["Input", (r) => preview(lastUser(r.input_messages))],
      ["Output", (r) => preview(r.choices && r.choices[0] && r.choices[0].message.content)], ["Tokens", (r) => tokens(r.usage)]] },
  responses: { title: "Responses", path: "/v1/responses", detail: responseDetail,
    columns: [["Created", (r) => when(r.created_at)], ["Model", (r) => r.model], ["Status", (r) => r.status],
      ["Output", (r) => preview(outputText(r))], ["Tokens", (r) => tokens(r.usage)]] },
};

export async function render(main, params) {
  const kind = KINDS[params.get("kind")] ? params.get("kind") : "completions";
  const models = await api("/v1/models").then((m) => m.data.map((x) => [x.id])).catch(() => []);
  const filter = select([["", "all models"], ...models], { name: "model" });
  filter.value = params.get("model") || "";
  const list = h("div", { class: "log-list" });
  const detail = h("div", { class: "detail" });
  const cursors = [null]; // the `after` of each page shown so far
  const prev = h("button", { type: "button" }, "Newer");
  const next = h("button", { type: "button" }, "Older");

  async function load() {
    clear(list); clear(detail);
    const query = new URLSearchParams({ order: "desc", limit: PAGE_SIZE });
    if (filter.value) query.set("model", filter.value);
    if (cursors[cursors.length - 1]) query.set("after", cursors[cursors.length - 1]);
    const page = await guarded(list, () => api(`${KINDS[kind].path}?${query}`));
    if (!page) return;
    list.append(table(KINDS[kind].columns, page.data, (row) => showDetail(kind, row, detail)));
    prev.disabled = cursors.length === 1;
    next.disabled = !page.has_more;
    next.onclick = () => { cursors.push(page.last_id); load(); };
  }
  prev.onclick = () => { cursors.pop(); load(); };
  filter.addEventListener("change", () => { cursors.splice(1); load(); });

  const tabs = h("div", { class: "tabs", role: "tablist" }, Object.entries(KINDS).map(([key, k]) =>
    h("a", { href: `#/logs?kind=${key}`, role: "tab", "aria-selected": String(key === kind) }, k.title)));
  main.append(h("h1", {}, "Logs"), tabs,
    h("div", { class: "split wide-right" },
      section(KINDS[kind].title, h("div", { class: "row" }, field("Model", filter), prev, next), list),
      section("Detail", detail)));
  await load();
}

function preview(text) {
  const flat = String(text ?? "").replace(/\s+/g, " ");
  return flat.length > 80 ? flat.slice(0, 80) + "…" : flat;
}

function lastUser(messages = []) {
  const message = [...messages].reverse().find((m) => m.role === "user");
  return message ? contentText(message.content) : "";
}

function contentText(content) {
  if (typeof content === "string") return content;
  return (content || []).map((part) => part.text ?? part.refusal ?? `[${part.type}]`).join(" ");
}

function outputText(response) {
  return (response.output || []).filter((i) => i.type === "message")
    .map((i) => contentText(i.content)).join(" ");
}

function tokens(usage) {
  if (!usage) return "";
  return `${usage.prompt_tokens ?? usage.input_tokens} → ${usage.completion_tokens ?? usage.output_tokens}`;
}

function showDetail(kind, row, detail) {
  clear(detail);
  detail.dataset.id = row.id;
  KINDS[kind].detail(row, detail).catch((error) => detail.append(errorBox(error)));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function messages(list) {
  return h("ol", { class: "messages" }, list.map((m) => h("li", { dataset: { role: m.role || m.type } },
    h("span", { class: "role" }, m.role || m.type), h("div", { class: "text" },
      m.content !== undefined ? contentText(m.content) : JSON.stringify(m)),
    m.tool_calls ? json(m.tool_calls) : null)));
}

async function completionDetail(record, detail) {
  const usage = record.usage || {};
  detail.append(h("h3", {}, record.id), facts([
    ["Model", record.model], ["Created", when(record.created)],
    ["Latency", record.latency_ms !== undefined ? `${record.latency_ms} ms` : null],
    ["Prompt tokens", usage.prompt_tokens], ["Completion tokens", usage.completion_tokens],
    ["Finish reason", record.choices && record.choices[0] && record.choices[0].finish_reason],
  ]), h("h4", {}, "Input"), messages(record.input_messages || []),
  h("h4", {}, "Output"), messages((record.choices || []).map((c) => c.message)));
}

async function responseDetail(response, detail) {
  const usage = response.usage || {};
  const latency = response.completed_at ? `${response.completed_at - response.created_at} s` : null;
  detail.append(h("h3", {}, response.id), facts([
    ["Model", response.model], ["Status", response.status], ["Created", when(response.created_at)], ["Latency", latency],
    ["Input tokens", usage.input_tokens], ["Output tokens", usage.output_tokens],
    ["Conversation", response.conversation && (response.conversation.id || response.conversation)],
  ]));
  const inputs = await all(`/v1/responses/${encodeURIComponent(response.id)}/input_items?order=asc`, 200);
  detail.append(h("h4", {}, "Input"), messages(inputs), h("h4", {}, "Output"), messages(response.output || []));
  const chain = h("ol", { class: "chain" });
  detail.append(h("h4", {}, "Chain (previous_response_id)"), chain);
  let previous = response.previous_response_id;
  for (let n = 0; previous && n < CHAIN_LIMIT; n++) {
    const earlier = await guarded(chain, () => api(`/v1/responses/${encodeURIComponent(previous)}`));
    if (!earlier) break;
    chain.append(h("li", {}, `${earlier.id}: ${preview(outputText(earlier))}`));
    previous = earlier.previous_response_id;
  }
  if (!chain.children.length) chain.append(h("li", { class: "muted" }, "the first turn"));
  const conversation = response.conversation && (response.conversation.id || response.conversation);
  if (conversation) {
    const items = await guarded(detail, () => all(`/v1/conversations/${encodeURIComponent(conversation)}/items?order=asc`, 200));
    if (items) detail.append(h("h4", {}, `Conversation ${conversation}`), messages(items));
  }
}
