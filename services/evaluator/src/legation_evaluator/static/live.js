// Live scorecard: polls the evaluator's JSON and redraws. Every piece of user text goes
// through textContent or an attribute setter, never innerHTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const refreshMs = Number(document.body.dataset.refreshMs) || 2000;
const params = new URLSearchParams(window.location.search);
let campaignId = params.get("campaign");

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function drawKpis(kpis) {
  const box = document.getElementById("kpis");
  box.replaceChildren(...kpis.map((kpi) => {
    const tile = el("div", undefined, "kpi");
    tile.dataset.kpi = kpi.name;
    tile.append(el("b", kpi.value_shown), el("span", kpi.name.replaceAll("_", " ")));
    if (kpi.baseline !== null && kpi.baseline !== undefined) {
      tile.append(el("small", "before: " + kpi.baseline_shown, "baseline"));
    }
    return tile;
  }));
}

function drawObjectives(objectives) {
  const body = document.getElementById("objectives");
  body.replaceChildren(...objectives.map((o) => {
    const row = el("tr");
    row.dataset.objective = o.objective_id;
    const status = el("td");
    status.append(el("span", o.status, "status " + o.status.replaceAll(" ", "-")));
    row.append(el("td", o.objective_id), el("td", o.metric), el("td", o.value_shown),
               el("td", o.target_shown), status, el("td", o.reason));
    return row;
  }));
}

function drawChart(buckets) {
  const svg = document.getElementById("chart");
  const width = 800, height = 220, pad = 24;
  const nodes = [];
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({x1: pad, y1: height - pad, x2: width, y2: height - pad})) {
    axis.setAttribute(k, v);
  }
  axis.setAttribute("stroke", "#3d4a57");
  nodes.push(axis);
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const step = (width - pad) / Math.max(buckets.length, 1);
  buckets.forEach((bucket, i) => {
    const h = (height - 2 * pad) * bucket.count / max;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", pad + i * step + step * 0.1);
    bar.setAttribute("y", height - pad - h);
    bar.setAttribute("width", Math.min(Math.max(step * 0.8, 1), 60));
    bar.setAttribute("height", h);
    bar.setAttribute("fill", "#1f5fa8");
    bar.classList.add("bar");
    const title = document.createElementNS(SVG, "title");
    title.textContent = bucket.start + ": " + bucket.count;
    bar.append(title);
    nodes.push(bar);
  });
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", pad);
  label.setAttribute("y", 14);
  label.setAttribute("font-size", "12");
  label.textContent = "max " + max + " per hour";
  nodes.push(label);
  svg.replaceChildren(...nodes);
}

async function refresh() {
  if (!campaignId) return;
  try {
    const response = await fetch("/api/campaigns/" + encodeURIComponent(campaignId),
                                 {cache: "no-store"});
    const card = await response.json().catch(() => ({}));
    document.getElementById("rebuilding").hidden = !card.rebuilding;
    if (!response.ok) throw new Error(card.error || "HTTP " + response.status);
    document.getElementById("name").textContent = card.name || card.campaign_id;
    drawKpis(card.kpis);
    drawObjectives(card.objectives);
    drawChart(card.mentions_per_hour);
    document.getElementById("updated").textContent = "computed at " + card.computed_at;
  } catch (error) {
    document.getElementById("updated").textContent = "could not refresh: " + error.message;
  }
}

if (!campaignId) {
  const first = document.querySelector("#campaigns a");
  if (first) campaignId = first.dataset.campaign;
}
for (const link of document.querySelectorAll("#campaigns a")) {
  if (link.dataset.campaign === campaignId) link.classList.add("selected");
}
refresh();
setInterval(refresh, refreshMs);
