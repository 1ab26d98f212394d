// Files and vector stores: upload, create a store, attach files and watch `file_counts` move, and
// search with the vector, keyword and hybrid modes side by side.
import { all, api } from "../api.js";
import { clear, every, field, guarded, h, section, select, table } from "../dom.js";

const MODES = ["vector", "keyword", "hybrid"];

export async function render(main) {
  const files = h("div");
  const stores = h("div");
  const detail = h("div", { class: "detail" });
  const state = { files: [], stopWatch: null };

  async function loadFiles() {
    clear(files);
    const listed = await guarded(files, () => all("/v1/files?order=desc", 200));
    if (!listed) return;
    state.files = listed;
    files.append(table([["Name", (f) => f.filename], ["Purpose", (f) => f.purpose], ["Bytes", (f) => f.bytes],
      ["Id", (f) => f.id]], listed));
  }

  async function loadStores() {
    clear(stores);
    const listed = await guarded(stores, () => all("/v1/vector_stores", 200));
    if (listed) stores.append(table([["Name", (s) => s.name], ["Files", (s) => counts(s.file_counts)], ["Id", (s) => s.id]],
      listed, (store) => openStore(store.id)));
  }

  function openStore(storeId) {
    if (state.stopWatch) state.stopWatch();
    clear(detail);
    const heading = h("h3", {}, storeId);
    const fileCounts = h("p", { class: "file-counts", "aria-live": "polite" });
    const attached = h("div");
    const pick = select(state.files.map((f) => [f.id, `${f.filename} (${f.id})`]), { "aria-label": "File to attach" });
    const attach = h("form", { class: "row", onsubmit: async (e) => {
      e.preventDefault();
      if (!pick.value) return;
      await guarded(detail, () => api(`/v1/vector_stores/${storeId}/files`, { method: "POST", body: { file_id: pick.value } }));
      watch();
    } }, pick, h("button", { type: "submit" }, "Attach"));
    const query = h("input", { type: "search", placeholder: "Search this store", "aria-label": "Search query" });
    const results = h("div", { class: "modes" });
    const search = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); searchModes(storeId, query.value, results); } },
      query, h("button", { type: "submit", class: "primary" }, "Search"));
    detail.append(heading, fileCounts, attach, attached, h("h4", {}, "Search: vector, keyword and hybrid"), search, results);

    function watch() {
      if (state.stopWatch) state.stopWatch();
      state.stopWatch = every(1000, async () => {
        const store = await api(`/v1/vector_stores/${storeId}`);
        heading.textContent = `${store.name || store.id} (${store.id})`;
        fileCounts.textContent = `file_counts: ${counts(store.file_counts)}`;
        const listed = await all(`/v1/vector_stores/${storeId}/files`, 200);
        clear(attached, table([["File", (f) => f.id], ["Status", (f) => f.status],
          ["Error", (f) => (f.last_error && f.last_error.message) || ""]], listed));
        return store.file_counts.in_progress > 0;
      }, detail);
    }
    watch();
  }

  const upload = h("input", { type: "file", multiple: true });
  const purpose = select([["assistants"], ["fine-tune"], ["batch"], ["user_data"]]);
  const uploadForm = h("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    for (const file of upload.files) {
      const form = new FormData();
      form.append("purpose", purpose.value);
      form.append("file", file, file.name);
      if (!await guarded(files, () => api("/v1/files", { method: "POST", body: form }))) return;
    }
    upload.value = "";
    await loadFiles();
  } }, field("Files", upload), field("Purpose", purpose), h("button", { type: "submit", class: "primary" }, "Upload"));

  const name = h("input", { type: "text", placeholder: "docs" });
  const createForm = h("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    const store = await guarded(stores, () => api("/v1/vector_stores", { method: "POST", body: { name: name.value.trim() || undefined } }));
    if (!store) return;
    name.value = "";
    await loadStores();
    openStore(store.id);
  } }, field("New store", name), h("button", { type: "submit" }, "Create"));

  main.append(h("h1", {}, "Files & vector stores"), h("div", { class: "split" },
    h("div", {}, section("Files", uploadForm, files), section("Vector stores", createForm, stores)),
    section("Store", detail)));
  await Promise.all([loadFiles(), loadStores()]);
  return () => state.stopWatch && state.stopWatch();
}

function counts(c) {
  return c ? `${c.completed} completed, ${c.in_progress} in progress, ${c.failed} failed (${c.total} in all)` : "";
}

async function searchModes(storeId, text, results) {
  clear(results);
  if (!text.trim()) return;
  await Promise.all(MODES.map(async (mode) => {
    const column = h("div", { class: "mode", dataset: { mode } }, h("h5", {}, mode));
    results.append(column);
    const found = await guarded(column, () => api(`/v1/vector_stores/${storeId}/search`, {
      method: "POST", body: { query: text, search_mode: mode, max_num_results: 5 } }));
    if (!found) return;
    if (!found.data.length) column.append(h("p", { class: "muted" }, "no match"));
    column.append(h("ol", {}, found.data.map((hit) => h("li", { class: "hit" },
      h("div", { class: "muted" }, `${hit.filename} · ${hit.score.toFixed(3)}`),
      h("div", {}, hit.content.map((c) => c.text).join(" ").slice(0, 400))))));
  }));
}
