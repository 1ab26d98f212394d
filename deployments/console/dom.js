// DOM helpers. Text from the API goes in as text nodes, never as markup.

/** `h("button", {class: "primary", onclick: f}, "Send")`: an element with attributes, handlers and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An API error (or any failure) shown where the content would be, and read out to screen readers. */
export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error && error.message ? error.message : String(error));
}

/** Run `work`, showing its failure in `target` instead of a blank pane; returns its result or null. */
export async function guarded(target, work) {
  try {
    return await work();
  } catch (error) {
    target.append(errorBox(error));
    return null;
  }
}

export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function select(options, attrs = {}) {
  return h("select", attrs, options.map(([value, label]) => h("option", { value }, label ?? value)));
}

/** A table of `rows` (objects) under `columns` ([header, row => cell]); `onpick(row)` makes rows selectable. */
export function table(columns, rows, onpick) {
  const body = rows.map((row) => {
    const tr = h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row))));
    if (onpick) {
      tr.tabIndex = 0;
      tr.classList.add("pickable");
      tr.addEventListener("click", () => onpick(row, tr));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onpick(row, tr); } });
    }
    return tr;
  });
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "none yet")))));
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** Call `tick` every `ms` until it returns false, fails (its error shown in `target`) or is stopped;
 * returns the stop function. */
export function every(ms, tick, target) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    let more;
    try {
      more = await tick();
    } catch (error) {
      target.append(errorBox(error));
      more = false;
    }
    if (more !== false && !stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}
