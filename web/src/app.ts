// The SMS dashboard: one page of the registered nodes at a time, read with
// ListNodes (server-side paging, sorting and search, each page O(page) on
// the server however large the fleet), with the page's resource reports,
// the cluster stats (GetClusterStats, O(1)) and the placement penalties. The
// page is read again every few seconds: what is on screen, never the whole
// fleet. It talks to the server it was loaded from, with the Connect
// protocol through @connectrpc/connect-web.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  NodeService,
  ListNodesRequest_Order as Order,
  type GetClusterStatsResponse,
  type Node,
  type NodeResource,
} from "./gen/sms/node_pb";
import { PlacementService, type NodePenalty } from "./gen/sms/placement_pb";

const tokenKey = "sms-dashboard-token";
const refreshMs = 3000;
const pageSize = 100;
// A page with a search looks at 10,000 nodes per call at most and may come
// back short with a token: the page asks again until it is full, this many
// calls at most (then "next" goes on from where it stopped).
const maxCallsPerPage = 100;
const searchDelayMs = 250;
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

// What the table shows: the query, and where in it.
const query = { order: Order.UUID, descending: false, status: "", search: "" };
// pageTokens[i] is the token of page i ("" for the first); next is the token
// after the page shown, "" on the last page.
let pageTokens = [""];
let next = "";

let rows: Node[] = [];
const resources = new Map<string, NodeResource>();
// Placement penalties by node: a blocked node gets no invocations.
const penalties = new Map<string, NodePenalty>();
let stats: GetClusterStatsResponse | undefined;
let errorText = "";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- data ----

// generation numbers the loads: a load started before the query changed
// does not overwrite what a later one shows.
let generation = 0;

// load reads the current page and renders it at once, then its resource
// reports; the stats and the penalties are read alongside, each rendered
// when it arrives, so none of them delays the rows.
async function load() {
  const gen = ++generation;
  const token = pageTokens[pageTokens.length - 1];
  const side = Promise.all([
    client.getClusterStats({}).then((st) => { stats = st; }),
    placement.listPlacementPenalties({}).then((pen) => {
      penalties.clear();
      for (const p of pen.penalties) penalties.set(p.nodeUuid, p);
    }),
  ]).then(render);
  try {
    const page = await readPage(token, gen);
    if (gen !== generation || !page) return;
    rows = page.nodes;
    next = page.next;
    render();
    const res = page.nodes.length === 0 ? [] :
      (await client.listNodeResources({ nodeUuids: page.nodes.map((n) => n.uuid) })).resources;
    if (gen !== generation) return;
    resources.clear();
    for (const r of res) resources.set(r.nodeUuid, r);
    await side;
    setConn(true);
    setError("");
    render();
  } catch (err) {
    if (gen !== generation) return;
    setConn(false);
    showRPCError(err);
  }
}

// readPage reads up to pageSize nodes from token on, asking again while
// the server returns short pages with a token (a search ends a call early).
async function readPage(token: string, gen: number) {
  const nodes: Node[] = [];
  for (let calls = 0; calls < maxCallsPerPage; calls++) {
    const resp = await client.listNodes({
      pageSize: pageSize - nodes.length, pageToken: token, orderBy: query.order,
      descending: query.descending, statusFilter: query.status, search: query.search,
    });
    if (gen !== generation) return undefined;
    nodes.push(...resp.nodes);
    token = resp.nextPageToken;
    if (token === "" || nodes.length >= pageSize) break;
  }
  return { nodes, next: token };
}

// reload starts a load now, and the refresh timer again once it is done
// (only the latest load's end sets it: one timer at a time).
let refreshTimer: number | undefined;
function reload() {
  window.clearTimeout(refreshTimer);
  const done = load();
  const gen = generation;
  done.finally(() => {
    if (gen === generation) refreshTimer = window.setTimeout(reload, refreshMs);
  });
}

// requery goes back to the first page after the query changed.
function requery() {
  pageTokens = [""];
  next = "";
  reload();
}

function showRPCError(err: unknown) {
  const ce = ConnectError.from(err);
  if (ce.code === Code.Unauthenticated) {
    setError("This server needs a token: enter it in the token field above.");
  } else {
    setError(`Cannot reach SMS (${Code[ce.code] ?? ce.code}): ${ce.rawMessage}. Retrying…`);
  }
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

// The sortable columns: header data-sort names, their orders, and whether
// a first click sorts descending (the busiest first).
const columns: Record<string, { order: Order; descFirst: boolean }> = {
  status: { order: Order.STATUS, descFirst: false },
  uuid: { order: Order.UUID, descFirst: false },
  heartbeat: { order: Order.LAST_HEARTBEAT, descFirst: false },
  cpu: { order: Order.CPU, descFirst: true },
  memory: { order: Order.MEMORY, descFirst: true },
};

function renderHeaders() {
  for (const th of document.querySelectorAll<HTMLElement>("th[data-sort]")) {
    const on = columns[th.dataset.sort!]?.order === query.order;
    th.setAttribute("aria-sort", on ? (query.descending ? "descending" : "ascending") : "none");
    th.classList.toggle("sorted", on);
  }
}

function renderTable() {
  const trs = rows.map((n) => {
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
    // health_info of the latest heartbeat.
    const health = el("td", "health");
    for (const [k, v] of Object.entries(n.healthInfo).sort()) health.append(el("span", "tag", `${k}=${v}`));
    tr.append(st, el("td", "uuid", n.uuid), addr, hb,
      meter(r?.cpuUsagePercent), meter(r?.memoryUsagePercent), meter(r?.diskUsagePercent), meta, health);
    return tr;
  });
  $("nodes").querySelector("tbody")!.replaceChildren(...trs);
  const page = pageTokens.length;
  const first = (page - 1) * pageSize + 1;
  // The total of the status shown comes from the stats; with a search the
  // number of matches is not known (it is not indexed).
  const total = query.status ? stats?.nodesByStatus[query.status] : stats?.totalNodes;
  const of = query.search ? "" : ` of ${total ?? "?"}`;
  $("count").textContent = rows.length === 0 ? `no nodes${of}` :
    `page ${page}: rows ${first}–${first + rows.length - 1}${of}${query.search ? " matching" : ""}`;
  ($("prev") as HTMLButtonElement).disabled = page === 1;
  ($("next") as HTMLButtonElement).disabled = next === "";
  $("empty").hidden = rows.length > 0;
  renderHeaders();
  tickAges();
}

// ---- wiring ----

function start() {
  $("example").textContent =
    `curl -X POST ${location.origin}/api/v1/nodes -H 'Content-Type: application/json' -d '{"ip_address":"10.0.0.5","port":8080}'`;
  const token = $("token") as HTMLInputElement;
  token.value = localStorage.getItem(tokenKey) ?? "";
  token.addEventListener("change", () => {
    if (token.value) localStorage.setItem(tokenKey, token.value);
    else localStorage.removeItem(tokenKey);
    reload();
  });
  const status = $("status-filter") as HTMLSelectElement;
  status.addEventListener("change", () => {
    query.status = status.value;
    requery();
  });
  const text = $("text-filter") as HTMLInputElement;
  let searchTimer: number | undefined;
  text.addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      const s = text.value.trim();
      if (s === query.search) return;
      query.search = s;
      requery();
    }, searchDelayMs);
  });
  for (const th of document.querySelectorAll<HTMLElement>("th[data-sort]")) {
    th.addEventListener("click", () => {
      const c = columns[th.dataset.sort!];
      if (query.order === c.order) query.descending = !query.descending;
      else [query.order, query.descending] = [c.order, c.descFirst];
      requery();
    });
  }
  $("prev").addEventListener("click", () => {
    if (pageTokens.length > 1) pageTokens.pop();
    reload();
  });
  $("next").addEventListener("click", () => {
    if (next === "") return;
    pageTokens.push(next);
    reload();
  });
  reload();
  setInterval(tickAges, 1000);
}

start();
