// The loss curve: step against loss, as SVG.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 260;
const PAD = { left: 56, right: 16, top: 16, bottom: 36 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  el.append(...children);
  return el;
}

/** `points`: [{step, loss}] in step order; `totalSteps` fixes the x axis while a job runs. */
export function lossCurve(points, totalSteps) {
  if (!points.length) return h("p", { class: "muted loss-empty" }, "no step has finished yet");
  const maxStep = Math.max(totalSteps || 0, ...points.map((p) => p.step), 1);
  const losses = points.map((p) => p.loss);
  const low = Math.min(...losses);
  const high = Math.max(...losses);
  const span = high - low || 1;
  const x = (step) => PAD.left + (step / maxStep) * (WIDTH - PAD.left - PAD.right);
  const y = (loss) => PAD.top + (1 - (loss - low) / span) * (HEIGHT - PAD.top - PAD.bottom);
  const bottom = HEIGHT - PAD.bottom;
  const ticks = [high, (high + low) / 2, low].map((loss) => svg("text", { x: PAD.left - 6, y: y(loss) + 4, class: "tick", "text-anchor": "end" }, loss.toFixed(3)));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "loss-curve", role: "img",
    "aria-label": `training loss over ${points.length} steps, last ${losses[losses.length - 1].toFixed(4)}` },
  svg("line", { x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom, class: "axis" }),
  svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom, class: "axis" }),
  ...ticks,
  svg("text", { x: PAD.left, y: HEIGHT - 8, class: "tick" }, "0"),
  svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, class: "tick", "text-anchor": "end" }, `step ${maxStep}`),
  svg("polyline", { class: "line", points: points.map((p) => `${x(p.step)},${y(p.loss)}`).join(" ") }),
  ...points.map((p) => svg("circle", { class: "point", cx: x(p.step), cy: y(p.loss), r: 3 },
    svg("title", {}, `step ${p.step}: loss ${p.loss.toFixed(4)}`))));
  return chart;
}
