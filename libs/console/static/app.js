// cefiot console: renders the pipeline, nodes, assignments, bridge and
// cameras from the console server's snapshot stream (server-sent events,
// /api/stream, gathered from the services' REST APIs), and lists events and
// drives actions through the REST APIs (/api/<target>/...).
// Plain JavaScript, no build step, no third-party code.
"use strict";

const STAGES = ["camera", "capture", "enrich", "bridge", "sink"];
// The counter that measures what a stage hands to the next one.
const OUT_COUNTER = { camera: ["capture", "frames"], capture: ["capture", "published"], enrich: ["enrich", "records_out"], bridge: ["bridge", "records_forwarded"], sink: ["sink", "stored"] };
// The links between stages: topic names come with each snapshot (the
// server takes them from the pipeline's one list of names).
const LINK_LABEL = { camera: "frames read", bridge: "WAN" };
const linkLabel = (stage) => LINK_LABEL[stage] || state.topics[stage] || stage;
const GALLERY_PAGE = 48;

const state = {
  targets: [], byHost: new Map(), sites: new Map(), // site -> {site, scheduler, leader, nodes, workers, workloads, assignments}
  statuses: new Map(), // target -> {kind, body, worker}
  prev: new Map(), rates: new Map(), // "target/counter" -> {v, t} / per second
  cameras: [], events: [], nextPage: "", thumbs: new Map(), sink: null, bridgeTarget: null, cameraNames: new Set(),
  stats: null, galleryKey: "", seq: 0, topics: {},
  filter: { camera: "", since: "", until: "", label: "" },
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

async function call(url, opts = {}) {
  const init = { method: opts.method || "GET", headers: {} };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const resp = await fetch(url, init);
  if (opts.raw && resp.ok) return resp;
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { message: text.trim() }; }
  if (!resp.ok) throw new APIError(resp.status, body);
  return body;
}
const api = (target, path, opts) => call(`/api/${encodeURIComponent(target)}${path}`, opts);

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
// duration formats a protobuf JSON duration ("12.5s").
function duration(d) {
  const s = parseFloat(d);
  if (!d || isNaN(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
const rate = (r) => (r === undefined ? "–" : `${r.toFixed(r < 10 ? 1 : 0)}/s`);
function badge(kind, text) { return el("span", { class: `badge ${kind}` }, text); }
function hostOf(u) { try { return new URL(u).host; } catch { return u; } }

// ---- data ----
async function loadTargets() {
  const body = await call("/api/targets");
  state.targets = body.targets || [];
  state.byHost = new Map(state.targets.map((t) => [hostOf(t.url), t.name]));
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
function assignmentsOfKind(kind) { return allAssignments().filter((a) => kindOf(a.workload) === kind); }

// applySnapshot takes one "snapshot" event of the stream.
function applySnapshot(snap) {
  const now = new Date(snap.time).getTime() / 1000;
  state.seq = snap.seq;
  state.topics = snap.topics || {};
  state.sites = new Map((snap.sites || []).map((s) => [s.site, {
    site: s.site, scheduler: s.scheduler, leader: s.leader, nodes: s.nodes || [], workers: s.workers || [],
    workloads: s.workloads || [], assignments: s.assignments || [] }]));
  const statuses = new Map();
  const cameraLists = [];
  state.stats = null;
  state.cloudSites = null;
  for (const [target, sv] of Object.entries(snap.services || {})) {
    if (sv.status) {
      statuses.set(target, { kind: sv.kind, body: sv.status, worker: sv.status.status || {} });
      for (const [name, v] of Object.entries((sv.status.status || {}).counters || {})) {
        const key = `${target}/${name}`;
        const p = state.prev.get(key);
        if (p && now > p.t) state.rates.set(key, Math.max(0, (num(v) - p.v) / (now - p.t)));
        state.prev.set(key, { v: num(v), t: now });
      }
    }
    if (sv.cameras) cameraLists.push(sv.cameras);
    if (sv.stats) state.stats = sv.stats;
    if (sv.sites) state.cloudSites = sv.sites;
  }
  state.statuses = statuses;
  const bridgeA = assignmentsOfKind("bridge")[0];
  state.bridgeTarget = bridgeA ? workerTarget(bridgeA.workerId) : null;
  const sinkA = assignmentsOfKind("sink")[0];
  // Sinks sharing a PostgreSQL index are replicas nobody assigns: any of
  // them answers.
  const sinkReplica = Object.entries(snap.services || {}).find(([, sv]) => sv.kind === "sink");
  state.sink = sinkA ? workerTarget(sinkA.workerId) : (sinkReplica ? sinkReplica[0] : null);
  const byId = new Map();
  for (const c of cameraLists.flat()) if (c.state && (c.state.running || !byId.has(c.cameraId))) byId.set(c.cameraId, c);
  // A camera whose source ended (a finished video file) is no longer
  // listed by capture; its workload still names it.
  for (const a of assignmentsOfKind("capture")) {
    const id = a.workload.replace(/^capture:/, "");
    if (!byId.has(id)) byId.set(id, { cameraId: id, state: null, ended: true });
  }
  state.cameras = [...byId.values()].sort((a, b) => a.cameraId.localeCompare(b.cameraId));
}

// The gallery is listed again when the store changed (the stream's sink
// stats) or the filter did; "Show older" pages further back.
function galleryQuery(pageToken) {
  const q = new URLSearchParams({ page_size: String(GALLERY_PAGE), newest_first: "true" });
  if (state.filter.camera) q.set("camera_id", state.filter.camera);
  if (state.filter.since) q.set("start_time", new Date(state.filter.since).toISOString());
  if (state.filter.until) q.set("end_time", new Date(state.filter.until).toISOString());
  if (state.filter.label) q.set("label", state.filter.label);
  if (pageToken) q.set("page_token", pageToken);
  return q;
}

async function loadEvents(older) {
  if (!state.sink) return;
  try {
    const r = await api(state.sink, `/v1/events?${galleryQuery(older ? state.nextPage : "")}`);
    const events = r.events || [];
    // Thumbnails only where the sink has one (else the full frame).
    await Promise.all(events.filter((e) => e.bestFrameId && !state.thumbs.has(e.bestFrameId)).map((e) =>
      api(state.sink, `/v1/frames?event_id=${encodeURIComponent(e.eventId)}&page_size=500`).then((fr) => {
        for (const f of fr.frames || []) state.thumbs.set(f.frameId, num(f.thumbnailSizeBytes) > 0);
        if (!state.thumbs.has(e.bestFrameId)) state.thumbs.set(e.bestFrameId, false);
      }).catch(() => {})));
    state.events = older ? state.events.concat(events) : events;
    state.nextPage = r.nextPageToken || "";
    $("#gallery-error").hidden = true;
  } catch (err) {
    const e = $("#gallery-error");
    e.textContent = `cannot list events: ${err.message}`;
    e.hidden = false;
  }
  renderGallery();
}

let galleryLoading = null;
function refreshGallery(force) {
  const s = state.stats || {};
  const key = `${state.sink}|${num(s.events)}|${num(s.frames)}|${JSON.stringify(state.filter)}`;
  if (!force && key === state.galleryKey) return;
  state.galleryKey = key;
  // One listing at a time; a change during it lists again after it.
  galleryLoading = (galleryLoading || Promise.resolve()).then(() => loadEvents(false));
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
      items.push(el("li", { class: `link${stage === "bridge" ? " wan" : ""}`, "aria-label": `${linkLabel(stage)}: ${rate(info.rate)}` },
        el("span", {}, linkLabel(stage)), el("br"), el("span", { class: "rate" }, rate(info.rate))));
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

// replaceIfChanged rebuilds container only when key changed, so a control
// the operator is using (focus, an open select) survives the updates.
function replaceIfChanged(container, key, build) {
  if (container.dataset.key === key) return false;
  container.dataset.key = key;
  container.replaceChildren(...build());
  return true;
}

function renderNodes() {
  const body = $("#nodes-body");
  const key = JSON.stringify([...state.sites.values()].map((s) => [s.site, s.leader, s.nodes,
    s.workers.map((w) => [w.id, w.node, w.kinds, w.leaseId, w.leaseTtlSeconds, w.registeredTime, state.statuses.has(state.byHost.get(w.adminHttpAddress))])]));
  if (!replaceIfChanged(body, key, buildNodes)) {
    // Only the leases' remaining time moved on.
    for (const w of allWorkers()) {
      const cell = body.querySelector(`tr[data-worker="${CSS.escape(w.id)}"] td.lease`);
      if (cell) cell.replaceChildren(...leaseText(w));
    }
  }
}

function buildNodes() {
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
            ? el("button", { type: "button", class: "act", "aria-label": `Uncordon node ${n.name}`, onclick: () => act(`Uncordon node ${n.name} (site ${s.site})?`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/uncordon`, "POST", {}) }, "Uncordon")
            : el("button", { type: "button", class: "act", "aria-label": `Cordon node ${n.name}`, onclick: () => act(`Cordon node ${n.name} (site ${s.site})? No new workloads go there.`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/cordon`, "POST", { reason: "console" }) }, "Cordon"),
          el("button", { type: "button", class: "danger act", "aria-label": `Drain node ${n.name}`, onclick: () => act(`Drain node ${n.name} (site ${s.site})? Every workload moves off it.`, s.scheduler, `/v1/nodes/${encodeURIComponent(n.name)}/drain`, "POST", { reason: "console" }, (r) => `moved ${(r.moved || []).map((m) => `${m.workload} → ${m.node}`).join(", ") || "nothing"}${(r.notMoved || []).length ? `; not moved: ${r.notMoved.join(", ")}` : ""}`) }, "Drain"))));
    })));
    out.push(table(`Workers of site ${s.site}`, ["worker", "node", "kinds", "lease", "registered", "reporting"], s.workers.map((w) => {
      const t = state.byHost.get(w.adminHttpAddress);
      return el("tr", { "data-worker": w.id },
        el("th", { scope: "row" }, w.id), el("td", {}, w.node), el("td", {}, (w.kinds || []).join(", ")),
        el("td", { class: "lease" }, leaseText(w)), el("td", {}, ago(w.registeredTime)),
        el("td", {}, t && state.statuses.has(t) ? badge("ok", "yes") : badge("down", "no")));
    })));
  }
  return out.length ? out : [el("p", {}, "No scheduler answers.")];
}

function leaseText(w) {
  const ttl = num(w.leaseTtlSeconds);
  const left = w.leaseRemainingSeconds === undefined ? null : num(w.leaseRemainingSeconds);
  const id = BigInt.asUintN(64, BigInt(w.leaseId || 0)).toString(16);
  // etcd counts the time left in whole seconds: a live 1 s lease is often
  // at 0, which means less than a second, not expired.
  const leftText = left === null ? null : left < 1 ? "<1" : left.toFixed(0);
  return [el("span", {}, left === null ? `ttl ${ttl} s` : `${leftText} s of ${ttl} s left`), el("div", { class: "muted" }, `lease ${id}`)];
}

// Sites a workload of site s can move to: enrich only (capture needs its
// camera; bridge and sink are per site), declared here (not moved in).
function siteMoveTargets(s, wl) {
  if (wl.kind !== "enrich" || wl.homeSite) return [];
  const current = wl.site || s.site;
  return [...state.sites.keys()].filter((site) => site !== current);
}

function renderAssignments() {
  const key = JSON.stringify([[...state.sites.keys()], [...state.sites.values()].map((s) => [s.site, s.workloads, s.assignments, s.nodes.map((n) => n.name)])]);
  replaceIfChanged($("#assignments-body"), key, buildAssignments);
}

function buildAssignments() {
  const out = [];
  for (const s of state.sites.values()) {
    const byName = new Map(s.assignments.map((a) => [a.workload, a]));
    out.push(table(`Workloads of site ${s.site}`, ["workload", "kind", "runs in", "node", "epoch", "reason", "move"], s.workloads.map((wl) => {
      const a = byName.get(wl.name);
      const selId = `move-${s.site}-${wl.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const others = s.nodes.filter((n) => !a || n.name !== a.node);
      return el("tr", { "data-workload": wl.name },
        el("th", { scope: "row" }, wl.name), el("td", {}, wl.kind),
        el("td", { class: "runs-in" }, wl.site && wl.site !== s.site ? `site ${wl.site}` : wl.homeSite ? `site ${s.site} (from ${wl.homeSite})` : `site ${s.site}`),
        el("td", { class: "assigned-node" }, a ? a.node : wl.site && wl.site !== s.site ? "–" : badge("down", "unassigned")),
        el("td", {}, a ? a.epoch : "–"), el("td", { class: "reason" }, a ? a.reason || "" : ""),
        el("td", {}, el("div", { class: "row-actions act" }, others.length ? el("form", { class: "inline", onsubmit: (ev) => {
          ev.preventDefault();
          const node = ev.target.elements.node.value;
          act(`Move ${wl.name} to node ${node} (site ${s.site})?`, s.scheduler, `/v1/workloads/${encodeURIComponent(wl.name)}/move`, "POST", { node }, () => `${wl.name} moving to ${node}`);
        } },
          el("label", { for: selId, class: "visually-hidden" }, `Node for ${wl.name}`),
          el("select", { id: selId, name: "node" }, others.map((n) => el("option", { value: n.name }, n.name))),
          el("button", { type: "submit", "aria-label": `Move ${wl.name} to the chosen node` }, "Move")) : null,
          siteMoveTargets(s, wl).map((to) =>
            el("button", { type: "button", "aria-label": to === s.site ? `Move ${wl.name} back to site ${to}` : `Move ${wl.name} of site ${s.site} to site ${to}`, onclick: () => moveSite(s.site, wl.name, to) },
              to === s.site ? `Back to site ${to}` : `To site ${to}`)))));
    })));
  }
  return out;
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
    ["drain estimate", duration(b.drainEstimate)],
    ["throughput", `${bytes(b.throughputBytesPerSecond)}/s`],
    ["rate limit", num(b.rateLimitBytesPerSecond) ? `${bytes(b.rateLimitBytesPerSecond)}/s` : "none"],
    ["gaps", `${num(b.gaps)} (${num(b.gapOffsets)} offsets lost)`],
    ["last commit", when(b.lastCommitTime)],
  ];
  $("#bridge-body").replaceChildren(el("dl", { class: "kv", id: "bridge-kv" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)])));
}

// renderEdgeSites shows every edge site from its bridge's reports to the
// cloud (the sink's GET /v1/sites): it needs no edge admin API.
function renderEdgeSites() {
  const body = $("#edge-sites-body");
  if (!state.cloudSites) { body.replaceChildren(el("p", { class: "muted" }, "no cloud sink reporting")); return; }
  const rows = state.cloudSites.map((s) => el("tr", { "data-site": s.site },
    el("td", {}, s.site),
    el("td", {}, s.stale ? badge("down", "stale") : badge("ok", "live")),
    el("td", {}, ago(s.lastSeen)),
    el("td", {}, s.link === "LINK_STATE_UP" ? badge("ok", "up") : badge("down", "down")),
    el("td", {}, `${num(s.backlogRecords)} records, ${bytes(s.backlogBytes)}`),
    el("td", {}, `${num(s.gapOffsets)} offsets (${num(s.gaps)} ranges)`),
    el("td", {}, Object.entries(s.versions || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "?")));
  body.replaceChildren(table("Stale: no report for three intervals (15 s): the site's bridge, its uplink or the site is down.",
    ["site", "state", "last seen", "link", "lag", "lost", "versions"], rows));
}

function renderCameras() {
  const stats = new Map(((state.stats && state.stats.cameras) || []).map((c) => [c.cameraId, c]));
  const sel = $("#filter-camera");
  for (const c of [...state.cameras.map((c) => c.cameraId), ...stats.keys()]) {
    if (!state.cameraNames.has(c)) { state.cameraNames.add(c); sel.append(el("option", { value: c }, c)); }
  }
  $("#cameras-body").replaceChildren(table("Cameras (fps: measured over the last seconds)", ["camera", "state", "fps", "frames", "motion frames", "events", "last motion stored"], state.cameras.map((c) => {
    const s = c.state || {};
    const fps = s.measuredFps === undefined ? null : Number(s.measuredFps);
    const limit = c.settings && num(c.settings.fps) ? ` (limit ${Number(c.settings.fps).toFixed(1)})` : "";
    return el("tr", { "data-camera": c.cameraId },
      el("th", { scope: "row" }, c.cameraId),
      el("td", {}, c.ended ? badge("warn", "source ended") : s.online ? badge("ok", "online") : badge("down", s.running ? "offline" : "stopped"), s.lastError ? el("div", { class: "muted" }, s.lastError) : null),
      el("td", { class: "fps" }, fps === null ? "–" : `${fps.toFixed(1)}${limit}`), el("td", {}, num(s.frames)), el("td", {}, num(s.motionFrames)),
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
    ? `${events.length} event${events.length === 1 ? "" : "s"} shown, newest first${state.stats ? ` · ${num(state.stats.events)} stored in all, ${num(state.stats.frames)} frames (${bytes(state.stats.bytes)})` : ""}`
    : "sink not reachable";
  // Keep existing items (and their loaded images and focus) where possible.
  const want = events.filter((e) => e.bestFrameId && state.thumbs.has(e.bestFrameId));
  $("#gallery-older").hidden = !state.nextPage;
  const key = "events:" + want.map((e) => `${e.eventId}:${e.bestFrameId}:${state.thumbs.get(e.bestFrameId)}:${e.frameCount}:${e.ended}:${(e.labels || []).join(",")}`).join("|");
  if (g.dataset.key === key) return;
  g.dataset.key = key;
  g.replaceChildren(...want.map((e) => el("li", { "data-event": e.eventId },
    el("button", { type: "button", "aria-label": `Open event ${e.eventId} of ${e.cameraId}, ${when(e.startTime)}`, onclick: () => openEvent(e) },
      el("img", { src: thumbURL(e.bestFrameId), alt: `best frame of event ${e.eventId}`, loading: "lazy" }),
      el("span", {}, `${e.cameraId} · ${when(e.startTime)}`),
      el("span", { class: "muted" }, `${num(e.frameCount)} frames · peak ${Number(e.peakScore || 0).toFixed(3)}${e.ended ? "" : " · ongoing"}`),
      ...((e.labels || []).length ? [el("span", { class: "labels" }, e.labels.join(", "))] : [])))));
}

async function openEvent(e) {
  const d = $("#event-dialog");
  $("#event-title").textContent = `Event ${e.eventId}`;
  $("#event-meta").textContent = `${e.cameraId} · ${when(e.startTime)} – ${e.ended ? when(e.endTime) : "ongoing"} · ${num(e.frameCount)} frames${(e.labels || []).length ? ` · ${e.labels.join(", ")}` : ""}`;
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
  loadAudit();
}

// ---- audit trail ----
// The site's scheduler serves its audit trail (GET /v1/audit), newest
// first; only operators may read it.
function auditSites() {
  const sel = $("#audit-site");
  const names = [...state.sites.values()].filter((s) => s.scheduler).map((s) => s.site);
  if (sel.dataset.key === names.join(",")) return;
  const current = sel.value;
  sel.dataset.key = names.join(",");
  sel.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === current }, n)));
}

async function loadAudit() {
  if (document.body.dataset.role === "viewer") return;
  const site = state.sites.get($("#audit-site").value) || [...state.sites.values()][0];
  if (!site || !site.scheduler) return;
  const q = new URLSearchParams({ limit: "100" });
  for (const f of ["who", "action", "result"]) {
    const v = $(`#audit-${f}`).value.trim();
    if (v) q.set(f, v);
  }
  const errBox = $("#audit-error");
  try {
    const r = await api(site.scheduler, `/v1/audit?${q}`);
    errBox.hidden = true;
    const rows = (r.records || []).map((a) => el("tr", { "data-result": a.result, "data-action": a.action },
      el("td", {}, when(a.time)),
      el("td", {}, a.who, a.via ? el("span", { class: "muted" }, ` via ${a.via.replace(/^spiffe:\/\/[^/]+\//, "")}`) : ""),
      el("td", {}, a.role),
      el("td", {}, `${a.service} ${a.action.replace(/^\/cefiot\.v1\./, "")}`),
      el("td", {}, a.target || ""),
      el("td", {}, a.from || ""),
      el("td", {}, badge(a.result === "ok" ? "ok" : a.result === "refused" ? "down" : "warn", `${a.result} ${a.code}`))));
    $("#audit-body").replaceChildren(table(`site ${site.site}: the newest ${rows.length} of ${num(r.scanned)} records`,
      ["When", "Who", "Role", "What", "On", "From", "Result"], rows));
  } catch (err) {
    errBox.textContent = err.status === 403 ? "only operators may read the audit trail" : `cannot read the audit trail: ${err.message}`;
    errBox.hidden = false;
  }
}

// ---- people and tokens ----
const camerasOf = (text) => text.split(",").map((c) => c.trim()).filter(Boolean);

function showBox(id, text) {
  const box = $(id);
  box.textContent = text;
  box.hidden = !text;
}

async function loadTokens() {
  if (document.body.dataset.role === "viewer") return;
  try {
    const r = await call("/api/tokens");
    showBox("#tokens-error", "");
    const rows = (r.tokens || []).map((t) => el("tr", { "data-token": t.name },
      el("td", {}, t.name), el("td", {}, t.role), el("td", {}, (t.cameras || []).join(", ") || "all"),
      el("td", {}, when(t.created)), el("td", {}, t.by),
      el("td", {}, el("button", { type: "button", "aria-label": `Revoke token ${t.name}`, onclick: async () => {
        if (!(await confirmAction(`Revoke the token ${t.name}? Scripts using it are refused at once.`))) return;
        try { await call(`/api/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" }); } catch (err) { showError(`revoke: ${err.message}`); }
        loadTokens();
      } }, "Revoke"))));
    $("#tokens-body").replaceChildren(table(`${rows.length} tokens`, ["Name", "Role", "Cameras", "Made", "By", ""], rows));
  } catch (err) {
    showBox("#tokens-error", err.status === 404 ? "API tokens are off" : `cannot list tokens: ${err.message}`);
  }
}

async function makeToken(ev) {
  ev.preventDefault();
  try {
    const r = await call("/api/tokens", { method: "POST", body: { name: $("#token-name").value.trim(), role: $("#token-role").value, cameras: camerasOf($("#token-cameras").value) } });
    showBox("#token-secret", `token ${r.token.name} (shown once, keep it now): ${r.secret}`);
    showBox("#tokens-error", "");
    $("#token-form").reset();
  } catch (err) {
    showBox("#tokens-error", `cannot make the token: ${err.message}`);
  }
  loadTokens();
}

async function loadUsers() {
  if (document.body.dataset.role !== "admin") return;
  try {
    const r = await call("/api/users");
    showBox("#users-error", "");
    const rows = (r.users || []).map((u) => el("tr", { "data-user": u.name },
      el("td", {}, u.name), el("td", {}, u.role), el("td", {}, (u.cameras || []).join(", ") || "all"),
      el("td", {}, u.password ? "password" : "single sign-on only"),
      el("td", {}, el("button", { type: "button", "aria-label": `Remove user ${u.name}`, onclick: async () => {
        if (!(await confirmAction(`Remove the user ${u.name}? Their sessions end at once.`))) return;
        try { await call(`/api/users/${encodeURIComponent(u.name)}`, { method: "DELETE" }); } catch (err) { showBox("#users-error", `cannot remove ${u.name}: ${err.message}`); return; }
        loadUsers();
      } }, "Remove"))));
    $("#users-body").replaceChildren(table(`${rows.length} users`, ["Name", "Role", "Cameras", "Logs in with", ""], rows));
  } catch (err) {
    showBox("#users-error", `cannot list users: ${err.message}`);
  }
}

async function saveUser(ev) {
  ev.preventDefault();
  const name = $("#user-name").value.trim();
  try {
    const r = await call("/api/users", { method: "POST", body: { name, role: $("#user-role").value, cameras: camerasOf($("#user-cameras").value), password: $("#user-password").value } });
    showBox("#user-secret", r.password ? `user ${name}'s password (shown once): ${r.password}` : "");
    showBox("#users-error", "");
    $("#user-form").reset();
  } catch (err) {
    showBox("#users-error", `cannot save ${name}: ${err.message}`);
  }
  loadUsers();
}

// moveSite runs a cross-site move (POST /api/site-move: the same handoff
// as `cefiotctl move WORKLOAD -to-site SITE`, through both schedulers' APIs) and
// shows its steps as they happen.
async function moveSite(site, workload, to) {
  const question = to === site
    ? `Move ${workload} back to site ${site}? The remote copy finishes up to a marker, then ${site} continues from it.`
    : `Move ${workload} of site ${site} to site ${to}? Its input is forwarded there; no frame is lost or enriched twice.`;
  if (!(await confirmAction(question))) return;
  showNotice(`moving ${workload} to site ${to}…`);
  try {
    const resp = await call("/api/site-move", { method: "POST", body: { site, workload, to }, raw: true });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "", result = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (line.progress) showNotice(`moving ${workload} to site ${to}: ${line.progress}`);
        if (line.error) throw new APIError(0, line.error);
        if (line.result) result = line.result;
      }
      if (done) break;
    }
    if (!result) throw new Error("the console server ended the move without a result");
    showNotice(`done: ${workload} of site ${site} now runs in site ${to}${result.handoff ? ` (handoff ${result.handoff})` : ""}`);
  } catch (err) {
    showError(`refused${err.status ? ` (HTTP ${err.status})` : ""}: ${err.message}`);
  }
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
    state.filter = { camera: $("#filter-camera").value, since: $("#filter-since").value, until: $("#filter-until").value, label: $("#filter-label").value.trim() };
    $("#gallery").dataset.key = "";
    refreshGallery(true);
  });
  $("#audit-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit(); });
  $("#token-form").addEventListener("submit", makeToken);
  $("#user-form").addEventListener("submit", saveUser);
  $("#gallery-older").addEventListener("click", () => { galleryLoading = (galleryLoading || Promise.resolve()).then(() => loadEvents(true)); });
  $("#event-close").addEventListener("click", () => $("#event-dialog").close());
}

// ---- live updates ----
function render() {
  renderGraph();
  renderNodes();
  renderAssignments();
  renderEdgeSites();
  renderBridge();
  renderCameras();
  renderGallery();
}

// connect follows the console server's snapshot stream. The browser
// reconnects on its own when the connection drops (the server asks for 2 s).
function connect() {
  const es = new EventSource("/api/stream");
  es.addEventListener("snapshot", (ev) => {
    try {
      const first = state.sites.size === 0;
      applySnapshot(JSON.parse(ev.data));
      render();
      auditSites();
      if (first && state.sites.size > 0) {
        loadAudit();
        loadTokens();
        loadUsers();
      }
      refreshGallery(false);
      $("#updated").textContent = `live · updated ${new Date().toLocaleTimeString()} · ${state.sites.size} site${state.sites.size === 1 ? "" : "s"}`;
      document.body.dataset.seq = String(state.seq);
      document.body.dataset.ready = "true";
    } catch (err) {
      $("#updated").textContent = `cannot show the update: ${err.message}`;
    }
  });
  es.addEventListener("error", () => {
    $("#updated").textContent = `disconnected from the console server, reconnecting…`;
  });
}

// ---- who is using the page ----
// whoAmI asks the console who the browser is (a client certificate or a
// login session); without either it shows the login form until a login
// works. The page then shows what the role allows: a viewer gets no
// action controls (the APIs refuse them anyway).
async function whoAmI() {
  for (;;) {
    try {
      const me = await call("/api/me");
      document.body.dataset.role = me.role;
      const who = $("#who");
      who.replaceChildren(`${me.user} (${me.role}${me.by === "certificate" ? ", certificate" : ""})`,
        me.logout ? el("button", { type: "button", id: "logout", onclick: logout }, "Log out") : "");
      who.hidden = false;
      return me;
    } catch (err) {
      if (err.status !== 401) throw err;
      await loginForm();
    }
  }
}

function loginForm() {
  const dialog = $("#login-dialog");
  const form = $("#login-form");
  return new Promise((resolve) => {
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const box = $("#login-error");
      try {
        await call("/api/login", { method: "POST", body: { user: $("#login-user").value.trim(), password: $("#login-password").value } });
        $("#login-password").value = "";
        box.hidden = true;
        dialog.close();
        resolve();
      } catch (err) {
        box.textContent = err.status === 429 ? err.message : "wrong user or password";
        box.hidden = false;
      }
    };
    if (!dialog.open) dialog.showModal();
  });
}

async function logout() {
  try { await call("/api/logout", { method: "POST", body: {} }); } catch { /* the session is gone either way */ }
  location.reload();
}

async function start() {
  wireControls();
  for (;;) {
    try {
      await whoAmI();
      break;
    } catch (err) {
      $("#updated").textContent = `cannot reach the console server: ${err.message}`;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  for (;;) {
    try {
      await loadTargets();
      break;
    } catch (err) {
      $("#updated").textContent = `cannot reach the console server: ${err.message}`;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  connect();
}

start();
