// The dashboard's live updates (protocol §7.1, §7.2): blocks and status changes arrive on the
// node's event stream; while the stream is silent for STALE_AFTER_MS or down, the page says
// "stale" and polls instead. Everything from the network is written with textContent, never
// parsed as HTML. The chart follows the rules of api/src/explorer/chart.rs.
(() => {
  "use strict";
  const STALE_AFTER_MS = 20000;
  const POLL_EVERY_MS = 2000;
  const STATUS_EVERY_MS = 2000;
  const RECONNECT_AFTER_MS = 5000;
  const RATE_WINDOW_BLOCKS = 10;
  const SERIES_MAX = 120;

  const byId = (id) => document.getElementById(id);
  const liveEl = byId("live");
  const table = byId("recent-blocks");
  const tbody = table.tBodies[0];
  const rowsMax = Number(table.dataset.rows) || 20;
  const chart = byId("chart");
  const names = new Map();
  const validatorRows = new Map();
  for (const tr of document.querySelectorAll("#validators tbody tr")) {
    names.set(tr.dataset.key, tr.dataset.name);
    validatorRows.set(tr.dataset.key, tr);
  }

  let series = (chart.dataset.series || "")
    .split(",")
    .filter(Boolean)
    .map((item) => {
      const [height, ts, txs] = item.split(":").map(Number);
      return { height, ts, txs };
    });
  let top = series.length ? series[series.length - 1].height : -1;

  const shortHex = (hex) => (typeof hex === "string" && hex.length > 12 ? hex.slice(0, 12) + "\u2026" : String(hex));
  const utc = (ms) => new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
  const nameOf = (key) => names.get(key) || shortHex(key);
  const figure = (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0));
  const shownNumber = (id) => Number(byId(id).textContent) || 0;
  const parse = (text) => {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  };
  function setText(id, text) {
    const el = byId(id);
    if (el && el.textContent !== String(text)) el.textContent = String(text);
  }
  function blockLink(height) {
    const a = document.createElement("a");
    a.href = "/blocks/" + height;
    a.textContent = String(height);
    return a;
  }

  function addBlock(b) {
    if (!b || typeof b.height !== "number" || b.height <= top) return;
    top = b.height;
    const tr = document.createElement("tr");
    tr.dataset.height = String(b.height);
    const cell = (content, cls) => {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.append(content);
      tr.append(td);
    };
    cell(blockLink(b.height), "num");
    const code = document.createElement("code");
    code.textContent = shortHex(b.hash);
    code.title = b.hash;
    cell(code);
    cell(utc(b.timestamp_ms));
    cell(String(b.tx_count), "num");
    cell(b.height === 0 ? "\u2014" : nameOf(b.proposer));
    for (const empty of tbody.querySelectorAll("tr.empty")) empty.remove();
    tbody.prepend(tr);
    while (tbody.rows.length > rowsMax) tbody.deleteRow(-1);
    if (b.height > shownNumber("height")) setText("height", b.height);

    const c = b.certificate;
    const signers = !c ? [] : c.kind === "pbft" ? (c.signatures || []).map((s) => s.validator) : [c.leader];
    for (const key of signers) {
      const td = validatorRows.get(key) && validatorRows.get(key).querySelector(".last-signed");
      if (td && !(Number(td.dataset.height) >= b.height)) {
        td.dataset.height = String(b.height);
        td.replaceChildren(blockLink(b.height));
      }
    }
    series.push({ height: b.height, ts: b.timestamp_ms, txs: b.tx_count });
    if (series.length > SERIES_MAX) series = series.slice(-SERIES_MAX);
    drawChart();
  }

  function applyStatus(s) {
    if (!s) return;
    if (s.height > shownNumber("height")) setText("height", s.height);
    const round = s.view !== undefined ? s.view : s.term;
    if (round !== undefined) setText("view", round);
    setText("leader", s.leader ? nameOf(s.leader) : "none");
    if (s.mempool) setText("mempool", s.mempool.txs);
    setText("ready", s.ready ? "ready" : "not ready");
    for (const p of s.peers || []) {
      const td = validatorRows.get(p.node_id) && validatorRows.get(p.node_id).querySelector(".connected");
      if (td) {
        td.textContent = p.connected ? "yes" : "no";
        td.className = "connected " + (p.connected ? "yes" : "no");
      }
    }
    for (const [key, tr] of validatorRows) {
      const role = tr.querySelector(".role");
      if (role) role.textContent = key === s.leader ? "leader" : "";
    }
  }

  function niceCeiling(max) {
    if (!(isFinite(max) && max > 0)) return 1;
    let power = Math.pow(10, Math.floor(Math.log10(max)));
    while (power * 10 < max) power *= 10;
    for (const m of [1, 2, 5, 10]) if (m * power >= max) return m * power;
    return 10 * power;
  }

  function drawChart() {
    const starts = [];
    series.forEach((s, i) => starts.push(i > 0 && series[i - 1].height + 1 === s.height ? starts[i - 1] : i));
    const rate = (from, to) => {
      const span = series[to].ts - series[from].ts;
      if (!(span > 0)) return null;
      let txs = 0;
      for (let k = from + 1; k <= to; k++) txs += series[k].txs;
      return (txs * 1000) / span;
    };
    const rates = [];
    const intervals = [];
    series.forEach((s, i) => {
      const from = Math.max(starts[i], i - RATE_WINDOW_BLOCKS);
      const r = from < i ? rate(from, i) : null;
      if (r !== null) rates.push({ height: s.height, value: r });
      if (i > 0 && starts[i] < i) intervals.push({ height: s.height, value: Math.max(0, s.ts - series[i - 1].ts) });
    });
    const first = series.length ? series[0].height : 0;
    const last = series.length ? series[series.length - 1].height : 0;
    const left = Number(chart.dataset.left);
    const right = Number(chart.dataset.right);
    const panelHeight = Number(chart.dataset.panelHeight);
    const x = (h) => (last === first ? left + (right - left) / 2 : left + ((right - left) * (h - first)) / (last - first));
    const drawPanel = (id, points) => {
      const g = chart.querySelector('g[data-panel="' + id + '"]');
      const panelTop = Number(g.dataset.top);
      const ceiling = niceCeiling(points.reduce((m, p) => Math.max(m, p.value), 0));
      const coords = points.map((p) => x(p.height).toFixed(1) + "," + (panelTop + panelHeight * (1 - p.value / ceiling)).toFixed(1));
      g.querySelector("polyline").setAttribute("points", coords.join(" "));
      g.querySelector(".max").textContent = figure(ceiling);
      g.querySelector(".last").textContent = points.length ? figure(points[points.length - 1].value) : "\u2013";
    };
    drawPanel("tps", rates);
    drawPanel("interval", intervals);
    chart.querySelector(".x-first").textContent = series.length ? String(first) : "";
    chart.querySelector(".x-last").textContent = series.length ? String(last) : "";
    const end = series.length - 1;
    const runStart = end >= 0 ? starts[end] : 0;
    const overall = end > runStart ? rate(runStart, end) : null;
    setText("tps", overall === null ? "\u2013" : figure(overall));
    setText("interval", end > runStart ? figure((series[end].ts - series[runStart].ts) / (end - runStart)) : "\u2013");
  }

  function getJSON(url) {
    return fetch(url, { headers: { accept: "application/json" } }).then((r) => {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  let source = null;
  let lastHeardAt = 0;
  let pollTimer = null;
  let polling = false;
  let statusAt = 0;

  function poll() {
    if (polling) return;
    polling = true;
    Promise.allSettled([
      getJSON("/v1/status").then(applyStatus),
      getJSON("/v1/blocks?limit=20").then((page) => page.blocks.slice().reverse().forEach(addBlock)),
    ]).then(() => {
      polling = false;
    });
  }

  // Block events carry no mempool size: refresh the status now and then while blocks flow.
  function refreshStatusSoon() {
    const now = Date.now();
    if (now - statusAt < STATUS_EVERY_MS) return;
    statusAt = now;
    getJSON("/v1/status").then(applyStatus, () => {});
  }

  function updateLiveness() {
    const live = source !== null && source.readyState === EventSource.OPEN && Date.now() - lastHeardAt < STALE_AFTER_MS;
    const state = live ? "live" : "stale";
    if (liveEl.dataset.state !== state) {
      liveEl.dataset.state = state;
      liveEl.textContent = state;
    }
    if (live && pollTimer !== null) {
      clearInterval(pollTimer);
      pollTimer = null;
    } else if (!live && pollTimer === null) {
      pollTimer = setInterval(poll, POLL_EVERY_MS);
    }
  }

  function heard() {
    lastHeardAt = Date.now();
    updateLiveness();
  }

  function connect() {
    if (!("EventSource" in window)) return;
    // Resume just after the newest block shown, so no block between the page and the stream is
    // missed; the browser's own reconnections resume from Last-Event-ID.
    const from = top >= 0 ? "&from_height=" + (top + 1) : "";
    source = new EventSource("/v1/events?txs=false" + from);
    source.addEventListener("hello", (e) => {
      heard();
      const hello = parse(e.data);
      if (hello && hello.height > shownNumber("height")) setText("height", hello.height);
    });
    source.addEventListener("block", (e) => {
      heard();
      addBlock(parse(e.data));
      refreshStatusSoon();
    });
    source.addEventListener("status", (e) => {
      heard();
      applyStatus(parse(e.data));
    });
    source.addEventListener("error", () => {
      // A refused stream (e.g. 503 over the subscriber limit) is not retried by the browser.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        source = null;
        setTimeout(connect, RECONNECT_AFTER_MS);
      }
      updateLiveness();
    });
  }

  drawChart();
  connect();
  updateLiveness();
  setInterval(updateLiveness, 1000);
})();
