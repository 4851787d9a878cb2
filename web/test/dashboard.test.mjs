// Loads the dashboard served by a real sms binary in headless Chromium
// (Debian's chromium, driven by playwright-core) and checks that it shows a
// node registered by the test and follows its status change, through the
// page's refresh (one ListNodes page every few seconds). Writes a screenshot to $ARTIFACTS_DIR (default ../artifacts)
// as dashboard.png.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchChromium, skip } from "./browser.mjs";
import { rpc, startSMS } from "./server.mjs";

const artifacts = resolve(process.env.ARTIFACTS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "artifacts"));

let sms, browser, page;
const consoleErrors = [];

before(async () => {
  if (skip) return;
  sms = await startSMS();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 400 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  await sms?.stop();
});

test("dashboard shows a registered node and follows its status live", { skip, timeout: 60000 }, async () => {
  const { nodeUuid: id } = await rpc(sms.url, "RegisterNode",
    { node: { ipAddress: "10.0.0.5", port: 8080, httpPort: 8081, metadata: { zone: "a", rack: "r1" } } });
  await rpc(sms.url, "UpdateNodeResource", { resource: { nodeUuid: id, cpuUsagePercent: 37.5,
    memoryUsagePercent: 62, diskUsagePercent: 88, totalMemoryBytes: 16 * 2 ** 30, usedMemoryBytes: 10 * 2 ** 30 } });
  const other = await rpc(sms.url, "RegisterNode",
    { node: { ipAddress: "10.0.0.6", port: 8080, status: "decommissioning", metadata: { zone: "b" } } });
  await rpc(sms.url, "UpdateNodeResource", { resource: { nodeUuid: other.nodeUuid, cpuUsagePercent: 91,
    memoryUsagePercent: 45, diskUsagePercent: 12 } });

  await page.goto(sms.url + "/");
  assert.equal(await page.title(), "SMS dashboard");
  const row = page.locator(`tr[data-uuid="${id}"]`);
  await row.waitFor({ timeout: 15000 });
  assert.equal(await row.locator("td.status").innerText(), "active");
  assert.equal(await row.locator("td.addr").innerText(), "10.0.0.5:8080 http :8081");
  assert.match(await row.locator("td.metadata").innerText(), /zone=a/);
  assert.match(await row.locator("td.age").innerText(), /s ago$/);
  await page.locator(`tr[data-uuid="${id}"] .pct`).first().filter({ hasText: "37.5%" }).waitFor({ timeout: 15000 });
  await page.locator('[data-stat="total"] .value').filter({ hasText: "2" }).waitFor({ timeout: 15000 });
  assert.equal(await page.locator("#conn").innerText(), "live");

  // A heartbeat's health_info is shown, and follows the next heartbeat.
  await rpc(sms.url, "Heartbeat", { uuid: id, healthInfo: { disk: "ok" } });
  await row.locator("td.health").filter({ hasText: "disk=ok" }).waitFor({ timeout: 10000 });
  await rpc(sms.url, "Heartbeat", { uuid: id, healthInfo: { disk: "full" } });
  await row.locator("td.health").filter({ hasText: "disk=full" }).waitFor({ timeout: 10000 });

  // A status change reaches the page with its refresh, without a reload.
  await rpc(sms.url, "UpdateNode", { uuid: id, node: { ipAddress: "10.0.0.5", port: 8080, httpPort: 8081,
    status: "unhealthy", metadata: { zone: "a", rack: "r1" } } });
  await row.locator("td.status").filter({ hasText: "unhealthy" }).waitFor({ timeout: 10000 });
  await page.locator('[data-stat="unhealthy"] .value').filter({ hasText: "1" }).waitFor({ timeout: 15000 });

  // So does a new node, and the filters narrow the table.
  const late = await rpc(sms.url, "RegisterNode", { node: { ipAddress: "10.0.0.7", port: 9000, metadata: { zone: "a" } } });
  await page.locator(`tr[data-uuid="${late.nodeUuid}"]`).waitFor({ timeout: 10000 });
  // The filter applies asynchronously: wait for the filtered table (only the
  // decommissioning node left), never count rows right after selectOption.
  await page.selectOption("#status-filter", "decommissioning");
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("tbody tr");
    return rows.length === 1 && rows[0].textContent.includes("10.0.0.6");
  });
  await page.selectOption("#status-filter", "");
  await page.fill("#text-filter", "zone=a");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 2);
  await page.fill("#text-filter", "");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 3);
  await page.locator('[data-stat="total"] .value').filter({ hasText: "3" }).waitFor({ timeout: 15000 });

  // A node an invoker reported as timing out is marked blocked for placement.
  const report = await fetch(`${sms.url}/sms.PlacementService/ReportInvocationOutcome`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ decisionId: "d", requestId: "r", taskId: "t", nodeUuid: late.nodeUuid,
      outcomeClass: "INVOCATION_OUTCOME_CLASS_TIMEOUT" }),
  });
  assert.equal(report.status, 200);
  await page.locator(`tr[data-uuid="${late.nodeUuid}"] .placement.blocked`).waitFor({ timeout: 15000 });
  assert.equal(await page.locator(".placement.blocked").count(), 1);

  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, "dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`# screenshot: ${shot}`);
  assert.deepEqual(consoleErrors, []);
});

test("dashboard asks for a token when the server needs one", { skip, timeout: 30000 }, async () => {
  // Uses a second server with --auth-token-file.
  const { writeFileSync } = await import("node:fs");
  const tokenFile = join(mkdtempSync(join(tmpdir(), "sms-token-")), "token");
  writeFileSync(tokenFile, "s3cret\n", { mode: 0o600 });
  const secured = await startSMS(["--auth-token-file", tokenFile]);
  try {
    const p = await browser.newPage();
    await p.goto(secured.url + "/");
    await p.locator("#error").filter({ hasText: "needs a token" }).waitFor({ timeout: 10000 });
    await p.fill("#token", "s3cret");
    await p.press("#token", "Enter");
    await p.locator("#conn").filter({ hasText: "live" }).waitFor({ timeout: 10000 });
    assert.equal(await p.locator("#error").isHidden(), true);
    await p.close();
  } finally {
    await secured.stop();
  }
});
