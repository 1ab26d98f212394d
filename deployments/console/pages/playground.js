// Playground: chat with a model, streamed, through Chat Completions or the Responses API (with
// file_search over a vector store and the configured tool groups as tools, their calls shown inline).
import { all, api, chatModelIds, stream } from "../api.js";
import { clear, errorBox, field, guarded, h, json, section, select } from "../dom.js";

export async function render(main, params) {
  const chatModels = (await guarded(main, chatModelIds) || []).map((id) => [id]);
  const wanted = params.get("model");
  if (wanted && !chatModels.some(([id]) => id === wanted)) chatModels.push([wanted]);
  const stores = await all("/v1/vector_stores").catch(() => []);
  const groups = (await api("/v1/toolgroups").catch(() => ({ data: [] }))).data;

  const settings = {
    model: select(chatModels, { name: "model" }),
    system: h("textarea", { rows: 3, placeholder: "You are a helpful assistant." }),
    temperature: h("input", { type: "number", min: 0, max: 2, step: 0.1, value: 0.7 }),
    maxTokens: h("input", { type: "number", min: 1, max: 4096, value: 128 }),
    responses: h("input", { type: "checkbox" }),
    store: select([["", "no file_search"], ...stores.map((s) => [s.id, s.name || s.id])]),
    required: h("input", { type: "checkbox" }),
    tools: groups.map((g) => h("input", { type: "checkbox", value: g.identifier, dataset: { endpoint: (g.mcp_endpoint || {}).uri || "" } })),
  };
  if (wanted) settings.model.value = wanted;
  const transcript = h("div", { class: "transcript", "aria-live": "polite" });
  const input = h("textarea", { rows: 3, placeholder: "Ask something (Enter sends, Shift+Enter for a new line)", "aria-label": "Message" });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const stop = h("button", { type: "button", disabled: true }, "Stop");
  const state = { messages: [], previousResponseId: null, running: null };

  const reset = h("button", { type: "button", onclick: () => {
    state.messages = []; state.previousResponseId = null; clear(transcript);
  } }, "New chat");
  const form = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); turn(); } }, input,
    h("div", { class: "row" }, send, stop, reset));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener("click", () => state.running && state.running.abort());

  async function turn() {
    const text = input.value.trim();
    if (!text || state.running) return;
    input.value = "";
    transcript.append(bubble("user", text));
    const reply = bubble("assistant", "");
    transcript.append(reply);
    state.running = new AbortController();
    send.disabled = true; stop.disabled = false;
    try {
      if (settings.responses.checked) await respond(text, reply, state, settings);
      else await chat(text, reply, state, settings);
    } catch (error) {
      reply.append(errorBox(error.name === "AbortError" ? "stopped" : error));
    } finally {
      state.running = null; send.disabled = false; stop.disabled = true;
      reply.classList.remove("streaming");
      input.focus();
    }
  }

  main.append(h("h1", {}, "Playground"), h("div", { class: "split" },
    section("Settings",
      field("Model", settings.model), field("System prompt", settings.system),
      field("Temperature", settings.temperature), field("Max tokens", settings.maxTokens),
      field("Use the Responses API", settings.responses),
      field("file_search over (Responses)", settings.store),
      field("Require a tool call (Responses)", settings.required),
      settings.tools.length ? h("fieldset", {}, h("legend", {}, "Tool groups (Responses)"),
        settings.tools.map((box) => field(box.value, box))) : null),
    section("Conversation", transcript, form)));
  input.focus();
  return () => state.running && state.running.abort();
}

function bubble(role, text) {
  return h("div", { class: `bubble ${role}${role === "assistant" ? " streaming" : ""}`, dataset: { role } },
    h("span", { class: "role" }, role), h("div", { class: "text" }, text));
}

function textOf(reply) {
  return reply.querySelector(".text");
}

function usageLine(usage, started) {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const tokens = usage ? `${usage.prompt_tokens ?? usage.input_tokens} in, ${usage.completion_tokens ?? usage.output_tokens} out, ` : "";
  return h("div", { class: "usage muted" }, `${tokens}${seconds} s`);
}

async function chat(text, reply, state, settings) {
  state.messages.push({ role: "user", content: text });
  const system = settings.system.value.trim();
  const body = {
    model: settings.model.value, messages: system ? [{ role: "system", content: system }, ...state.messages] : state.messages,
    temperature: Number(settings.temperature.value), max_tokens: Number(settings.maxTokens.value),
    stream_options: { include_usage: true },
  };
  const started = performance.now();
  let usage = null;
  await stream("/v1/chat/completions", body, (chunk) => {
    if (chunk.usage) usage = chunk.usage;
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (delta && delta.content) textOf(reply).append(delta.content);
  }, state.running.signal);
  state.messages.push({ role: "assistant", content: textOf(reply).textContent });
  reply.append(usageLine(usage, started));
}

function responseTools(settings) {
  const tools = [];
  if (settings.store.value) tools.push({ type: "file_search", vector_store_ids: [settings.store.value] });
  for (const box of settings.tools.filter((b) => b.checked)) {
    if (box.dataset.endpoint) {
      tools.push({ type: "mcp", server_label: box.value.replace(/^mcp::/, ""), server_url: box.dataset.endpoint, require_approval: "never" });
    } else if (box.value === "builtin::websearch") tools.push({ type: "web_search" });
  }
  return tools;
}

async function respond(text, reply, state, settings) {
  const body = {
    model: settings.model.value, input: text, instructions: settings.system.value.trim() || undefined,
    temperature: Number(settings.temperature.value), max_output_tokens: Number(settings.maxTokens.value),
    previous_response_id: state.previousResponseId || undefined, tools: responseTools(settings),
    tool_choice: settings.required.checked ? "required" : undefined,
    include: ["file_search_call.results"],
  };
  const started = performance.now();
  let usage = null;
  await stream("/v1/responses", body, (event, name) => {
    if (name === "response.output_text.delta") textOf(reply).append(event.delta);
    else if (name === "response.output_item.done" && event.item.type !== "message") {
      reply.insertBefore(toolCall(event.item), textOf(reply));
    } else if (name === "response.completed" || name === "response.incomplete") {
      state.previousResponseId = event.response.id; usage = event.response.usage;
      const cut = event.response.incomplete_details;
      if (cut) reply.append(h("div", { class: "muted" }, `incomplete: ${cut.reason}`));
    } else if (name === "response.failed" || name === "error") {
      const error = (event.response && event.response.error) || event.error || event;
      reply.append(errorBox(error.message || JSON.stringify(error)));
    }
  }, state.running.signal);
  reply.append(usageLine(usage, started));
}

/** A tool call of the turn (file_search, mcp, web_search ...) with its arguments and results. */
function toolCall(item) {
  const { type, id, status, ...rest } = item;
  return h("details", { class: "tool-call", open: true, dataset: { type } },
    h("summary", {}, `${type}${item.name ? " " + item.name : ""} (${status || "done"})`), json(rest));
}
