// The labsim dashboard: draws the topology, shows the snapshots of /api/events, and sends
// the admin actions. Plain JavaScript, no library, no build step.
//
// The admin token comes in the URL's fragment (#token=...), which a browser never sends to
// a server; it is kept in this tab's sessionStorage and taken out of the address bar, on
// load and whenever the fragment changes (a link pasted into a tab already showing this
// page only changes the fragment: no reload).
"use strict";

const TOKEN_KEY = "labsim-admin-token";
const SVG = "http://www.w3.org/2000/svg";

const boxes = new Map(); // component id -> its box element
const WINDOW_MS = 60_000; // the small charts show the last minute
const lastMinute = new Map(); // component id -> [{t, rate, p50, p99}], the last minute
let edges = []; // [from, to] component ids
let latest = null; // the latest snapshot
let benchRunning = false;
let benchRequests = 100;

// --- small helpers --------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function figure(label, field) {
  return el("div", { class: "figure" }, el("dt", {}, label), el("dd", { "data-field": field }, "–"));
}

function set(box, field, text) {
  const node = box.querySelector(`[data-field="${field}"]`);
  if (node && node.textContent !== text) node.textContent = text;
}

function count(n) {
  return n == null ? "–" : Number(n).toLocaleString("en");
}

function percent(share) {
  if (share == null) return "–";
  const p = share * 100;
  return `${p === 0 || p === 100 || p >= 10 ? p.toFixed(0) : p.toFixed(1)} %`;
}

function milliseconds(ms) {
  if (ms == null) return "–";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)} ms`;
}

function rate(perSecond) {
  return perSecond == null ? "–" : `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1)}/s`;
}

// --- the small charts: each component's last minute -------------------------------------

function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function spark(field, label) {
  const chart = svgEl("svg", { viewBox: "0 0 120 28", class: "spark", "data-field": field, role: "img", "aria-label": label });
  return el("figure", { class: "spark" }, chart, el("figcaption", { "data-field": `${field}-caption` }, label));
}

function remember(id, c) {
  const now = performance.now();
  const points = lastMinute.get(id) || [];
  points.push({ t: now, rate: c.rate, p50: c.p50_ms, p99: c.p99_ms });
  while (points.length && now - points[0].t > WINDOW_MS) points.shift();
  lastMinute.set(id, points);
  return points;
}

// Lines over the last minute, one per key, on one scale from 0 to the largest value.
function drawSpark(box, field, points, keys) {
  const chart = box.querySelector(`svg[data-field="${field}"]`);
  if (!chart) return;
  const now = performance.now();
  const values = points.flatMap((p) => keys.map((k) => p[k])).filter((v) => v != null);
  const top = Math.max(...values, 0) || 1;
  const lines = keys.map((key) => {
    const at = points.filter((p) => p[key] != null).map((p) => {
      const x = 120 - ((now - p.t) / WINDOW_MS) * 120;
      const y = 27 - (p[key] / top) * 25;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    return svgEl("polyline", { points: at.join(" "), class: `line-${key}`, "data-points": String(at.length) });
  });
  chart.replaceChildren(...lines);
  chart.dataset.top = String(top);
}

function say(text, problem = false) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.classList.toggle("problem", problem);
}

// --- the admin token ------------------------------------------------------------------

function takeTokenFromAddress() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  showTokenHint();
  return Boolean(match);
}

function showTokenHint() {
  const hint = document.getElementById("token-hint");
  hint.textContent = sessionStorage.getItem(TOKEN_KEY)
    ? "Buttons use the admin token from the link labsim printed."
    : "The buttons need the admin token: open the Dashboard link that " +
      "`python -m labsim up` printed, or paste the token when asked.";
}

function adminToken() {
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = (window.prompt("Admin token (printed by `python -m labsim up`):") || "").trim();
    if (!token) return null;
    sessionStorage.setItem(TOKEN_KEY, token);
    showTokenHint();
  }
  return token;
}

async function post(path, body) {
  const token = adminToken();
  if (!token) {
    say("No admin token: open the Dashboard link that `python -m labsim up` printed.", true);
    return null;
  }
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? "" : JSON.stringify(body),
    });
  } catch (error) {
    say(`labsim did not answer: ${error.message}`, true);
    return null;
  }
  const answer = await response.json().catch(() => ({ error: `status ${response.status}` }));
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenHint();
    say("The admin token was refused; use the one `python -m labsim up` printed.", true);
    return null;
  }
  if (!response.ok) {
    say(answer.error || `status ${response.status}`, true);
    return null;
  }
  return answer;
}

// --- the topology ---------------------------------------------------------------------

function makeBox(component) {
  const { id, kind } = component;
  const box = el("article", {
    class: `box kind-${kind}`,
    id: `box-${id}`,
    "data-testid": `box-${id}`,
    "data-state": "up",
    "aria-labelledby": `title-${id}`,
  });
  const title = el("h3", { id: `title-${id}` }, id, " ", el("span", { class: "badge", "data-field": "state" }, "up"));
  box.append(
    title,
    el("p", { class: "where" }, `${component.url} · ${component.service_time}`),
    el(
      "dl",
      { class: "figures" },
      figure("requests", "requests"),
      figure("rate", "rate"),
      figure("in flight", "in-flight"),
      figure("5xx", "errors"),
      figure("latency", "latency"),
    ),
    el(
      "div",
      { class: "sparks" },
      spark("rate-spark", "requests a second, last minute"),
      spark("latency-spark", "p50 · p99 latency, last minute"),
    ),
  );
  const extra = el("dl", { class: "extra" });
  const line = (label, field) => extra.append(el("div", {}, el("dt", {}, label), el("dd", { "data-field": field }, "–")));
  // A bar (`<meter>`, data-field `${meter}-meter`) and its figure (data-field `field`).
  const meterLine = (label, meter, field, aria) =>
    extra.append(
      el(
        "div",
        {},
        el("dt", {}, label),
        el("dd", {}, el("meter", { "data-field": `${meter}-meter`, min: "0", max: "1", value: "0", "aria-label": aria }), " ", el("span", { "data-field": field }, "–")),
      ),
    );
  if (kind === "load_balancer") {
    line("retries", "retries");
    line("ejections", "ejections");
  } else if (kind === "gateway") {
    line("load balancer", "rotation");
    line("sent here", "routed");
  } else if (kind === "cache") {
    meterLine("hit ratio", "hit", "hit-ratio", "cache hit ratio");
    line("hits · misses", "lookups");
    line("entries", "size");
  } else if (kind === "database") {
    line("calls", "db-calls");
    line("added latency", "added-latency");
  } else if (kind === "worker") {
    meterLine("running", "running", "running", "tasks running");
    meterLine("queued", "queued", "queued", "tasks queued");
    line("done · rejected", "done");
  }
  if (component.slots) {
    // A component with slots: how busy they were over the last tick, and its line.
    meterLine("slots busy", "busy", "busy", "slots busy");
    line("waiting · refused", "waiting");
  }
  line("4xx", "client-errors");
  extra.lastChild.hidden = true; // shown once a client error comes
  line("dropped", "dropped"); // requests that got no answer: down, or the caller gone
  extra.lastChild.hidden = true;
  extra.lastChild.classList.add("problem");
  box.append(extra, el("p", { class: "faults", "data-field": "faults", hidden: "" }));
  if (kind === "gateway") {
    const down = el("button", { type: "button", "data-testid": `down-${id}` }, "Take down");
    const up = el("button", { type: "button", "data-testid": `up-${id}` }, "Bring back");
    down.addEventListener("click", () => setFaults(id, { down: true }, `${id} is down: it closes every connection without an answer.`));
    up.addEventListener("click", () => resetFaults(id, `${id} is back up, with no fault left.`));
    box.append(el("div", { class: "actions", role: "group", "aria-label": `${id} faults` }, down, up));
  } else if (kind === "database") {
    // Any number goes to the server, which says what it refuses (`novalidate`: a browser's
    // own check would only show a tooltip, and refuse values the server takes).
    const input = el("input", { type: "number", id: "db-latency", "data-testid": "db-latency", min: "0", step: "any", value: "0.5", inputmode: "decimal" });
    const setButton = el("button", { type: "submit", "data-testid": "db-latency-set" }, "Set");
    const clear = el("button", { type: "button", "data-testid": "db-latency-clear" }, "Clear");
    const form = el("form", { class: "actions", "aria-label": "database added latency", novalidate: "" }, el("label", { for: "db-latency" }, "Add latency (s)"), input, setButton, clear);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const seconds = Number(input.value);
      if (input.value === "" || !Number.isFinite(seconds)) { // "" is what a number input gives for text
        say("Database latency: give a number of seconds.", true);
        return;
      }
      setFaults(id, { latency: seconds }, `The database now adds ${seconds} s to every request.`);
    });
    clear.addEventListener("click", () => setFaults(id, { latency: 0 }, "The database adds no latency."));
    box.append(form);
  }
  return box;
}

async function loadTopology() {
  const response = await fetch("/api/topology");
  const topology = await response.json();
  document.getElementById("topology-name").textContent = topology.name;
  document.title = `labsim dashboard: ${topology.name}`;
  benchRequests = topology.bench.requests;
  document.getElementById("bench").textContent = `Run bench (${benchRequests} requests)`;
  for (const list of document.querySelectorAll(".boxes")) list.replaceChildren();
  boxes.clear();
  const column = { load_balancer: "col-entry", gateway: "col-gateways" };
  for (const component of topology.components) {
    const box = makeBox(component);
    boxes.set(component.id, box);
    const target = column[component.kind] || "col-backends";
    document.querySelector(`#${target} .boxes`).append(box);
  }
  // The backends in the order of the data path: cache, database, worker, microservice.
  const order = ["cache", "database", "worker", "microservice"];
  const backends = document.querySelector("#col-backends .boxes");
  const sorted = [...backends.children].sort(
    (a, b) => order.indexOf(a.className.split("kind-")[1]) - order.indexOf(b.className.split("kind-")[1]),
  );
  backends.append(...sorted);
  edges = topology.edges;
  drawArrows();
}

// --- the figures ----------------------------------------------------------------------

function describeFaults(faults, kind) {
  const parts = []; // "down", or "hung" alone, is the badge's
  if (faults.hang && faults.down) parts.push("hung");
  if (faults.latency && kind !== "database") parts.push(`+${faults.latency} s latency`);
  if (faults.jitter) parts.push(`±${faults.jitter} s jitter`);
  if (faults.error_rate) parts.push(`${percent(faults.error_rate)} errors`);
  return parts.length ? `faults: ${parts.join(", ")}` : "";
}

function rotation(c) {
  if (!c.in_rotation) {
    return c.healthy ? `ejected for ${c.ejected_for.toFixed(1)} s` : "out (failed health checks)";
  }
  return c.state === "down" ? "still sends here" : "in rotation";
}

// "unreadable": a component of another process whose /metrics or faults make no sense.
const STATES = { up: "up", down: "down", out: "out of rotation", degraded: "degraded", unreadable: "unreadable" };

function render(snapshot) {
  latest = snapshot;
  for (const [id, c] of Object.entries(snapshot.components)) {
    const box = boxes.get(id);
    if (!box) return loadTopology(); // a different topology answers now
    set(box, "requests", count(c.requests));
    set(box, "rate", rate(c.rate));
    set(box, "in-flight", count(c.in_flight));
    set(box, "errors", percent(c.errors));
    set(box, "latency", milliseconds(c.latency_ms));
    const points = remember(id, c);
    drawSpark(box, "rate-spark", points, ["rate"]);
    drawSpark(box, "latency-spark", points, ["p50", "p99"]);
    set(box, "latency-spark-caption", `p50 ${milliseconds(c.p50_ms)} · p99 ${milliseconds(c.p99_ms)}, last minute`);
    set(box, "rate-spark-caption", `${rate(c.rate)} now, last minute`);
    set(box, "client-errors", percent(c.client_errors));
    if (c.client_errors) box.querySelector('[data-field="client-errors"]').parentElement.hidden = false;
    set(box, "dropped", `${count(c.dropped)} (${rate(c.dropped_rate)} now)`);
    if (c.dropped) box.querySelector('[data-field="dropped"]').parentElement.hidden = false;
    box.dataset.state = c.state;
    set(box, "state", c.state === "down" && c.faults.hang && !c.faults.down ? "hung" : STATES[c.state]);
    box.classList.toggle("erroring", (c.errors || 0) > 0);
    const faults = box.querySelector('[data-field="faults"]');
    const text = c.problem ? `cannot read it: ${c.problem}` : describeFaults(c.faults, c.kind);
    faults.textContent = text;
    faults.hidden = !text;
    if (c.kind === "load_balancer") {
      set(box, "retries", count(c.retries));
      set(box, "ejections", `${count(c.ejections)} (health checks: ${count(c.health_ejections)})`);
    } else if (c.kind === "gateway") {
      box.dataset.rotation = c.in_rotation ? "in" : "out";
      set(box, "rotation", rotation(c));
      set(box, "routed", count(c.routed));
    } else if (c.kind === "cache") {
      box.querySelector('[data-field="hit-meter"]').value = c.hit_ratio || 0;
      set(box, "hit-ratio", percent(c.hit_ratio));
      set(box, "lookups", `${count(c.hits + c.stale)} · ${count(c.misses)}`);
      set(box, "size", `${count(c.size)} of ${count(c.maxsize)}`);
    } else if (c.kind === "database") {
      set(box, "db-calls", count(c.db_calls));
      set(box, "added-latency", c.faults.latency ? `${c.faults.latency} s` : "none");
    } else if (c.kind === "worker") {
      box.querySelector('[data-field="running-meter"]').value = c.running / c.concurrency;
      box.querySelector('[data-field="queued-meter"]').value = c.queued / c.queue_size;
      set(box, "running", `${count(c.running)} of ${count(c.concurrency)}`);
      set(box, "queued", `${count(c.queued)} of ${count(c.queue_size)}`);
      set(box, "done", `${count(c.completed)} · ${count(c.rejected)}`);
    }
    if (c.capacity) showCapacity(box, c.capacity);
  }
  benchRunning = snapshot.bench.running;
  document.getElementById("bench").disabled = benchRunning;
  drawArrows();
}

function showCapacity(box, cap) {
  const meter = box.querySelector('[data-field="busy-meter"]');
  if (!meter) return; // the page was drawn before this component had slots
  meter.value = cap.utilization ?? cap.busy / cap.slots;
  const share = cap.utilization === null ? "" : ` (${percent(cap.utilization)} of the tick)`;
  set(box, "busy", `${count(cap.busy)} of ${count(cap.slots)}${share}`);
  set(box, "waiting", `${count(cap.queue_length)} of ${count(cap.queue_size)} · ${count(cap.rejected)}`);
}

// --- the arrows -----------------------------------------------------------------------

// Working: answering requests, or holding some in flight (a slow database answers none
// in half a second but is busy all the same). A down or hung component answers nothing.
function working(c) {
  return c.state !== "down" && (c.rate > 0 || c.in_flight > 0);
}

// An arrow is busy when both its ends work, and shows where no answer comes back: into a
// gateway the load balancer has taken out ("out") or, from a component that is not down
// itself, into one that is.
function edgeState(from, to) {
  const now = latest && latest.components;
  if (!now || !now[from] || !now[to]) return "idle";
  if (now[to].kind === "gateway" && !now[to].in_rotation) return "out";
  if (now[from].state === "down") return "idle";
  if (now[to].state === "down") return "down";
  return working(now[from]) && working(now[to]) ? "busy" : "idle";
}

function drawArrows() {
  const svg = document.getElementById("arrows");
  const frame = document.getElementById("diagram").getBoundingClientRect();
  svg.setAttribute("viewBox", `0 0 ${frame.width} ${frame.height}`);
  const defs = document.createElementNS(SVG, "defs");
  for (const state of ["idle", "busy", "out", "down"]) {
    const marker = document.createElementNS(SVG, "marker");
    for (const [name, value] of Object.entries({ id: `head-${state}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" })) {
      marker.setAttribute(name, value);
    }
    const head = document.createElementNS(SVG, "path");
    head.setAttribute("d", "M 0 0 L 10 5 L 0 10 z");
    head.setAttribute("class", `head ${state}`);
    marker.append(head);
    defs.append(marker);
  }
  const paths = [defs];
  for (const [from, to] of edges) {
    const a = boxes.get(from);
    const b = boxes.get(to);
    if (!a || !b || !a.offsetParent || !b.offsetParent) continue;
    const ra = a.getBoundingClientRect();
    const rb = b.getBoundingClientRect();
    const x1 = ra.right - frame.left;
    const y1 = ra.top + ra.height / 2 - frame.top;
    const x2 = rb.left - frame.left - 2;
    const y2 = rb.top + Math.min(rb.height / 2, 40) - frame.top;
    const bend = (x2 - x1) / 2;
    const state = edgeState(from, to);
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`);
    path.setAttribute("class", `edge ${state}`);
    path.setAttribute("marker-end", `url(#head-${state})`);
    path.dataset.from = from;
    path.dataset.to = to;
    paths.push(path);
  }
  svg.replaceChildren(...paths);
}

// --- the actions ----------------------------------------------------------------------

async function setFaults(component, changes, done) {
  const answer = await post(`/api/faults/${encodeURIComponent(component)}`, changes);
  if (answer) say(done);
}

async function resetFaults(component, done) {
  const answer = await post(`/api/reset/${encodeURIComponent(component)}`);
  if (answer) say(done);
}

async function resetAll() {
  for (const id of boxes.keys()) {
    if (!(await post(`/api/reset/${encodeURIComponent(id)}`))) return;
  }
  say("Every fault is cleared.");
}

function benchSummary(r) {
  const lines = [];
  const total = r.requests.total;
  const took = r.time && r.time.wall_s != null ? ` in ${r.time.wall_s} s` : "";
  const throughput = r.throughput_rps != null ? ` (${r.throughput_rps.toFixed(0)} requests/s)` : "";
  lines.push(`${total} requests: ${r.requests.ok} ok, ${r.requests.failed} failed${took}${throughput}`);
  const endpoints = Object.entries(r.endpoints || {}).map(
    ([name, e]) => `/${name} mean ${milliseconds(e.mean_ms)}, p99 ${milliseconds(e.p99_ms)}`,
  );
  if (endpoints.length) lines.push(endpoints.join(" · "));
  if (r.cache && r.cache.hit_ratio != null) lines.push(`cache hit ratio ${percent(r.cache.hit_ratio)}`);
  const gateways = Object.entries(r.gateways || {}).map(([g, n]) => `${g} ${n}`);
  if (gateways.length) lines.push(`served by ${gateways.join(", ")}`);
  for (const f of (r.failures || []).slice(0, 3)) {
    lines.push(`${f.count} × /${f.endpoint} ${f.status ?? "no answer"}: ${f.error}`);
  }
  return lines;
}

async function runBench() {
  const button = document.getElementById("bench");
  const result = document.getElementById("bench-result");
  button.disabled = true;
  result.replaceChildren(el("span", {}, `Running ${benchRequests} requests…`));
  try {
    const report = await post("/api/bench", { requests: benchRequests });
    if (!report) {
      result.replaceChildren(el("span", { class: "problem" }, "No bench run: see the message below."));
      return;
    }
    result.replaceChildren(...benchSummary(report).map((line) => el("span", {}, line)));
    result.classList.toggle("problem", report.requests.failed > 0);
  } finally {
    button.disabled = benchRunning;
  }
}

// --- the event stream -----------------------------------------------------------------

function status(text, state) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = `status ${state}`;
}

function listen() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => status("live", "live"));
  events.addEventListener("snapshot", (event) => {
    render(JSON.parse(event.data));
    // Not in the status itself, a live region: a screen reader would read every tick.
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString("en-GB")}`;
  });
  events.addEventListener("end", () => {
    events.close();
    status("stopped: labsim is not running (reload once it is up again)", "stopped");
  });
  events.addEventListener("error", () => {
    if (events.readyState !== EventSource.CLOSED) status("reconnecting…", "connecting");
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  takeTokenFromAddress();
  document.getElementById("bench").addEventListener("click", runBench);
  document.getElementById("reset-all").addEventListener("click", resetAll);
  window.addEventListener("hashchange", () => {
    if (takeTokenFromAddress()) say("The buttons now use the admin token from the link.");
  });
  window.addEventListener("resize", drawArrows);
  try {
    await loadTopology();
  } catch (error) {
    status(`cannot load the topology: ${error.message}`, "stopped");
    return;
  }
  listen();
});
