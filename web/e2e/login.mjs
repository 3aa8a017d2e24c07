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

  // The first-start admin (an operator) sees the actions.
  await login("admin", process.env.ADMIN_PASSWORD);
  await page.waitForSelector("body[data-ready=true]");
  await page.waitForSelector('button[aria-label^="Drain node"]', { state: "visible" });
  log("admin", { who: (await page.locator("#who").textContent()).trim() });
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
