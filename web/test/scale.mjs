// Measures the dashboard at scale (not a test: it asserts nothing about
// time and is not run by `npm test`). Seeds two fleets into fresh SQLite
// files with `smsbench --workload seed` (registry.BulkPut in batches): a
// small one, the baseline, and SMS_DASHBOARD_NODES nodes (default
// 100,000); starts a real sms binary on each and, in headless Chromium,
// in interleaved rounds, times the first rows of a page load, a sort by
// clicking a header, a next page and a search, reporting each as the median
// for both fleets and their ratio. Then what one ListNodes page of 100
// costs through the big fleet's server in each order, as a ratio to the
// default uuid order in the same run.
//
//	cd web && SMS_DASHBOARD_REPORT=1 node test/scale.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium, skip } from "./browser.mjs";
import { repo, smsBinary, startSMS } from "./server.mjs";

if (!process.env.SMS_DASHBOARD_REPORT) {
  console.log("set SMS_DASHBOARD_REPORT=1 to measure (seeds a large fleet: a minute or more)");
  process.exit(0);
}
if (skip) throw new Error(skip);
const fleets = [Number(process.env.SMS_DASHBOARD_BASELINE_NODES ?? 1000), Number(process.env.SMS_DASHBOARD_NODES ?? 100000)];
const rounds = Number(process.env.SMS_DASHBOARD_ROUNDS ?? 3);
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");
const ms = (t) => `${Math.round(t)} ms`;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const dir = mkdtempSync(join(tmpdir(), "sms-dashboard-scale-"));
const bench = join(dir, "smsbench");
execFileSync("go", ["build", "-o", bench, "./cmd/smsbench"], { cwd: repo, stdio: "inherit" });
const bin = smsBinary();
const servers = [];
let browser;
try {
  for (const n of fleets) {
    const db = join(dir, `seed-${n}.db`);
    execFileSync(bench, ["--workload", "seed", "--kv-backend", "sqlite", "--kv-path", db, "--nodes", String(n)], { stdio: "inherit" });
    const t = performance.now();
    // A long heartbeat timeout: the seeded heartbeats must not expire (and
    // the sweeper rewrite the fleet) while this measures.
    const sms = await startSMS(["--kv-backend", "sqlite", "--kv-path", db, "--heartbeat-timeout", "24h"], bin);
    servers.push(sms);
    for (;;) {
      const r = await fetch(`${sms.url}/healthz`).catch(() => undefined);
      if (r?.ok) break;
      await new Promise((done) => setTimeout(done, 50));
    }
    console.log(`sms on ${n} nodes ready (view loaded) ${ms(performance.now() - t)} after start`);
  }

  browser = await launchChromium();
  // A throwaway page first: Chromium's own first page is not the dashboard's.
  await (await browser.newPage()).close();
  const steps = new Map(); // step -> one array of times per fleet
  let page;
  const firstRow = () => page.$eval("tbody tr", (tr) => tr.dataset.uuid).catch(() => "");
  // timed acts, then waits until done holds (by default: the first row is
  // not what it was) and records how long that took.
  const timed = async (fleet, what, act, done) => {
    const before = await firstRow();
    const began = performance.now();
    await act();
    await page.waitForFunction(done ?? ((b) => {
      const tr = document.querySelector("tbody tr");
      return tr && tr.dataset.uuid !== b;
    }), before, { timeout: 120000, polling: 10 });
    const d = performance.now() - began;
    if (!steps.has(what)) steps.set(what, fleets.map(() => []));
    steps.get(what)[fleet].push(d);
    const rows = await page.locator("tbody tr").count();
    if (rows > 100) throw new Error(`${what}: ${rows} rows in the DOM`);
  };
  for (let round = 0; round < rounds; round++) {
    for (const [f, sms] of servers.entries()) {
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      // The machine's own latency, for scale: a static file from the same server.
      await timed(f, "baseline: load /ui/app.css (no dashboard)", () => page.goto(sms.url + "/ui/app.css"), () => true);
      await timed(f, "first rows of a page load", () => page.goto(sms.url + "/", { waitUntil: "commit" }),
        () => !!document.querySelector("tbody tr"));
      await timed(f, "sort by CPU (click)", () => page.click('th[data-sort="cpu"]'));
      await timed(f, "sort by CPU ascending (click)", () => page.click('th[data-sort="cpu"]'));
      await timed(f, "next page", () => page.click("#next"));
      await timed(f, "sort by last heartbeat (click)", () => page.click('th[data-sort="heartbeat"]'));
      // The search box waits 250 ms for typing to stop: included.
      const last = String(fleets[f] - 1).padStart(12, "0");
      await timed(f, "search for the last node (scans the fleet)", () => page.fill("#text-filter", last),
        () => document.querySelectorAll("tbody tr").length === 1);
      await timed(f, "clear the search", () => page.fill("#text-filter", ""),
        () => document.querySelectorAll("tbody tr").length === 100);
      if (round === rounds - 1 && f === servers.length - 1) {
        const artifacts = resolve(process.env.ARTIFACTS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "artifacts"));
        mkdirSync(artifacts, { recursive: true });
        await page.screenshot({ path: join(artifacts, "dashboard-scale.png") });
      }
      await page.close();
    }
  }
  console.log(`dashboard in headless Chromium, ${rounds} rounds, median [min–max] (load ${load()}):`);
  console.log(`  ${"step".padEnd(44)} ${fleets.map((n) => `${n} nodes`.padEnd(26)).join("")}ratio`);
  for (const [what, byFleet] of steps) {
    const cols = byFleet.map((ts) => `${ms(median(ts))} [${Math.round(Math.min(...ts))}–${Math.round(Math.max(...ts))}]`.padEnd(26));
    console.log(`  ${what.padEnd(44)} ${cols.join("")}${(median(byFleet[1]) / median(byFleet[0])).toFixed(2)}x`);
  }

  // ListNodes through the big fleet's server: pages of 100 in each order,
  // from tokens spread over the order, interleaved rounds, medians.
  const url = servers[1].url;
  const orders = ["ORDER_UUID", "ORDER_STATUS", "ORDER_LAST_HEARTBEAT", "ORDER_CPU", "ORDER_MEMORY"];
  const list = async (body) => {
    const r = await fetch(`${url}/sms.NodeService/ListNodes`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`ListNodes: HTTP ${r.status}: ${await r.text()}`);
    return r.json();
  };
  const tokens = {};
  for (const orderBy of orders) {
    tokens[orderBy] = [""];
    let body = { orderBy, pageSize: 1000 };
    for (let i = 0; i < 20; i++) { // 20 starting points, 1,000 nodes apart
      const r = await list(body);
      if (!r.nextPageToken) break;
      tokens[orderBy].push(r.nextPageToken);
      body = { ...body, pageToken: r.nextPageToken };
    }
  }
  const times = Object.fromEntries(orders.map((o) => [o, []]));
  for (let round = 0; round < 5; round++) {
    for (const orderBy of orders) {
      const began = performance.now();
      for (let k = 0; k < 20; k++) {
        await list({ orderBy, pageSize: 100, pageToken: tokens[orderBy][k % tokens[orderBy].length] });
      }
      times[orderBy].push((performance.now() - began) / 20);
    }
  }
  const base = median(times.ORDER_UUID);
  console.log(`ListNodes page of 100 of ${fleets[1]} nodes over Connect JSON, 1 client, 5 rounds (load ${load()}):`);
  for (const o of orders) {
    const m = median(times[o]);
    console.log(`  ${o.padEnd(22)} ${m.toFixed(2).padStart(7)} ms/page  ${(m / base).toFixed(2)}x of uuid`);
  }
} finally {
  await browser?.close();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
}
