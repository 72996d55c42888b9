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
const lanes = new Map(); // lane name -> its element: room for the arrows past a layer
let routes = []; // [{from, to, lanes}]: the arrows, and the lanes each goes down
let arranged = null; // the width the boxes were last sized for
let latest = null; // the latest snapshot
let benchRunning = false;
let benchRequests = 100;
let loadRunning = false;
let loadLimits = { max_rate: 500, max_in_flight: 256, window_s: 5, flows: [] };

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

// POST to the dashboard's API with the admin token; the answer, or null once `tell` has
// said what went wrong (the server's own words where it refused).
async function post(path, body, tell = say) {
  const token = adminToken();
  if (!token) {
    tell("No admin token: open the Dashboard link that `python -m labsim up` printed.", true);
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
    tell(`labsim did not answer: ${error.message}`, true);
    return null;
  }
  const answer = await response.json().catch(() => ({ error: `status ${response.status}` }));
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenHint();
    tell("The admin token was refused; use the one `python -m labsim up` printed.", true);
    return null;
  }
  if (!response.ok) {
    tell(answer.error || `status ${response.status}`, true);
    return null;
  }
  return answer;
}

// --- the layout: which layer each component is drawn in, and in what order ---------------

// Any topology, callers above callees. A component's layer is the longest path to it from
// a component nobody calls (one that calls nobody either is in layer 0); the replicas of
// a group (`group`, else the component is a group of its own) share one layer, side by
// side. An arrow that skips layers goes down a lane of its own through each layer it
// skips (one lane per group and layer, shared by that group's long arrows), so it passes
// between boxes. The order within each layer starts as a walk down the arrows comes to
// the groups, then barycenter sweeps (each group placed at the mean position of those it
// is linked to in the layer above, then below) keep the order with the fewest crossings,
// and swaps of neighbours that reduce them follow.
//
// Pure, with no page: the components and edges of /api/topology in, plain data out:
//   layers: [[id, ...], ...]  the components of each layer, top first, in their order;
//   rows: [[{group, ids} | {lane}, ...], ...]  what each layer holds, in order;
//   layer: {id: n}; group: {id: group};
//   routes: [{from, to, lanes: [lane, ...]}]  each edge, and the lanes it goes down;
//   crossings: how many pairs of arrows cross between neighbouring layers (by weight).
// The tests call it as window.labsimLayout.
function layout(components, edges) {
  const groupOf = new Map();
  const members = new Map(); // group -> its component ids, in the order given
  for (const c of components) {
    const group = typeof c.group === "string" && c.group !== "" ? c.group : c.id;
    groupOf.set(c.id, group);
    if (!members.has(group)) members.set(group, []);
    members.get(group).push(c.id);
  }
  const groups = [...members.keys()];
  const calls = new Map(groups.map((g) => [g, new Map()])); // group -> callee group -> arrows
  const known = [];
  const once = new Set();
  for (const [from, to] of edges) {
    if (!groupOf.has(from) || !groupOf.has(to) || once.has(`${from}\n${to}`)) continue;
    once.add(`${from}\n${to}`);
    known.push([from, to]);
    const a = groupOf.get(from);
    const b = groupOf.get(to);
    if (a !== b) calls.get(a).set(b, (calls.get(a).get(b) || 0) + 1);
  }

  // Cycles: a depth-first walk from the groups nobody calls leaves out each call back to
  // a group on its own path; the rest is acyclic, and gives the layers.
  const called = new Set(groups.flatMap((g) => [...calls.get(g).keys()]));
  const acyclic = new Map(groups.map((g) => [g, new Map()]));
  const walked = new Map(); // group -> "open" while on the path, then "done"
  for (const start of [...groups.filter((g) => !called.has(g)), ...groups]) {
    if (walked.has(start)) continue;
    walked.set(start, "open");
    const path = [[start, [...calls.get(start)]]];
    while (path.length) {
      const [group, next] = path[path.length - 1];
      if (!next.length) {
        walked.set(group, "done");
        path.pop();
        continue;
      }
      const [callee, arrows] = next.shift();
      if (walked.get(callee) === "open") continue; // a call back up: no layer for it
      acyclic.get(group).set(callee, arrows);
      if (!walked.has(callee)) {
        walked.set(callee, "open");
        path.push([callee, [...calls.get(callee)]]);
      }
    }
  }
  const layerOf = new Map(groups.map((g) => [g, 0]));
  const waiting = new Map(groups.map((g) => [g, 0]));
  for (const g of groups) for (const b of acyclic.get(g).keys()) waiting.set(b, waiting.get(b) + 1);
  const ready = groups.filter((g) => waiting.get(g) === 0);
  for (let i = 0; i < ready.length; i++) {
    const a = ready[i];
    for (const b of acyclic.get(a).keys()) {
      layerOf.set(b, Math.max(layerOf.get(b), layerOf.get(a) + 1));
      waiting.set(b, waiting.get(b) - 1);
      if (waiting.get(b) === 0) ready.push(b);
    }
  }
  const depth = groups.length ? Math.max(...layerOf.values()) + 1 : 0;

  // Items: a group ("g" + name) or a lane ("l" + name + layer), linked layer to layer.
  const order = Array.from({ length: depth }, () => []);
  const size = new Map();
  const above = new Map(); // item -> item in the layer above -> weight
  const below = new Map();
  const addItem = (item, layer, width) => {
    if (size.has(item)) return;
    size.set(item, width);
    above.set(item, new Map());
    below.set(item, new Map());
    order[layer].push(item);
  };
  const link = (a, b, weight) => {
    below.get(a).set(b, (below.get(a).get(b) || 0) + weight);
    above.get(b).set(a, (above.get(b).get(a) || 0) + weight);
  };
  const laneName = (group, layer) => `${group} @${layer}`;
  const source = new Map(); // item -> its group (a lane's: the group whose arrows it takes)
  for (const g of groups) {
    addItem(`g${g}`, layerOf.get(g), members.get(g).length);
    source.set(`g${g}`, g);
  }
  for (const g of groups) {
    for (const [b, arrows] of acyclic.get(g)) {
      let item = `g${g}`;
      for (let layer = layerOf.get(g) + 1; layer < layerOf.get(b); layer++) {
        const lane = `l${laneName(g, layer)}`;
        addItem(lane, layer, 0.5);
        source.set(lane, g);
        link(item, lane, arrows);
        item = lane;
      }
      link(item, `g${b}`, arrows);
    }
  }

  // To start with, each layer in the order a walk down the arrows (in the order given,
  // breadth first from the groups nobody calls) comes to its groups; lanes by their group.
  const reached = new Map();
  for (const start of [...groups.filter((g) => !called.has(g)), ...groups]) {
    if (reached.has(start)) continue;
    reached.set(start, reached.size);
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      for (const b of calls.get(queue[i]).keys()) {
        if (!reached.has(b)) {
          reached.set(b, reached.size);
          queue.push(b);
        }
      }
    }
  }
  for (const items of order) {
    const rank = (item) => reached.get(source.get(item)) + (item[0] === "l" ? 0.5 : 0);
    items.sort((a, b) => rank(a) - rank(b));
  }

  // Where each item is, from 0 (left) to 1 (right) of its layer, by the room it takes.
  const positions = (items) => {
    const total = items.reduce((sum, item) => sum + size.get(item), 0) || 1;
    const at = new Map();
    let left = 0;
    for (const item of items) {
      at.set(item, (left + size.get(item) / 2) / total);
      left += size.get(item);
    }
    return at;
  };
  const crossingsBetween = (upper, lower) => {
    const x = new Map(upper.map((item, i) => [item, i]));
    const y = new Map(lower.map((item, i) => [item, i]));
    const lines = [];
    for (const a of upper) for (const [b, w] of below.get(a)) if (y.has(b)) lines.push([x.get(a), y.get(b), w]);
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      for (let j = i + 1; j < lines.length; j++) {
        if ((lines[i][0] - lines[j][0]) * (lines[i][1] - lines[j][1]) < 0) n += lines[i][2] * lines[j][2];
      }
    }
    return n;
  };
  const crossings = (layers) => {
    let n = 0;
    for (let l = 0; l + 1 < layers.length; l++) n += crossingsBetween(layers[l], layers[l + 1]);
    return n;
  };
  const sortBy = (items, neighbours, fixed) => {
    const at = positions(fixed);
    const here = positions(items);
    const key = new Map();
    for (const item of items) {
      let sum = 0;
      let weight = 0;
      for (const [other, w] of neighbours.get(item)) {
        if (!at.has(other)) continue;
        sum += at.get(other) * w;
        weight += w;
      }
      key.set(item, weight ? sum / weight : here.get(item)); // unlinked: it stays where it is
    }
    return [...items].sort((a, b) => key.get(a) - key.get(b) || here.get(a) - here.get(b));
  };
  let layers = order.map((items) => [...items]);
  let best = layers;
  let fewest = crossings(layers);
  for (let sweep = 0; sweep < 8 && fewest > 0; sweep++) {
    const next = layers.map((items) => [...items]);
    if (sweep % 2 === 0) {
      for (let l = 1; l < depth; l++) next[l] = sortBy(next[l], above, next[l - 1]);
    } else {
      for (let l = depth - 2; l >= 0; l--) next[l] = sortBy(next[l], below, next[l + 1]);
    }
    layers = next;
    const n = crossings(layers);
    if (n < fewest) {
      best = layers;
      fewest = n;
    }
  }
  // Then swaps of neighbours, while one makes fewer crossings with the layers either side.
  layers = best.map((items) => [...items]);
  for (let round = 0; round < 4 && fewest > 0; round++) {
    let better = false;
    for (let l = 0; l < depth; l++) {
      for (let i = 0; i + 1 < layers[l].length; i++) {
        const local = () =>
          (l > 0 ? crossingsBetween(layers[l - 1], layers[l]) : 0) +
          (l + 1 < depth ? crossingsBetween(layers[l], layers[l + 1]) : 0);
        const before = local();
        [layers[l][i], layers[l][i + 1]] = [layers[l][i + 1], layers[l][i]];
        if (local() < before) {
          better = true;
        } else {
          [layers[l][i], layers[l][i + 1]] = [layers[l][i + 1], layers[l][i]];
        }
      }
    }
    fewest = crossings(layers);
    if (!better) break;
  }

  const rows = layers.map((items) =>
    items.map((item) =>
      item[0] === "g" ? { group: item.slice(1), ids: [...members.get(item.slice(1))] } : { lane: item.slice(1) },
    ),
  );
  const layer = {};
  const group = {};
  for (const [id, g] of groupOf) {
    layer[id] = layerOf.get(g);
    group[id] = g;
  }
  const routes = known.map(([from, to]) => {
    const a = groupOf.get(from);
    const b = groupOf.get(to);
    const lanes = [];
    if (a !== b && acyclic.get(a).has(b)) {
      for (let l = layerOf.get(a) + 1; l < layerOf.get(b); l++) lanes.push(laneName(a, l));
    }
    return { from, to, lanes };
  });
  return {
    layers: rows.map((row) => row.flatMap((item) => item.ids || [])),
    rows,
    layer,
    group,
    routes,
    crossings: fewest,
  };
}

window.labsimLayout = layout;

// --- the topology ---------------------------------------------------------------------

const KINDS = { load_balancer: "load balancer" }; // how a kind is named on the page

function makeBox(component) {
  const { id, kind } = component;
  const box = el("article", {
    class: `box kind-${kind}`,
    id: `box-${id}`,
    "data-testid": `box-${id}`,
    "data-state": "up",
    "aria-labelledby": `title-${id}`,
  });
  const title = el("h3", { id: `title-${id}` }, el("span", { class: "name" }, id), " ", el("span", { class: "badge", "data-field": "state" }, "up"));
  // Compact boxes (a layer too full for whole ones) show their details on demand.
  const more = el("button", { type: "button", class: "more", "aria-expanded": "false", "aria-controls": `detail-${id}`, "data-testid": `more-${id}`, "aria-label": `More figures of ${id}` }, "more");
  more.addEventListener("click", () => openDetail(box, !box.classList.contains("open")));
  box.append(
    title,
    el("div", { class: "where" }, el("p", {}, el("span", { class: "kind" }, KINDS[kind] || kind), el("span", { class: "address" }, ` · ${component.url} · ${component.service_time}`)), more),
    el(
      "dl",
      { class: "figures" },
      figure("requests", "requests"),
      figure("rate", "rate"),
      figure("in flight", "in-flight"),
      figure("5xx", "errors"),
      figure("latency", "latency"),
    ),
  );
  const detail = el("div", { class: "detail", id: `detail-${id}` });
  detail.append(
    el("p", { class: "address" }, `${component.url} · ${component.service_time}`), // compact only
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
  detail.append(extra);
  box.append(detail, el("p", { class: "faults", "data-field": "faults", hidden: "" }));
  if (kind === "gateway") {
    const down = el("button", { type: "button", "data-testid": `down-${id}` }, "Take down");
    const up = el("button", { type: "button", "data-testid": `up-${id}` }, "Bring back");
    down.addEventListener("click", () => setFaults(id, { down: true }, `${id} is down: it closes every connection without an answer.`));
    up.addEventListener("click", () => resetFaults(id, `${id} is back up, with no fault left.`));
    box.append(el("div", { class: "actions", role: "group", "aria-label": `${id} faults` }, down, up));
  } else if (kind === "database") {
    const named = id === "database" ? "The database" : id; // the lab's, or one of several
    // Any number goes to the server, which says what it refuses (`novalidate`: a browser's
    // own check would only show a tooltip, and refuse values the server takes).
    const input = el("input", { type: "number", id: `db-latency-${id}`, "data-testid": "db-latency", min: "0", step: "any", value: "0.5", inputmode: "decimal" });
    const setButton = el("button", { type: "submit", "data-testid": "db-latency-set" }, "Set");
    const clear = el("button", { type: "button", "data-testid": "db-latency-clear" }, "Clear");
    const form = el("form", { class: "actions", "aria-label": `${id} added latency`, novalidate: "" }, el("label", { for: `db-latency-${id}` }, "Add latency (s)"), input, setButton, clear);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const seconds = Number(input.value);
      if (input.value === "" || !Number.isFinite(seconds)) { // "" is what a number input gives for text
        say("Database latency: give a number of seconds.", true);
        return;
      }
      setFaults(id, { latency: seconds }, `${named} now adds ${seconds} s to every request.`);
    });
    clear.addEventListener("click", () => setFaults(id, { latency: 0 }, `${named} adds no latency.`));
    box.append(form);
  }
  return box;
}

// A compact box's details (its address, charts and other figures), over what is below it.
function openDetail(box, open) {
  for (const other of document.querySelectorAll(".box.open")) {
    if (other !== box || !open) {
      other.classList.remove("open", "flip");
      other.querySelector(".more").setAttribute("aria-expanded", "false");
    }
  }
  if (!open) return;
  box.classList.add("open");
  box.querySelector(".more").setAttribute("aria-expanded", "true");
  // Opened leftwards where it would go past the right of the window.
  const room = document.documentElement.clientWidth - box.getBoundingClientRect().left;
  box.classList.toggle("flip", box.querySelector(".detail").offsetWidth > room);
}

async function loadTopology() {
  const response = await fetch("/api/topology");
  const topology = await response.json();
  document.getElementById("topology-name").textContent = topology.name;
  document.title = `labsim dashboard: ${topology.name}`;
  benchRequests = topology.bench.requests;
  if (topology.load) setLoadLimits(topology.load);
  document.getElementById("bench").textContent = `Run bench (${benchRequests} requests)`;
  const plan = layout(topology.components, topology.edges);
  const byId = new Map(topology.components.map((c) => [c.id, c]));
  boxes.clear();
  lanes.clear();
  const rows = plan.rows.map((row, n) => {
    const layer = el("div", { class: "layer", "data-layer": String(n), role: "group", "aria-label": `layer ${n + 1} of ${plan.rows.length}` });
    for (const item of row) {
      if (item.lane !== undefined) {
        // Room for the arrows that go past this layer, between its boxes.
        const lane = el("div", { class: "lane", "data-lane": item.lane, "aria-hidden": "true" });
        lanes.set(item.lane, lane);
        layer.append(lane);
        continue;
      }
      const replicas = el("div", { class: "replicas" });
      for (const id of item.ids) {
        const box = makeBox(byId.get(id));
        boxes.set(id, box);
        replicas.append(box);
      }
      const group = el("div", { class: "group", "data-group": item.group });
      if (item.ids.length > 1) {
        group.classList.add("many");
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", `${item.group}: ${item.ids.length} replicas`);
        group.append(el("p", { class: "group-name", "aria-hidden": "true" }, `${item.group} ×${item.ids.length}`));
      }
      group.append(replicas);
      layer.append(group);
    }
    return layer;
  });
  document.getElementById("layers").replaceChildren(...rows);
  const count = topology.components.length;
  document.getElementById("diagram-title").textContent =
    `${count} component${count === 1 ? "" : "s"} in ${rows.length} layer${rows.length === 1 ? "" : "s"}, callers above`;
  routes = plan.routes;
  arranged = null;
  arrange();
  drawArrows();
}

// The size of the boxes, layer by layer, for the width there is: whole boxes side by side
// where they fit, else compact ones (name, state, figures and buttons; the rest on
// demand) side by side, else compact ones with each group of replicas in as few rows as
// fit (its arrows then end at its frame). Boxes never overlap, and the page never scrolls
// sideways: a layer with more groups than compact boxes fit in a row wraps them.
const SIZES = { whole: [17, 24], compact: [8.5, 12] }; // rem: narrowest, widest
// rem, as in dashboard.css: between boxes in a group, between groups, a lane, a frame.
const GAPS = { whole: { box: 1, item: 1.5 }, compact: { box: 0.6, item: 1 }, lane: 1.25, frame: 0.5 };

function arrange() {
  const container = document.getElementById("layers");
  const width = container.clientWidth - 2; // a little slack for rounding
  if (arranged === width) return false;
  arranged = width;
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  const px = (r) => r * rem;
  const plans = [...container.children].map((layer) => {
    const items = [...layer.children];
    const groups = items.filter((item) => item.classList.contains("group"));
    const sizes = groups.map((g) => g.querySelectorAll(".box").length);
    const frames = groups.filter((g) => g.classList.contains("many")).length;
    // The width each box would have with `columns` boxes a row in each group, or null.
    const fit = (columns, mode) => {
      const gaps = GAPS[mode];
      const room =
        width -
        px(gaps.item) * Math.max(items.length - 1, 0) -
        px(GAPS.lane) * (items.length - groups.length) -
        (2 * px(GAPS.frame) + 2) * frames -
        columns.reduce((sum, c) => sum + px(gaps.box) * (c - 1), 0);
      const each = room / columns.reduce((sum, c) => sum + c, 0);
      const [narrowest, widest] = SIZES[mode];
      return each >= px(narrowest) ? Math.min(each, px(widest)) : null;
    };
    const plan = { layer, groups, sizes, mode: "compact", wrap: false };
    const whole = fit(sizes, "whole");
    if (whole !== null) return { ...plan, mode: "whole", columns: sizes, each: whole };
    for (let rows = 1; rows <= Math.max(...sizes, 1); rows++) {
      const columns = sizes.map((n) => Math.ceil(n / rows));
      const each = fit(columns, "compact");
      if (each !== null) return { ...plan, columns, each };
    }
    // More groups than compact boxes in a row, even one box wide each: the layer wraps.
    const gap = px(GAPS.compact.box);
    const across = Math.max(1, Math.floor((width - 2 * px(GAPS.frame) + gap) / (px(SIZES.compact[0]) + gap)));
    return { ...plan, wrap: true, columns: sizes.map((n) => Math.min(n, across)), each: px(SIZES.compact[0]) };
  });
  // One width for all whole boxes, one for all compact ones: the page reads as one.
  const widths = { whole: Infinity, compact: Infinity };
  for (const p of plans) widths[p.mode] = Math.min(widths[p.mode], p.each);
  for (const p of plans) {
    const compact = p.mode === "compact";
    p.layer.classList.toggle("compact", compact);
    p.layer.classList.toggle("wrap", p.wrap);
    p.layer.style.setProperty("--box-width", `${Math.floor(widths[p.mode])}px`);
    p.groups.forEach((g, i) => {
      g.querySelector(".replicas").style.setProperty("--columns", String(p.columns[i]));
      // Replicas in more than one row: their arrows come into (and leave) the group's frame.
      g.classList.toggle("rows", p.columns[i] < p.sizes[i]);
    });
    for (const box of p.layer.querySelectorAll(".box")) {
      box.classList.toggle("compact", compact);
      if (!compact && box.classList.contains("open")) openDetail(box, false);
    }
  }
  return true;
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
  if (snapshot.load) showLoad(snapshot.load);
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

// Each arrow leaves the bottom of its caller and comes into the top of its callee, down
// the lanes of the layers it goes past. A box's arrows leave it (and come into it) side
// by side, in the order of where they go (or come from), so they do not cross at the box.
// An arrow up (a call back up a cycle) goes from the top of its caller to the bottom of
// its callee, one within a layer from side to side. The arrows are drawn under the boxes.
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
  const place = (node) => {
    const r = node.getBoundingClientRect();
    const left = r.left - frame.left;
    const top = r.top - frame.top;
    return { left, top, right: left + r.width, bottom: top + r.height, width: r.width, height: r.height, x: left + r.width / 2 };
  };
  const placed = new Map();
  const at = (node) => {
    if (!placed.has(node)) placed.set(node, place(node));
    return placed.get(node);
  };
  // Where an arrow ends: the box, or the frame of its replicas when they take more than
  // one row (an arrow to a box of the second row would run behind those of the first).
  const end = (box) => {
    const group = box.closest(".group");
    return group && group.classList.contains("rows") ? group : box;
  };
  const arrows = [];
  for (const { from, to, lanes: through } of routes) {
    const a = boxes.get(from);
    const b = boxes.get(to);
    if (!a || !b || !a.offsetParent || !b.offsetParent) continue;
    const [ea, eb] = [end(a), end(b)];
    let [ra, rb] = [at(ea), at(eb)];
    const via = through.map((name) => lanes.get(name)).filter((lane) => lane && lane.offsetParent).map(place);
    let way = rb.top >= ra.bottom - 1 ? "down" : rb.bottom <= ra.top + 1 ? "up" : "across";
    if (way === "across") [ra, rb] = [at(a), at(b)]; // within one layer: box to box
    // Ports are shared by an end (a box, or a frame); `ax`, `bx`: the boxes, to sort by.
    arrows.push({ from, to, ea, eb, ra, rb, via, way, start: ra.x, end: rb.x, ax: at(a).x, bx: at(b).x });
  }
  // Side by side along the bottom of each caller, and the top of each callee, in the
  // order of where they go (come from), then of the box they leave (come into).
  const spread = (key, rect, order, port) => {
    const ends = new Map();
    for (const arrow of arrows.filter((a) => a.way === "down")) {
      if (!ends.has(arrow[key])) ends.set(arrow[key], []);
      ends.get(arrow[key]).push(arrow);
    }
    for (const list of ends.values()) {
      list.sort(order);
      list.forEach((arrow, i) => {
        const r = arrow[rect];
        arrow[port] = r.left + r.width * (0.2 + (0.6 * (i + 0.5)) / list.length);
      });
    }
  };
  const first = (a) => (a.via.length ? a.via[0].x : a.bx);
  const last = (a) => (a.via.length ? a.via[a.via.length - 1].x : a.start);
  spread("ea", "ra", (p, q) => first(p) - first(q) || p.ax - q.ax, "start");
  spread("eb", "rb", (p, q) => p.bx - q.bx || last(p) - last(q), "end");
  const paths = [defs];
  for (const arrow of arrows) {
    const { ra, rb } = arrow;
    let d;
    if (arrow.way === "down") {
      let x = arrow.start;
      let y = ra.bottom;
      d = `M ${x} ${y}`;
      const curve = (x2, y2) => {
        const m = (y + y2) / 2;
        d += ` C ${x} ${m}, ${x2} ${m}, ${x2} ${y2}`;
        [x, y] = [x2, y2];
      };
      for (const lane of arrow.via) {
        curve(lane.x, lane.top);
        d += ` L ${lane.x} ${lane.bottom}`;
        y = lane.bottom;
      }
      curve(arrow.end, rb.top - 1);
    } else if (arrow.way === "up") {
      const m = (ra.top + rb.bottom) / 2;
      d = `M ${ra.x} ${ra.top} C ${ra.x} ${m}, ${rb.x} ${m}, ${rb.x} ${rb.bottom + 1}`;
    } else {
      const rightwards = rb.left >= ra.x;
      const x1 = rightwards ? ra.right : ra.left;
      const x2 = rightwards ? rb.left - 1 : rb.right + 1;
      const y1 = ra.top + Math.min(ra.height / 2, 30);
      const y2 = rb.top + Math.min(rb.height / 2, 30);
      const m = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${m} ${y1}, ${m} ${y2}, ${x2} ${y2}`;
    }
    const state = edgeState(arrow.from, arrow.to);
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", `edge ${state}`);
    path.setAttribute("marker-end", `url(#head-${state})`);
    path.dataset.from = arrow.from;
    path.dataset.to = arrow.to;
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

// --- the load: an open load the page starts, steers and stops ---------------------------

function sayLoad(text, problem = false) {
  const message = document.getElementById("load-message");
  message.textContent = text;
  message.classList.toggle("problem", problem);
}

function setLoadLimits(limits) {
  loadLimits = { ...limits, flows: limits.flows || [] };
  document.getElementById("load-rate-slider").max = String(limits.max_rate);
  const flows = loadLimits.flows;
  document.getElementById("load-hint").textContent =
    `An open load through the load balancer: Poisson arrivals at the rate set here ` +
    `(at most ${limits.max_rate}/s), sent whatever is in flight (beyond ` +
    `${limits.max_in_flight} in flight an arrival is dropped); p50 and p99 of the last ` +
    `${limits.window_s} s of answers.` +
    (flows.length
      ? ` With a flow, each arrival is one run of it: the rate is of runs a second, and ` +
        `the ${limits.max_in_flight} in flight are runs.`
      : "");
  // The scenario's flows, offered beside the mix; none: no choice shown.
  const select = document.getElementById("load-flow");
  const chosen = select.value;
  const options = flows.map((f) =>
    el("option", { value: f.name }, `${f.name} (${plural(f.steps.length, "step")}, ` +
      `${plural(f.requests, "request")} a run)`));
  select.replaceChildren(el("option", { value: "" }, "none: the mix"), ...options);
  if (flows.some((f) => f.name === chosen)) select.value = chosen;
  for (const node of document.querySelectorAll("#load-form .flow-part")) node.hidden = !flows.length;
  chooseFlow();
}

function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}

// A flow chosen: the mix is not sent (a start refuses both), and the rate is of runs.
function chooseFlow() {
  const flow = document.getElementById("load-flow").value;
  document.getElementById("load-mix").disabled = Boolean(flow);
  document.getElementById("load-rate-label").textContent = flow ? "Rate (runs/s)" : "Rate (requests/s)";
}

// "data=1, /data?key=7=2" -> {data: 1, "/data?key=7": 2}: the last "=" of each part
// gives its weight (1 without one). The server checks the names and the weights.
function parseMix(text) {
  const mix = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.lastIndexOf("=");
    const weight = at > 0 ? Number(part.slice(at + 1)) : 1;
    if (at > 0 && part.slice(at + 1).trim() !== "" && Number.isFinite(weight)) {
      mix[part.slice(0, at).trim()] = weight;
    } else {
      mix[part] = 1;
    }
  }
  return mix;
}

// The rate as typed, or null (said) when it is no number; the server says what it refuses.
function typedRate() {
  const box = document.getElementById("load-rate");
  const value = Number(box.value);
  if (box.value === "" || !Number.isFinite(value)) {
    sayLoad("Rate: give a number of requests a second.", true);
    return null;
  }
  return value;
}

// What each figure is called: of requests, or of runs when the load runs a flow.
const LOAD_LABELS = {
  rate: ["rate", "rate (runs)"],
  sent: ["sent", "runs started"],
  answered: ["answered", "runs done"],
  failed: ["failed", "runs failed"],
  "in-flight": ["in flight", "runs in flight"],
  dropped: ["dropped", "runs dropped"],
  "answered-rate": ["answers/s", "runs done/s"],
  p50: ["p50", "run p50"],
  p99: ["p99", "run p99"],
};

function showLoad(load) {
  loadRunning = Boolean(load.running);
  const panel = document.getElementById("load");
  panel.dataset.running = String(loadRunning);
  document.getElementById("load-start").disabled = loadRunning;
  document.getElementById("load-stop").disabled = !loadRunning;
  document.getElementById("load-flow").disabled = loadRunning;
  const put = (field, text) => {
    const node = panel.querySelector(`[data-load="${field}"]`);
    if (node.textContent !== text) node.textContent = text;
  };
  const ofRuns = load.flow ? 1 : 0;
  for (const [field, names] of Object.entries(LOAD_LABELS)) {
    const node = panel.querySelector(`[data-load-label="${field}"]`);
    if (node.textContent !== names[ofRuns]) node.textContent = names[ofRuns];
  }
  showSteps(load);
  put("rate", load.rate == null ? "–" : loadRunning ? `${load.rate}/s` : `${load.rate}/s, stopped`);
  put("sent", count(load.sent));
  put("answered", count(load.answered));
  put("failed", count(load.failed));
  put("in-flight", count(load.in_flight));
  put("dropped", count(load.dropped));
  put("answered-rate", rate(load.answered_rate));
  put("p50", milliseconds(load.p50_ms));
  put("p99", milliseconds(load.p99_ms));
  panel.querySelector('[data-load="failed"]').classList.toggle("problem", (load.failed || 0) > 0);
  panel.querySelector('[data-load="dropped"]').classList.toggle("problem", (load.dropped || 0) > 0);
}

// A flow's steps, a row each: requests since the start, and the window's p50 and p99.
function showSteps(load) {
  const table = document.getElementById("load-steps");
  const steps = load.flow ? load.steps || [] : [];
  table.hidden = !steps.length;
  if (!steps.length) return;
  const caption = `${load.flow}: each step's requests since the start; p50 and p99 of ` +
    `its answers of the last ${load.window_s} s`;
  const captionNode = document.getElementById("load-steps-caption");
  if (captionNode.textContent !== caption) captionNode.textContent = caption;
  const body = table.tBodies[0];
  const names = steps.map((s) => s.name).join("\n");
  if (body.dataset.steps !== names) {
    body.dataset.steps = names;
    body.replaceChildren(...steps.map((s) => el("tr", { "data-step": s.name },
      el("th", { scope: "row" }, s.name), el("td", {}, s.request),
      ...["count", "failed", "p50", "p99"].map((col) => el("td", { "data-col": col })))));
  }
  steps.forEach((s, i) => {
    const row = body.rows[i];
    const put = (col, text) => {
      const cell = row.querySelector(`[data-col="${col}"]`);
      if (cell.textContent !== text) cell.textContent = text;
    };
    put("count", count(s.count));
    put("failed", count(s.failed));
    put("p50", milliseconds(s.p50_ms));
    put("p99", milliseconds(s.p99_ms));
    row.querySelector('[data-col="failed"]').classList.toggle("problem", s.failed > 0);
  });
}

async function startLoad() {
  const rateValue = typedRate();
  if (rateValue === null) return;
  const flow = document.getElementById("load-flow").value;
  const body = flow
    ? { rate: rateValue, flow }
    : { rate: rateValue, mix: parseMix(document.getElementById("load-mix").value) };
  const answer = await post("/api/load/start", body, sayLoad);
  if (!answer) return;
  showLoad(answer);
  if (answer.flow) {
    sayLoad(`Load started at ${answer.rate} runs/s of the flow ${answer.flow} (seed ${answer.seed}).`);
    return;
  }
  const parts = Object.entries(answer.mix).map(([name, w]) => `${name} ×${w}`);
  sayLoad(`Load started at ${answer.rate}/s: ${parts.join(", ")} (seed ${answer.seed}).`);
}

async function steerLoad() {
  const rateValue = typedRate();
  if (rateValue === null || !loadRunning) return;
  const answer = await post("/api/load/rate", { rate: rateValue }, sayLoad);
  if (!answer) return;
  showLoad(answer);
  sayLoad(answer.flow
    ? `The load now starts ${answer.rate} runs of ${answer.flow} a second.`
    : `The load now sends ${answer.rate} requests a second.`);
}

async function stopLoad() {
  const answer = await post("/api/load/stop", undefined, sayLoad);
  if (!answer) return;
  showLoad(answer);
  const cut = answer.cut ? `; ${count(answer.cut)} still in flight were cut` : "";
  if (answer.flow) {
    sayLoad(`Load stopped: ${count(answer.sent)} runs started, ${count(answer.answered)} ` +
      `ran to their end${cut}.`);
    return;
  }
  sayLoad(`Load stopped: ${count(answer.sent)} sent, ${count(answer.answered)} answered${cut}.`);
}

function setUpLoad() {
  const slider = document.getElementById("load-rate-slider");
  const box = document.getElementById("load-rate");
  document.getElementById("load-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (loadRunning) steerLoad();
    else startLoad();
  });
  document.getElementById("load-stop").addEventListener("click", stopLoad);
  document.getElementById("load-flow").addEventListener("change", chooseFlow);
  // The slider moves the number as it goes, and steers a running load when let go.
  slider.addEventListener("input", () => {
    box.value = slider.value;
  });
  slider.addEventListener("change", () => {
    box.value = slider.value;
    steerLoad();
  });
  // A number typed (any: the server says what it refuses) steers it when changed.
  box.addEventListener("change", () => {
    const value = Number(box.value);
    if (Number.isFinite(value)) slider.value = String(Math.min(Math.max(value, 0), loadLimits.max_rate));
    steerLoad();
  });
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
  setUpLoad();
  window.addEventListener("hashchange", () => {
    if (takeTokenFromAddress()) say("The buttons now use the admin token from the link.");
  });
  // Sized again for a new width (the window's, or a scroll bar come or gone), and the
  // arrows drawn again whenever the boxes move; a frame later, not inside the observer.
  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      arrange();
      drawArrows();
    });
  }).observe(document.getElementById("layers"));
  document.addEventListener("keydown", (event) => {
    const open = document.querySelector(".box.open");
    if (event.key === "Escape" && open) {
      openDetail(open, false);
      open.querySelector(".more").focus();
    }
  });
  try {
    await loadTopology();
  } catch (error) {
    status(`cannot load the topology: ${error.message}`, "stopped");
    return;
  }
  listen();
});
