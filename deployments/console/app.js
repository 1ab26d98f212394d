// The console's shell: the token field, the navigation, and one page at a time by the URL's hash.
import { token } from "./api.js";
import { clear, errorBox } from "./dom.js";

const PAGES = {
  playground: () => import("./pages/playground.js"),
  logs: () => import("./pages/logs.js"),
  stores: () => import("./pages/stores.js"),
  prompts: () => import("./pages/prompts.js"),
  training: () => import("./pages/training.js"),
  graph: () => import("./pages/graph.js"),
};

let leave = null; // the shown page's cleanup (timers, streams)

/** `#/logs?model=x` -> ["logs", URLSearchParams("model=x")] */
function route() {
  const [name, query] = location.hash.replace(/^#\/?/, "").split("?");
  return [PAGES[name] ? name : "playground", new URLSearchParams(query || "")];
}

async function show() {
  const [name, params] = route();
  const main = document.getElementById("main");
  if (leave) leave();
  leave = null;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  main.dataset.page = name;
  try {
    const page = await PAGES[name]();
    leave = await page.render(main, params) || null;
  } catch (error) {
    main.append(errorBox(error));
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
