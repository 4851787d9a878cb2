// The SMS dashboard: a live table of the registered nodes, kept current by
// one WatchNodes stream (with heartbeats), plus resource reports and cluster
// stats refreshed every few seconds. It talks to the server it was loaded
// from, with the Connect protocol through @connectrpc/connect-web.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  NodeService,
  WatchNodesResponse_Kind as Kind,
  type GetClusterStatsResponse,
  type Node,
  type NodeResource,
} from "./gen/sms/node_pb";
import { PlacementService, type NodePenalty } from "./gen/sms/placement_pb";

const tokenKey = "sms-dashboard-token";
const refreshMs = 5000;
const retryMs = 2000;
// A heartbeat older than this is shown in red (the server's default
// --heartbeat-timeout is 90s; the sweeper decides what is unhealthy).
const staleSeconds = 90;

// Sends the token typed into the page, if any, as a bearer token.
const bearer: Interceptor = (next) => (req) => {
  const token = localStorage.getItem(tokenKey);
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] });
const client = createClient(NodeService, transport);
const placement = createClient(PlacementService, transport);

const nodes = new Map<string, Node>();
const resources = new Map<string, NodeResource>();
// Placement penalties by node: a blocked node gets no invocations.
const penalties = new Map<string, NodePenalty>();
let stats: GetClusterStatsResponse | undefined;
let errorText = "";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- live data ----

// watch keeps one WatchNodes stream open, calling it again after any error:
// each call starts with a snapshot, so the table is whole again at its
// SNAPSHOT_END.
async function watch(signal: AbortSignal) {
  while (!signal.aborted) {
    const snapshot = new Map<string, Node>();
    let live = false;
    try {
      for await (const ev of client.watchNodes({ includeHeartbeats: true }, { signal })) {
        const n = ev.node;
        switch (ev.kind) {
          case Kind.SNAPSHOT:
            if (n) snapshot.set(n.uuid, n);
            break;
          case Kind.SNAPSHOT_END:
            nodes.clear();
            for (const [k, v] of snapshot) nodes.set(k, v);
            live = true;
            setConn(true);
            setError("");
            refresh();
            break;
          case Kind.DELETED:
          case Kind.EXPIRED:
            if (n) nodes.delete(n.uuid);
            if (n) resources.delete(n.uuid);
            refreshSoon();
            break;
          default: // REGISTERED, UPDATED, STATUS_CHANGED, HEARTBEAT
            if (n) nodes.set(n.uuid, n);
            if (ev.kind !== Kind.HEARTBEAT) refreshSoon();
        }
        if (live) render();
      }
    } catch (err) {
      if (signal.aborted) return;
      showRPCError(err);
    }
    setConn(false);
    await sleep(retryMs, signal);
  }
}

// refresh reads the resource reports, the cluster stats and the placement
// penalties.
async function refresh() {
  try {
    const [res, st, pen] = await Promise.all([
      client.listNodeResources({}),
      client.getClusterStats({}),
      placement.listPlacementPenalties({}),
    ]);
    resources.clear();
    for (const r of res.resources) resources.set(r.nodeUuid, r);
    penalties.clear();
    for (const p of pen.penalties) penalties.set(p.nodeUuid, p);
    stats = st;
    render();
  } catch (err) {
    showRPCError(err);
  }
}

let refreshTimer: number | undefined;
function refreshSoon() {
  if (refreshTimer !== undefined) return;
  refreshTimer = window.setTimeout(() => {
    refreshTimer = undefined;
    refresh();
  }, 300);
}

function showRPCError(err: unknown) {
  const ce = ConnectError.from(err);
  if (ce.code === Code.Unauthenticated) {
    setError("This server needs a token: enter it in the token field above.");
  } else {
    setError(`Cannot reach SMS (${Code[ce.code] ?? ce.code}): ${ce.rawMessage}. Retrying…`);
  }
}

function sleep(ms: number, signal: AbortSignal) {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// ---- rendering ----

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderStats();
    renderTable();
  });
}

function setConn(live: boolean) {
  const el = $("conn");
  el.textContent = live ? "live" : "reconnecting…";
  el.className = `conn ${live ? "conn-live" : "conn-down"}`;
}

function setError(text: string) {
  if (text === errorText) return;
  errorText = text;
  const el = $("error");
  el.textContent = text;
  el.hidden = text === "";
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function card(label: string, value: string, id: string) {
  const c = el("div", "card");
  c.dataset.stat = id;
  c.append(el("div", "label", label), el("div", "value", value));
  return c;
}

function pct(v: number) {
  return `${v.toFixed(1)}%`;
}

function bytes(n: bigint) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 || v >= 100 ? 0 : 1)} ${units[i]}`;
}

function renderStats() {
  const box = $("stats");
  if (!stats) return;
  const by = (s: string) => String(stats?.nodesByStatus[s] ?? 0n);
  box.replaceChildren(
    card("nodes", String(stats.totalNodes), "total"),
    card("active", by("active"), "active"),
    card("inactive", by("inactive"), "inactive"),
    card("unhealthy", by("unhealthy"), "unhealthy"),
    card("decommissioning", by("decommissioning"), "decommissioning"),
    card("avg CPU", pct(stats.averageCpuUsagePercent), "cpu"),
    card("avg memory", pct(stats.averageMemoryUsagePercent), "memory"),
    card("memory used", `${bytes(stats.usedMemoryBytes)} / ${bytes(stats.totalMemoryBytes)}`, "memory-bytes"),
    card("high load", String(stats.highLoadNodes), "high-load"),
  );
}

function matches(n: Node, status: string, text: string) {
  if (status && n.status !== status) return false;
  if (!text) return true;
  const hay = [n.uuid, `${n.ipAddress}:${n.port}`, n.status,
    ...Object.entries(n.metadata).map(([k, v]) => `${k}=${v}`)].join(" ").toLowerCase();
  return text.split(/\s+/).every((w) => hay.includes(w));
}

function meter(v: number | undefined) {
  const td = el("td");
  if (v === undefined) {
    td.append(el("span", "none", "—"));
    return td;
  }
  const m = el("div", "meter");
  const bar = el("div", "bar");
  const fill = el("div", v > 85 ? "fill high" : v > 70 ? "fill warn" : "fill");
  fill.style.width = `${Math.min(100, Math.max(0, v))}%`;
  bar.append(fill);
  m.append(bar, el("span", "pct", pct(v)));
  td.append(m);
  return td;
}

function age(seconds: number) {
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

// tickAges rewrites the heartbeat ages, every second.
function tickAges() {
  const now = Math.floor(Date.now() / 1000);
  for (const td of document.querySelectorAll<HTMLElement>("td.age")) {
    const s = Math.max(0, now - Number(td.dataset.heartbeat));
    td.textContent = age(s);
    td.classList.toggle("stale", s > staleSeconds);
  }
}

function renderTable() {
  const status = ($("status-filter") as HTMLSelectElement).value;
  const text = ($("text-filter") as HTMLInputElement).value.trim().toLowerCase();
  const shown = [...nodes.values()]
    .filter((n) => matches(n, status, text))
    .sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0));
  const rows = shown.map((n) => {
    const r = resources.get(n.uuid);
    const tr = el("tr");
    tr.dataset.uuid = n.uuid;
    const st = el("td", "status");
    st.append(el("span", `badge status-${n.status}`, n.status));
    const p = penalties.get(n.uuid);
    if (p?.blocked) {
      const b = el("span", "placement blocked", "blocked");
      b.title = `not placed on until ${new Date(Number(p.blockedUntil) * 1000).toISOString()} (${p.consecutiveFailures} failures)`;
      st.append(" ", b);
    } else if (p) {
      const b = el("span", "placement penalty", `penalty ${p.penalty}`);
      b.title = `${p.consecutiveFailures} recent failures lower its placement score by ${5 * p.penalty}`;
      st.append(" ", b);
    }
    const addr = el("td", "addr", `${n.ipAddress}:${n.port}`);
    if (n.httpPort) addr.append(" ", el("span", "http", `http :${n.httpPort}`));
    const hb = el("td", "age");
    hb.dataset.heartbeat = String(n.lastHeartbeat);
    hb.title = new Date(Number(n.lastHeartbeat) * 1000).toISOString();
    const meta = el("td", "metadata");
    for (const [k, v] of Object.entries(n.metadata).sort()) meta.append(el("span", "tag", `${k}=${v}`));
    // health_info of the latest heartbeat (HEARTBEAT events keep it current).
    const health = el("td", "health");
    for (const [k, v] of Object.entries(n.healthInfo).sort()) health.append(el("span", "tag", `${k}=${v}`));
    tr.append(st, el("td", "uuid", n.uuid), addr, hb,
      meter(r?.cpuUsagePercent), meter(r?.memoryUsagePercent), meter(r?.diskUsagePercent), meta, health);
    return tr;
  });
  $("nodes").querySelector("tbody")!.replaceChildren(...rows);
  $("count").textContent = `${shown.length} of ${nodes.size} nodes`;
  $("empty").hidden = shown.length > 0;
  tickAges();
}

// ---- wiring ----

let watching = new AbortController();

function start() {
  $("example").textContent =
    `curl -X POST ${location.origin}/api/v1/nodes -H 'Content-Type: application/json' -d '{"ip_address":"10.0.0.5","port":8080}'`;
  const token = $("token") as HTMLInputElement;
  token.value = localStorage.getItem(tokenKey) ?? "";
  token.addEventListener("change", () => {
    if (token.value) localStorage.setItem(tokenKey, token.value);
    else localStorage.removeItem(tokenKey);
    watching.abort(); // watch again with the new token
    watching = new AbortController();
    watch(watching.signal);
  });
  $("status-filter").addEventListener("change", render);
  $("text-filter").addEventListener("input", render);
  watch(watching.signal);
  setInterval(tickAges, 1000);
  setInterval(refresh, refreshMs);
}

start();
