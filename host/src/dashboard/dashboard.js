// The Wicket dashboard: polls /admin/stats (and /admin/usage) and draws SVG charts.
// Every name shown comes from the gateway's data (routes, plugins, metric labels, principals)
// and is put in the DOM as text only (textContent, SVG attributes), never as markup.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff9bce", "#a5d6ff"];
const MAX_ROUTE_CARDS = 12;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit === "%") return (v * 100).toFixed(1) + " %";
  const a = Math.abs(v);
  const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a === 0 ? "0" : v.toPrecision(2);
  return unit ? s + " " + unit : s;
}

function count(v) {
  return v === null || v === undefined ? "–" : String(Math.round(v));
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function niceMax(m) {
  if (!(m > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= m) return f * p;
  return 10 * p;
}

// How far back the time axis goes: the history held (at least 30 s), at most the window.
let span = 900;

function ago(seconds) {
  if (seconds === 0) return "now";
  return seconds >= 60 ? `−${+(seconds / 60).toFixed(1)} min` : `−${Math.round(seconds)} s`;
}

// A line chart of `series` ([{name, values}]) over `times` (Unix seconds, bucket ends), on
// an axis of `span` seconds ending at the last point.
function chart(title, unit, times, series) {
  const W = 480, H = 150, L = 46, R = 8, T = 8, B = 20;
  const windowSeconds = span;
  const card = el("div", "chart");
  card.appendChild(el("h3", null, title));
  const end = times.length ? times[times.length - 1] : 0;
  const start = end - windowSeconds;
  let max = 0, points = 0;
  for (const s of series) for (const v of s.values) if (v !== null) { max = Math.max(max, v); points++; }
  const top = unit === "%" ? 1 : niceMax(max);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img" });
  svg.setAttribute("aria-label", title);
  svg.dataset.title = title;
  svg.dataset.max = String(max);
  svg.dataset.points = String(points);
  const x = t => L + (W - L - R) * Math.max(0, (t - start)) / windowSeconds;
  const y = v => T + (H - T - B) * (1 - v / top);
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: "grid" }));
    const label = svgEl("text", { x: L - 4, y: y(top * f) + 3, "text-anchor": "end", class: "axis" });
    label.textContent = fmt(top * f, unit === "%" ? "%" : "");
    svg.appendChild(label);
  }
  for (const f of [1, 2 / 3, 1 / 3, 0]) {
    const label = svgEl("text", { x: x(end - f * windowSeconds), y: H - 5, "text-anchor": f === 1 ? "start" : f === 0 ? "end" : "middle", class: "axis" });
    label.textContent = ago(f * windowSeconds);
    svg.appendChild(label);
  }
  const legend = el("div", "legend");
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    let d = "", pen = false;
    s.values.forEach((v, j) => {
      if (v === null || times[j] < start) { pen = false; return; }
      d += (pen ? "L" : "M") + x(times[j]).toFixed(1) + " " + y(Math.min(v, top)).toFixed(1);
      pen = true;
    });
    if (d) {
      const path = svgEl("path", { d, class: "series", stroke: color });
      path.dataset.series = s.name;
      svg.appendChild(path);
    }
    // A point with no neighbour draws no line: mark it, and the latest point, with a dot.
    s.values.forEach((v, j) => {
      if (v === null || times[j] < start) return;
      const alone = (j === 0 || s.values[j - 1] === null) && (j === s.values.length - 1 || s.values[j + 1] === null);
      if (alone || j === s.values.length - 1) {
        svg.appendChild(svgEl("circle", { cx: x(times[j]).toFixed(1), cy: y(Math.min(v, top)).toFixed(1), r: 2.5, fill: color }));
      }
    });
    const item = el("span");
    const sw = el("span", "swatch");
    sw.style.background = color;
    item.appendChild(sw);
    item.appendChild(document.createTextNode(s.name));
    item.appendChild(el("span", "val", fmt(lastValue(s.values), unit)));
    legend.appendChild(item);
  });
  card.appendChild(svg);
  card.appendChild(legend);
  return card;
}

function spark(values) {
  const W = 160, H = 24;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "spark" });
  let max = 0;
  for (const v of values) if (v !== null) max = Math.max(max, v);
  svg.dataset.max = String(max);
  const top = niceMax(max);
  let d = "", pen = false;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    d += (pen ? "L" : "M") + ((W - 2) * i / Math.max(1, values.length - 1)).toFixed(1) + " " + (H - 2 - (H - 4) * v / top).toFixed(1);
    pen = true;
  });
  if (d) svg.appendChild(svgEl("path", { d }));
  const last = values.length - 1;
  if (last >= 0 && values[last] !== null) {
    svg.appendChild(svgEl("circle", { cx: W - 2, cy: (H - 2 - (H - 4) * values[last] / top).toFixed(1), r: 2 }));
  }
  return svg;
}

function sumSeries(routes, key) {
  const n = routes.length ? routes[0][key].length : 0;
  const out = new Array(n).fill(0);
  for (const r of routes) r[key].forEach((v, i) => { out[i] += v || 0; });
  return out;
}

function routeLabel(r) {
  return r.stage ? `${r.route} (${r.stage})` : r.route;
}

function card(label, value, id) {
  const c = el("div", "card");
  c.dataset.card = id;
  c.appendChild(el("div", "label", label));
  c.appendChild(el("div", "value", value));
  return c;
}

function row(cells, cls) {
  const tr = el("tr", cls);
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c.cls, c.text));
  }
  return tr;
}

function render(stats) {
  const times = stats.times, win = stats.window_seconds;
  const held = times.length ? times[times.length - 1] - times[0] + stats.bucket_seconds : 0;
  span = Math.min(win, held > 240 ? Math.ceil(held / 60) * 60 : Math.max(30, Math.ceil(held / 30) * 30));
  const routes = stats.routes.slice().sort((a, b) => b.total.requests - a.total.requests);
  const total = { requests: 0, e4: 0, e5: 0, thr: 0, hits: 0, misses: 0 };
  for (const r of routes) {
    total.requests += r.total.requests; total.e4 += r.total.errors_4xx; total.e5 += r.total.errors_5xx;
    total.thr += r.total.throttled; total.hits += r.total.cache_hits; total.misses += r.total.cache_misses;
  }
  const lastRate = key => lastValue(sumSeries(routes, key));
  const worstP99 = Math.max(0, ...routes.map(r => r.total.p99_ms || 0));
  document.getElementById("cards").replaceChildren(
    card("requests / s now", fmt(lastRate("requests_per_s")), "rate"),
    card("requests, 15 min", count(total.requests), "requests"),
    card("4xx, 15 min", count(total.e4), "4xx"),
    card("5xx, 15 min", count(total.e5), "5xx"),
    card("throttled, 15 min", count(total.thr), "throttled"),
    card("worst route p99", fmt(worstP99, "ms"), "p99"),
    card("cache hit ratio", fmt(total.hits + total.misses ? total.hits / (total.hits + total.misses) : null, "%"), "cache"),
  );

  const top = routes.slice(0, COLORS.length);
  const cached = routes.filter(r => r.total.cache_hits + r.total.cache_misses > 0);
  document.getElementById("overview").replaceChildren(
    chart("Requests / s by route", "", times, top.map(r => ({ name: routeLabel(r), values: r.requests_per_s }))),
    chart("Errors and throttled / s (all routes)", "", times, [
      { name: "4xx", values: sumSeries(routes, "errors_4xx_per_s") },
      { name: "5xx", values: sumSeries(routes, "errors_5xx_per_s") },
      { name: "throttled (429)", values: sumSeries(routes, "throttled_per_s") },
    ]),
    chart("p99 latency by route", "ms", times, top.map(r => ({ name: routeLabel(r), values: r.p99_ms }))),
    chart("Cache hit ratio by route", "%", times, cached.map(r => ({ name: routeLabel(r), values: r.cache_hit_ratio }))),
  );

  const body = document.querySelector("#routes tbody");
  body.replaceChildren(...routes.map(r => {
    const t = r.total;
    const tr = row([
      { text: r.route, cls: "name" }, { text: r.stage || "" }, { text: fmt(t.requests_per_s) },
      { text: count(t.requests) }, { text: count(t.errors_4xx) }, { text: count(t.errors_5xx) },
      { text: count(t.throttled) }, { text: fmt(t.p50_ms) }, { text: fmt(t.p90_ms) }, { text: fmt(t.p99_ms) },
      { text: fmt(t.integration_p50_ms) }, { text: fmt(t.integration_p99_ms) }, { text: fmt(t.cache_hit_ratio, "%") },
    ]);
    tr.dataset.route = r.route;
    if (r.stage) tr.dataset.stage = r.stage;
    return tr;
  }));

  document.getElementById("route-charts").replaceChildren(...routes.slice(0, MAX_ROUTE_CARDS).flatMap(r => [
    chart(routeLabel(r) + " · requests / s", "", times, [
      { name: "all", values: r.requests_per_s }, { name: "4xx", values: r.errors_4xx_per_s },
      { name: "5xx", values: r.errors_5xx_per_s }, { name: "throttled", values: r.throttled_per_s },
    ]),
    chart(routeLabel(r) + " · latency", "ms", times, [
      { name: "p50", values: r.p50_ms }, { name: "p90", values: r.p90_ms }, { name: "p99", values: r.p99_ms },
      { name: "integration p50", values: r.integration_p50_ms }, { name: "integration p99", values: r.integration_p99_ms },
    ]),
  ]));

  const plugins = document.querySelector("#plugins tbody");
  const rows = [];
  for (const p of stats.plugins) {
    const tr = row([{ text: p.plugin, cls: "name" }, { text: fmt(p.total.calls_per_s) },
      { text: fmt(p.total.ms_per_call) }, { text: "" }, spark(p.ms_per_call)]);
    tr.dataset.plugin = p.plugin;
    rows.push(tr);
    for (const m of p.metrics) {
      const value = m.kind === "counter" ? fmt(m.total.per_s, "/s")
        : m.kind === "gauge" ? fmt(m.total.value) : fmt(m.total.mean) + " mean";
      const own = row([{ text: m.name, cls: "name" }, { text: "" }, { text: "" }, { text: value }, spark(m.values)], "own");
      own.dataset.plugin = p.plugin;
      own.dataset.metric = m.name;
      rows.push(own);
    }
  }
  plugins.replaceChildren(...rows);
}

function renderUsage(usage) {
  const body = document.querySelector("#usage tbody");
  const keys = Object.keys(usage.items).sort();
  body.replaceChildren(...keys.map(k => {
    const used = usage.items[k].reduce((s, d) => s + d[0], 0);
    const tr = row([{ text: k, cls: "name" }, { text: (usage.usagePlans[k] || []).join(", ") }, { text: count(used) }]);
    tr.dataset.principal = k;
    return tr;
  }));
  document.getElementById("usage-note").textContent = keys.length ? "" :
    "No requests with a principal today (an auth filter such as api-key sets it).";
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store", credentials: "omit" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function poll() {
  const status = document.getElementById("status");
  try {
    render(await getJson("/admin/stats"));
    const today = new Date().toISOString().slice(0, 10);
    try {
      renderUsage(await getJson(`/admin/usage?from=${today}&to=${today}`));
    } catch (e) {
      document.getElementById("usage-note").textContent = String(e.message || e);
    }
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status";
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    status.textContent = String(e.message || e);
    status.className = "status error";
  }
  setTimeout(poll, POLL_MS);
}

poll();
