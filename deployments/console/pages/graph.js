// Graph: the deployments of this application, each provider's replicas and health, and the Ray dashboard.
import { api } from "../api.js";
import { clear, every, h, section, table } from "../dom.js";

const POLL_MS = 5000;

export async function render(main) {
  const body = h("div", {}, h("p", { class: "muted" }, "asking Serve…"));
  const link = h("p");
  main.append(h("h1", {}, "Graph"), link, section("Deployments", body));
  return every(POLL_MS, async () => {
    const graph = await api("/v1/inspect/graph");
    clear(body);
    clear(link, graph.dashboard_url
      ? h("a", { href: `${graph.dashboard_url}/#/serve`, target: "_blank", rel: "noopener" }, "Open the Ray dashboard's Serve tab")
      : "The Ray dashboard is not running.", ` Application: ${graph.application}.`);
    body.append(table([
      ["Deployment", (d) => d.name], ["Status", (d) => h("span", { class: `status ${d.status.toLowerCase()}` }, d.status)],
      ["Replicas", (d) => Object.entries(d.replicas).map(([state, n]) => `${n} ${state.toLowerCase()}`).join(", ")],
      ["Provider", (d) => d.provider ? `${d.provider.provider_id} (${d.provider.api}, ${d.provider.provider_type})` : ""],
      ["Health", (d) => d.provider && d.provider.health ? healthOf(d.provider.health) : ""],
      ["Message", (d) => d.message],
    ], graph.deployments));
  }, body);
}

function healthOf(health) {
  return h("span", { class: `status ${String(health.status).toLowerCase()}` },
    health.message ? `${health.status}: ${health.message}` : health.status);
}
