// Browser test of the cefiot console, run by cmd/e2e/console_test.go
// against a running local stack: headless Chromium (the system's package)
// driven by playwright-core.
//
//   CONSOLE_URL=http://127.0.0.1:8080/ SCREENSHOT_DIR=out node console.mjs
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

const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true, timeout: T,
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

  // The gallery: an event of the sample video, with its image loaded.
  const thumb = page.locator("#gallery li[data-event] img").first();
  await thumb.waitFor();
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

  // Drain the node that runs enrich: enrich moves, the page shows where.
  const enrichNode = (await page.locator('#graph [data-stage="enrich"] .node').textContent()).trim();
  await page.getByRole("button", { name: `Drain node ${enrichNode}`, exact: true }).click();
  await page.waitForSelector("#confirm-dialog[open]");
  await page.locator("#confirm-ok").click();
  await page.waitForSelector("#notice:not([hidden])");
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

  // Every control has a name a screen reader can say.
  const unnamed = await page.$$eval("button, input, select, a[href]", (es) => es.filter((e) => {
    if (e.closest("dialog:not([open])") || e.offsetParent === null && !e.closest("dialog")) return false;
    const name = e.getAttribute("aria-label") || (e.labels && [...e.labels].map((l) => l.textContent).join("")) || e.textContent;
    return !name || !name.trim();
  }).map((e) => e.outerHTML.slice(0, 120)));
  if (unnamed.length) fail(`controls without an accessible name: ${unnamed.join(" | ")}`);

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
