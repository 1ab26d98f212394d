// The console's shell: the token field, the navigation, and one page at a time by the URL's hash.
import { token } from "./api.js";
import { errorBox, h } from "./dom.js";

const PAGES = {
  playground: () => import("./pages/playground.js"),
  logs: () => import("./pages/logs.js"),
  stores: () => import("./pages/stores.js"),
  prompts: () => import("./pages/prompts.js"),
  training: () => import("./pages/training.js"),
  graph: () => import("./pages/graph.js"),
};

let current = null; // the page shown: its view element and its cleanup (timers, streams)

/** `#/logs?model=x` -> ["logs", URLSearchParams("model=x")] */
function route() {
  const [name, query] = location.hash.replace(/^#\/?/, "").split("?");
  return [PAGES[name] ? name : "playground", new URLSearchParams(query || "")];
}

/** Shows the page the hash names in a view of its own: a page still loading when the user moves on
 * keeps filling its own (detached) view, and is cleaned up once it is done. */
async function show() {
  const [name, params] = route();
  if (current && current.leave) current.leave();
  const visit = { view: h("div", { class: "view" }), leave: null };
  current = visit;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  main.replaceChildren(visit.view);
  main.dataset.page = name;
  try {
    const page = await PAGES[name]();
    const leave = await page.render(visit.view, params) || null;
    if (current === visit) visit.leave = leave;
    else if (leave) leave();
  } catch (error) {
    visit.view.append(errorBox(error));
  }
}

function start() {
  const input = document.getElementById("token");
  input.value = token.get();
  const apply = () => { token.set(input.value.trim()); show(); };
  document.getElementById("token-form").addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  input.addEventListener("change", apply);
  window.addEventListener("hashchange", show);
  show();
}

start();
