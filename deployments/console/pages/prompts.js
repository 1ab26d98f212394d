// Prompts: list, versions, a diff between two versions, a new version, and the default version.
import { api } from "../api.js";
import { lineDiff } from "../diff.js";
import { clear, errorBox, field, guarded, h, section, select, table } from "../dom.js";

export async function render(main) {
  const list = h("div");
  const detail = h("div", { class: "detail" });

  async function loadList() {
    clear(list);
    const prompts = await guarded(list, () => api("/v1/prompts"));
    if (prompts) list.append(table([["Prompt", (p) => p.prompt_id], ["Default version", (p) => p.version],
      ["Variables", (p) => p.variables.join(", ")]], prompts.data, (p) => openPrompt(p.prompt_id)));
  }

  async function openPrompt(promptId) {
    clear(detail, h("h3", {}, promptId));
    const versions = await guarded(detail, () => api(`/v1/prompts/${encodeURIComponent(promptId)}/versions`));
    if (!versions) return;
    const byVersion = new Map(versions.data.map((v) => [v.version, v]));
    const latest = Math.max(...byVersion.keys());
    const setDefault = (v) => h("button", { type: "button", disabled: v.is_default, onclick: async () => {
      if (await guarded(detail, () => api(`/v1/prompts/${encodeURIComponent(promptId)}/set-default-version`,
        { method: "PUT", body: { version: v.version } }))) { await openPrompt(promptId); await loadList(); }
    } }, v.is_default ? "default" : "Set default");
    detail.append(table([["Version", (v) => v.version], ["Template", (v) => v.prompt], ["Default", setDefault]],
      [...versions.data].sort((x, y) => y.version - x.version)));

    const options = [...byVersion.keys()].sort((x, y) => x - y).map((v) => [String(v), `version ${v}`]);
    const from = select(options);
    const to = select(options);
    from.value = String(Math.max(1, latest - 1));
    to.value = String(latest);
    const diff = h("pre", { class: "diff", "aria-live": "polite" });
    const showDiff = () => clear(diff, lineDiff(byVersion.get(Number(from.value)).prompt || "",
      byVersion.get(Number(to.value)).prompt || "").map(([op, line]) =>
      h("div", { class: { "+": "added", "-": "removed", " ": "kept" }[op] }, `${op} ${line}`)));
    from.addEventListener("change", showDiff);
    to.addEventListener("change", showDiff);
    showDiff();

    const template = h("textarea", { rows: 5 }, byVersion.get(latest).prompt || "");
    const asDefault = h("input", { type: "checkbox", checked: true });
    const newVersion = h("form", { onsubmit: async (e) => {
      e.preventDefault();
      const made = await guarded(detail, () => api(`/v1/prompts/${encodeURIComponent(promptId)}`, { method: "POST",
        body: { prompt: template.value, version: latest, variables: variablesOf(template.value), set_as_default: asDefault.checked } }));
      if (made) { await openPrompt(promptId); await loadList(); }
    } }, field("Template of the new version", template), field("Make it the default", asDefault),
    h("button", { type: "submit", class: "primary" }, `Save as version ${latest + 1}`));
    detail.append(h("h4", {}, "Diff"), h("div", { class: "row" }, field("From", from), field("To", to)), diff,
      h("h4", {}, "New version"), newVersion);
  }

  const template = h("textarea", { rows: 4, placeholder: "Answer as a {{ persona }} would." });
  const createForm = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const made = await guarded(createForm, () => api("/v1/prompts", { method: "POST",
      body: { prompt: template.value, variables: variablesOf(template.value) } }));
    if (!made) return;
    template.value = "";
    await loadList();
    await openPrompt(made.prompt_id);
  } }, field("Template ({{ variable }} placeholders)", template), h("button", { type: "submit", class: "primary" }, "Create prompt"));

  main.append(h("h1", {}, "Prompts"), h("div", { class: "split" },
    h("div", {}, section("New prompt", createForm), section("Prompts", list)), section("Versions", detail)));
  await loadList().catch((error) => list.append(errorBox(error)));
}

/** The `{{ name }}` placeholders of a template, in order, each once. */
function variablesOf(template) {
  return [...new Set([...template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]))];
}
