// shardflow dashboard: polls /api/progress (documented in
// docs/observability.md) and draws its charts as inline SVG.
"use strict";

const WINDOW_MS = 15 * 60 * 1000;
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c"];
const PHASES = ["latestOffset", "walCommit", "getBatch", "addBatch"];
const SVGNS = "http://www.w3.org/2000/svg";

let runId = null;
let history = []; // progress records, oldest first

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ts(p) { return Date.parse(p.timestamp); }

// lineChart draws series [{name, color, points: [[t, v], ...]}] into svg.
function lineChart(svg, legend, series, yLabel) {
  svg.replaceChildren();
  legend.replaceChildren();
  const W = 600, H = 220, L = 52, R = 10, T = 10, B = 24;
  const now = Date.now();
  let t0 = now - WINDOW_MS, t1 = now;
  let all = series.flatMap(s => s.points);
  if (all.length > 0) t0 = Math.max(t0, Math.min(...all.map(p => p[0])) - 1000);
  let ymax = Math.max(1, ...all.map(p => p[1]));
  const x = t => L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => H - B - (H - T - B) * v / ymax;
  svg.append(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#c7ccd4" }));
  svg.append(el("svg:line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#c7ccd4" }));
  for (const f of [0, 0.5, 1]) {
    const v = ymax * f;
    svg.append(el("svg:text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
    if (f > 0) svg.append(el("svg:line", { x1: L, y1: y(v), x2: W - R, y2: y(v), stroke: "#eef0f3" }));
  }
  svg.append(el("svg:text", { x: L, y: H - 6 }, new Date(t0).toLocaleTimeString()));
  svg.append(el("svg:text", { x: W - R, y: H - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  let n = 0;
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join(" ");
    svg.append(el("svg:path", { d, fill: "none", stroke: s.color, "stroke-width": 1.5, class: "series", "data-name": s.name }));
    for (const p of s.points) {
      const c = el("svg:circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2, fill: s.color, class: "pt" });
      c.append(el("svg:title", {}, s.name + ": " + fmt(p[1]) + " " + yLabel));
      svg.append(c);
      n++;
    }
    const item = el("span");
    item.append(el("i", { style: "background:" + s.color }), document.createTextNode(s.name));
    legend.append(item);
  }
  svg.setAttribute("data-points", String(n));
}

function fmt(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (v >= 100 || v === 0) return v.toFixed(0);
  return v.toFixed(1);
}

function shardsOf(p) { return (p.sources && p.sources[0] && p.sources[0].shards) || {}; }

function drawCharts() {
  const rate = [
    { name: "input rows/s", color: COLORS[0], points: history.map(p => [ts(p), p.inputRowsPerSecond]) },
    { name: "processed rows/s", color: COLORS[1], points: history.map(p => [ts(p), p.processedRowsPerSecond]) },
  ];
  lineChart(document.getElementById("chart-rate"), document.getElementById("legend-rate"), rate, "rows/s");
  const phases = PHASES.map((ph, i) => ({ name: ph, color: COLORS[i + 2], points: history.map(p => [ts(p), (p.durationMs || {})[ph] || 0]) }));
  phases.push({ name: "total (triggerExecution)", color: "#1d2330", points: history.map(p => [ts(p), (p.durationMs || {}).triggerExecution || 0]) });
  lineChart(document.getElementById("chart-phase"), document.getElementById("legend-phase"), phases, "ms");
  const ids = new Set();
  for (const p of history) for (const [id, s] of Object.entries(shardsOf(p))) if (s.millisBehindLatest >= 0) ids.add(id);
  const lag = [...ids].sort().map((id, i) => ({
    name: id, color: COLORS[i % COLORS.length],
    points: history.filter(p => (shardsOf(p)[id] || {}).millisBehindLatest >= 0).map(p => [ts(p), shardsOf(p)[id].millisBehindLatest]),
  }));
  lineChart(document.getElementById("chart-lag"), document.getElementById("legend-lag"), lag, "ms");
}

function pos(m) {
  return Object.keys(m || {}).sort().map(id => {
    const v = m[id];
    const s = v.sequenceNumber !== undefined ? v.sequenceNumber + "/" + v.subSequenceNumber : (v.type || "") + (v.timestamp ? " " + v.timestamp : "");
    return id + ": " + s;
  }).join("\n");
}

function drawBatches() {
  const body = document.querySelector("#batches tbody");
  const rows = history.slice(-50).reverse().map(p => {
    const tr = el("tr", { "data-batch": p.batchId });
    const src = (p.sources && p.sources[0]) || {};
    for (const [cls, v] of [["", p.batchId], ["", new Date(ts(p)).toLocaleTimeString()], ["", p.numInputRows],
      ["", (p.durationMs || {}).triggerExecution], ["pos", pos(src.startOffset)], ["pos", pos(src.endOffset)]]) {
      const td = el("td", cls ? { class: cls } : {}, v === undefined ? "" : String(v));
      td.style.whiteSpace = cls ? "pre-wrap" : "";
      tr.append(td);
    }
    return tr;
  });
  body.replaceChildren(...rows);
}

function drawLineage(shards) {
  const box = document.getElementById("lineage");
  box.replaceChildren(...shards.map(s => {
    const d = el("div", { class: "shard " + s.state, "data-shard": s.id });
    d.append(el("b", {}, s.id), document.createTextNode(" " + s.state));
    if (s.parents.length) d.append(document.createTextNode(" ← " + s.parents.join(", ")));
    d.append(el("div", {}, s.numInputRows + " rows" + (s.millisBehindLatest >= 0 ? " · " + s.millisBehindLatest + " ms behind" : "")));
    return d;
  }));
  if (shards.length === 0) box.textContent = "no shard yet";
}

function drawQuery(q, err, worker) {
  document.getElementById("q-name").textContent = q.name || "";
  const st = document.getElementById("q-status");
  st.textContent = q.status;
  st.className = "status " + q.status;
  const dl = document.getElementById("query");
  const up = q.uptimeSeconds ? Math.round(q.uptimeSeconds) + " s" : "";
  const items = [["name", q.name], ["id", q.id], ["run id", q.runId], ["source", q.source], ["sink", q.sink],
    ["trigger", q.trigger], ["checkpoint", q.checkpoint], ["status", q.status], ["uptime", up]];
  if (worker) { // worker mode: this worker's id and lease counters
    items.push(["worker", worker.id],
      ["leases", worker.leasesHeld + " held · " + worker.leasesTaken + " taken · " + worker.leasesLost + " lost"]);
  }
  dl.replaceChildren(...items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "")]));
  const opts = document.getElementById("options");
  opts.replaceChildren(...Object.keys(q.options || {}).sort().map(scope => {
    const t = el("table");
    t.append(el("caption", {}, scope));
    const o = q.options[scope];
    for (const k of Object.keys(o).sort()) {
      const tr = el("tr");
      tr.append(el("td", {}, k), el("td", { class: "pos" }, o[k]));
      t.append(tr);
    }
    return t;
  }));
  const box = document.getElementById("error");
  box.hidden = !err;
  document.getElementById("error-text").textContent = err ? err.timestamp + "\n" + err.message : "";
}

async function poll() {
  try {
    const since = history.length ? history[history.length - 1].batchId : -1;
    const r = await fetch("api/progress?since=" + since, { cache: "no-store" });
    if (r.ok) {
      const data = await r.json();
      if (data.query.runId !== runId) { runId = data.query.runId; history = []; }
      for (const p of data.recentProgress) if (!history.length || p.batchId > history[history.length - 1].batchId) history.push(p);
      const cut = Date.now() - WINDOW_MS;
      history = history.filter(p => ts(p) >= cut);
      drawQuery(data.query, data.lastError, data.worker);
      drawLineage(data.shards);
      drawBatches();
      drawCharts();
    }
  } catch (e) {
    document.getElementById("q-status").textContent = "unreachable";
  }
  setTimeout(poll, 1000);
}

poll();
