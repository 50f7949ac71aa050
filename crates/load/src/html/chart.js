"use strict";
// Draws the embedded reports as inline SVG; reads nothing but #coreloop-data.
const DATA = JSON.parse(document.getElementById("coreloop-data").textContent);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const SVG = "http://www.w3.org/2000/svg";
const color = (i) => COLORS[i % COLORS.length];

function el(tag, attrs, parent, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// One unit for a whole axis, picked from its largest value (microseconds in).
function timeUnit(maxUs) {
  if (maxUs < 10000) return { div: 1, name: "us" };
  if (maxUs < 10000000) return { div: 1000, name: "ms" };
  return { div: 1000000, name: "s" };
}

function niceStep(span, count) {
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const r = raw / mag;
  return (r >= 5 ? 10 : r >= 2 ? 5 : r >= 1 ? 2 : 1) * mag;
}

// lines: [{color, points: [[x, y]]}]; x: {min, max, ticks: [[value, label]], name}.
function plot(target, lines, x, yName, yDiv, width, height) {
  const m = { l: 64, r: 34, t: 10, b: 38 };
  const svg = el("svg", { width: width, height: height, viewBox: `0 0 ${width} ${height}` });
  const w = width - m.l - m.r, h = height - m.t - m.b;
  let ymax = 0;
  for (const l of lines) for (const p of l.points) ymax = Math.max(ymax, p[1] / yDiv);
  ymax = ymax > 0 ? ymax * 1.05 : 1;
  const step = niceStep(ymax, 5);
  const sx = (v) => m.l + ((v - x.min) / (x.max - x.min || 1)) * w;
  const sy = (v) => m.t + h - (v / ymax) * h;
  for (let v = 0; v <= ymax + 1e-9; v += step) {
    el("line", { x1: m.l, x2: m.l + w, y1: sy(v), y2: sy(v), stroke: "#eee" }, svg);
    el("text", { x: m.l - 6, y: sy(v) + 4, "text-anchor": "end" }, svg, +v.toPrecision(6));
  }
  for (const [v, label] of x.ticks) {
    el("line", { x1: sx(v), x2: sx(v), y1: m.t, y2: m.t + h, stroke: "#eee" }, svg);
    el("text", { x: sx(v), y: m.t + h + 14, "text-anchor": "middle" }, svg, label);
  }
  el("rect", { x: m.l, y: m.t, width: w, height: h, fill: "none", stroke: "#999" }, svg);
  el("text", { x: m.l + w / 2, y: height - 4, "text-anchor": "middle" }, svg, x.name);
  el("text", { x: 12, y: m.t + h / 2, transform: `rotate(-90 12 ${m.t + h / 2})`, "text-anchor": "middle" }, svg, yName);
  for (const l of lines) {
    const pts = l.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1] / yDiv).toFixed(1)}`).join(" ");
    el("polyline", { points: pts, fill: "none", stroke: l.color, "stroke-width": 2 }, svg);
  }
  target.appendChild(svg);
}

// x = log10(1 / (1 - p)): 90% at 1, 99% at 2, 99.9% at 3 ... as HdrHistogram plots.
const NINES = 6;
function percentileX(pct) {
  const rest = 1 - pct / 100;
  return rest <= 0 ? Infinity : Math.log10(1 / rest);
}

function drawPercentiles() {
  let maxX = 1, maxUs = 0;
  const lines = DATA.map((d, i) => {
    const pts = [];
    for (const [pct, us] of d.distribution) {
      const x = percentileX(pct);
      if (Number.isFinite(x)) maxX = Math.max(maxX, x);
      pts.push([x, us]);
      maxUs = Math.max(maxUs, us);
    }
    return { color: color(i), points: pts };
  });
  maxX = Math.min(NINES, Math.ceil(maxX + 0.01));
  for (const l of lines) l.points = l.points.map(([x, y]) => [Math.min(x, maxX), y]);
  const ticks = [];
  for (let k = 0; k <= maxX; k++) {
    ticks.push([k, k === 0 ? "0%" : (100 - Math.pow(10, 2 - k)).toFixed(Math.max(0, k - 2)) + "%"]);
  }
  const u = timeUnit(maxUs);
  plot(document.getElementById("percentiles"), lines,
    { min: 0, max: maxX, ticks: ticks, name: "percentile (log scale of 1/(1-p); the right edge is the max)" },
    `latency (${u.name})`, u.div, 1120, 290);
}

// The last second is cut short by the end of the drain: its count is scaled
// to its length, or left out when it is too short to mean anything.
function seconds(r) {
  return r.series.filter((s) => r.elapsed_s - s.t_s >= 0.25);
}

function perSecond(id, pick, yName, yDiv) {
  let last = 1;
  const lines = DATA.map((d, i) => {
    const pts = seconds(d.report).map((s) => [s.t_s, pick(s, Math.min(1, d.report.elapsed_s - s.t_s))]);
    last = Math.max(last, pts.length);
    return { color: color(i), points: pts };
  });
  const ticks = [];
  const step = Math.max(1, niceStep(last, 8));
  for (let t = 0; t <= last; t += step) ticks.push([t, t + "s"]);
  plot(document.getElementById(id), lines,
    { min: 0, max: Math.max(1, last - 1), ticks: ticks, name: "seconds since the measured phase began" },
    yName, yDiv, 548, 220);
}

function cell(row, text, tag) {
  const c = document.createElement(tag || "td");
  c.textContent = text;
  row.appendChild(c);
  return c;
}

function table(parent, head, rows) {
  const t = document.createElement("table");
  const hr = t.insertRow();
  for (const h of head) cell(hr, h, "th");
  for (const r of rows) {
    const tr = t.insertRow();
    r.forEach((v, k) => {
      const c = cell(tr, "");
      if (k === 0 && typeof v === "object") {
        const s = document.createElement("span");
        s.className = "swatch";
        s.style.background = v.color;
        c.appendChild(s);
        c.appendChild(document.createTextNode(v.text));
      } else {
        c.textContent = v;
      }
    });
  }
  parent.appendChild(t);
}

function drawSummary() {
  const p = document.getElementById("summary");
  const maxUs = Math.max(1, ...DATA.map((d) => d.report.latency.max_us));
  const u = timeUnit(maxUs);
  const f = (us) => +(us / u.div).toPrecision(4);
  table(p, ["run", "mode", "connections", "completed", "requests/s", `p50 (${u.name})`, `p99 (${u.name})`, `p99.9 (${u.name})`, `max (${u.name})`],
    DATA.map((d, i) => {
      const r = d.report;
      return [{ color: color(i), text: d.label }, r.mode + (r.rate ? ` at ${r.rate.requested_per_s}/s` : ""),
        r.connections.requested, r.requests.completed, r.requests_per_s,
        f(r.latency.p50_us), f(r.latency.p99_us), f(r.latency.p99_9_us), f(r.latency.max_us)];
    }));
  for (const d of DATA) {
    for (const n of d.report.notes) {
      const div = document.createElement("div");
      div.className = "note";
      div.textContent = (DATA.length > 1 ? d.label + ": " : "") + n;
      p.appendChild(div);
    }
  }
}

function drawBreakdown() {
  const codes = new Set();
  for (const d of DATA) for (const c in d.report.status) codes.add(c);
  const sorted = [...codes].sort();
  const kinds = ["connect", "read", "write", "timeout", "malformed"];
  table(document.getElementById("breakdown"),
    ["run", ...sorted.map((c) => `[${c}]`), ...kinds, "unfinished"],
    DATA.map((d, i) => [{ color: color(i), text: d.label },
      ...sorted.map((c) => d.report.status[c] || 0),
      ...kinds.map((k) => d.report.errors[k]), d.report.requests.unfinished]));
}

drawSummary();
drawPercentiles();
perSecond("rps", (s, length) => s.completed / length, "requests/s", 1);
const p99Max = Math.max(1, ...DATA.flatMap((d) => d.report.series.map((s) => s.p99_us)));
const p99Unit = timeUnit(p99Max);
perSecond("p99", (s) => s.p99_us, `p99 (${p99Unit.name})`, p99Unit.div);
drawBreakdown();
