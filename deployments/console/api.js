// Calls to the server's public API, with the token the user typed (kept in session storage).

const TOKEN_KEY = "raystack.token";
// The server's root: the console is at <root>/ui/, so it also works under a Serve route prefix.
const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const detail = typeof error === "string" ? error : error.message || (body && body.detail) || "";
    super(`${status}${error.type ? " " + error.type : ""}: ${detail || "the server gave no reason"}`);
  }
}

function headers(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

async function check(response) {
  if (response.ok) return response;
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: the status says enough */ }
  throw new ApiError(response.status, body);
}

/** A JSON call: `api("/v1/models")`, `api(path, {method: "POST", body: {...}})`, or a FormData body. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = headers({ "Content-Type": "application/json" });
  }
  const response = await check(await fetch(ROOT + path, init));
  return response.status === 204 ? null : response.json();
}

/** The ids of the models that chat (every model but the embedding ones). */
export async function chatModelIds() {
  return (await api("/v1/models")).data.filter((m) => m.model_type !== "embedding").map((m) => m.id);
}

/** Every item of a paged list (`data`, `has_more`, `last_id`), at most `max` of them. */
export async function all(path, max = 500) {
  const items = [];
  let after = null;
  while (items.length < max) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(after ? `${path}${sep}after=${encodeURIComponent(after)}` : path);
    items.push(...page.data);
    if (!page.has_more || !page.data.length) break;
    after = page.last_id || page.data[page.data.length - 1].id;
  }
  return items;
}

/** POST a streamed call and hand each server-sent event's JSON (with its `event:` name) to `onEvent`. */
export async function stream(path, body, onEvent, signal) {
  const response = await check(await fetch(ROOT + path, {
    method: "POST", signal, body: JSON.stringify({ ...body, stream: true }),
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
  }));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const event = parseEvent(block);
      if (event) onEvent(event.data, event.name);
    }
  }
}

function parseEvent(block) {
  let name = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length || data[0] === "[DONE]") return null;
  const parsed = JSON.parse(data.join("\n"));
  if (parsed.error && !parsed.type) throw new ApiError(parsed.error.code || 500, parsed);
  return { name: name || parsed.type || null, data: parsed };
}
