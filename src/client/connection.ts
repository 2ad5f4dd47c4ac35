// The tab's event stream (docs/PROTOCOL.md §4 and §6). A browser allows six HTTP/1.1 connections per
// origin, and an open event stream holds one for good, so a seventh tab of the same site would never
// load. Hence two ways to receive events:
// - shared: where the browser has SharedWorker, one worker per origin holds one stream for all tabs
//   (src/client/worker.ts). The tab asks the server to attach it to that stream (POST, so a refusal
//   has a status the tab can read) and gets its events from the worker. Each tab keeps its own
//   server-side context, tab id and resume position.
// - own: an EventSource of its own, where there is no SharedWorker or the worker failed. A tab on
//   its own stream that stays hidden releases it ("parks", still present) and resyncs when it is
//   shown again, so hidden tabs do not hold the connections visible ones need.
// Either way reconnects are ours (backoff, resync by view hash and list positions), and a closed tab
// says goodbye with a beacon, so it leaves presence at once.
import { ensure } from "./dom.ts";
import { listReport } from "./lists.ts";

export type State = "online" | "connecting" | "offline";
export type Fields = Map<string, string>;

const EVENTS = ["datastar-patch-elements", "datastar-patch-signals", "via-reload", "via-bye"];
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;
const OFFLINE_AFTER = 10;
const BANNER_DELAY_MS = 300;
// A stream must stay up this long before the backoff starts over; otherwise a server that accepts
// and immediately drops us would be hammered every 250 ms.
const STABLE_MS = 5000;
/**
 * A parked tab tells the server it is still open this often. Browsers run timers of hidden tabs at
 * most once a minute after a while, which is why the server's parked TTL is a few minutes.
 */
const PARKED_HEARTBEAT_MS = 60_000;

let tab = "";
let version = "";
/** A tab on its own stream releases it after being hidden this long (0: never). */
let parkAfterMs = 0;
let handle: (type: string, fields: Fields) => void = () => {};
let failures = 0;
let openedAt = 0;
let retryTimer = 0;
let bannerTimer = 0;
let current: State = "connecting";
const waiters: Array<() => void> = [];

/** Own stream: the EventSource (null while none is open). */
let source: EventSource | null = null;
/** Shared stream: the worker's port, and the attachment in progress or done (0: none). */
let port: MessagePort | null = null;
let attachment = 0;
let parked = false;
let parkTimer = 0;
/** Parked: the timer that tells the server the tab is still open. */
let heartbeatTimer = 0;
/** Shared, without Web Locks: the timer that tells the worker the tab is still open. */
let aliveTimer = 0;

export const state = (): State => current;

const banner = () =>
  ensure("via-banner", (el) => {
    el.setAttribute("role", "status");
    el.hidden = true;
    el.textContent = "Reconnecting…";
  });

function setState(next: State): void {
  current = next;
  document.documentElement.setAttribute("data-connection", next);
  if (next === "online") {
    for (const wake of waiters.splice(0)) wake();
    clearTimeout(bannerTimer);
    bannerTimer = 0;
    banner().hidden = true;
  } else if (!bannerTimer && banner().hidden) {
    // Short blips (a server-initiated resync) should not flash the banner.
    bannerTimer = window.setTimeout(() => {
      banner().hidden = false;
    }, BANNER_DELAY_MS);
  }
}

function opened(): void {
  openedAt = Date.now();
  setState("online");
}

/** Datastar data lines: "key value", split at the first space; repeated keys join with "\n". */
export function parseFields(data: string): Fields {
  const fields: Fields = new Map();
  for (const line of data.split("\n")) {
    const at = line.indexOf(" ");
    const key = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1);
    const prev = fields.get(key);
    fields.set(key, prev === undefined ? value : `${prev}\n${value}`);
  }
  return fields;
}

/**
 * What the page shows, so the server sends only what it lacks: the view's hash (an unchanged view is
 * not re-sent) and each streamed list's position (lists resume from there).
 */
function resumeQuery(): URLSearchParams {
  const query = new URLSearchParams({ tab, path: location.pathname + location.search, v: version });
  const hash = document.getElementById("via-view")?.getAttribute("data-via-hash");
  if (hash) query.set("h", hash);
  const lists = listReport();
  if (lists) query.set("streams", lists);
  return query;
}

// ---- own stream ----

function openOwn(): void {
  clearTimeout(retryTimer);
  source?.close();
  const url = `/_via/sse?${resumeQuery()}`;
  const es = new EventSource(url);
  source = es;
  let wasOpen = false;
  es.onopen = () => {
    wasOpen = true;
    opened();
  };
  // The browser's own retry would reuse the old URL and has no backoff; we manage reconnects.
  es.onerror = () => {
    if (source !== es) return;
    if (wasOpen) retry();
    else void probe(url, es);
  };
  for (const type of EVENTS) {
    es.addEventListener(type, (e) => {
      if (source !== es) return;
      handle(type, parseFields((e as MessageEvent<string>).data));
    });
  }
}

/**
 * A stream that fails before it opens may have been refused (EventSource hides the status): ask once
 * with the same URL and `probe=1`.
 */
async function probe(url: string, es: EventSource): Promise<void> {
  let status = 0;
  try {
    status = (await fetch(`${url}&probe=1`, { credentials: "same-origin", cache: "no-store" })).status;
  } catch {
    // The server is unreachable: the usual backoff.
  }
  if (source !== es) return;
  if (!reloadIfRefused(status)) retry();
}

const RELOADED_AT = "via-reloaded-at";
const RELOAD_GUARD_MS = 30_000;

/**
 * A 4xx about the tab (an id this server cannot verify, say after its secret changed, or a lost
 * session) means this page cannot come back: reload it, at most once per 30 s so a server that keeps
 * refusing cannot make a reload loop. True when it reloads.
 */
function reloadIfRefused(status: number): boolean {
  const last = Number(sessionStorage.getItem(RELOADED_AT) ?? 0);
  if ((status === 400 || status === 403) && Date.now() - last > RELOAD_GUARD_MS) {
    sessionStorage.setItem(RELOADED_AT, String(Date.now()));
    location.reload();
    return true;
  }
  return false;
}

// ---- shared stream ----

/** Messages from the worker (src/client/worker.ts). */
type FromWorker =
  | { t: "hi"; lock: string }
  | { t: "mux"; id: string; slot: number }
  | { t: "ev"; type: string; data: string }
  | { t: "end"; slot: number }
  | { t: "down" };

function startShared(url: string): boolean {
  let worker: SharedWorker;
  try {
    worker = new SharedWorker(url, { name: "via" });
  } catch {
    return false;
  }
  const p = worker.port;
  port = p;
  // The script failed to load or run (a CSP that forbids workers, say): this tab goes on its own.
  worker.onerror = () => fallBack("the shared worker failed to start");
  p.onmessage = (e: MessageEvent<FromWorker>) => {
    if (port === p) fromWorker(e.data);
  };
  p.start();
  const hello = () => p.postMessage({ t: "hello", tab });
  const locks = navigator.locks;
  if (!locks) {
    // Without Web Locks the worker learns of a closed tab from its goodbye, or from silence.
    hello();
    aliveTimer = window.setInterval(() => p.postMessage({ t: "alive" }), PARKED_HEARTBEAT_MS / 4);
    return true;
  }
  // Held for as long as this page lives: the worker asks for the same lock and is granted it when the
  // tab is gone, however it went (closed, crashed, navigated away).
  void locks.request(`via-tab ${tab}`, () => {
    hello();
    return new Promise<never>(() => {});
  });
  return true;
}

function fromWorker(msg: FromWorker): void {
  switch (msg.t) {
    case "hi":
      // Granted when the worker is gone (killed, crashed): go on with a stream of our own.
      void navigator.locks?.request(msg.lock, () => fallBack("the shared worker ended"));
      return;
    case "mux":
      void attach(msg.id, msg.slot);
      return;
    case "ev":
      if (attachment) handle(msg.type, parseFields(msg.data));
      return;
    case "end":
      if (msg.slot === attachment) retry();
      return;
    case "down":
      attachment = 0;
      if (current === "online") setState("connecting");
  }
}

/** Asks the server to send this tab's events on the worker's stream `mux` as `slot`. */
async function attach(mux: string, slot: number): Promise<void> {
  clearTimeout(retryTimer);
  attachment = slot;
  const query = resumeQuery();
  query.set("mux", mux);
  query.set("slot", String(slot));
  let status = 0;
  try {
    const res = await fetch(`/_via/attach?${query}`, {
      method: "POST",
      headers: { "Via-Request": "1" },
      credentials: "same-origin",
      cache: "no-store",
    });
    status = res.status;
  } catch {
    // The server is unreachable: the usual backoff.
  }
  if (attachment !== slot) return;
  if (status === 204) return opened();
  // The worker's stream is gone (it reconnects and sends a new `mux`), or belongs to another session.
  if (status === 404) return;
  if (status === 409) return fallBack("the shared stream belongs to another session");
  if (!reloadIfRefused(status)) retry();
}

/** The worker cannot serve this tab: use a stream of its own from now on. */
function fallBack(why: string): void {
  if (!port) return;
  console.warn(`via: ${why}; this tab opens a stream of its own`);
  port.onmessage = null;
  port.close();
  port = null;
  attachment = 0;
  clearInterval(aliveTimer);
  if (current === "online") setState("connecting");
  openOwn();
}

// ---- both ----

/** Drops the stream and reconnects after the backoff (also used for via-bye). */
export function retry(): void {
  source?.close();
  source = null;
  attachment = 0;
  if (openedAt && Date.now() - openedAt >= STABLE_MS) failures = 0;
  openedAt = 0;
  failures++;
  setState(failures >= OFFLINE_AFTER ? "offline" : "connecting");
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
  clearTimeout(retryTimer);
  retryTimer = window.setTimeout(reopen, delay * (0.7 + Math.random() * 0.6));
}

function reopen(): void {
  if (parked) return;
  if (port) port.postMessage({ t: "reattach", tab });
  else openOwn();
}

/** Reconnects right away (the server said our tab is gone, or the network came back). */
export function reconnectNow(): void {
  if (current === "online") setState("connecting");
  unpark();
  reopen();
}

/** Resolves once the stream is open, or after maxWaitMs so a dead server cannot wedge callers. */
export function whenOnline(maxWaitMs: number): Promise<void> {
  if (current === "online") return Promise.resolve();
  return new Promise((resolve) => {
    waiters.push(resolve);
    setTimeout(resolve, maxWaitMs);
  });
}

// ---- parking a hidden tab's own stream ----

function tabPost(path: string): void {
  void fetch(`${path}?tab=${encodeURIComponent(tab)}`, {
    method: "POST",
    headers: { "Via-Request": "1" },
    credentials: "same-origin",
    keepalive: true,
  }).catch(() => {});
}

function park(): void {
  if (port || parked || !document.hidden) return;
  parked = true;
  clearTimeout(retryTimer);
  source?.close();
  source = null;
  // The server keeps the tab, present, while this says it is open.
  tabPost("/_via/park");
  heartbeatTimer = window.setInterval(() => tabPost("/_via/park"), PARKED_HEARTBEAT_MS);
}

function unpark(): void {
  if (!parked) return;
  parked = false;
  clearInterval(heartbeatTimer);
}

function onVisibility(): void {
  clearTimeout(parkTimer);
  if (document.hidden) {
    if (!port && parkAfterMs > 0) parkTimer = window.setTimeout(park, parkAfterMs);
  } else if (parked) {
    unpark();
    setState("connecting");
    openOwn();
  }
}

export interface ConnectOptions {
  tab: string;
  /** The runtime's version: a server with another tells the page to reload. */
  version: string;
  /** The shared worker's script; without it every tab opens a stream of its own. */
  workerUrl: string | undefined;
  parkAfterMs: number;
}

export function connect(opts: ConnectOptions, onEvent: (type: string, fields: Fields) => void): void {
  tab = opts.tab;
  version = opts.version;
  parkAfterMs = opts.parkAfterMs;
  const workerUrl = opts.workerUrl;
  handle = onEvent;
  setState("connecting");
  window.addEventListener("online", () => {
    if (current !== "online") reconnectNow();
  });
  document.addEventListener("visibilitychange", onVisibility);
  // A closed tab leaves at once (presence) instead of after the server's grace for blips. Sent on
  // every pagehide: a page restored from the back/forward cache re-bootstraps like after a restart.
  window.addEventListener("pagehide", () => {
    port?.postMessage({ t: "bye" });
    navigator.sendBeacon(`/_via/bye?tab=${encodeURIComponent(tab)}`);
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) reconnectNow();
  });
  if (!(workerUrl && typeof SharedWorker === "function" && startShared(workerUrl))) openOwn();
}
