// Browser test of the console's login, run by cmd/e2e/console_test.go
// after console.mjs, against the same running local stack: a browser with
// no client certificate logs in with a password.
//
//   CONSOLE_URL=https://127.0.0.1:8080/ ADMIN_PASSWORD=... VIEWER_USER=vera \
//     VIEWER_PASSWORD=... SCREENSHOT_DIR=out node login.mjs
//
// Prints one JSON line per step; exits non-zero with the reason on failure.
import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";

const url = process.env.CONSOLE_URL;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const T = Number(process.env.STEP_TIMEOUT_MS || 60000);
for (const k of ["CONSOLE_URL", "ADMIN_PASSWORD", "VIEWER_USER", "VIEWER_PASSWORD"]) {
  if (!process.env[k]) { console.error(`${k} is not set`); process.exit(2); }
}
mkdirSync(shots, { recursive: true });
const log = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const fail = (msg) => { throw new Error(msg); };
const profile = mkdtempSync(join(tmpdir(), "cefiot-chromium-"));

// No client certificate: the login page is the way in.
const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true, timeout: T, ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
let code = 0;
try {
  context.setDefaultTimeout(T);
  const page = context.pages()[0] || (await context.newPage());
  const login = async (user, password) => {
    await page.waitForSelector("#login-dialog[open]");
    await page.locator("#login-user").fill(user);
    await page.locator("#login-password").fill(password);
    await page.getByRole("button", { name: "Log in" }).click();
  };

  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("#login-dialog[open]");
  log("login-page");
  await page.screenshot({ path: join(shots, "console-login.png") });

  // A wrong password is refused, and the dialog says so.
  await login("admin", "not the password");
  await page.waitForSelector("#login-error:not([hidden])");
  log("wrong-password", { shown: await page.locator("#login-error").textContent() });

  // A viewer: the page without a single action control, their name and
  // role shown with a logout; a direct API call to act is refused.
  await login(process.env.VIEWER_USER, process.env.VIEWER_PASSWORD);
  await page.waitForSelector("body[data-ready=true]");
  const who = (await page.locator("#who").textContent()).trim();
  if (!who.includes(`${process.env.VIEWER_USER} (viewer`)) fail(`the page shows ${JSON.stringify(who)}, want the viewer's name and role`);
  const visibleActions = await page.$$eval("button, form", (es) => es.filter((e) => e.closest(".act") && e.offsetParent !== null)
    .map((e) => e.getAttribute("aria-label") || e.textContent.trim()));
  if (visibleActions.length) fail(`a viewer sees action controls: ${visibleActions.join(", ")}`);
  if (await page.locator('button[aria-label^="Drain node"]').first().isVisible()) fail("a viewer sees a Drain button");
  const direct = await page.evaluate(async () => {
    const r = await fetch("/api/scheduler-edge/v1/nodes/node-1/drain", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    return r.status;
  });
  if (direct !== 403) fail(`a viewer's direct drain answered HTTP ${direct}, want 403`);
  log("viewer", { who, direct });
  await page.screenshot({ path: join(shots, "console-viewer.png"), fullPage: true });

  // Logout: back to the login page.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForSelector("#login-dialog[open]");
  log("logout");

  // The first-start admin sees the actions, the users and the tokens.
  await login("admin", process.env.ADMIN_PASSWORD);
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector('button[aria-label^="Drain node"]', { state: "visible" });
  await page.waitForSelector("#users-body table", { state: "visible" });
  await page.waitForSelector("#tokens", { state: "visible" });
  log("admin", { who: (await page.locator("#who").textContent()).trim() });

  // The admin adds, in the page, an operator and a viewer of the yard
  // camera only.
  const addUser = async (name, role, cameras, password) => {
    await page.locator("#user-name").fill(name);
    await page.locator("#user-role").selectOption(role);
    await page.locator("#user-cameras").fill(cameras);
    await page.locator("#user-password").fill(password);
    await page.getByRole("button", { name: "Save user" }).click();
    await page.waitForSelector(`#users-body tr[data-user="${name}"]`);
  };
  const OPERATOR = ["otto", "otto's long password"], YARD = ["yara", "yara's long password"];
  await addUser(OPERATOR[0], "operator", "", OPERATOR[1]);
  await addUser(YARD[0], "viewer", "yard", YARD[1]);
  log("users-added");

  // A stored frame of the site's camera, which is not the yard.
  const frame = await page.evaluate(async () => {
    const r = await fetch("/api/sink/v1/frames?limit=1");
    return (await r.json()).frames[0];
  });
  if (!frame || !frame.frameId || frame.cameraId === "yard") fail(`no stored frame of a camera other than yard: ${JSON.stringify(frame)}`);

  // A page of another origin posts a drain to the console while the admin
  // is logged in: refused (its origin, and no session cookie crosses sites).
  const evil = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><form id=f method=POST enctype=text/plain action="${new URL("api/scheduler-edge/v1/nodes/node-1/drain", url)}">` +
      `<input name='{"x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
  const evilURL = `http://127.0.0.1:${evil.address().port}/`;
  const [answer] = await Promise.all([page.waitForResponse((r) => r.url().includes("/nodes/node-1/drain")), page.goto(evilURL)]);
  evil.close();
  const crossSite = answer ? answer.status() : 0;
  const crossBody = answer ? await answer.text() : "";
  if (crossSite !== 403 || !crossBody.includes("cross-site request refused")) fail(`a cross-origin POST answered HTTP ${crossSite}: ${crossBody}`);
  log("cross-origin-refused", { status: crossSite, from: evilURL });

  // An operator: may act, sees no administrator control, is refused the
  // users API.
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]");
  await page.getByRole("button", { name: "Log out" }).click();
  await login(...OPERATOR);
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector('button[aria-label^="Drain node"]', { state: "visible" });
  const adminControls = await page.$$eval(".admin", (es) => es.filter((e) => e.offsetParent !== null).map((e) => e.id || e.textContent.trim()));
  if (adminControls.length) fail(`an operator sees administrator controls: ${adminControls.join(", ")}`);
  const usersAPI = await page.evaluate(async () => (await fetch("/api/users")).status);
  if (usersAPI !== 403) fail(`an operator's GET /api/users answered HTTP ${usersAPI}, want 403`);
  log("operator", { who: (await page.locator("#who").textContent()).trim(), usersAPI });

  // The yard viewer: no other camera in the page, and another camera's
  // frame is not found, whichever way it is asked for.
  await page.getByRole("button", { name: "Log out" }).click();
  await login(...YARD);
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector("#cameras-body table");
  await page.waitForFunction(() => /stored in all/.test(document.querySelector("#events-summary").textContent));
  const cams = await page.$$eval("#cameras-body tr[data-camera]", (rs) => rs.map((r) => r.dataset.camera));
  if (cams.some((c) => c !== "yard")) fail(`the yard viewer sees cameras ${cams.join(", ")}`);
  const summary = (await page.locator("#events-summary").textContent()).trim();
  const events = await page.$$eval("#gallery li[data-event]", (es) => es.length);
  if (events || !/^0 events shown.* 0 stored in all, 0 frames/.test(summary)) fail(`the yard viewer sees ${events} events of other cameras: ${summary}`);
  const scoped = await page.evaluate(async (id) => {
    const [meta, jpeg, thumb, list] = await Promise.all([`/api/sink/v1/frames/${id}`, `/api/sink/v1/frames/${id}/jpeg`,
      `/api/sink/v1/frames/${id}/thumbnail`, "/api/sink/v1/frames?limit=10"].map((u) => fetch(u)));
    return { meta: meta.status, jpeg: jpeg.status, thumb: thumb.status, listed: ((await list.json()).frames || []).length };
  }, frame.frameId);
  if (scoped.meta !== 404 || scoped.jpeg !== 404 || scoped.thumb !== 404 || scoped.listed !== 0) {
    fail(`the yard viewer asked for frame ${frame.frameId} of ${frame.cameraId}: ${JSON.stringify(scoped)}, want 404s and no frames listed`);
  }
  log("camera-scoped-viewer", { cameras: cams, otherFrame: frame.frameId, ...scoped });
  await page.screenshot({ path: join(shots, "console-camera-viewer.png"), fullPage: true });

  // Back as the admin: the audit trail holds the refused login, the
  // viewer's refused drain, the cross-origin post and the users added.
  await page.getByRole("button", { name: "Log out" }).click();
  await login("admin", process.env.ADMIN_PASSWORD);
  await page.waitForSelector("body[data-ready=true]");
  const wanted = {
    "wrong password": (t) => /POST \/api\/login/.test(t) && /user=admin/.test(t) && /refused 401/.test(t),
    "viewer's drain": (t) => /viewer\/vera/.test(t) && /nodes\/node-1\/drain/.test(t) && /refused 403/.test(t),
    "cross-origin post": (t) => /unauthenticated/.test(t) && /nodes\/node-1\/drain/.test(t) && /refused 403/.test(t),
    "operator added": (t) => /admin\/admin/.test(t) && /POST \/api\/users/.test(t) && /user=otto role=operator/.test(t) && /ok 200/.test(t),
    "viewer added": (t) => /POST \/api\/users/.test(t) && /user=yara role=viewer cameras=yard/.test(t) && /ok 200/.test(t),
  };
  let missing = Object.keys(wanted);
  const deadline = Date.now() + T;
  while (missing.length && Date.now() < deadline) {
    await page.locator("#audit-filter button[type=submit]").click();
    await page.waitForSelector("#audit-body table");
    const rows = await page.$$eval("#audit-body tbody tr", (rs) => rs.map((r) => r.textContent));
    missing = missing.filter((k) => !rows.some(wanted[k]));
    if (missing.length) await page.waitForTimeout(1000); // the records are on their way through Kafka
  }
  if (missing.length) fail(`the audit trail lacks: ${missing.join(", ")}`);
  await page.locator("#audit").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "console-audit-people.png"), fullPage: true });
  log("audit", { found: Object.keys(wanted) });

  // Wrong passwords, again and again: after three, the form says to wait.
  await page.getByRole("button", { name: "Log out" }).click();
  let slowed = "";
  for (let i = 0; i < 6 && !slowed; i++) {
    await login("admin", `guess ${i}`);
    await page.waitForSelector("#login-error:not([hidden])");
    const shown = (await page.locator("#login-error").textContent()).trim();
    if (/too many failed attempts/.test(shown)) slowed = shown;
    else if (shown !== "wrong user or password") fail(`a wrong password shows ${JSON.stringify(shown)}`);
    await page.evaluate(() => { document.querySelector("#login-error").hidden = true; });
  }
  if (!slowed) fail("six wrong passwords in a row were never slowed down");
  log("slowed", { shown: slowed });
  log("ok");
} catch (err) {
  code = 1;
  console.error(String(err && err.stack || err));
  try { await context.pages()[0]?.screenshot({ path: join(shots, "login-failure.png"), fullPage: true }); } catch { /* best effort */ }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
