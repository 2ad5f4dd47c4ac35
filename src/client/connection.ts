import { ensure } from "./dom.ts";

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
let lastId = "";
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

function open(): void {
  clearTimeout(retryTimer);
  source?.close();
  const query = new URLSearchParams({ tab, path: location.pathname + location.search, v: version });
  // On the very first connect there is nothing to resume from, so "last" is left out.
  if (lastId) query.set("last", lastId);
  const es = new EventSource(`/_via/sse?${query}`);
  source = es;
  es.onopen = () => {
    openedAt = Date.now();
    setState("online");
  };
  // The browser's own retry would reuse the old URL and has no backoff; we manage reconnects.
  es.onerror = () => {
    if (source === es) retry();
  };
  for (const type of EVENTS) {
    es.addEventListener(type, (e) => {
      if (source !== es) return;
      const msg = e as MessageEvent<string>;
      if (msg.lastEventId) lastId = msg.lastEventId;
      handle(type, parseFields(msg.data));
    });
  }
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
