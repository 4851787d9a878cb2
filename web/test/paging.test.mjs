// The dashboard at more nodes than one page: a real sms binary with 250
// nodes registered by the test, the page in headless Chromium. Checks that
// the table shows one server page of 100 rows at a time, pages forward and
// back, sorts by clicking the column headers (the server's ListNodes
// order_by), filters by status and searches, each against what the seeded
// fleet says the rows must be.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchChromium, skip } from "./browser.mjs";
import { rpc, startSMS } from "./server.mjs";

const total = 250;
const pageRows = 100;
let sms, browser, page;
const consoleErrors = [];
const fleet = []; // { uuid, status, cpu, memory, rack }

const uuidOf = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;

before(async () => {
  if (skip) return;
  sms = await startSMS();
  for (let lo = 0; lo < total; lo += 25) {
    await Promise.all(Array.from({ length: Math.min(25, total - lo) }, async (_, k) => {
      const i = lo + k;
      const n = { uuid: uuidOf(i), status: i % 5 === 0 ? "inactive" : "active", cpu: ((i * 37) % 100) + 0.5,
        memory: (i * 13) % 100, rack: `r${i % 10}` };
      await rpc(sms.url, "RegisterNode", { node: { uuid: n.uuid, ipAddress: `10.1.${i >> 8}.${i & 255}`, port: 8080,
        status: n.status, metadata: { rack: n.rack } } });
      if (i % 50 !== 7) { // a few without a report: they sort below 0 %
        await rpc(sms.url, "UpdateNodeResource", { resource: { nodeUuid: n.uuid, cpuUsagePercent: n.cpu,
          memoryUsagePercent: n.memory } });
      } else {
        n.cpu = n.memory = -1;
      }
      fleet.push(n);
    }));
  }
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  await sms?.stop();
});

// expected returns the uuids of the fleet, filtered and sorted as ListNodes
// documents (ties by uuid, descending reverses both).
function expected({ key = "uuid", desc = false, status = "", rack = "" } = {}) {
  const rows = fleet.filter((n) => (!status || n.status === status) && (!rack || n.rack === rack));
  rows.sort((a, b) => {
    let c = key === "uuid" ? 0 : a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0;
    if (c === 0) c = a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0;
    return desc ? -c : c;
  });
  return rows.map((n) => n.uuid);
}

// waitRows waits until the table shows exactly these uuids, in this order.
async function waitRows(want, what) {
  try {
    await page.waitForFunction((w) => {
      const got = [...document.querySelectorAll("tbody tr")].map((tr) => tr.dataset.uuid);
      return got.length === w.length && got.every((u, i) => u === w[i]);
    }, want, { timeout: 15000 });
  } catch (err) {
    const got = await page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.dataset.uuid));
    assert.fail(`${what}: rows ${JSON.stringify(got.slice(0, 5))}… (${got.length}), want ${JSON.stringify(want.slice(0, 5))}… (${want.length}): ${err}`);
  }
}

test("dashboard pages, sorts, filters and searches on the server", { skip, timeout: 120000 }, async () => {
  await page.goto(sms.url + "/");
  const byUUID = expected();
  await waitRows(byUUID.slice(0, pageRows), "first page");
  assert.match(await page.locator("#count").innerText(), /^page 1: rows 1–100 of 250$/);
  assert.equal(await page.locator("#prev").isDisabled(), true);

  // Paging: forward to the short last page, then back.
  await page.click("#next");
  await waitRows(byUUID.slice(pageRows, 2 * pageRows), "page 2");
  await page.click("#next");
  await waitRows(byUUID.slice(2 * pageRows), "page 3");
  assert.equal(await page.locator("#next").isDisabled(), true);
  assert.match(await page.locator("#count").innerText(), /^page 3: rows 201–250 of 250$/);
  await page.click("#prev");
  await waitRows(byUUID.slice(pageRows, 2 * pageRows), "back to page 2");

  // Sorting by a header goes back to page 1; CPU sorts busiest first, a
  // second click reverses it, a next page continues the order.
  await page.click('th[data-sort="cpu"]');
  await waitRows(expected({ key: "cpu", desc: true }).slice(0, pageRows), "CPU descending");
  assert.equal(await page.getAttribute('th[data-sort="cpu"]', "aria-sort"), "descending");
  await page.click('th[data-sort="cpu"]');
  const cpuUp = expected({ key: "cpu" });
  await waitRows(cpuUp.slice(0, pageRows), "CPU ascending");
  await page.click("#next");
  await waitRows(cpuUp.slice(pageRows, 2 * pageRows), "CPU ascending, page 2");
  await page.click('th[data-sort="memory"]');
  await waitRows(expected({ key: "memory", desc: true }).slice(0, pageRows), "memory descending");
  await page.click('th[data-sort="status"]');
  await waitRows(expected({ key: "status" }).slice(0, pageRows), "status");

  // The status filter keeps the order; the count comes from the stats.
  await page.click('th[data-sort="cpu"]');
  await page.selectOption("#status-filter", "inactive");
  await waitRows(expected({ key: "cpu", desc: true, status: "inactive" }), "inactive by CPU");
  assert.match(await page.locator("#count").innerText(), /^page 1: rows 1–50 of 50$/);

  // The search box searches on the server (every word must match).
  await page.selectOption("#status-filter", "");
  await page.fill("#text-filter", "rack=r3");
  await waitRows(expected({ key: "cpu", desc: true, rack: "r3" }), "search rack=r3");
  await page.fill("#text-filter", "rack=r3 000000000013");
  await waitRows([uuidOf(13)], "search two words");
  await page.fill("#text-filter", "no-such-node");
  await waitRows([], "search without matches");
  assert.equal(await page.locator("#empty").isHidden(), false);
  await page.fill("#text-filter", "");
  await waitRows(expected({ key: "cpu", desc: true }).slice(0, pageRows), "search cleared");

  // The refresh reads the page again: a node reporting the highest CPU
  // comes to the top without a reload.
  const last = fleet.find((n) => n.uuid === uuidOf(total - 1));
  await rpc(sms.url, "UpdateNodeResource", { resource: { nodeUuid: last.uuid, cpuUsagePercent: 100, memoryUsagePercent: last.memory } });
  last.cpu = 100;
  await waitRows(expected({ key: "cpu", desc: true }).slice(0, pageRows), "after a resource report");
  assert.equal(await page.locator("tbody tr").count(), pageRows); // one page in the DOM, never the fleet
  assert.deepEqual(consoleErrors, []);
});
