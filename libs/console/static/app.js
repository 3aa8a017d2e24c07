// cefiot console: polls the services' REST APIs through /api/<target>/ and
// renders the pipeline, nodes, assignments, bridge, cameras and events.
// Plain JavaScript, no build step, no third-party code.
"use strict";

const POLL_MS = 1500;
const STAGES = ["camera", "capture", "enrich", "bridge", "sink"];
const STATUS_PATH = { capture: "/v1/capture/status", enrich: "/v1/enrich/status", bridge: "/v1/bridge/status", sink: "/v1/sink/status" };
// The counter that measures what a stage hands to the next one.
const OUT_COUNTER = { camera: ["capture", "frames"], capture: ["capture", "published"], enrich: ["enrich", "records_out"], bridge: ["bridge", "records_forwarded"], sink: ["sink", "stored"] };
const LINK_LABEL = { camera: "frames read", capture: "frames.raw", enrich: "frames.enriched", bridge: "WAN" };

const state = {
  targets: [], byHost: new Map(), sites: new Map(), // site -> {scheduler, leader, nodes, workers, workloads, assignments}
  statuses: new Map(), // target -> status JSON (bridge: GetBridgeStatus)
  prev: new Map(), rates: new Map(), // "target/counter" -> {v, t} / per second
  cameras: [], events: [], thumbs: new Map(), sink: null, bridgeTarget: null, cameraNames: new Set(),
  filter: { camera: "", since: "", until: "" },
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class APIError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(target, path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {} };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const resp = await fetch(`/api/${encodeURIComponent(target)}${path}`, init);
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { message: text.trim() }; }
  if (!resp.ok) throw new APIError(resp.status, body);
  return body;
}

// ---- formatting ----
const num = (v) => (v === undefined || v === null || v === "" ? 0 : Number(v));
function bytes(n) {
  n = num(n);
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function when(ts) {
  if (!ts) return "never";
  const d = new Date(ts);
  if (isNaN(d) || d.getTime() <= 0) return "never";
  return d.toLocaleString();
}
function ago(ts) {
  if (!ts) return "never";
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (!(s >= 0)) return when(ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return when(ts);
}
const rate = (r) => (r === undefined ? "–" : `${r.toFixed(r < 10 ? 1 : 0)}/s`);
function badge(kind, text) { return el("span", { class: `badge ${kind}` }, text); }
function hostOf(u) { try { return new URL(u).host; } catch { return u; } }

// ---- data ----
async function loadTargets() {
  const body = await api_raw("/api/targets");
  state.targets = body.targets || [];
  state.byHost = new Map(state.targets.map((t) => [hostOf(t.url), t.name]));
}
async function api_raw(path) {
  const resp = await fetch(path);
  if (!resp.ok) throw new APIError(resp.status, null);
  return resp.json();
}

async function pollSites() {
  const schedulers = state.targets.filter((t) => t.name.startsWith("scheduler-"));
  const seen = new Set();
  const sites = new Map();
  await Promise.all(schedulers.map(async (t) => {
    try {
      const leader = await api(t.name, "/v1/leader");
      const site = leader.site || t.name.replace(/^scheduler-/, "");
      if (seen.has(site)) return;
      seen.add(site);
      const [nodes, workers, workloads, assignments] = await Promise.all([
        api(t.name, "/v1/nodes"), api(t.name, "/v1/workers"), api(t.name, "/v1/workloads"), api(t.name, "/v1/assignments"),
      ]);
      sites.set(site, { site, scheduler: t.name, leader: leader.leaderId, nodes: nodes.nodes || [], workers: workers.workers || [],
        workloads: workloads.workloads || [], assignments: assignments.assignments || [] });
    } catch (e) { /* another replica of the site may answer */ }
  }));
  state.sites = new Map([...sites.entries()].sort((a, b) => (a[0] === "cloud") - (b[0] === "cloud") || a[0].localeCompare(b[0])));
}

function allWorkers() { return [...state.sites.values()].flatMap((s) => s.workers.map((w) => ({ ...w, site: s.site }))); }
function allAssignments() { return [...state.sites.values()].flatMap((s) => s.assignments.map((a) => ({ ...a, site: s.site }))); }
function workerTarget(workerId) {
  const w = allWorkers().find((x) => x.id === workerId);
  return w ? state.byHost.get(w.adminHttpAddress) || null : null;
}
function kindOf(workload) {
  for (const s of state.sites.values()) {
    const wl = s.workloads.find((x) => x.name === workload);
    if (wl) return wl.kind;
  }
  return workload.split(":")[0];
}

async function pollStatuses() {
  const now = performance.now() / 1000;
  const statuses = new Map();
  await Promise.all(allWorkers().map(async (w) => {
    const target = state.byHost.get(w.adminHttpAddress);
    const kind = (w.kinds || [])[0];
    if (!target || !STATUS_PATH[kind]) return;
    try {
      const st = await api(target, STATUS_PATH[kind]);
      statuses.set(target, { kind, body: st, worker: st.status || {} });
      for (const [name, v] of Object.entries((st.status || {}).counters || {})) {
        const key = `${target}/${name}`;
        const p = state.prev.get(key);
        if (p && now > p.t) state.rates.set(key, Math.max(0, (num(v) - p.v) / (now - p.t)));
        state.prev.set(key, { v: num(v), t: now });
      }
    } catch (e) { /* shown as not reporting */ }
  }));
  state.statuses = statuses;
}

function assignmentsOfKind(kind) { return allAssignments().filter((a) => kindOf(a.workload) === kind); }

async function pollData() {
  const bridgeA = assignmentsOfKind("bridge")[0];
  state.bridgeTarget = bridgeA ? workerTarget(bridgeA.workerId) : null;
  const sinkA = assignmentsOfKind("sink")[0];
  state.sink = sinkA ? workerTarget(sinkA.workerId) : null;
  const captureTargets = [...new Set(assignmentsOfKind("capture").map((a) => workerTarget(a.workerId)).filter(Boolean))];
  const jobs = [];
  jobs.push(Promise.all(captureTargets.map((t) => api(t, "/v1/cameras").then((r) => r.cameras || []).catch(() => [])))
    .then((lists) => {
      const byId = new Map();
      for (const c of lists.flat()) if (c.state && (c.state.running || !byId.has(c.cameraId))) byId.set(c.cameraId, c);
      // A camera whose source ended (a finished video file) is no longer
      // listed by capture; its workload still names it.
      for (const a of assignmentsOfKind("capture")) {
        const id = a.workload.replace(/^capture:/, "");
        if (!byId.has(id)) byId.set(id, { cameraId: id, state: null, ended: true });
      }
      state.cameras = [...byId.values()].sort((a, b) => a.cameraId.localeCompare(b.cameraId));
    }));
  if (state.sink) {
    const q = new URLSearchParams({ page_size: "48" });
    if (state.filter.camera) q.set("camera_id", state.filter.camera);
    if (state.filter.since) q.set("start_time", new Date(state.filter.since).toISOString());
    if (state.filter.until) q.set("end_time", new Date(state.filter.until).toISOString());
    jobs.push(api(state.sink, `/v1/events?${q}`).then(async (r) => {
      const events = (r.events || []).slice().sort((a, b) => new Date(b.startTime) - new Date(a.startTime));
      // Thumbnails only where the sink has one (else the full frame).
      await Promise.all(events.filter((e) => e.bestFrameId && !state.thumbs.has(e.bestFrameId)).slice(0, 12).map((e) =>
        api(state.sink, `/v1/frames?event_id=${encodeURIComponent(e.eventId)}&page_size=500`).then((fr) => {
          for (const f of fr.frames || []) state.thumbs.set(f.frameId, num(f.thumbnailSizeBytes) > 0);
          if (!state.thumbs.has(e.bestFrameId)) state.thumbs.set(e.bestFrameId, false);
        }).catch(() => {})));
      state.events = events;
    }).catch(() => {}));
    jobs.push(api(state.sink, "/v1/stats").then((r) => { state.stats = r; }).catch(() => {}));
  }
  await Promise.all(jobs);
}

// ---- rendering ----
function stageInfo(stage) {
  const kind = stage === "camera" ? "capture" : stage;
  const as = assignmentsOfKind(kind);
  const [svc, counter] = OUT_COUNTER[stage];
  let r;
  for (const a of as) {
    const t = workerTarget(a.workerId);
    const v = t && state.rates.get(`${t}/${counter}`);
    if (v !== undefined && v !== null) r = (r || 0) + v;
  }
  let health = as.length ? "ok" : "down";
  const problems = [];
  if (stage === "camera") {
    if (!state.cameras.length) health = "down";
    else if (state.cameras.every((c) => c.ended)) health = "idle";
    for (const c of state.cameras) {
      if (c.ended) continue;
      if (!c.state || !c.state.online) { health = "degraded"; problems.push(`${c.cameraId} offline${c.state && c.state.lastError ? `: ${c.state.lastError}` : ""}`); }
    }
  } else {
    for (const a of as) {
      const t = workerTarget(a.workerId);
      const st = t && state.statuses.get(t);
      if (!st) { health = "degraded"; problems.push(`${a.workload}: worker not reporting`); continue; }
      const wl = (st.worker.workloads || []).find((x) => x.name === a.workload);
      if (wl && wl.lastError) { health = "degraded"; problems.push(`${a.workload}: ${wl.lastError}`); }
    }
  }
  const nodes = [...new Set(as.map((a) => a.node))];
  const sites = [...new Set(as.map((a) => a.site))];
  return { stage, svc, health, problems, nodes, sites, rate: r };
}

function renderGraph() {
  const g = $("#graph");
  const items = [];
  STAGES.forEach((stage, i) => {
    const info = stageInfo(stage);
    const detail = stage === "camera"
      ? state.cameras.map((c) => `${c.cameraId} ${c.ended ? "source ended" : c.state && c.state.online ? "online" : "offline"}`).join(", ") || "none"
      : (info.nodes.length ? "" : "unassigned");
    items.push(el("li", { class: `stage ${info.health}`, "data-stage": stage, "data-health": info.health, "aria-label": `${stage}: ${info.health}, node ${info.nodes.join(", ") || "none"}` },
      el("div", { class: "site" }, info.sites.join(", ") || "–"),
      el("h3", {}, stage),
      el("dl", {},
        el("dt", {}, "node"), el("dd", { class: "node" }, info.nodes.join(", ") || "–"),
        el("dt", {}, "health"), el("dd", {}, badge(info.health, info.health)),
        stage === "camera" ? [el("dt", {}, "cameras"), el("dd", {}, detail)] : null,
        stage === "sink" ? [el("dt", {}, "stored"), el("dd", {}, rate(info.rate))] : null,
        info.problems.length ? [el("dt", {}, "problem"), el("dd", {}, info.problems.join("; "))] : null)));
    if (i < STAGES.length - 1) {
      items.push(el("li", { class: `link${stage === "bridge" ? " wan" : ""}`, "aria-label": `${LINK_LABEL[stage]}: ${rate(info.rate)}` },
        el("span", {}, LINK_LABEL[stage]), el("br"), el("span", { class: "rate" }, rate(info.rate))));
    }
  });
  g.replaceChildren(...items);
}

function table(caption, head, rows) {
  return el("div", { class: "scroll" }, el("table", {},
    el("caption", { class: "muted" }, caption),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: head.length }, "none")))));
}

function renderNodes() {
  const out = [];
  for (const s of state.sites.values()) {
    out.push(el("h3", {}, `Site ${s.site}`, el("span", { class: "muted" }, ` · scheduler leader ${s.leader || "none"}`)));
    out.push(table(`Nodes of site ${s.site}`, ["node", "state", "workers", "workloads", "actions"], s.nodes.map((n) => {
      const st = n.drained ? badge("warn", "drained") : n.cordoned ? badge("warn", "cordoned") : badge("ok", "schedulable");
      return el("tr", { "data-node": n.name },
        el("th", { scope: "row" }, n.name),
        el("td", {}, st, n.reason ? el("div", { class: "muted" }, n.reason) : null),
        el("td", {}, (n.workerIds || []).length),
        el("td", { class: "node-workloads" }, (n.workloads || []).join(", ") || "–"),
        el("td", {}, el("div", { class: "row-actions" },
          n.cordoned
            ? el("button", { type: "button", "aria-label": `Uncordon node ${n.name}`, onclick: () => act(`Uncordon node ${n.name} (site ${s.site})?`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/uncordon`, "POST", {}) }, "Uncordon")
            : el("button", { type: "button", "aria-label": `Cordon node ${n.name}`, onclick: () => act(`Cordon node ${n.name} (site ${s.site})? No new workloads go there.`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/cordon`, "POST", { reason: "console" }) }, "Cordon"),
          el("button", { type: "button", class: "danger", "aria-label": `Drain node ${n.name}`, onclick: () => act(`Drain node ${n.name} (site ${s.site})? Every workload moves off it.`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/drain`, "POST", { reason: "console" }, (r) => `moved ${(r.moved || []).map((m) => `${m.workload} → ${m.node}`).join(", ") || "nothing"}${(r.notMoved || []).length ? `; not moved: ${r.notMoved.join(", ")}` : ""}`) }, "Drain"))));
    })));
    out.push(table(`Workers of site ${s.site}`, ["worker", "node", "kinds", "lease", "registered", "reporting"], s.workers.map((w) => {
      const t = state.byHost.get(w.adminHttpAddress);
      return el("tr", {},
        el("th", { scope: "row" }, w.id), el("td", {}, w.node), el("td", {}, (w.kinds || []).join(", ")),
        el("td", {}, `${w.leaseId} (ttl ${w.leaseTtlSeconds}s)`), el("td", {}, ago(w.registeredTime)),
        el("td", {}, t && state.statuses.has(t) ? badge("ok", "yes") : badge("down", "no")));
    })));
  }
  $("#nodes-body").replaceChildren(...(out.length ? out : [el("p", {}, "No scheduler answers.")]));
}

function renderAssignments() {
  const out = [];
  for (const s of state.sites.values()) {
    const byName = new Map(s.assignments.map((a) => [a.workload, a]));
    out.push(table(`Workloads of site ${s.site}`, ["workload", "kind", "node", "epoch", "reason", "move to node"], s.workloads.map((wl) => {
      const a = byName.get(wl.name);
      const selId = `move-${s.site}-${wl.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const others = s.nodes.filter((n) => !a || n.name !== a.node);
      return el("tr", { "data-workload": wl.name },
        el("th", { scope: "row" }, wl.name), el("td", {}, wl.kind),
        el("td", { class: "assigned-node" }, a ? a.node : badge("down", "unassigned")),
        el("td", {}, a ? a.epoch : "–"), el("td", {}, a ? a.reason || "" : ""),
        el("td", {}, others.length ? el("form", { class: "inline", onsubmit: (ev) => {
          ev.preventDefault();
          const node = ev.target.elements.node.value;
          act(`Move ${wl.name} to node ${node} (site ${s.site})?`, s.scheduler, `/v1/workloads/${encodeURIComponent(wl.name)}/move`, "POST", { node }, () => `${wl.name} moving to ${node}`);
        } },
          el("label", { for: selId, class: "visually-hidden" }, `Node for ${wl.name}`),
          el("select", { id: selId, name: "node" }, others.map((n) => el("option", { value: n.name }, n.name))),
          el("button", { type: "submit", "aria-label": `Move ${wl.name}` }, "Move")) : el("span", { class: "muted" }, "no other node")));
    })));
  }
  $("#assignments-body").replaceChildren(...out);
}

function renderBridge() {
  const st = state.bridgeTarget && state.statuses.get(state.bridgeTarget);
  if (!st) { $("#bridge-body").replaceChildren(el("p", {}, badge("down", "no bridge reporting"))); return; }
  const b = st.body;
  const up = b.link === "LINK_STATE_UP";
  const rows = [
    ["link", [badge(up ? "ok" : "down", up ? "up" : "down"), ` since ${when(b.linkSince)}`, b.linkError ? ` (${b.linkError})` : ""]],
    ["state", b.paused ? badge("warn", "paused") : badge("ok", "forwarding")],
    ["runs on", `${st.worker.node || "?"} (${st.worker.workerId || "?"})`],
    ["backlog", `${num(b.backlogRecords)} records, ${bytes(b.backlogBytes)}`],
    ["drain estimate", b.drainEstimate || "–"],
    ["throughput", `${bytes(b.throughputBytesPerSecond)}/s`],
    ["rate limit", num(b.rateLimitBytesPerSecond) ? `${bytes(b.rateLimitBytesPerSecond)}/s` : "none"],
    ["gaps", `${num(b.gaps)} (${num(b.gapOffsets)} offsets lost)`],
    ["last commit", when(b.lastCommitTime)],
  ];
  $("#bridge-body").replaceChildren(el("dl", { class: "kv", id: "bridge-kv" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)])));
}

function renderCameras() {
  const stats = new Map(((state.stats && state.stats.cameras) || []).map((c) => [c.cameraId, c]));
  const sel = $("#filter-camera");
  for (const c of [...state.cameras.map((c) => c.cameraId), ...stats.keys()]) {
    if (!state.cameraNames.has(c)) { state.cameraNames.add(c); sel.append(el("option", { value: c }, c)); }
  }
  $("#cameras-body").replaceChildren(table("Cameras", ["camera", "state", "fps", "frames", "motion frames", "events", "last motion stored"], state.cameras.map((c) => {
    const s = c.state || {};
    const fps = (c.settings && c.settings.fps) ? Number(c.settings.fps) : null;
    return el("tr", { "data-camera": c.cameraId },
      el("th", { scope: "row" }, c.cameraId),
      el("td", {}, c.ended ? badge("warn", "source ended") : s.online ? badge("ok", "online") : badge("down", s.running ? "offline" : "stopped"), s.lastError ? el("div", { class: "muted" }, s.lastError) : null),
      el("td", {}, fps ? fps.toFixed(1) : "source rate"), el("td", {}, num(s.frames)), el("td", {}, num(s.motionFrames)),
      el("td", {}, num(s.events)), el("td", {}, ago((stats.get(c.cameraId) || {}).newestTime)));
  })));
}

function thumbURL(frameId) {
  const kind = state.thumbs.get(frameId) ? "thumbnail" : "jpeg";
  return `/api/${encodeURIComponent(state.sink)}/v1/frames/${encodeURIComponent(frameId)}/${kind}`;
}

function renderGallery() {
  const g = $("#gallery");
  const events = state.events;
  $("#events-summary").textContent = state.sink
    ? `${events.length} event${events.length === 1 ? "" : "s"} shown${state.stats ? ` · ${num(state.stats.events)} stored in all, ${num(state.stats.frames)} frames (${bytes(state.stats.bytes)})` : ""}`
    : "sink not reachable";
  // Keep existing items (and their loaded images and focus) where possible.
  const want = events.filter((e) => e.bestFrameId && state.thumbs.has(e.bestFrameId));
  const key = want.map((e) => `${e.eventId}:${e.bestFrameId}:${state.thumbs.get(e.bestFrameId)}:${e.frameCount}:${e.ended}`).join("|");
  if (g.dataset.key === key) return;
  g.dataset.key = key;
  g.replaceChildren(...want.map((e) => el("li", { "data-event": e.eventId },
    el("button", { type: "button", "aria-label": `Open event ${e.eventId} of ${e.cameraId}, ${when(e.startTime)}`, onclick: () => openEvent(e) },
      el("img", { src: thumbURL(e.bestFrameId), alt: `best frame of event ${e.eventId}`, loading: "lazy" }),
      el("span", {}, `${e.cameraId} · ${when(e.startTime)}`),
      el("span", { class: "muted" }, `${num(e.frameCount)} frames · peak ${Number(e.peakScore || 0).toFixed(3)}${e.ended ? "" : " · ongoing"}`)))));
}

async function openEvent(e) {
  const d = $("#event-dialog");
  $("#event-title").textContent = `Event ${e.eventId}`;
  $("#event-meta").textContent = `${e.cameraId} · ${when(e.startTime)} – ${e.ended ? when(e.endTime) : "ongoing"} · ${num(e.frameCount)} frames`;
  const list = $("#event-frames");
  list.replaceChildren(el("li", {}, "loading frames…"));
  if (!d.open) d.showModal();
  try {
    const r = await api(state.sink, `/v1/frames?event_id=${encodeURIComponent(e.eventId)}&page_size=500`);
    const frames = (r.frames || []).sort((a, b) => num(a.eventFrameIndex) - num(b.eventFrameIndex));
    list.replaceChildren(...frames.map((f) => {
      const w = num(f.width) || 1, h = num(f.height) || 1;
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("aria-hidden", "true");
      for (const b of f.boxes || []) {
        const rc = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        rc.setAttribute("x", num(b.x)); rc.setAttribute("y", num(b.y)); rc.setAttribute("width", num(b.width)); rc.setAttribute("height", num(b.height));
        svg.append(rc);
      }
      return el("li", { "data-frame": f.frameId }, el("figure", {},
        el("div", { class: "framebox" },
          el("img", { src: `/api/${encodeURIComponent(state.sink)}/v1/frames/${encodeURIComponent(f.frameId)}/jpeg`, alt: `frame ${f.frameId}, ${(f.boxes || []).length} motion boxes`, width: w, height: h, loading: "lazy" }),
          svg),
        el("figcaption", {}, `#${num(f.eventFrameIndex)} · ${when(f.captureTime)} · score ${Number(f.motionScore || 0).toFixed(3)} · ${(f.boxes || []).length} boxes`)));
    }));
    if (!frames.length) list.replaceChildren(el("li", {}, "no frames stored for this event yet"));
  } catch (err) {
    list.replaceChildren(el("li", { role: "alert" }, `cannot list frames: ${err.message}`));
  }
}

// ---- actions ----
function confirmAction(text) {
  const d = $("#confirm-dialog");
  $("#confirm-text").textContent = text;
  d.returnValue = "cancel";
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
    $("#confirm-cancel").focus();
  });
}

function showError(msg) {
  const e = $("#error");
  e.textContent = msg;
  e.hidden = false;
  $("#notice").hidden = true;
}
function showNotice(msg) {
  const n = $("#notice");
  n.textContent = msg;
  n.hidden = false;
  $("#error").hidden = true;
}

async function act(question, target, path, method, body, describe) {
  if (!target) { showError("no service to send this to"); return; }
  if (!(await confirmAction(question))) return;
  try {
    const r = await api(target, path, { method, body });
    showNotice(`done: ${describe ? describe(r || {}) : question.replace(/\?.*$/, "")}`);
  } catch (err) {
    showError(`refused${err.status ? ` (HTTP ${err.status})` : ""}: ${err.message}`);
  }
  kick();
}

function wireControls() {
  $("#bridge-pause").addEventListener("click", () => act("Pause the bridge? Frames queue up at the edge.", state.bridgeTarget, "/v1/bridge/pause", "POST", {}));
  $("#bridge-resume").addEventListener("click", () => act("Resume the bridge?", state.bridgeTarget, "/v1/bridge/resume", "POST", {}));
  $("#rate-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("#rate-input").value.trim();
    act(`Set the bridge rate limit to ${v} bytes/s?`, state.bridgeTarget, "/v1/bridge/rate-limit", "PUT", { bytesPerSecond: v });
  });
  $("#event-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.filter = { camera: $("#filter-camera").value, since: $("#filter-since").value, until: $("#filter-until").value };
    $("#gallery").dataset.key = "";
    kick();
  });
  $("#event-close").addEventListener("click", () => $("#event-dialog").close());
}

// ---- loop ----
let timer = null, running = false, again = false;
function kick() { if (running) { again = true; return; } clearTimeout(timer); tick(); }

async function tick() {
  running = true;
  try {
    if (!state.targets.length) await loadTargets();
    await pollSites();
    await pollStatuses();
    await pollData();
    render();
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()} · ${state.sites.size} site${state.sites.size === 1 ? "" : "s"}`;
    document.body.dataset.ready = "true";
  } catch (err) {
    $("#updated").textContent = `cannot reach the console server: ${err.message}`;
  } finally {
    running = false;
    timer = setTimeout(tick, again ? 0 : POLL_MS);
    again = false;
  }
}

function render() {
  renderGraph();
  renderNodes();
  renderAssignments();
  renderBridge();
  renderCameras();
  renderGallery();
}

// The edge scheduler's watch stream (a streaming gateway call): refresh at
// once when an assignment changes instead of waiting for the next poll.
async function watchAssignments() {
  for (;;) {
    const s = [...state.sites.values()][0];
    if (s) {
      try {
        const resp = await fetch(`/api/${encodeURIComponent(s.scheduler)}/v1/assignments/watch`);
        if (resp.ok && resp.body) {
          const reader = resp.body.getReader();
          for (;;) {
            const { done } = await reader.read();
            if (done) break;
            kick();
          }
        }
      } catch { /* reconnect below */ }
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

wireControls();
tick();
watchAssignments();
