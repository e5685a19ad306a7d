"use strict";
(function () {
  const data = JSON.parse(document.getElementById("aide-data").textContent);
  const J = data.journal;
  const nodes = J.nodes;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const root = nodes[0];
  const best = J.best_id == null ? null : byId.get(J.best_id);
  const labels = data.labels;
  const objectiveIds = J.objectives.map((o) => o.nodeid);
  const maximize = new Map(J.objectives.map((o) => [o.nodeid, !!o.maximize]));
  const SVGNS = "http://www.w3.org/2000/svg";

  // ---- helpers --------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  function sv(tag, attrs, ...children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else if (v != null && v !== false) e.setAttribute(k, v);
    }
  }
  function fmtValue(v) {
    if (v == null || !isFinite(v)) return "n/a";
    const a = Math.abs(v);
    if (v !== 0 && (a >= 1e6 || a < 1e-4)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }
  const units = data.units || {};
  const TIME_UNITS = [[1, "s"], [1e-3, "ms"], [1e-6, "\u00b5s"], [1e-9, "ns"]];
  // a metric's value with its unit where it is known (formatting.fmt_metric's rule)
  function fmtMetric(v, id) {
    if (v == null || !isFinite(v) || !units[id]) return fmtValue(v);
    if (units[id] === "ops") return Number(v.toPrecision(4)) + " ops/s";
    const [scale, unit] = TIME_UNITS.find(([s]) => Math.abs(v) >= s) || TIME_UNITS[3];
    return Number((v / scale).toPrecision(4)) + " " + unit;
  }
  function fmtChange(f) {
    return f == null ? "n/a" : (f >= 0 ? "+" : "") + (f * 100).toFixed(1) + "%";
  }
  function fmtSeconds(s) {
    if (s < 60) return s.toFixed(1) + "s";
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    return m < 60 ? m + "m" + String(r).padStart(2, "0") + "s"
      : Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
  }
  function fmtTokens(t) {
    return t < 1000 ? String(t) : t < 1e6 ? (t / 1000).toFixed(1) + "k" : (t / 1e6).toFixed(1) + "M";
  }
  function fmtCost(usd) { return "$" + usd.toFixed(usd >= 0.1 ? 2 : 4); }
  function change(before, after) {
    if (before == null || after == null || before === 0) return null;
    return (after - before) / Math.abs(before);
  }
  function changeClass(nodeid, f) {
    if (f == null || f === 0) return "";
    return (f > 0) === maximize.get(nodeid) ? "better" : "worse";
  }
  function tokens(n) { return (n.usage.input_tokens || 0) + (n.usage.output_tokens || 0); }
  function trunc(s, n) { return s.length <= n ? s : s.slice(0, n - 1) + "…"; }
  function reason(error) {
    const lines = (error || "").split("\n").map((l) => l.replace(/^[\s=_-]+|[\s=_-]+$/g, ""))
      .filter((l) => l);
    const named = lines.filter((l) => /Error|Exception|FAILED|Timeout|timed out/.test(l));
    const line = named.length ? named[named.length - 1] : (lines[0] || "");
    const failed = /^FAILED (\S+) - (.*)$/.exec(line);
    return failed ? failed[1].split("::").pop() + ": " + failed[2] : line;
  }
  function statusOf(n) { return n.operator === "baseline" && n.status === "good" ? "baseline" : n.status; }

  const bestPath = new Set();
  for (let id = best ? best.id : null; id != null; id = byId.get(id).parent) bestPath.add(id);

  // ---- header ---------------------------------------------------------------------------
  function renderHeader() {
    const s = J.settings || {};
    const counts = {};
    for (const n of nodes) if (n.operator !== "baseline") counts[n.status] = (counts[n.status] || 0) + 1;
    const sub = ["run " + J.run_id, "module " + J.module];
    if (s.model) sub.push("model " + s.model);
    if (s.steps != null) sub.push(s.steps + " steps");
    if (s.seed != null) sub.push("seed " + s.seed);
    sub.push(J.finished ? "finished" : "unfinished");
    const head = document.getElementById("head");
    head.append(
      el("h1", {}, el("span", { class: "brand", text: "pytest-aide" }), J.target),
      el("div", { class: "sub", text: sub.join(" · ") }));
    if (J.outcome) head.append(el("div", { class: "sub", text: J.outcome }));
    const tiles = el("div", { class: "tiles" });
    for (const id of objectiveIds) {
      const base = root.metrics[id];
      const tile = el("div", { class: "tile", title: id },
        el("div", { class: "k",
          text: labels[id] + (maximize.get(id) ? " ↑ higher is better" : " ↓ lower is better") }));
      if (best && best.id !== root.id) {
        const f = change(base, best.metrics[id]);
        tile.append(el("div", { class: "v" }, fmtMetric(base, id) + " → " + fmtMetric(best.metrics[id], id) + " ",
          el("span", { class: changeClass(id, f), text: fmtChange(f) })));
      } else {
        tile.append(el("div", { class: "v", text: fmtMetric(base, id) + " (no improvement)" }));
      }
      tiles.append(tile);
    }
    if (best && best.confirmed) tiles.append(confirmedTile(best.confirmed));
    const steps = nodes.filter((n) => n.operator !== "baseline").length;
    tiles.append(el("div", { class: "tile" }, el("div", { class: "k", text: "nodes" }),
      el("div", { class: "v", text: steps + " steps: " + (counts.good || 0) + " good · " +
        (counts.buggy || 0) + " buggy · " + (counts.tampered || 0) + " tampered" })));
    const tok = nodes.reduce((a, n) => a + tokens(n), 0);
    const costs = nodes.map((n) => n.usage.cost_usd).filter((c) => c != null);
    // the whole run's time with its parts (search, confirmation, final check)
    let spend = data.time || fmtSeconds(nodes.reduce((a, n) => a + n.duration + n.propose_seconds, 0));
    if (tok) spend += " · " + fmtTokens(tok) + " tok";
    if (costs.length) spend += " · " + fmtCost(costs.reduce((a, c) => a + c, 0));
    tiles.append(el("div", { class: "tile" }, el("div", { class: "k", text: "spent" }),
      el("div", { class: "v", text: spend })));
    head.append(tiles);
  }
  function confirmedTile(c) {
    const interval = c.low != null && c.high != null
      ? " [" + fmtChange(c.low) + ", " + fmtChange(c.high) + "]" : "";
    const verdict = (c.confirmed ? "confirmed" : "not confirmed") +
      " (interleaved, " + (c.metric || "metric") + ")";
    return el("div", { class: "tile" },
      el("div", { class: "k", text: verdict }),
      el("div", { class: "v " + (c.confirmed ? "better" : "worse"), text: fmtChange(c.change) + interval }));
  }

  // ---- tree -----------------------------------------------------------------------------
  // An outline: one row per node in depth-first order, indented by depth, so that long
  // improve chains and many drafts both stay readable without sideways scrolling.
  const H = 28, ROW = 36, INDENT = 22, PAD = 10, CHAR = 6.7, METRIC_X = 118;
  const treeEls = new Map(), treeY = new Map();
  function layout() {
    const kids = new Map(nodes.map((n) => [n.id, []]));
    const roots = [];
    for (const n of nodes) {
      if (n.parent != null && kids.has(n.parent)) kids.get(n.parent).push(n);
      else roots.push(n);
    }
    const pos = new Map();
    const stack = roots.slice().reverse().map((n) => [n, 0]);
    while (stack.length) {  // iterative: a debug or improve chain can be deep
      const [n, depth] = stack.pop();
      pos.set(n.id, { depth: depth, x: PAD + depth * INDENT, y: PAD + pos.size * ROW });
      for (const c of kids.get(n.id).slice().reverse()) stack.push([c, depth + 1]);
    }
    return pos;
  }
  function nodeMetricText(n) {
    if (n.status !== "good") return n.status + ": " + reason(n.error);
    const parts = objectiveIds.map((id) => {
      const f = n.id === root.id ? null : change(root.metrics[id], n.metrics[id]);
      if (objectiveIds.length > 1 && f != null) return labels[id] + " " + fmtChange(f);
      return labels[id] + " " + fmtMetric(n.metrics[id], id) + (f == null ? "" : "  " + fmtChange(f));
    });
    return parts.join(" · ");
  }
  function renderTree() {
    const pos = layout();
    let maxDepth = 0;
    pos.forEach((p) => { maxDepth = Math.max(maxDepth, p.depth); });
    const SCROLLBAR = 16;
    const room = document.getElementById("tree").clientWidth - 2 * PAD - maxDepth * INDENT - SCROLLBAR;
    const W = Math.max(320, room || 420);  // width of the deepest box
    const width = 2 * PAD + maxDepth * INDENT + W, height = 2 * PAD + nodes.length * ROW - (ROW - H);
    const svg = sv("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height });
    const edges = nodes.filter((n) => n.parent != null && pos.has(n.parent));
    const onBest = (n) => bestPath.has(n.id) && bestPath.has(n.parent);
    // edges off the best path first, so that the highlighted ones are drawn on top
    for (const n of [...edges.filter((e) => !onBest(e)), ...edges.filter(onBest)]) {
      const a = pos.get(n.parent), b = pos.get(n.id);
      svg.append(sv("path", { class: "edge" + (onBest(n) ? " on-best" : ""),
        d: `M${a.x + 11},${a.y + H} V${b.y + H / 2 - 6} q0,6 6,6 H${b.x}` }));
    }
    for (const n of nodes) {
      const p = pos.get(n.id);
      const w = width - PAD - p.x;  // boxes end on one line, whatever their depth
      const metricChars = Math.floor((w - METRIC_X - 26) / CHAR);
      const cls = ["node", statusOf(n)];
      if (bestPath.has(n.id)) cls.push("on-best");
      const g = sv("g", { class: cls.join(" "), "data-node-id": n.id,
        transform: `translate(${p.x},${p.y})`, on: { click: () => select(n.id) } },
        sv("title", { text: "#" + n.id + " " + n.operator + " (" + n.status + ")\n" + trunc(n.plan || "", 300) }),
        sv("rect", { class: "box", width: w, height: H, rx: 6 }),
        sv("rect", { class: "stripe", width: 5, height: H - 2, x: 1, y: 1, rx: 2 }),
        sv("text", { class: "t1", x: 12, y: 18, text: trunc("#" + n.id + " " + n.operator, 15) }),
        sv("text", { class: "t2", x: METRIC_X, y: 18, text: trunc(nodeMetricText(n), metricChars) }));
      if (best && n.id === best.id) g.append(sv("text", { class: "star", x: w - 20, y: 19, text: "★" }));
      treeEls.set(n.id, g);
      treeY.set(n.id, p.y);
      svg.append(g);
    }
    document.getElementById("tree").append(svg);
    const legend = document.getElementById("legend");
    const legendItems = [["baseline", "--base"], ["good", "--good"], ["buggy", "--buggy"],
      ["tampered", "--tampered"], ["best path", "--best"]];
    for (const [name, color] of legendItems) {
      const dot = el("span", { class: "dot", style: `background: var(${color})` });
      legend.append(el("span", {}, dot, name));
    }
  }

  // ---- chart ----------------------------------------------------------------------------
  const chartEls = new Map();
  function seriesValue(series, n) {
    return series === "score" ? n.objective : n.metrics[series];
  }
  function niceTicks(lo, hi, count) {
    const span = hi - lo || Math.abs(hi) || 1;
    const raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
    return ticks;
  }
  // 1, 2 and 5 times each power of ten within [lo, hi] (only the powers when that is many)
  function logTicks(lo, hi) {
    const ticks = [];
    for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
      for (const m of [1, 2, 5]) {
        const t = m * Math.pow(10, d);
        if (t >= lo && t <= hi) ticks.push(t);
      }
    }
    const powers = ticks.filter((t) => Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9);
    return ticks.length > 8 && powers.length >= 2 ? powers : ticks;
  }
  function fmtSeries(series, v) {
    return series === "score" ? fmtValue(v) : fmtMetric(v, series);
  }
  // where a value lies on the chart's y axis, and the axis's ticks: a log scale when the
  // values are positive and span a factor of 4 or more (a -99% change is not squashed)
  function yScale(values, top, height) {
    const lo = Math.min(...values), hi = Math.max(...values);
    if (lo > 0 && hi / lo >= 4) {
      const l0 = Math.log10(lo), l1 = Math.log10(hi), pad = (l1 - l0) * 0.08;
      const a = l0 - pad, b = l1 + pad;
      const ticks = logTicks(Math.pow(10, a), Math.pow(10, b));
      return { log: true, ticks: ticks.length >= 2 ? ticks : niceTicks(lo, hi, 4),
        y: (v) => top + (1 - (Math.log10(v) - a) / (b - a)) * height };
    }
    const padY = (hi - lo) * 0.08 || Math.abs(hi) * 0.05 || 1;
    const a = lo - padY, b = hi + padY;
    return { log: false, ticks: niceTicks(a, b, 4),
      y: (v) => top + (1 - (v - a) / (b - a)) * height };
  }
  function renderChart(series) {
    const box = document.getElementById("chart");
    box.textContent = "";
    chartEls.clear();
    const Wc = 760, Hc = 230, L = 64, R = 14, T = 12, B = 46;
    const good = nodes.filter((n) => n.status === "good" && seriesValue(series, n) != null);
    const failed = nodes.filter((n) => n.status !== "good");
    const values = good.map((n) => seriesValue(series, n));
    if (!values.length) {
      box.append(el("div", { class: "empty", text: "No good node has this metric." }));
      return;
    }
    const scale = yScale(values, T, Hc - T - B);
    const y = scale.y;
    const maxStep = Math.max(1, ...nodes.map((n) => n.step), (J.settings || {}).steps || 0);
    const x = (s) => L + (s / maxStep) * (Wc - L - R);
    const svg = sv("svg", { viewBox: `0 0 ${Wc} ${Hc}`, width: "100%", role: "img",
      "data-scale": scale.log ? "log" : "linear" });
    const axis = sv("g", { class: "axis" });
    for (const t of scale.ticks) {
      axis.append(sv("line", { x1: L, x2: Wc - R, y1: y(t), y2: y(t), "stroke-dasharray": "2 4" }),
        sv("text", { x: L - 6, y: y(t) + 3, "text-anchor": "end", text: fmtSeries(series, t) }));
    }
    if (scale.log) {
      axis.append(sv("text", { class: "chart-note", x: L + 4, y: Hc - B - 6, text: "log scale" }));
    }
    const xStep = Math.max(1, Math.ceil(maxStep / 10));
    for (let s = 0; s <= maxStep; s += xStep) {
      axis.append(sv("text", { x: x(s), y: Hc - B + 16, "text-anchor": "middle", text: String(s) }));
    }
    axis.append(sv("text", { x: (L + Wc - R) / 2, y: Hc - 4, "text-anchor": "middle", text: "step" }));
    axis.append(sv("line", { x1: L, x2: Wc - R, y1: Hc - B, y2: Hc - B }));
    svg.append(axis);
    const baseValue = root.status === "good" ? seriesValue(series, root) : null;
    if (baseValue != null) {
      const yb = y(baseValue);
      svg.append(sv("line", { class: "baseline-line", x1: L, x2: Wc - R, y1: yb, y2: yb }),
        sv("text", { class: "chart-note", x: Wc - R - 2, y: yb - 4, "text-anchor": "end",
          text: "baseline" }));
    }
    // best so far: the good node with the highest objective up to each step
    let running = null, d = "";
    for (const n of [...nodes].sort((a, b) => a.step - b.step || a.id - b.id)) {
      if (n.status === "good" && n.objective != null && (running == null || n.objective > running.objective)) {
        const v = seriesValue(series, n);
        if (v == null) continue;
        d += (d ? ` H${x(n.step)} V${y(v)}` : `M${x(n.step)},${y(v)}`);
        running = n;
      }
    }
    if (running) d += ` H${x(maxStep)}`;
    if (d) svg.append(sv("path", { class: "bestline", d: d }));
    for (const n of good) {
      const cls = "pt " + (best && n.id === best.id ? "best" : statusOf(n));
      const isBest = best && n.id === best.id;
      const c = sv("circle", { class: cls, cx: x(n.step), cy: y(seriesValue(series, n)),
        r: isBest ? 6.5 : 4.5, "data-point-id": n.id, on: { click: () => select(n.id) } },
        sv("title", { text: "#" + n.id + " " + n.operator + ": " + fmtSeries(series, seriesValue(series, n)) }));
      chartEls.set(n.id, c);
      svg.append(c);
    }
    const failY = Hc - B + 30;
    if (failed.length) {
      svg.append(sv("text", { class: "chart-note", x: L - 6, y: failY + 3, "text-anchor": "end",
        text: "failed" }));
    }
    for (const n of failed) {
      const c = sv("rect", { class: "pt " + n.status, x: x(n.step) - 4, y: failY - 4, width: 8, height: 8, rx: 1.5,
        "data-point-id": n.id, on: { click: () => select(n.id) } },
        sv("title", { text: "#" + n.id + " " + n.operator + ": " + n.status + " " + trunc(reason(n.error), 80) }));
      chartEls.set(n.id, c);
      svg.append(c);
    }
    box.append(svg);
    if (selected != null && chartEls.has(selected)) chartEls.get(selected).classList.add("selected");
  }
  function setupSeries() {
    const select = document.getElementById("series");
    const options = objectiveIds.map((id) => [id, labels[id]]);
    if (objectiveIds.length > 1) options.push(["score", "score (objective)"]);
    for (const [value, text] of options) select.append(el("option", { value: value, text: text }));
    select.hidden = options.length < 2;
    select.addEventListener("change", () => renderChart(select.value));
    renderChart(options[0][0]);
  }

  // ---- detail ---------------------------------------------------------------------------
  let selected = null;
  function codeBlock(text, kind) {
    const pre = el("pre", { class: "code" + (kind === "code" ? " numbered" : "") });
    if (!text) return el("div", { class: "empty", text: kind === "diff" ? "No change." : "Empty." });
    for (const line of text.replace(/\n$/, "").split("\n")) {
      let cls = "";
      if (kind === "diff") {
        if (line.startsWith("+++") || line.startsWith("---")) cls = "meta";
        else if (line.startsWith("@@")) cls = "hunk";
        else if (line.startsWith("+")) cls = "add";
        else if (line.startsWith("-")) cls = "del";
      }
      pre.append(el("span", { class: cls, text: line || " " }));
    }
    return pre;
  }
  function renderDetail(n) {
    const box = document.getElementById("detail");
    box.textContent = "";
    const title = el("h2", {}, "#" + n.id + " " + n.operator,
      n.parent != null ? el("span", { class: "sub", text: "← #" + n.parent }) : null,
      el("span", { class: "pill " + n.status, text: n.status }),
      best && n.id === best.id ? el("span", { class: "pill best", text: "★ best" }) : null);
    box.append(title);
    const facts = el("div", { class: "facts" });
    const fact = (k, v) => facts.append(el("span", {}, k + " ", el("b", { text: v })));
    fact("step", String(n.step));
    // with one marked test the objective is its metric (negated when lower is better):
    // the table says it; with several it is a score, 1 for the baseline
    if (n.objective != null && objectiveIds.length > 1) {
      fact("score", fmtValue(n.objective) + " (baseline 1, higher is better)");
    }
    fact("eval", fmtSeconds(n.duration));
    if (n.propose_seconds) fact("propose", fmtSeconds(n.propose_seconds));
    if (tokens(n)) {
      fact("tokens", fmtTokens(n.usage.input_tokens) + " in / " +
        fmtTokens(n.usage.output_tokens) + " out");
    }
    if (n.usage.cost_usd != null) fact("cost", fmtCost(n.usage.cost_usd));
    if (n.debug_depth) fact("debug depth", String(n.debug_depth));
    if (n.started) fact("started", new Date(n.started * 1000).toLocaleString());
    box.append(facts);

    const table = el("table", { class: "kv" },
      el("tr", {}, el("th", { text: "metric" }), el("th", { text: "value" }),
        el("th", { text: "vs baseline" }), el("th", { text: "vs parent" })));
    const parent = n.parent == null ? null : byId.get(n.parent);
    for (const id of objectiveIds) {
      const v = n.metrics[id];
      const fb = n.id === root.id ? null : change(root.metrics[id], v);
      const fp = parent ? change(parent.metrics[id], v) : null;
      table.append(el("tr", { title: id }, el("td", { text: labels[id] }), el("td", { text: fmtMetric(v, id) }),
        el("td", { class: changeClass(id, fb), text: fb == null ? "" : fmtChange(fb) }),
        el("td", { class: changeClass(id, fp), text: fp == null ? "" : fmtChange(fp) })));
    }
    box.append(table);
    if (n.confirmed) box.append(el("div", { class: "tiles" }, confirmedTile(n.confirmed)));

    const outcomes = Object.entries(n.outcomes || {});
    if (outcomes.length) {
      box.append(el("h3", { text: "tests" }));
      const counts = {};
      for (const [, o] of outcomes) counts[o] = (counts[o] || 0) + 1;
      const line = el("div", { class: "facts" });
      for (const [o, c] of Object.entries(counts)) {
        line.append(el("span", { class: "pill " + pillClass(o), text: c + " " + o }));
      }
      box.append(line);
      const notPassed = outcomes.filter(([, o]) => o !== "passed");
      if (notPassed.length) {
        const t = el("table", { class: "kv" });
        for (const [id, o] of notPassed) {
          const pill = el("span", { class: "pill " + pillClass(o), text: o });
          t.append(el("tr", {}, el("td", { text: id }), el("td", {}, pill)));
        }
        box.append(t);
      }
    }
    box.append(el("h3", { text: "plan" }), el("div", { class: "plan", text: n.plan || "(no plan)" }));

    const tabs = [];
    if (n.parent != null) tabs.push(["diff to #" + n.parent, () => codeBlock(data.diffs[String(n.id)], "diff")]);
    tabs.push(["code", () => codeBlock(n.code, "code")]);
    if (n.error) tabs.push(["error", () => codeBlock(n.error, "text")]);
    const bar = el("div", { class: "tabs" });
    const pane = el("div", {});
    tabs.forEach(([name, make], i) => {
      const b = el("button", { type: "button", text: name, on: { click: () => show(i) } });
      bar.append(b);
    });
    function show(i) {
      [...bar.children].forEach((b, j) => b.classList.toggle("on", i === j));
      pane.textContent = "";
      pane.append(tabs[i][1]());
    }
    box.append(bar, pane);
    show(n.status !== "good" && n.error ? tabs.length - 1 : 0);
    box.append(el("div", { class: "hint",
      text: "Click a node or a point; ← → step through nodes, ↑ goes to the parent." }));
  }
  function pillClass(o) {
    return ["passed", "failed", "error", "skipped"].includes(o) ? o : "other";
  }
  function select(id) {
    if (!byId.has(id)) return;
    if (selected != null) {
      treeEls.get(selected)?.classList.remove("selected");
      chartEls.get(selected)?.classList.remove("selected");
    }
    selected = id;
    treeEls.get(id)?.classList.add("selected");
    chartEls.get(id)?.classList.add("selected");
    renderDetail(byId.get(id));
    const tree = document.getElementById("tree"), top = treeY.get(id);
    if (top < tree.scrollTop || top + H > tree.scrollTop + tree.clientHeight) {
      tree.scrollTop = top - 2 * ROW;
    }
    try { history.replaceState(null, "", "#node-" + id); } catch (e) { /* file: URLs may refuse */ }
  }
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLSelectElement || selected == null) return;
    if (e.key === "ArrowRight") select(selected + 1);
    else if (e.key === "ArrowLeft") select(selected - 1);
    else if (e.key === "ArrowUp" && byId.get(selected).parent != null) select(byId.get(selected).parent);
    else return;
    e.preventDefault();
  });

  renderHeader();
  renderTree();
  setupSeries();
  const fromHash = /^#node-(\d+)$/.exec(location.hash);
  select(fromHash && byId.has(Number(fromHash[1])) ? Number(fromHash[1]) : (best ? best.id : root.id));
  document.body.setAttribute("data-rendered-nodes", String(treeEls.size));
})();
