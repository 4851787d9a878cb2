// Loads Swagger UI (/swagger-ui/) from a real sms binary in headless
// Chromium and checks that it renders the gateway's OpenAPI document: the
// title and every route, with no request leaving the server's origin and no
// console error. Writes a screenshot to $ARTIFACTS_DIR as swagger-ui.png.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchChromium, skip } from "./browser.mjs";
import { startSMS } from "./server.mjs";

const artifacts = resolve(process.env.ARTIFACTS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "artifacts"));

// The routes of the gateway, as Swagger UI lists them (method, path).
const routes = [
  ["GET", "/api/v1/nodes"], ["POST", "/api/v1/nodes"],
  ["GET", "/api/v1/nodes/{uuid}"], ["PUT", "/api/v1/nodes/{uuid}"], ["DELETE", "/api/v1/nodes/{uuid}"],
  ["POST", "/api/v1/nodes/{uuid}/heartbeat"],
  ["GET", "/api/v1/nodes/{uuid}/resource"], ["PUT", "/api/v1/nodes/{uuid}/resource"],
  ["GET", "/api/v1/nodes/{uuid}/with-resource"], ["GET", "/api/v1/resources"],
  ["POST", "/api/v1/placement/invocations/place"], ["POST", "/api/v1/placement/invocations/report-outcome"],
  ["GET", "/health"],
];

let sms, browser;

before(async () => {
  if (skip) return;
  sms = await startSMS();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await sms?.stop();
});

test("Swagger UI lists every gateway route, from the server alone", { skip, timeout: 60000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  const foreign = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => { if (!r.url().startsWith(sms.url) && !r.url().startsWith("data:")) foreign.push(r.url()); });

  await page.goto(sms.url + "/swagger-ui/");
  await page.locator(".info .title").filter({ hasText: "SPEAR Metadata Server API" }).waitFor({ timeout: 20000 });
  await page.locator(".opblock").first().waitFor({ timeout: 20000 });
  const listed = await page.$$eval(".opblock", (blocks) => blocks.map((b) => [
    b.querySelector(".opblock-summary-method")?.textContent.trim(),
    b.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? b.querySelector(".opblock-summary-path")?.textContent.trim(),
  ]));
  const key = ([m, p]) => `${m} ${p}`;
  assert.deepEqual(listed.map(key).sort(), routes.map(key).sort());

  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, "swagger-ui.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`# screenshot: ${shot}`);
  assert.deepEqual(foreign, [], "requests left the server's origin");
  assert.deepEqual(errors, []);
  await page.close();
});
