// Browser test of the cefiot console, run by cmd/e2e/console_test.go
// against a running local stack: headless Chromium (the system's package)
// driven by playwright-core.
//
//   CONSOLE_URL=https://127.0.0.1:8080/ CLIENT_CERT=run/pki/edge/operator-local.crt \
//     CLIENT_KEY=run/pki/edge/operator-local.key SCREENSHOT_DIR=out node console.mjs
//
// Prints one JSON line per step; exits non-zero with the reason on failure.
import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.env.CONSOLE_URL;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const T = Number(process.env.STEP_TIMEOUT_MS || 90000);
if (!url) { console.error("CONSOLE_URL is not set"); process.exit(2); }
mkdirSync(shots, { recursive: true });

const log = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const fail = (msg) => { throw new Error(msg); };
const profile = mkdtempSync(join(tmpdir(), "cefiot-chromium-"));

// The console is mutual TLS: the browser presents the operator's client
// certificate for the console's origin, and trusts the site's CA for it.
const clientCertificates = process.env.CLIENT_CERT
  ? [{ origin: new URL(url).origin, certPath: process.env.CLIENT_CERT, keyPath: process.env.CLIENT_KEY }]
  : [];
const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true, timeout: T, clientCertificates, ignoreHTTPSErrors: clientCertificates.length > 0,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
let code = 0;
try {
  context.setDefaultTimeout(T);
  const page = context.pages()[0] || (await context.newPage());
  // Console errors: none allowed, except the API refusal provoked at the end.
  const errors = [];
  let expectRefusal = false;
  page.on("console", (m) => { if (m.type() === "error") errors.push({ text: m.text(), expected: expectRefusal }); });
  page.on("pageerror", (e) => errors.push({ text: `page error: ${e.message}`, expected: false }));

  // Every request the page makes, to show that live data comes from the
  // stream and not from polling.
  const requests = [];
  page.on("request", (r) => requests.push({ url: new URL(r.url()).pathname, t: Date.now() }));

  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]");
  log("loaded", { title: await page.title() });

  // The graph: all five stages, each placed on a node and healthy.
  for (const s of ["camera", "capture", "enrich", "bridge", "sink"]) {
    await page.waitForFunction((s) => {
      const e = document.querySelector(`#graph [data-stage="${s}"]`);
      // A camera whose sample video has ended is idle, not broken.
      const healthy = e && (e.dataset.health === "ok" || (s === "camera" && e.dataset.health === "idle"));
      return healthy && !/^–?$/.test(e.querySelector(".node").textContent.trim());
    }, s);
  }
  const stages = await page.$$eval("#graph [data-stage]", (es) => es.map((e) => ({ stage: e.dataset.stage, node: e.querySelector(".node").textContent, health: e.dataset.health })));
  log("graph", { stages });
  if (stages.length !== 5) fail(`graph shows ${stages.length} stages, want 5`);
  await page.waitForFunction(() => /up/.test(document.querySelector('#bridge-kv [data-key="link"]')?.textContent || ""));
  await page.waitForSelector('#cameras-body tr[data-camera="cam-1"]');
  // The edge site, as the cloud hears it from its bridge's reports.
  await page.waitForFunction(() => /live/.test(document.querySelector('#edge-sites-body tr[data-site="edge"]')?.textContent || ""));

  // Live: the stream brings new snapshots with nothing reloaded or polled.
  const seq0 = Number(await page.evaluate(() => document.body.dataset.seq));
  const since = Date.now();
  await page.waitForFunction((s) => Number(document.body.dataset.seq) >= s + 3, seq0);
  const polled = requests.filter((r) => r.t >= since && /\/v1\/(nodes|workers|workloads|assignments|leader|cameras|stats)$|\/status$/.test(r.url));
  if (polled.length) fail(`the page polled: ${polled.map((r) => r.url).join(", ")}`);
  if (!requests.some((r) => r.url === "/api/stream")) fail("the page did not open the event stream");
  if (requests.filter((r) => r.url === "/" || r.url.endsWith(".js")).length !== 1 + 1) fail(`the page was loaded again: ${JSON.stringify(requests.filter((r) => r.url === "/"))}`);
  // Leases show their remaining time, from etcd.
  const lease = await page.locator("#nodes-body td.lease").first().textContent();
  // etcd counts whole seconds; a live lease under a second shows "<1 s".
  const left = lease.match(/(<1|\d+(?:\.\d)?) s of (\d+) s left/);
  const leftSeconds = left && left[1] === "<1" ? 0.5 : Number(left && left[1]);
  if (!left || !(leftSeconds > 0) || leftSeconds > Number(left[2])) fail(`lease cell ${JSON.stringify(lease)}, want the time left (0 < left <= ttl)`);
  log("live", { snapshots: Number(await page.evaluate(() => document.body.dataset.seq)) - seq0, seconds: (Date.now() - since) / 1000, lease });

  // The gallery: an event of the sample video, with its image loaded.
  const thumb = page.locator("#gallery li[data-event] img").first();
  await thumb.waitFor();
  await thumb.scrollIntoViewIfNeeded(); // thumbnails load lazily, when in view
  await page.waitForFunction(() => { const i = document.querySelector("#gallery li[data-event] img"); return i && i.complete && i.naturalWidth > 0; });
  const eventId = await page.locator("#gallery li[data-event]").first().getAttribute("data-event");
  log("gallery", { events: await page.locator("#gallery li[data-event]").count(), first: eventId });
  await page.screenshot({ path: join(shots, "console-overview.png"), fullPage: true });

  // Open it with the keyboard; its frames load with boxes drawn over them.
  await page.locator("#gallery li[data-event] button").first().focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("#event-dialog[open]");
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll("#event-frames img")];
    return imgs.length > 0 && imgs[0].complete && imgs[0].naturalWidth > 0;
  });
  await page.waitForFunction(() => document.querySelectorAll("#event-frames svg rect").length > 0);
  const frames = await page.locator("#event-frames li[data-frame]").count();
  const boxes = await page.locator("#event-frames svg rect").count();
  log("event", { eventId, frames, boxes });
  await page.screenshot({ path: join(shots, "console-event.png") });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.querySelector("#event-dialog").open);

  // The time filter: nothing started after tomorrow; the event is back
  // with a window that holds it.
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await page.locator("#filter-since").fill(local(new Date(Date.now() + 86400000)));
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#gallery li[data-event]").length === 0 && /^0 events/.test(document.querySelector("#events-summary").textContent));
  await page.locator("#filter-since").fill(local(new Date(Date.now() - 3600000)));
  await page.locator("#filter-until").fill(local(new Date(Date.now() + 3600000)));
  await page.locator("#filter-camera").selectOption("cam-1");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.waitForFunction((id) => document.querySelector(`#gallery li[data-event="${id}"]`), eventId);
  await page.locator("#filter-since").fill("");
  await page.locator("#filter-until").fill("");
  await page.locator("#filter-camera").selectOption("");
  await page.getByRole("button", { name: "Apply filter" }).click();

  // The kind-of-object filter: a kind the stored events were labelled with
  // (EVENT_LABEL, from the sink's API) shows only events that show it; a
  // kind nothing was labelled with shows none.
  const label = process.env.EVENT_LABEL;
  if (!label) fail("EVENT_LABEL is not set");
  await page.locator("#filter-label").fill(label);
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.waitForFunction((l) => {
    const shown = [...document.querySelectorAll("#gallery li[data-event]")];
    return shown.length > 0 && shown.every((e) => (e.querySelector(".labels")?.textContent || "").split(", ").includes(l));
  }, label);
  const labelled = await page.locator("#gallery li[data-event]").count();
  await page.locator("#filter-label").fill("nosuchobject");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#gallery li[data-event]").length === 0 && /^0 events/.test(document.querySelector("#events-summary").textContent));
  await page.locator("#filter-label").fill("");
  await page.getByRole("button", { name: "Apply filter" }).click();
  await page.waitForFunction((id) => document.querySelector(`#gallery li[data-event="${id}"]`), eventId);
  log("filter", { ok: true, label, labelled });

  // Move enrich to the cloud site and back, from the page: the same
  // handoff as the CLI's move-site.
  const siteOf = () => page.locator('#graph [data-stage="enrich"] .site').textContent();
  for (const [to, name] of [["cloud", "Move enrich of site edge to site cloud"], ["edge", "Move enrich back to site edge"]]) {
    const t0 = Date.now();
    await page.getByRole("button", { name, exact: true }).click();
    await page.waitForSelector("#confirm-dialog[open]");
    await page.locator("#confirm-ok").click();
    await page.waitForFunction((to) => {
      const n = document.querySelector("#notice");
      const e = document.querySelector("#error");
      return (!n.hidden && n.textContent.includes(`now runs in site ${to}`)) || !e.hidden;
    }, to);
    if (await page.locator("#error").isVisible()) fail(`move to ${to} refused: ${await page.locator("#error").textContent()}`);
    await page.waitForFunction((to) => {
      const st = document.querySelector('#graph [data-stage="enrich"]');
      return st && st.querySelector(".site").textContent.trim() === to && st.dataset.health === "ok";
    }, to);
    log("site-move", { to, seconds: (Date.now() - t0) / 1000, notice: await page.locator("#notice").textContent(), graph: (await siteOf()).trim() });
    if (to === "cloud") await page.screenshot({ path: join(shots, "console-site-move.png"), fullPage: true });
  }

  // Drain the node that runs enrich: enrich moves, the page shows where.
  const enrichNode = (await page.locator('#graph [data-stage="enrich"] .node').textContent()).trim();
  await page.getByRole("button", { name: `Drain node ${enrichNode}`, exact: true }).click();
  await page.waitForSelector("#confirm-dialog[open]");
  await page.locator("#confirm-ok").click();
  await page.waitForFunction(() => /^done: moved /.test(document.querySelector("#notice:not([hidden])")?.textContent || ""));
  const notice = await page.locator("#notice").textContent();
  await page.waitForFunction((old) => {
    const t = document.querySelector('#graph [data-stage="enrich"] .node')?.textContent.trim() || "";
    const h = document.querySelector('#graph [data-stage="enrich"]')?.dataset.health;
    return t && t !== "–" && t !== old && h === "ok";
  }, enrichNode);
  await page.waitForFunction((old) => /drained/.test(document.querySelector(`#nodes-body tr[data-node="${old}"]`)?.textContent || ""), enrichNode);
  const newNode = (await page.locator('#graph [data-stage="enrich"] .node').textContent()).trim();
  log("drain", { from: enrichNode, to: newNode, notice });
  await page.screenshot({ path: join(shots, "console-drain.png"), fullPage: true });

  // The audit trail shows the drain, newest first, as the operator acting
  // through the console.
  await page.locator("#audit-action").fill("DrainNode");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.waitForFunction(() => {
    const row = document.querySelector('#audit-body tbody tr[data-action$="/DrainNode"]');
    return row && /operator\/local/.test(row.textContent) && /via console/.test(row.textContent) && row.dataset.result === "ok";
  });
  const audit = await page.locator("#audit-body tbody tr").first().textContent();
  log("audit", { newest: audit });
  await page.locator("#audit").screenshot({ path: join(shots, "console-audit.png") });

  // Every control has a name a screen reader can say.
  const unnamed = await page.$$eval("button, input, select, a[href]", (es) => es.filter((e) => {
    if (e.closest("dialog:not([open])") || e.offsetParent === null && !e.closest("dialog")) return false;
    const name = e.getAttribute("aria-label") || (e.labels && [...e.labels].map((l) => l.textContent).join("")) || e.textContent;
    return !name || !name.trim();
  }).map((e) => e.outerHTML.slice(0, 120)));
  if (unnamed.length) fail(`controls without an accessible name: ${unnamed.join(" | ")}`);

  // Text contrast: WCAG AA (4.5:1, 3:1 for large text) for every visible
  // element with text of its own, against its nearest opaque background.
  const lowContrast = await page.evaluate(() => {
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = parse(getComputedStyle(n).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const bad = [];
    for (const e of document.querySelectorAll("body *")) {
      if (e.closest("dialog:not([open])") || e.closest("[hidden]") || e.offsetParent === null) continue;
      if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
      const cs = getComputedStyle(e);
      const fg = parse(cs.color), bg = background(e);
      const l1 = lum(fg), l2 = lum(bg);
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
      const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
      if (ratio < need) bad.push(`${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} "${e.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    }
    return bad;
  });
  if (lowContrast.length) fail(`text below WCAG AA contrast: ${lowContrast.slice(0, 10).join(" | ")}`);
  log("contrast", { checked: true });

  // Phone-sized: no sideways scrolling of the page.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  const phone = await page.evaluate(() => ({
    viewport: window.innerWidth, page: document.documentElement.scrollWidth,
    widest: [...document.querySelectorAll("body *")].filter((e) => !e.closest(".scroll") && e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className}`),
  }));
  log("phone", phone);
  if (phone.page > phone.viewport) fail(`at ${phone.viewport} px the page is ${phone.page} px wide (sideways scrolling); overflowing: ${phone.widest.join(", ")}`);
  await page.screenshot({ path: join(shots, "console-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  const unexpected = errors.filter((e) => !e.expected);
  if (unexpected.length) fail(`console errors: ${unexpected.map((e) => e.text).join(" | ")}`);

  // A refused action shows the API's error (a negative rate limit).
  expectRefusal = true;
  await page.locator("#rate-input").fill("-5");
  await page.getByRole("button", { name: "Set rate limit" }).click();
  await page.waitForSelector("#confirm-dialog[open]");
  await page.locator("#confirm-ok").click();
  await page.waitForSelector("#error:not([hidden])");
  const refusal = await page.locator("#error").textContent();
  if (!/bytes_per_second/.test(refusal)) fail(`refusal shown as ${JSON.stringify(refusal)}, want the API's message naming bytes_per_second`);
  log("refusal", { shown: refusal });
  await page.locator("#bridge").screenshot({ path: join(shots, "console-error.png") });
  const late = errors.filter((e) => e.expected && !/status of 400/.test(e.text));
  if (late.length) fail(`console errors: ${late.map((e) => e.text).join(" | ")}`);
  log("ok");
} catch (err) {
  code = 1;
  console.error(String(err && err.stack || err));
  try { await context.pages()[0]?.screenshot({ path: join(shots, "console-failure.png"), fullPage: true }); } catch { /* best effort */ }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
