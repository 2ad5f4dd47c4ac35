// The shared worker: one event stream for every tab of this origin in this browser (docs/PROTOCOL.md
// §6). A browser keeps six HTTP/1.1 connections per origin; with a stream per tab the seventh tab
// would never load.
//
// The worker opens `GET /_via/mux` while at least one tab is connected. The server names the stream
// (`via-mux`), and the worker gives each tab a slot number on it; the tab itself asks the server to
// attach it there (so it reads the answer's status), and the server then precedes each run of a tab's
// events with `via-tab` naming its slot. Everything else is the tab's own Datastar events, forwarded
// as they came. Slots are never reused on one stream, so an event for a tab that re-attached under a
// new slot cannot reach it late. When the stream drops, every tab is told, and each attaches again
// once the worker has a new stream.
//
// A tab holds a Web Lock while it lives; the worker asks for the same lock and is granted it when the
// tab is gone, closed or crashed, and then says goodbye for it. The worker holds a lock of its own,
// which a tab is granted if the worker dies: it then opens a stream of its own.

interface TabPort {
  port: MessagePort;
  tab: string;
  /** Its slot on the current stream (0: none yet). */
  slot: number;
  /** Without Web Locks: when the tab last spoke. */
  heardAt: number;
}

type FromTab = { t: "hello" | "reattach"; tab: string } | { t: "bye" } | { t: "alive" };

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;
const STABLE_MS = 5000;
/** Without Web Locks, a tab that said nothing for this long is taken for gone. */
const SILENT_TAB_MS = 150_000;

const tabs = new Map<MessagePort, TabPort>();
const bySlot = new Map<number, TabPort>();
let mux = "";
let nextSlot = 1;
let stream: AbortController | null = null;
let failures = 0;
let openedAt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
const workerLock = `via-worker ${Math.random().toString(36).slice(2)}`;
const locks = (navigator as Navigator & { locks?: LockManager }).locks;

// Held until the worker ends; tabs wait for it to learn that. Tabs learn its name only once it is
// held, or one of them could be granted it first and take the worker for dead.
const holdingLock = new Promise<void>((held) => {
  if (!locks) return held();
  void locks.request(workerLock, () => {
    held();
    return new Promise<never>(() => {});
  });
});

(globalThis as unknown as { onconnect: (e: MessageEvent) => void }).onconnect = (e) => {
  const port = e.ports[0];
  if (!port) return;
  port.onmessage = (m: MessageEvent<FromTab>) => fromTab(port, m.data);
  port.start();
};

function fromTab(port: MessagePort, msg: FromTab): void {
  const known = tabs.get(port);
  if (known) known.heardAt = Date.now();
  switch (msg.t) {
    case "hello":
      if (typeof msg.tab === "string") join(port, msg.tab);
      return;
    case "reattach":
      if (known) assign(known);
      // A page back from the back/forward cache said goodbye before: it joins again.
      else if (typeof msg.tab === "string") join(port, msg.tab);
      return;
    case "bye":
      if (known) leave(known, false);
      return;
  }
}

function join(port: MessagePort, tab: string): void {
  const t: TabPort = { port, tab, slot: 0, heardAt: Date.now() };
  tabs.set(port, t);
  if (locks) void holdingLock.then(() => port.postMessage({ t: "hi", lock: workerLock }));
  // Granted when the tab's own lock is released: the tab is gone.
  void locks?.request(`via-tab ${tab}`, () => {
    if (tabs.get(port) === t) leave(t, true);
  });
  if (stream) assign(t);
  else open();
}

/** A fresh slot on the current stream for `t`, if there is a stream. */
function assign(t: TabPort): void {
  if (t.slot) bySlot.delete(t.slot);
  t.slot = 0;
  if (!mux) return;
  t.slot = nextSlot++;
  bySlot.set(t.slot, t);
  t.port.postMessage({ t: "mux", id: mux, slot: t.slot });
}

/** `t` is gone. `tellServer`: it could not say goodbye itself (closed without pagehide, crashed). */
function leave(t: TabPort, tellServer: boolean): void {
  tabs.delete(t.port);
  if (t.slot) bySlot.delete(t.slot);
  if (tellServer) {
    void fetch(`/_via/bye?tab=${encodeURIComponent(t.tab)}`, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
    }).catch(() => {});
  }
  // No tab, no stream: the server frees it, and the next tab opens a new one.
  if (tabs.size === 0) {
    clearTimeout(retryTimer);
    stream?.abort();
    stream = null;
    mux = "";
  }
}

function open(): void {
  clearTimeout(retryTimer);
  if (tabs.size === 0) return;
  const controller = new AbortController();
  stream = controller;
  void read(controller).finally(() => {
    if (stream !== controller) return;
    down();
    if (openedAt && Date.now() - openedAt >= STABLE_MS) failures = 0;
    openedAt = 0;
    failures++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
    retryTimer = setTimeout(open, delay * (0.7 + Math.random() * 0.6));
  });
}

/** The stream is gone: every tab waits for the next one. */
function down(): void {
  mux = "";
  bySlot.clear();
  for (const t of tabs.values()) {
    t.slot = 0;
    t.port.postMessage({ t: "down" });
  }
}

async function read(controller: AbortController): Promise<void> {
  let res: Response;
  try {
    res = await fetch("/_via/mux", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/event-stream" },
      signal: controller.signal,
    });
  } catch {
    return;
  }
  if (!res.ok || !res.body) return;
  openedAt = Date.now();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventParser(dispatch);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.push(value);
    }
  } catch {
    // aborted, or the connection broke
  } finally {
    controller.abort();
  }
}

/** The tab whose events come now (named by the last `via-tab`). */
let current: TabPort | undefined;

function dispatch(type: string, data: string): void {
  switch (type) {
    case "via-mux":
      mux = data.startsWith("id ") ? data.slice(3) : "";
      current = undefined;
      for (const t of tabs.values()) assign(t);
      return;
    case "via-tab":
      current = bySlot.get(Number(data.slice(5)));
      return;
    case "via-tab-end": {
      const slot = Number(data.slice(5));
      const t = bySlot.get(slot);
      if (!t) return;
      bySlot.delete(slot);
      t.slot = 0;
      t.port.postMessage({ t: "end", slot });
      return;
    }
    default:
      current?.port.postMessage({ t: "ev", type, data });
  }
}

/** The text/event-stream format, for the fields the server sends: event, data, comments. */
class EventParser {
  private buffer = "";
  private type = "";
  private data: string[] = [];

  constructor(private readonly emit: (type: string, data: string) => void) {}

  push(text: string): void {
    const buffer = this.buffer + text;
    let from = 0;
    let at = buffer.indexOf("\n");
    while (at >= 0) {
      const line = buffer.charCodeAt(at - 1) === 13 ? buffer.slice(from, at - 1) : buffer.slice(from, at);
      this.line(line);
      from = at + 1;
      at = buffer.indexOf("\n", from);
    }
    this.buffer = buffer.slice(from);
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length > 0) this.emit(this.type || "message", this.data.join("\n"));
      this.type = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
  }
}

// Without Web Locks (an insecure origin), tabs send "alive"; the silent ones are taken for gone.
if (!locks) {
  setInterval(() => {
    const cutoff = Date.now() - SILENT_TAB_MS;
    for (const t of [...tabs.values()]) if (t.heardAt < cutoff) leave(t, true);
  }, SILENT_TAB_MS / 5);
}
