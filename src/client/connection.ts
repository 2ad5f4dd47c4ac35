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

let tab = "";
let version = "";
let handle: (type: string, fields: Fields) => void = () => {};
let source: EventSource | null = null;
let failures = 0;
let openedAt = 0;
let retryTimer = 0;
let bannerTimer = 0;
let current: State = "connecting";
const waiters: Array<() => void> = [];

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
 * The stream URL says what the page shows, so the server sends only what it lacks: the view's hash
 * (an unchanged view is not re-sent) and each streamed list's position (lists resume from there).
 */
function streamUrl(): string {
  const query = new URLSearchParams({ tab, path: location.pathname + location.search, v: version });
  const hash = document.getElementById("via-view")?.getAttribute("data-via-hash");
  if (hash) query.set("h", hash);
  const lists = listReport();
  if (lists) query.set("streams", lists);
  return `/_via/sse?${query}`;
}

function open(): void {
  clearTimeout(retryTimer);
  source?.close();
  const url = streamUrl();
  const es = new EventSource(url);
  source = es;
  let opened = false;
  es.onopen = () => {
    opened = true;
    openedAt = Date.now();
    setState("online");
  };
  // The browser's own retry would reuse the old URL and has no backoff; we manage reconnects.
  es.onerror = () => {
    if (source !== es) return;
    if (opened) retry();
    else void probe(url, es);
  };
  for (const type of EVENTS) {
    es.addEventListener(type, (e) => {
      if (source !== es) return;
      handle(type, parseFields((e as MessageEvent<string>).data));
    });
  }
}

const RELOADED_AT = "via-reloaded-at";
const RELOAD_GUARD_MS = 30_000;

/**
 * A stream that fails before it opens may have been refused (EventSource hides the status): ask once
 * with the same URL and `probe=1`. A 4xx about the tab (an id this server cannot verify, say after its
 * secret changed, or a lost session) means this page cannot come back: reload it, at most once per
 * 30 s so a server that keeps refusing cannot make a reload loop. Anything else: back off and retry.
 */
async function probe(url: string, es: EventSource): Promise<void> {
  let status = 0;
  try {
    status = (await fetch(`${url}&probe=1`, { credentials: "same-origin", cache: "no-store" })).status;
  } catch {
    // The server is unreachable: the usual backoff.
  }
  if (source !== es) return;
  const last = Number(sessionStorage.getItem(RELOADED_AT) ?? 0);
  if ((status === 400 || status === 403) && Date.now() - last > RELOAD_GUARD_MS) {
    sessionStorage.setItem(RELOADED_AT, String(Date.now()));
    location.reload();
    return;
  }
  retry();
}

/** Drops the stream and reconnects after the backoff (also used for via-bye). */
export function retry(): void {
  source?.close();
  source = null;
  if (openedAt && Date.now() - openedAt >= STABLE_MS) failures = 0;
  openedAt = 0;
  failures++;
  setState(failures >= OFFLINE_AFTER ? "offline" : "connecting");
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
  clearTimeout(retryTimer);
  retryTimer = window.setTimeout(open, delay * (0.7 + Math.random() * 0.6));
}

/** Reconnects right away (the server said our tab is gone, or the network came back). */
export function reconnectNow(): void {
  if (current === "online") setState("connecting");
  open();
}

/** Resolves once the stream is open, or after maxWaitMs so a dead server cannot wedge callers. */
export function whenOnline(maxWaitMs: number): Promise<void> {
  if (current === "online") return Promise.resolve();
  return new Promise((resolve) => {
    waiters.push(resolve);
    setTimeout(resolve, maxWaitMs);
  });
}

export function connect(tabId: string, v: string, onEvent: (type: string, fields: Fields) => void): void {
  tab = tabId;
  version = v;
  handle = onEvent;
  setState("connecting");
  window.addEventListener("online", () => {
    if (current !== "online") reconnectNow();
  });
  open();
}
