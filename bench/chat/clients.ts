// bench:chat client process: holds a share of the simulated tabs of one run, sends their messages and
// records every message that reaches them. The orchestrator (bench/chat.ts) runs several of these so
// client work never shares a process with a server.
//
// A tab speaks the system's own protocol:
// - via (our chat, either engine): `GET /room/<name>` without a cookie (a new browser session: the
//   tab's own cookie jar), the session cookie and `via-boot` (tab id, signals) read from the page, the
//   `say` action id read from the Send button's `data-on-click`; then `GET /_via/sse?tab=…` on a raw
//   socket. A message is `POST /_via/action/<say>` with `Via-Request: 1`, `Via-Tab`, the cookie and
//   `{"signals":{...bootSignals,"statement":text}}`.
// - raw: `GET /sse?room=R` on a raw socket; a message is `POST /send?room=R` with the text as body.
// - socketio: socket.io-client over WebSocket (`transports: ["websocket"]`), the room in the handshake
//   query; a message is `emit("say", text)`.
//
// Delivery: an SSE tab parses the stream (chunked transfer decoding, events split on blank lines) and
// looks for `<li class="chat-message …">` elements in `append` patches into `#messages`; the text
// (HTML-unescaped) carries the seq and the send stamp. Our chat's sender sees its own message first as
// an `append` marked "sending" (from the action), then as an `outer` patch of `#m-<id>` once stored
// ("sent"): that is the sender's confirmation. raw and Socket.IO echo the message to the sender too: the
// echo is its confirmation. Bytes on the wire are `bytesRead` of every socket this process opened.

import { Agent, type ClientRequestArgs, request } from "node:http";
import { type NetConnectOpts, connect as netConnect, type Socket } from "node:net";
import type { Socket as IoSocket } from "socket.io-client";
import { unescapeHtml } from "../../src/server/html.ts";
import { serveIpc } from "../sse/ipc.ts";
import { Histogram, type HistogramData, messageText, type Protocol, parseMessageText, wallNow } from "./shared.ts";

const HOST = "127.0.0.1";

// ---- IPC types ----

export interface ConnectArgs {
  protocol: Protocol;
  port: number;
  /** Room names; a tab names its room by index. */
  rooms: string[];
  /** This process's tabs: [global tab index, room index]. */
  tabs: Array<[number, number]>;
  /** Tabs being opened at once. */
  concurrency: number;
  timeoutMs: number;
}

export interface ConnectResult {
  open: number;
  ms: number;
}

export interface OpenLoopArgs {
  /** Wall-clock time of message 0. */
  startAt: number;
  intervalMs: number;
  /** Message k (0-based) has seq firstSeq + k and is sent by global tab k mod totalTabs at startAt + k × interval. */
  firstSeq: number;
  count: number;
  totalTabs: number;
  /** Messages with seq ≥ this are measured (latency, deliveries, bytes); earlier ones are the warm-up. */
  measuredFrom: number;
}

export interface ClosedLoopArgs {
  startAt: number;
  durationMs: number;
  /** Messages this process keeps in flight. */
  inflight: number;
  /** Seqs are seqBase + n × workers + workerIndex (n = 0, 1, …): unique across processes. */
  seqBase: number;
  workers: number;
  workerIndex: number;
  /** Give up waiting for one message's completion after this long (counted as a stall). */
  stallMs: number;
}

/** One send: [seq, room index, global sender tab index, HTTP status (0: Socket.IO, no status)]. */
export type SendRecord = [number, number, number, number];

export interface SendResult {
  records: SendRecord[];
  /** Closed loop only: recipient deliveries that arrived inside the window, and the window. */
  windowDeliveries: number;
  /** SSE stream reads inside the window (0 for Socket.IO, not counted). */
  windowReads: number;
  windowMs: number;
  windowHist: HistogramData;
  stalls: number;
  /** Send → response of the send request (HTTP systems; Socket.IO: none). */
  requestHist: HistogramData;
  /** Send → the sender saw its message stored (chat) or echoed (raw, Socket.IO). */
  confirmHist: HistogramData;
  /** Closed loop: send → complete here (every local tab of the room has it, and the confirmation). */
  completeHist: HistogramData;
}

export interface FinishArgs {
  /** The phase's accepted messages: [seq, room, sender]. */
  messages: Array<[number, number, number]>;
  timeoutMs: number;
}

export interface FinishResult {
  /** Recipient deliveries of measured messages, and their latency histogram (send → arrival, ms). */
  hist: HistogramData;
  /** Bytes read by every socket of this process from the measured window's start to the end of finish. */
  bytes: number;
  windowMs: number;
  expectedDeliveries: number;
  lostDeliveries: number;
  duplicates: number;
  /** Seqs that missed at least one local recipient. */
  lostSeqs: number[];
  /** Seqs sent from here whose sender never saw them stored ("sent"; for raw and Socket.IO: the echo). */
  unconfirmed: number[];
  /** Messages delivered to a tab of another room. */
  misrouted: number;
}

export interface Counters {
  /** Event streams / sockets that closed while the run was on (none should). */
  closed: number;
  /** Chat messages seen outside a live append/confirmation (a whole-view render: a resync). */
  resyncs: number;
  /** Error toasts (the chat refused an action) and the first one's text. */
  toasts: number;
  toastSample: string;
  /** via-bye / via-reload events. */
  byes: number;
  /** Other tabs' messages arriving as an outer/sending patch, duplicate confirmations, unparseable texts. */
  unexpected: number;
  /** The chat marked one of our messages "not sent". */
  failed: number;
  /** HTTP status of every send (via, raw). */
  statuses: Record<string, number>;
  sendErrors: number;
  sendErrorSample: string;
  /** Sends repeated after a reset on a stale keep-alive connection (see post()). */
  staleRetries: number;
}

// ---- state ----

interface Tab {
  index: number;
  room: number;
  // via
  path: string;
  cookie: string;
  tabId: string;
  actionId: string;
  signals: Record<string, unknown>;
  // SSE parsing
  sock: Socket | undefined;
  chunked: boolean;
  /** > 0: chunk data bytes left; 0: reading a chunk-size line; < 0: CRLF characters left to skip. */
  chunkLeft: number;
  sizeLine: string;
  buf: string;
  scanFrom: number;
  // Socket.IO
  io: IoSocket | undefined;
  closed: boolean;
  /** Seqs delivered to this tab (others' messages), in arrival order. */
  received: Uint32Array;
  nReceived: number;
}

let protocol: Protocol = "via";
let port = 0;
let rooms: string[] = [];
const tabs: Tab[] = [];
const byIndex = new Map<number, Tab>();
/** Tabs of this process per room index. */
let localRoomCount: number[] = [];
/** Every socket this process opened (closed ones keep their bytesRead). */
const sockets: Socket[] = [];

/** An http.Agent whose sockets are counted (page loads, actions, Socket.IO's WebSocket upgrade). */
class CountingAgent extends Agent {
  override createConnection(options: ClientRequestArgs): Socket {
    const s = netConnect(options as NetConnectOpts);
    sockets.push(s);
    return s;
  }
}
const postAgent = new CountingAgent({ keepAlive: true, maxSockets: 32 });

const counters: Counters = {
  closed: 0,
  resyncs: 0,
  toasts: 0,
  toastSample: "",
  byes: 0,
  unexpected: 0,
  failed: 0,
  statuses: {},
  sendErrors: 0,
  sendErrorSample: "",
  staleRetries: 0,
};
let running = true;

/** seq → the local tab that sent it. */
const sentBy = new Map<number, Tab>();
const confirmed = new Set<number>();
/** seq → local recipient deliveries so far. */
const deliveredCount = new Map<number, number>();
/** Closed loop: seq → what is still missing locally before the next message may go. */
const waiting = new Map<number, { left: number; done: () => void }>();

// Measurement of the current phase.
let measuredFrom = Number.POSITIVE_INFINITY;
let hist = new Histogram();
let windowOpen = false;
let windowDeliveries = 0;
/** Closed loop: reads (data events) on SSE streams inside the window: how much the server batched. */
let windowReads = 0;
let windowHist = new Histogram();
let bytesAtWindowStart = 0;
let windowStartedAt = 0;
let requestHist = new Histogram();
let confirmHist = new Histogram();
let completeHist = new Histogram();

function bytesNow(): number {
  let sum = 0;
  for (const s of sockets) sum += s.bytesRead;
  return sum;
}

// ---- delivery ----

type Kind = "append" | "sending" | "sent" | "failed";

function onMessage(t: Tab, seq: number, sentAt: number, kind: Kind): void {
  const at = wallNow();
  if (sentBy.get(seq) === t) {
    if (kind === "sending") return;
    if (kind === "failed") {
      counters.failed++;
      return;
    }
    if (confirmed.has(seq)) {
      counters.unexpected++;
      return;
    }
    confirmed.add(seq);
    confirmHist.add(at - sentAt);
    progress(seq);
    return;
  }
  if (kind !== "append") {
    counters.unexpected++;
    return;
  }
  if (t.nReceived === t.received.length) {
    const bigger = new Uint32Array(t.received.length * 2);
    bigger.set(t.received);
    t.received = bigger;
  }
  t.received[t.nReceived++] = seq;
  deliveredCount.set(seq, (deliveredCount.get(seq) ?? 0) + 1);
  if (seq >= measuredFrom) hist.add(at - sentAt);
  if (windowOpen) {
    windowDeliveries++;
    windowHist.add(at - sentAt);
  }
  progress(seq);
}

function progress(seq: number): void {
  const w = waiting.get(seq);
  if (w && --w.left <= 0) {
    waiting.delete(seq);
    w.done();
  }
}

const LI = '<li class="chat-message';
const TEXT_OPEN = '<p class="text">';

/** One complete SSE event (without its terminating blank line). */
function onEvent(t: Tab, ev: string): void {
  if (ev.charCodeAt(0) === 58 /* ":" comment: keepalive */) return;
  const li = ev.indexOf(LI);
  if (li < 0) {
    if (ev.includes("via-toast-error")) {
      counters.toasts++;
      const at = ev.indexOf("via-toast-error");
      if (!counters.toastSample) counters.toastSample = ev.slice(at, at + 300);
    } else if (ev.startsWith("event: via-bye") || ev.startsWith("event: via-reload")) {
      counters.byes++;
    }
    return;
  }
  const selector = lineValue(ev, "data: selector ");
  const mode = lineValue(ev, "data: mode ") ?? "outer";
  const classEnd = ev.indexOf('"', li + LI.length);
  const cls = ev.slice(li + '<li class="'.length, classEnd);
  const open = ev.indexOf(TEXT_OPEN, classEnd);
  const close = open < 0 ? -1 : ev.indexOf("</p>", open);
  const parsed = close < 0 ? undefined : parseMessageText(unescapeHtml(ev.slice(open + TEXT_OPEN.length, close)));
  if (!parsed) {
    counters.unexpected++;
    return;
  }
  const state: Kind = cls.includes("failed") ? "failed" : cls.includes("sending") ? "sending" : "sent";
  if (selector === "#messages" && mode === "append") {
    onMessage(t, parsed.seq, parsed.sentAt, state === "sent" ? "append" : state);
  } else if (selector?.startsWith("#m-") && mode === "outer") {
    onMessage(t, parsed.seq, parsed.sentAt, state);
  } else {
    counters.resyncs++;
  }
}

function lineValue(ev: string, prefix: string): string | undefined {
  const at = ev.startsWith(prefix) ? 0 : ev.indexOf(`\n${prefix}`);
  if (at < 0) return undefined;
  const from = at === 0 ? prefix.length : at + 1 + prefix.length;
  const end = ev.indexOf("\n", from);
  return ev.slice(from, end < 0 ? undefined : end);
}

/** Decoded body text: split into events on blank lines. */
function feed(t: Tab, text: string): void {
  t.buf += text;
  let start = 0;
  let idx = t.buf.indexOf("\n\n", t.scanFrom);
  while (idx >= 0) {
    onEvent(t, t.buf.slice(start, idx));
    start = idx + 2;
    idx = t.buf.indexOf("\n\n", start);
  }
  if (start > 0) t.buf = t.buf.slice(start);
  t.scanFrom = Math.max(0, t.buf.length - 1);
}

/** Raw body bytes (latin1: one char per byte): undo chunked transfer coding, then feed. */
function onBody(t: Tab, data: string): void {
  if (!t.chunked) {
    feed(t, data);
    return;
  }
  let i = 0;
  const n = data.length;
  while (i < n) {
    if (t.chunkLeft > 0) {
      const end = Math.min(n, i + t.chunkLeft);
      feed(t, data.slice(i, end));
      t.chunkLeft -= end - i;
      i = end;
      if (t.chunkLeft === 0) t.chunkLeft = -2;
    } else if (t.chunkLeft < 0) {
      i++;
      t.chunkLeft++;
    } else {
      const nl = data.indexOf("\n", i);
      if (nl < 0) {
        t.sizeLine += data.slice(i);
        break;
      }
      const size = Number.parseInt(t.sizeLine + data.slice(i, nl), 16);
      t.sizeLine = "";
      i = nl + 1;
      // The last chunk ("0") is followed by one more CRLF; the stream ends there.
      t.chunkLeft = size > 0 ? size : -2;
    }
  }
}

// ---- opening tabs ----

function newTab(index: number, room: number): Tab {
  return {
    index,
    room,
    path: "",
    cookie: "",
    tabId: "",
    actionId: "",
    signals: {},
    sock: undefined,
    chunked: false,
    chunkLeft: 0,
    sizeLine: "",
    buf: "",
    scanFrom: 0,
    io: undefined,
    closed: false,
    received: new Uint32Array(64),
    nReceived: 0,
  };
}

function onClosed(t: Tab): void {
  if (t.closed) return;
  t.closed = true;
  if (running) counters.closed++;
}

/** Opens an event stream on a raw socket; resolves once the `200` response head is in. */
function openStream(t: Tab, path: string, cookie: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sock = netConnect({ host: HOST, port });
    sockets.push(sock);
    t.sock = sock;
    let head = "";
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`stream open timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding("latin1");
    sock.setNoDelay(true);
    sock.on("connect", () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n` +
          (cookie ? `Cookie: ${cookie}\r\n` : "") +
          "\r\n",
      );
    });
    sock.on("data", (chunk: string) => {
      if (settled) {
        if (windowOpen) windowReads++;
        onBody(t, chunk);
        return;
      }
      head += chunk;
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 16_384) fail(new Error("response head too large"));
        return;
      }
      if (!head.startsWith("HTTP/1.1 200")) {
        fail(new Error(`stream: ${head.slice(0, head.indexOf("\r\n"))}`));
        return;
      }
      t.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head.slice(0, end));
      settled = true;
      clearTimeout(timer);
      resolve();
      const rest = head.slice(end + 4);
      if (rest) onBody(t, rest);
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!settled) fail(new Error("socket closed before the response"));
      else onClosed(t);
    });
  });
}

/** The action id on the element with this id (as TabClient.actionOf does). */
function actionOf(html: string, elementId: string, event = "click"): string {
  const tag = new RegExp(`<[^>]*id="${elementId}"[^>]*>`).exec(html)?.[0];
  const m = tag && new RegExp(`data-on-${event}="([^"]*)"`).exec(tag);
  if (!m) throw new Error(`no data-on-${event} on #${elementId}`);
  const spec = unescapeHtml(m[1]!);
  return spec.startsWith("{") ? (JSON.parse(spec) as { action: string }).action : spec;
}

/**
 * A first page load without a cookie: a new browser session and a new tab context. Resolves with the
 * runtime version. Like a browser, it repeats the request once after a reset on a reused keep-alive
 * connection before any response (the server had closed it as idle).
 */
function loadPage(t: Tab, agent: Agent, timeoutMs: number, retry = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path: t.path, agent, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`page GET ${t.path} → ${res.statusCode}: ${body}`));
        const cookie = res.headers["set-cookie"]?.[0]?.split(";")[0];
        const m = /<meta name="via-boot" content="([^"]*)">/.exec(body);
        if (!cookie || !m) return reject(new Error("page without a session cookie or via-boot meta"));
        const boot = JSON.parse(unescapeHtml(m[1]!)) as { tab: string; signals: Record<string, unknown>; v: string };
        t.cookie = cookie;
        t.tabId = boot.tab;
        t.signals = boot.signals;
        t.actionId = actionOf(body, "send");
        resolve(boot.v);
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`page GET timed out after ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === "ECONNRESET") {
        counters.staleRetries++;
        resolve(loadPage(t, agent, timeoutMs, false));
      } else reject(new Error(`page GET ${t.path}: ${err.message} (${err.code})`));
    });
    req.end();
  });
}

async function openTab(t: Tab, pageAgent: Agent, timeoutMs: number): Promise<void> {
  const room = rooms[t.room]!;
  if (protocol === "raw") {
    return openStream(t, `/sse?room=${encodeURIComponent(room)}`, "", timeoutMs);
  }
  if (protocol === "via") {
    t.path = `/room/${encodeURIComponent(room)}`;
    const v = await loadPage(t, pageAgent, timeoutMs);
    const q = new URLSearchParams({ tab: t.tabId, path: t.path, v });
    return openStream(t, `/_via/sse?${q}`, t.cookie, timeoutMs);
  }
  // Loaded only when needed: it makes every other client process slower to start.
  const { io: ioClient } = await import("socket.io-client");
  const s = ioClient(`http://${HOST}:${port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs,
    query: { room },
    // Counted sockets; engine.io-client hands `agent` to ws, which makes its request through it.
    agent: pageAgent as unknown as string,
  });
  t.io = s;
  s.on("msg", (m: { text?: unknown }) => {
    const parsed = typeof m?.text === "string" ? parseMessageText(m.text) : undefined;
    if (parsed) onMessage(t, parsed.seq, parsed.sentAt, "append");
    else counters.unexpected++;
  });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("connect_error", (err) => reject(err));
  });
  s.on("disconnect", () => onClosed(t));
}

async function connectAll(args: ConnectArgs): Promise<ConnectResult> {
  const t0 = performance.now();
  protocol = args.protocol;
  port = args.port;
  rooms = args.rooms;
  localRoomCount = rooms.map(() => 0);
  const fresh = args.tabs.map(([index, room]) => {
    const t = newTab(index, room);
    tabs.push(t);
    byIndex.set(index, t);
    localRoomCount[room]!++;
    return t;
  });
  // Page loads share a few keep-alive connections, destroyed afterwards so that idle keep-alive
  // sockets do not count in the server's memory. Socket.IO keeps one connection per tab through it.
  const pageAgent = new CountingAgent({ keepAlive: protocol === "via", maxSockets: 32 });
  let next = 0;
  const worker = async () => {
    while (next < fresh.length) {
      const t = fresh[next++]!;
      await openTab(t, pageAgent, args.timeoutMs);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency, fresh.length) }, worker));
  } finally {
    if (protocol === "via") pageAgent.destroy();
  }
  return { open: tabs.filter((t) => !t.closed).length, ms: performance.now() - t0 };
}

// ---- sending ----

/**
 * POSTs and resolves with the status (-1: no response). A request that fails with a reset on a reused
 * keep-alive connection, before any response, is sent once more, as browsers do: the server closed
 * that idle connection (its keep-alive timeout) as the request went out, so nothing ran.
 */
function post(path: string, headers: Record<string, string>, body: string, retry = true): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: HOST,
        port,
        path,
        method: "POST",
        agent: postAgent,
        headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(-1));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
        counters.staleRetries++;
        resolve(post(path, headers, body, false));
        return;
      }
      counters.sendErrors++;
      if (!counters.sendErrorSample) counters.sendErrorSample = err.message;
      resolve(-1);
    });
    req.end(body);
  });
}

/** Sends message `seq` from tab `t`; resolves with the HTTP status (0 for Socket.IO, which has none). */
async function send(t: Tab, seq: number): Promise<number> {
  sentBy.set(seq, t);
  const sentAt = wallNow();
  const text = messageText(seq, sentAt);
  let status = 0;
  if (protocol === "socketio") t.io!.emit("say", text);
  else if (protocol === "raw") {
    status = await post(
      `/send?room=${encodeURIComponent(rooms[t.room]!)}`,
      { "Content-Type": "text/plain; charset=utf-8" },
      text,
    );
  } else {
    status = await post(
      `/_via/action/${t.actionId}`,
      { "Content-Type": "application/json", "Via-Request": "1", "Via-Tab": t.tabId, Cookie: t.cookie },
      JSON.stringify({ signals: { ...t.signals, statement: text } }),
    );
  }
  if (protocol !== "socketio") requestHist.add(wallNow() - sentAt);
  counters.statuses[status] = (counters.statuses[status] ?? 0) + 1;
  return status;
}

const sleepUntil = (wall: number) => new Promise((r) => setTimeout(r, Math.max(0, wall - wallNow())));

function startWindow(): void {
  bytesAtWindowStart = bytesNow();
  windowStartedAt = wallNow();
}

function resetMeasurement(from: number): void {
  measuredFrom = from;
  hist = new Histogram();
  windowHist = new Histogram();
  windowDeliveries = 0;
  windowReads = 0;
  windowOpen = false;
  requestHist = new Histogram();
  confirmHist = new Histogram();
  completeHist = new Histogram();
  bytesAtWindowStart = bytesNow();
  windowStartedAt = wallNow();
}

/** Open loop: every message at its scheduled time, whatever the server does. */
async function openLoop(args: OpenLoopArgs): Promise<SendResult> {
  resetMeasurement(args.measuredFrom);
  const windowAt = args.startAt + (args.measuredFrom - args.firstSeq) * args.intervalMs;
  const windowTimer = setTimeout(startWindow, Math.max(0, windowAt - wallNow()));
  const pending: Array<Promise<SendRecord>> = [];
  for (let k = 0; k < args.count; k++) {
    const t = byIndex.get(k % args.totalTabs);
    if (!t) continue;
    await sleepUntil(args.startAt + k * args.intervalMs);
    const seq = args.firstSeq + k;
    pending.push(send(t, seq).then((status) => [seq, t.room, t.index, status]));
  }
  const records = await Promise.all(pending);
  if (wallNow() < windowAt) {
    clearTimeout(windowTimer);
    startWindow();
  }
  return {
    records,
    windowDeliveries: 0,
    windowReads: 0,
    windowMs: 0,
    windowHist: new Histogram().toData(),
    stalls: 0,
    requestHist: requestHist.toData(),
    confirmHist: confirmHist.toData(),
    completeHist: completeHist.toData(),
  };
}

/**
 * Closed loop: `inflight` slots; each sends a message from the next local tab (rotating), then waits
 * until it is complete here (every local tab of its room has it and its sender saw it "sent"), then
 * sends the next. Recipient deliveries arriving inside the window are counted.
 */
async function closedLoop(args: ClosedLoopArgs): Promise<SendResult> {
  resetMeasurement(Number.POSITIVE_INFINITY);
  const local = [...tabs].sort((a, b) => a.index - b.index);
  const endAt = args.startAt + args.durationMs;
  let n = 0;
  let rotate = 0;
  let stalls = 0;
  const records: SendRecord[] = [];
  await sleepUntil(args.startAt);
  windowOpen = true;
  startWindow();
  const slot = async () => {
    while (wallNow() < endAt) {
      const t = local[rotate++ % local.length]!;
      const seq = args.seqBase + n++ * args.workers + args.workerIndex;
      let done!: () => void;
      const complete = new Promise<void>((r) => {
        done = r;
      });
      waiting.set(seq, { left: localRoomCount[t.room]!, done });
      const sentAt = wallNow();
      const status = await send(t, seq);
      records.push([seq, t.room, t.index, status]);
      if (status !== 0 && (status < 200 || status > 299)) {
        waiting.delete(seq);
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      const stalled = await Promise.race([
        complete.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), args.stallMs);
        }),
      ]);
      clearTimeout(timer);
      if (stalled) {
        stalls++;
        waiting.delete(seq);
      } else completeHist.add(wallNow() - sentAt);
    }
  };
  const windowEnd = sleepUntil(endAt).then(() => {
    windowOpen = false;
    return wallNow();
  });
  await Promise.all(Array.from({ length: args.inflight }, slot));
  const endedAt = await windowEnd;
  return {
    records,
    windowDeliveries,
    windowReads,
    windowMs: endedAt - windowStartedAt,
    windowHist: windowHist.toData(),
    stalls,
    requestHist: requestHist.toData(),
    confirmHist: confirmHist.toData(),
    completeHist: completeHist.toData(),
  };
}

// ---- checking ----

async function finish(args: FinishArgs): Promise<FinishResult> {
  // What each local tab must have: every message of its room that it did not send itself.
  const roomOfSeq = new Map<number, number>();
  const byRoom = rooms.map((): Array<[number, number]> => []);
  let expectedDeliveries = 0;
  const mine: number[] = [];
  const expectedHere = new Map<number, number>();
  for (const [seq, room, sender] of args.messages) {
    roomOfSeq.set(seq, room);
    byRoom[room]!.push([seq, sender]);
    const senderLocal = byIndex.has(sender);
    const n = localRoomCount[room]! - (senderLocal ? 1 : 0);
    expectedHere.set(seq, n);
    expectedDeliveries += n;
    if (senderLocal) mine.push(seq);
  }
  const complete = () => {
    for (const [seq, n] of expectedHere) if ((deliveredCount.get(seq) ?? 0) < n) return false;
    for (const seq of mine) if (!confirmed.has(seq)) return false;
    return true;
  };
  const deadline = performance.now() + args.timeoutMs;
  while (!complete() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const bytes = bytesNow() - bytesAtWindowStart;
  const windowMs = wallNow() - windowStartedAt;

  // Per tab: count each of its room's messages among what it received.
  let lostDeliveries = 0;
  let duplicates = 0;
  let misrouted = 0;
  const lostSeqs = new Set<number>();
  const seen = new Map<number, number>();
  for (const t of tabs) {
    seen.clear();
    for (let i = 0; i < t.nReceived; i++) {
      const seq = t.received[i]!;
      const room = roomOfSeq.get(seq);
      if (room === undefined) continue; // another phase's message
      if (room !== t.room) {
        misrouted++;
        continue;
      }
      seen.set(seq, (seen.get(seq) ?? 0) + 1);
    }
    for (const [seq, sender] of byRoom[t.room]!) {
      if (sender === t.index) continue;
      const c = seen.get(seq) ?? 0;
      if (c === 0) {
        lostDeliveries++;
        lostSeqs.add(seq);
      } else if (c > 1) duplicates += c - 1;
    }
  }
  return {
    hist: hist.toData(),
    bytes,
    windowMs,
    expectedDeliveries,
    lostDeliveries,
    duplicates,
    lostSeqs: [...lostSeqs].slice(0, 10_000),
    unconfirmed: mine.filter((seq) => !confirmed.has(seq)).slice(0, 10_000),
    misrouted,
  };
}

serveIpc(
  {
    connect: (args) => connectAll(args as ConnectArgs),
    openLoop: (args) => openLoop(args as OpenLoopArgs),
    closedLoop: (args) => closedLoop(args as ClosedLoopArgs),
    finish: (args) => finish(args as FinishArgs),
    counters: () => counters,
    stop: () => {
      running = false;
      for (const t of tabs) {
        t.sock?.destroy();
        t.io?.disconnect();
      }
      postAgent.destroy();
      return tabs.length;
    },
  },
  { pid: process.pid },
);
