// bench:chat client process: holds a share of the simulated tabs of one run, sends their messages and
// records every message that reaches them. The orchestrator (bench/chat.ts) runs several of these so
// client work never shares a process with a server.
//
// A tab speaks the system's own protocol:
// - via (our chat, either engine): `GET /room/<name>` without a cookie (a new browser session: the
//   tab's own cookie jar), the session cookie, `via-boot` (tab id, signals, runtime version), the view's
//   hash (`data-via-hash`), what the #messages list holds (newest `data-via-pos`, item count,
//   `data-via-more`) and the `say` action id (the Send button's `data-on-click`) read from the page;
//   then, as the runtime does, `GET /_via/sse?tab=…&path=…&v=…&h=<hash>&streams=messages:<newest>:
//   <count>:<more>` on the same keep-alive connection (a raw socket, as a browser reuses it), before
//   any action (an action of a tab whose stream never attached gets 410). A message is
//   `POST /_via/action/<say>` with `Via-Request: 1`, `Via-Tab`, the cookie and
//   `{"signals":{...bootSignals,"statement":text}}`.
// - raw: `GET /room/<name>` (a static page and a new cookie), then `GET /sse?room=R` on the same
//   connection; a message is `POST /send?room=R` with the text as body.
// - via, browsers with several tabs (the tabs scenario, `connectBrowsers`): a browser is one session
//   (one cookie jar); it loads its T pages one after another on one keep-alive connection (the first
//   without a cookie, the others with the session's), each page a tab id. Then either, as the runtime's
//   shared worker does, ONE `GET /_via/mux` (the cookie; `event: via-mux` / `data: id <id>`) and each
//   tab's `POST /_via/attach?<its stream query>&mux=<id>&slot=<n>` (`Via-Request: 1`, the cookie; 204),
//   slots 1…T; or a `GET /_via/sse?…` of its own per tab (today's way without the worker). The shared
//   stream's events are routed by slot: `event: via-tab` / `data: slot <n>` names the tab whose events
//   follow, `via-tab-end` ends a lane (counted, and the tab counts as closed).
// - socketio: socket.io-client over WebSocket (`transports: ["websocket"]`), the room in the handshake
//   query; a message is `emit("say", text)`.
//
// Delivery: an SSE tab parses the stream (chunked transfer decoding when the response uses it, events
// split on blank lines) and reads the `<li … class="chat-message…" id="m-…">` items of patches into
// #messages; the text (HTML-unescaped) carries the seq and the send stamp. A recipient's delivery is the
// message's stored copy: an `append` into #messages of an item with a `data-via-pos`. An item whose id
// this tab already holds (an upsert in place) is not a new delivery; the same text under two different
// ids is a duplicate. Our chat's sender sees its own message first as an `append` marked "sending"
// (from the action), then as the stored copy or an ack patch (same id, no longer "sending"): the first
// of those is the sender's confirmation. raw and Socket.IO echo the message to the sender too: the
// echo is its confirmation. Presence: the count in `#presence` patches, per tab. Bytes on the wire are
// `bytesRead` of every socket this process opened.

import { Agent, type ClientRequestArgs, request } from "node:http";
import { type NetConnectOpts, connect as netConnect, type Socket } from "node:net";
import type { Socket as IoSocket } from "socket.io-client";
import { unescapeHtml } from "../../src/server/html.ts";
import { serveIpc } from "../sse/ipc.ts";
import {
  Histogram,
  type HistogramData,
  type MessageSize,
  messageText,
  type Protocol,
  parseMessageText,
  wallNow,
} from "./shared.ts";

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
  /** Note when each tab first shows this presence count (see "presence"); 0: don't. */
  presenceTarget?: number;
}

export interface ConnectResult {
  open: number;
  ms: number;
  /** Wall-clock time the last of these tabs had its stream open. */
  endAt: number;
}

export interface BrowsersArgs {
  port: number;
  rooms: string[];
  /** This process's browsers: [global browser index, room index, the global indices of its tabs]. */
  browsers: Array<[number, number, number[]]>;
  /**
   * true: each browser opens one shared stream (`GET /_via/mux`) and attaches its tabs to it
   * (`POST /_via/attach`), as the runtime's shared worker does; false: a stream of its own per tab.
   */
  shared: boolean;
  /** Browsers being opened at once. */
  concurrency: number;
  timeoutMs: number;
}

export interface BrowsersResult extends ConnectResult {
  /** Event-stream sockets this process holds open: shared, one per browser; own streams, one per tab. */
  streamSockets: number;
  /** Every socket this process holds open (streams, and any request connection still kept alive). */
  openSockets: number;
}

export interface PresenceArgs {
  /** Wait until every local tab has shown the connect's presenceTarget, at most this long. */
  timeoutMs: number;
}

export interface PresenceResult {
  /** Wall-clock time a local tab first showed the target count (0: none did). */
  firstAt: number;
  /** Wall-clock time the last local tab showed it (0: not every tab did). */
  allAt: number;
  /** Local tabs that showed it, and the highest count any local tab showed. */
  reached: number;
  tabs: number;
  maxSeen: number;
}

export interface PageLoadArgs {
  protocol: Protocol;
  port: number;
  room: string;
  count: number;
  concurrency: number;
  timeoutMs: number;
}

export interface PageLoadResult {
  loaded: number;
  ms: number;
  /** Page bytes read (bodies and heads), to show the loads were real. */
  bytes: number;
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
  /** Message size (default small: 100 bytes). */
  size?: MessageSize;
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
  /** Stop after this process sent this many messages (default: only the duration ends it). */
  maxMessages?: number;
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
  /** A message delivered to a tab more than once under different ids (or echoed to its sender so). */
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
  /** #messages resets (`inner`): the list was replaced (its items are not counted as deliveries). */
  resyncs: number;
  /** Error toasts (the chat refused an action) and the first one's text. */
  toasts: number;
  toastSample: string;
  /** via-bye / via-reload events. */
  byes: number;
  /** Items of other tabs as "sending"/"failed", recipients' items without a position, unparseable texts, items outside #messages. */
  unexpected: number;
  unexpectedSample: string;
  /** The chat marked one of our messages "not sent". */
  failed: number;
  /** HTTP status of every send (via, raw). */
  statuses: Record<string, number>;
  sendErrors: number;
  sendErrorSample: string;
  /** Sends repeated after a reset on a stale keep-alive connection (see post()). */
  staleRetries: number;
  /** Items re-sent with an id the tab already held (upserts in place; the sender's ack and stored copy). */
  upserts: number;
  /** Stored copies that arrived with a position below one the tab already had. */
  outOfOrder: number;
  /** Whole-view renders (no selector): on attach when the page's hash is stale, when "Load older" appears. */
  viewRenders: number;
  /** `remove` trims of the oldest #messages items, and `prepend`s of older ones. */
  trims: number;
  prepends: number;
  /** Shared streams: `via-tab-end` events (a tab's lane ended; none should while the run is on). */
  laneEnds: number;
}

// ---- state ----

/** What reading one event stream keeps: HTTP chunked decoding, the undelivered rest, and where events go. */
interface StreamParse {
  chunked: boolean;
  /** > 0: chunk data bytes left; 0: reading a chunk-size line; < 0: CRLF characters left to skip. */
  chunkLeft: number;
  sizeLine: string;
  buf: string;
  scanFrom: number;
  /** One complete event (without its terminating blank line). */
  emit: (ev: string) => void;
}

interface Tab extends StreamParse {
  index: number;
  room: number;
  // via
  path: string;
  cookie: string;
  tabId: string;
  actionId: string;
  signals: Record<string, unknown>;
  viewHash: string;
  /** Its own event stream's socket (or its page's, while it loads); none on a shared stream. */
  sock: Socket | undefined;
  // Socket.IO
  io: IoSocket | undefined;
  closed: boolean;
  /** Seqs delivered to this tab (others' messages), in arrival order, and the (interned) item id of each. */
  received: Uint32Array;
  receivedIds: Uint32Array;
  nReceived: number;
  /** Ids (interned) of the items the page came with. */
  pageIds: number[];
  /** Newest list position this tab holds. */
  maxPos: number;
  /** Presence count last shown; whether it has shown the target. */
  presence: number;
  presenceReached: boolean;
}

/**
 * A browser of the tabs scenario: one session (one cookie jar) and its tabs; with a shared stream, the
 * stream's socket and how its events are routed: a `via-tab` names the slot of the tab whose events
 * follow, as the runtime's shared worker reads it.
 */
interface Browser extends StreamParse {
  index: number;
  room: number;
  cookie: string;
  tabs: Tab[];
  sock: Socket | undefined;
  /** The shared stream's id (its `via-mux` event); empty until it came. */
  muxId: string;
  onMuxId: (() => void) | undefined;
  /** Tabs by the slot they were attached in (1, 2, …). */
  bySlot: Map<number, Tab>;
  /** The tab whose lane is being read (the last `via-tab`); undefined before the first. */
  lane: Tab | undefined;
  closed: boolean;
}

const browsers: Browser[] = [];

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
  unexpectedSample: "",
  failed: 0,
  statuses: {},
  sendErrors: 0,
  sendErrorSample: "",
  staleRetries: 0,
  upserts: 0,
  outOfOrder: 0,
  viewRenders: 0,
  trims: 0,
  prepends: 0,
  laneEnds: 0,
};
let running = true;

function unexpected(sample: string): void {
  counters.unexpected++;
  if (!counters.unexpectedSample) counters.unexpectedSample = sample.slice(0, 300);
}

/** seq → the local tab that sent it. */
const sentBy = new Map<number, Tab>();
/** seq → the (interned) id its sender first saw it under. */
const sentIdOf = new Map<number, number>();
const confirmed = new Set<number>();
/** Seqs whose sender saw them under a second, different id. */
const senderDuplicates = new Set<number>();
/** seq → local recipient deliveries so far. */
const deliveredCount = new Map<number, number>();
/** Closed loop: seq → what is still missing locally before the next message may go. */
const waiting = new Map<number, { left: number; done: () => void }>();

/** Item ids as small integers (one entry per message, not per tab). */
const idIndex = new Map<string, number>();
function intern(id: string): number {
  let i = idIndex.get(id);
  if (i === undefined) {
    i = idIndex.size + 1;
    idIndex.set(id, i);
  }
  return i;
}

// Presence target of the current ramp.
let presenceTarget = 0;
let presenceFirstAt = 0;
let presenceAllAt = 0;
let presenceReached = 0;
let presenceMax = 0;

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

type State = "sending" | "failed" | "sent";

/** Position of an item that has none: Socket.IO (no positions in that protocol). */
const NO_POSITIONS = -1;

/**
 * One chat message item that reached tab `t`: `id` its element id, `pos` its list position (0: none;
 * NO_POSITIONS for Socket.IO), `state` from its classes.
 */
function onItem(t: Tab, seq: number, sentAt: number, id: string, pos: number, state: State): void {
  const at = wallNow();
  const idx = intern(id);
  const newest = pos > t.maxPos;
  if (newest) t.maxPos = pos;
  if (sentBy.get(seq) === t) {
    // The sender's own message: "sending" from the action, then the stored copy or the ack (same id).
    if (state === "failed") {
      counters.failed++;
      return;
    }
    const first = sentIdOf.get(seq);
    if (first === undefined) sentIdOf.set(seq, idx);
    else if (first !== idx) {
      senderDuplicates.add(seq);
      return;
    }
    if (state === "sending") return;
    if (confirmed.has(seq)) {
      counters.upserts++;
      return;
    }
    confirmed.add(seq);
    confirmHist.add(at - sentAt);
    progress(seq);
    return;
  }
  if (state !== "sent" || pos === 0) {
    unexpected(`tab ${t.index}: ${state} item m-${id} of #${seq}${pos === 0 ? " without a position" : ""}`);
    return;
  }
  if (pos !== NO_POSITIONS && !newest) {
    // Not past the newest position this tab holds: an upsert of an item it holds, or a new item out of order.
    if (holds(t, idx)) {
      counters.upserts++;
      return;
    }
    counters.outOfOrder++;
  }
  if (t.nReceived === t.received.length) {
    const bigger = new Uint32Array(t.received.length * 2);
    bigger.set(t.received);
    t.received = bigger;
    const biggerIds = new Uint32Array(t.receivedIds.length * 2);
    biggerIds.set(t.receivedIds);
    t.receivedIds = biggerIds;
  }
  t.received[t.nReceived] = seq;
  t.receivedIds[t.nReceived++] = idx;
  deliveredCount.set(seq, (deliveredCount.get(seq) ?? 0) + 1);
  if (seq >= measuredFrom) hist.add(at - sentAt);
  if (windowOpen) {
    windowDeliveries++;
    windowHist.add(at - sentAt);
  }
  progress(seq);
}

/** Whether tab `t` already holds the item with (interned) id `idx`: rare, so a scan from the newest. */
function holds(t: Tab, idx: number): boolean {
  for (let i = t.nReceived - 1; i >= 0; i--) if (t.receivedIds[i] === idx) return true;
  return t.pageIds.includes(idx);
}

function progress(seq: number): void {
  const w = waiting.get(seq);
  if (w && --w.left <= 0) {
    waiting.delete(seq);
    w.done();
  }
}

function onPresence(t: Tab, count: number): void {
  t.presence = count;
  if (count > presenceMax) presenceMax = count;
  if (presenceTarget === 0 || count !== presenceTarget || t.presenceReached) return;
  t.presenceReached = true;
  const at = wallNow();
  if (presenceFirstAt === 0) presenceFirstAt = at;
  if (++presenceReached === tabs.length) presenceAllAt = at;
}

/** A chat message item: position, classes, id (the element is `#m-<id>`). */
const ITEM = /<li(?: data-via-pos="(\d+)")? class="chat-message([^"]*)" id="m-([^"]+)">/g;
const TEXT_OPEN = '<p class="text">';
const COUNT = /<span class="count">([\d,]+) (?:person|people) here<\/span>/;
const VIEW_HASH = /<div id="via-view" data-via-hash="([^"]*)"/;

interface PageItem {
  pos: number;
  id: string;
  cls: string;
  text: string;
}

/** The chat message items of an HTML fragment, in order. */
function items(html: string): PageItem[] {
  const out: PageItem[] = [];
  ITEM.lastIndex = 0;
  for (let m = ITEM.exec(html); m; m = ITEM.exec(html)) {
    const from = m.index + m[0].length;
    const end = html.indexOf("</li>", from);
    const open = html.indexOf(TEXT_OPEN, from);
    const close = open < 0 ? -1 : html.indexOf("</p>", open);
    const text = open < 0 || close < 0 || (end >= 0 && close > end) ? "" : html.slice(open + TEXT_OPEN.length, close);
    out.push({ pos: m[1] ? Number(m[1]) : 0, cls: m[2]!, id: m[3]!, text: unescapeHtml(text) });
  }
  return out;
}

/** One complete SSE event (without its terminating blank line). */
function onEvent(t: Tab, ev: string): void {
  if (ev.charCodeAt(0) === 58 /* ":" comment: keepalive */) return;
  const selector = lineValue(ev, "data: selector ");
  if (selector === "#messages") {
    const mode = lineValue(ev, "data: mode ") ?? "outer";
    if (mode === "append") {
      for (const item of items(ev)) {
        const parsed = parseMessageText(item.text);
        if (!parsed) {
          unexpected(`unparseable item text: ${item.text.slice(0, 80)}`);
          continue;
        }
        const classes = item.cls.split(" ");
        const state: State = classes.includes("failed") ? "failed" : classes.includes("sending") ? "sending" : "sent";
        onItem(t, parsed.seq, parsed.sentAt, item.id, item.pos, state);
      }
    } else if (mode === "inner") counters.resyncs++;
    else if (mode === "prepend") counters.prepends++;
    else unexpected(`#messages patch in mode ${mode}`);
    return;
  }
  if (selector === "#presence") {
    const m = COUNT.exec(ev);
    if (m) onPresence(t, Number(m[1]!.replaceAll(",", "")));
    else unexpected("#presence patch without a count");
    return;
  }
  if (selector?.startsWith("#messages > ")) {
    counters.trims++;
    return;
  }
  if (selector === undefined) {
    if (ev.startsWith("event: via-bye") || ev.startsWith("event: via-reload")) {
      counters.byes++;
      return;
    }
    const hash = VIEW_HASH.exec(ev);
    if (hash) {
      counters.viewRenders++;
      t.viewHash = hash[1]!;
      // A view render carries the list element empty: the browser keeps its items.
      if (ev.includes('class="chat-message')) unexpected("a view render with message items");
      return;
    }
  }
  if (ev.includes("via-toast-error")) {
    counters.toasts++;
    const at = ev.indexOf("via-toast-error");
    if (!counters.toastSample) counters.toastSample = ev.slice(at, at + 300);
  } else if (ev.includes('class="chat-message')) unexpected(`message items outside #messages: ${ev.slice(0, 200)}`);
}

function lineValue(ev: string, prefix: string): string | undefined {
  const at = ev.startsWith(prefix) ? 0 : ev.indexOf(`\n${prefix}`);
  if (at < 0) return undefined;
  const from = at === 0 ? prefix.length : at + 1 + prefix.length;
  const end = ev.indexOf("\n", from);
  return ev.slice(from, end < 0 ? undefined : end);
}

/** Decoded body text: split into events on blank lines. */
function feed(t: StreamParse, text: string): void {
  t.buf += text;
  let start = 0;
  let idx = t.buf.indexOf("\n\n", t.scanFrom);
  while (idx >= 0) {
    t.emit(t.buf.slice(start, idx));
    start = idx + 2;
    idx = t.buf.indexOf("\n\n", start);
  }
  if (start > 0) t.buf = t.buf.slice(start);
  t.scanFrom = Math.max(0, t.buf.length - 1);
}

/** Raw body bytes (latin1: one char per byte): undo chunked transfer coding (raw's responses use it), then feed. */
function onBody(t: StreamParse, data: string): void {
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
  const t: Tab = {
    emit: () => {},
    index,
    room,
    path: "",
    cookie: "",
    tabId: "",
    actionId: "",
    signals: {},
    viewHash: "",
    sock: undefined,
    chunked: false,
    chunkLeft: 0,
    sizeLine: "",
    buf: "",
    scanFrom: 0,
    io: undefined,
    closed: false,
    received: new Uint32Array(64),
    receivedIds: new Uint32Array(64),
    nReceived: 0,
    pageIds: [],
    maxPos: 0,
    presence: 0,
    presenceReached: false,
  };
  t.emit = (ev) => onEvent(t, ev);
  return t;
}

function onClosed(t: Tab): void {
  if (t.closed) return;
  t.closed = true;
  if (running) counters.closed++;
}

/**
 * A raw connection of tab `t` (or of a browser's shared stream) to the server: registered for cleanup,
 * read as latin1, with a timeout.
 * `fail` rejects (once) and destroys it; `settle` stops the timeout once the caller resolved.
 */
function tabConnection(t: { sock: Socket | undefined }, timeoutMs: number, what: string, reject: (err: Error) => void) {
  const sock = netConnect({ host: HOST, port });
  sockets.push(sock);
  t.sock = sock;
  const state = { settled: false };
  const timer = setTimeout(() => fail(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  function fail(err: Error): void {
    if (state.settled) return;
    settle();
    sock.destroy();
    reject(err);
  }
  function settle(): void {
    state.settled = true;
    clearTimeout(timer);
  }
  sock.setEncoding("latin1");
  sock.setNoDelay(true);
  return { sock, state, fail, settle };
}

/** A GET request's bytes, with the session cookie if there is one. */
function getRequest(path: string, accept: string, cookie: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: ${accept}\r\n${cookie ? `Cookie: ${cookie}\r\n` : ""}\r\n`;
}

/**
 * An event stream's response head at the start of `buf`: undefined while it is incomplete; throws for
 * anything but a 200; otherwise notes whether the body is chunked and returns the body bytes that came
 * with the head.
 */
function takeStreamHead(t: StreamParse, buf: string): string | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) {
    if (buf.length > 16_384) throw new Error("response head too large");
    return undefined;
  }
  if (!buf.startsWith("HTTP/1.1 200")) {
    throw new Error(`stream: ${buf.slice(0, buf.indexOf("\r\n"))} ${buf.slice(end + 4, end + 304)}`);
  }
  t.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(buf.slice(0, end));
  return buf.slice(end + 4);
}

/**
 * Opens an event stream on a raw socket; resolves once the `200` response head is in. The body is read
 * as latin1 (one char per byte, so chunk sizes count right): only ASCII is read from it (markup, and
 * the seq and stamp at the start of a message's text).
 */
function openStream(t: Tab, path: string, cookie: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(t, timeoutMs, "stream open", reject);
    let head = "";
    sock.on("connect", () => sock.write(getRequest(path, "text/event-stream", cookie)));
    sock.on("data", (chunk: string) => {
      if (state.settled) {
        if (windowOpen) windowReads++;
        onBody(t, chunk);
        return;
      }
      head += chunk;
      let rest: string | undefined;
      try {
        rest = takeStreamHead(t, head);
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (rest === undefined) return;
      settle();
      resolve();
      head = "";
      if (rest) onBody(t, rest);
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error("socket closed before the response"));
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

const LIST_OPEN = /<ol id="messages" data-via-stream=""( data-via-more="")?>/;

/** What the page's #messages list holds, as the runtime reports it: `messages:<newest>:<count>:<more>`. */
function readList(t: Tab, html: string): string {
  const open = LIST_OPEN.exec(html);
  if (!open) throw new Error('page without <ol id="messages" data-via-stream="">');
  const rest = html.slice(open.index + open[0].length);
  const list = items(rest.slice(0, rest.indexOf("</ol>")));
  t.pageIds = list.map((i) => intern(i.id));
  for (const i of list) if (i.pos > t.maxPos) t.maxPos = i.pos;
  return `messages:${t.maxPos}:${list.length}:${open[1] ? 1 : 0}`;
}

interface Page {
  status: number;
  cookie: string;
  body: string;
  bytes: number;
}

/**
 * A page load: without a cookie a new browser session, with one another tab of that browser. Like a
 * browser, it repeats the request once after a reset on a reused keep-alive connection before any
 * response (the server had closed it as idle).
 */
function getPage(path: string, agent: Agent, timeoutMs: number, cookie = "", retry = true): Promise<Page> {
  return new Promise((resolve, reject) => {
    const headers = cookie ? { Cookie: cookie } : {};
    const req = request({ host: HOST, port, path, agent, headers, timeout: timeoutMs }, (res) => {
      let body = "";
      let bytes = 0;
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
        bytes += Buffer.byteLength(c);
      });
      res.on("end", () => {
        const cookie = res.headers["set-cookie"]?.[0]?.split(";")[0] ?? "";
        resolve({ status: res.statusCode ?? 0, cookie, body, bytes });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`page GET timed out after ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === "ECONNRESET") {
        counters.staleRetries++;
        resolve(getPage(path, agent, timeoutMs, cookie, false));
      } else reject(new Error(`page GET ${path}: ${err.message} (${err.code})`));
    });
    req.end();
  });
}

/**
 * Reads what tab `t`'s stream request needs from its page: a new session (its cookie), or another tab
 * of the session whose cookie `t` has. Returns the stream URL.
 */
function pageInfo(t: Tab, page: Page): string {
  if (page.status !== 200) throw new Error(`page GET ${t.path} → ${page.status}: ${page.body.slice(0, 300)}`);
  if (!page.cookie && !t.cookie) throw new Error(`page GET ${t.path}: no session cookie`);
  if (page.cookie) t.cookie = page.cookie;
  if (protocol === "raw") return `/sse?room=${encodeURIComponent(rooms[t.room]!)}`;
  const m = /<meta name="via-boot" content="([^"]*)">/.exec(page.body);
  if (!m) throw new Error(`page GET ${t.path}: no via-boot meta`);
  const boot = JSON.parse(unescapeHtml(m[1]!)) as { tab: string; signals: Record<string, unknown>; v: string };
  t.tabId = boot.tab;
  t.signals = boot.signals;
  t.actionId = actionOf(page.body, "send");
  t.viewHash = VIEW_HASH.exec(page.body)?.[1] ?? "";
  // As the runtime's streamUrl(): tab, path, version, the view's hash, then what each streamed list holds.
  const q = new URLSearchParams({ tab: t.tabId, path: t.path, v: boot.v });
  if (t.viewHash) q.set("h", t.viewHash);
  q.set("streams", readList(t, page.body));
  return `/_via/sse?${q}`;
}

/**
 * A whole HTTP/1.1 response in `raw` (latin1, one char per byte), or undefined while it is incomplete:
 * a body by Content-Length or chunked coding; `close` when the server will close the connection.
 */
function parseResponse(raw: string): (Page & { close: boolean; rest: string }) | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = raw.slice(0, end);
  const status = Number(head.slice(9, 12));
  const cookie = /\r\nset-cookie:\s*([^;\r]*)/i.exec(head)?.[1] ?? "";
  const close = /\r\nconnection:\s*close/i.test(head);
  let i = end + 4;
  let body = "";
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    for (;;) {
      const nl = raw.indexOf("\r\n", i);
      if (nl < 0) return undefined;
      const size = Number.parseInt(raw.slice(i, nl), 16);
      if (raw.length < nl + 2 + size + 2) return undefined;
      body += raw.slice(nl + 2, nl + 2 + size);
      i = nl + 2 + size + 2;
      if (size === 0) break;
    }
  } else {
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (raw.length < i + length) return undefined;
    body = raw.slice(i, i + length);
    i += length;
  }
  const bytes = i;
  return { status, cookie, body: Buffer.from(body, "latin1").toString("utf8"), bytes, close, rest: raw.slice(i) };
}

/**
 * A chat or raw tab, as a browser opens it: the page (a new session: no cookie) and then, on the same
 * keep-alive connection, the event stream with the session cookie; resolves once the stream's `200`
 * head is in. (A new connection for the stream if the server closes the page's.)
 */
function openPageAndStream(t: Tab, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(t, timeoutMs, "tab open", reject);
    let phase: "page" | "head" | "body" = "page";
    let buf = "";
    sock.on("connect", () => sock.write(getRequest(t.path, "text/html", "")));
    sock.on("data", (chunk: string) => {
      if (phase === "body") {
        if (windowOpen) windowReads++;
        onBody(t, chunk);
        return;
      }
      buf += chunk;
      if (phase === "page") {
        const page = parseResponse(buf);
        if (!page) return;
        let streamPath: string;
        try {
          streamPath = pageInfo(t, page);
        } catch (err) {
          fail(err as Error);
          return;
        }
        if (page.close) {
          // The server ends this connection: the stream goes on a new one, as a browser's would.
          settle();
          sock.removeAllListeners("close");
          sock.destroy();
          openStream(t, streamPath, t.cookie, timeoutMs).then(resolve, reject);
          return;
        }
        phase = "head";
        buf = page.rest;
        sock.write(getRequest(streamPath, "text/event-stream", t.cookie));
        if (!buf) return;
      }
      let rest: string | undefined;
      try {
        rest = takeStreamHead(t, buf);
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (rest === undefined) return;
      phase = "body";
      settle();
      resolve();
      buf = "";
      if (rest) onBody(t, rest);
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error(`socket closed before the ${phase === "page" ? "page" : "stream"} response`));
      else onClosed(t);
    });
  });
}

async function openTab(t: Tab, pageAgent: Agent, timeoutMs: number): Promise<void> {
  const room = rooms[t.room]!;
  if (protocol !== "socketio") {
    t.path = `/room/${encodeURIComponent(room)}`;
    return openPageAndStream(t, timeoutMs);
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
  s.on("msg", (m: { id?: unknown; text?: unknown }) => {
    const parsed = typeof m?.text === "string" ? parseMessageText(m.text) : undefined;
    if (parsed) onItem(t, parsed.seq, parsed.sentAt, String(m.id), NO_POSITIONS, "sent");
    else unexpected("unparseable Socket.IO message");
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
  presenceTarget = args.presenceTarget ?? 0;
  presenceFirstAt = 0;
  presenceAllAt = 0;
  presenceReached = 0;
  presenceMax = 0;
  localRoomCount = rooms.map(() => 0);
  const fresh = args.tabs.map(([index, room]) => {
    const t = newTab(index, room);
    tabs.push(t);
    byIndex.set(index, t);
    localRoomCount[room]!++;
    return t;
  });
  // Socket.IO's connections go through this agent (counted sockets); chat and raw tabs load their
  // page and open their stream on one connection of their own.
  const pageAgent = new CountingAgent({ keepAlive: false });
  let next = 0;
  const worker = async () => {
    while (next < fresh.length) {
      const t = fresh[next++]!;
      await openTab(t, pageAgent, args.timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, fresh.length) }, worker));
  return { open: tabs.filter((t) => !t.closed).length, ms: performance.now() - t0, endAt: wallNow() };
}

// ---- browsers with several tabs (the tabs scenario) ----

function newBrowser(index: number, room: number, tabIndices: number[]): Browser {
  const br: Browser = {
    index,
    room,
    cookie: "",
    tabs: tabIndices.map((i) => newTab(i, room)),
    sock: undefined,
    muxId: "",
    onMuxId: undefined,
    bySlot: new Map(),
    lane: undefined,
    closed: false,
    chunked: false,
    chunkLeft: 0,
    sizeLine: "",
    buf: "",
    scanFrom: 0,
    emit: () => {},
  };
  br.emit = (ev) => onMuxEvent(br, ev);
  return br;
}

/** An event of a browser's shared stream: ours (the stream's id, a lane's start or end) or a tab's. */
function onMuxEvent(br: Browser, ev: string): void {
  if (ev.charCodeAt(0) === 58 /* ":" comment: keepalive */) return;
  if (ev.startsWith("event: via-tab\n")) {
    const slot = Number(lineValue(ev, "data: slot "));
    br.lane = br.bySlot.get(slot);
    if (!br.lane) unexpected(`browser ${br.index}: via-tab for slot ${slot}, which none of its tabs has`);
    return;
  }
  if (ev.startsWith("event: via-tab-end\n")) {
    const slot = Number(lineValue(ev, "data: slot "));
    counters.laneEnds++;
    const t = br.bySlot.get(slot);
    if (!t) unexpected(`browser ${br.index}: via-tab-end for slot ${slot}, which none of its tabs has`);
    else onClosed(t);
    if (br.lane === t) br.lane = undefined;
    return;
  }
  if (ev.startsWith("event: via-mux\n")) {
    br.muxId = lineValue(ev, "data: id ") ?? "";
    br.onMuxId?.();
    return;
  }
  if (!br.lane) {
    unexpected(`browser ${br.index}: an event on its shared stream outside any lane: ${ev.slice(0, 120)}`);
    return;
  }
  onEvent(br.lane, ev);
}

/** Opens browser `br`'s shared stream (`GET /_via/mux` with its cookie); resolves with the stream's id. */
function openMux(br: Browser, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(br, timeoutMs, "shared stream open", reject);
    let head: string | undefined = "";
    br.onMuxId = () => {
      br.onMuxId = undefined;
      if (!br.muxId) {
        fail(new Error("via-mux without an id"));
        return;
      }
      settle();
      resolve();
    };
    sock.on("connect", () => sock.write(getRequest("/_via/mux", "text/event-stream", br.cookie)));
    sock.on("data", (chunk: string) => {
      if (head === undefined) {
        if (windowOpen) windowReads++;
        onBody(br, chunk);
        return;
      }
      head += chunk;
      let rest: string | undefined;
      try {
        rest = takeStreamHead(br, head);
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (rest === undefined) return;
      head = undefined;
      if (rest) onBody(br, rest);
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error("socket closed before the shared stream's id"));
      br.closed = true;
      for (const t of br.bySlot.values()) onClosed(t);
    });
  });
}

/**
 * Browser `br`: its tabs' pages, one after another on one keep-alive connection (the first makes the
 * session, the others send its cookie), then either one shared stream with every tab attached to it
 * (slots 1…T, the attaches at once, as tabs do) or a stream of its own per tab.
 */
async function openBrowser(br: Browser, shared: boolean, attachAgent: Agent, timeoutMs: number): Promise<void> {
  const path = `/room/${encodeURIComponent(rooms[br.room]!)}`;
  const pageAgent = new CountingAgent({ keepAlive: true, maxSockets: 1 });
  const streamPaths: string[] = [];
  try {
    for (const t of br.tabs) {
      t.path = path;
      t.cookie = br.cookie;
      streamPaths.push(pageInfo(t, await getPage(path, pageAgent, timeoutMs, br.cookie)));
      br.cookie = t.cookie;
    }
  } finally {
    pageAgent.destroy();
  }
  if (!shared) {
    await Promise.all(br.tabs.map((t, i) => openStream(t, streamPaths[i]!, br.cookie, timeoutMs)));
    return;
  }
  await openMux(br, timeoutMs);
  await Promise.all(
    br.tabs.map(async (t, i) => {
      const slot = i + 1;
      br.bySlot.set(slot, t);
      // As the runtime: the tab's stream query, plus the shared stream and the slot its worker gave it.
      const query = streamPaths[i]!.slice(streamPaths[i]!.indexOf("?") + 1);
      const status = await post(
        `/_via/attach?${query}&mux=${encodeURIComponent(br.muxId)}&slot=${slot}`,
        { "Via-Request": "1", Cookie: br.cookie },
        "",
        attachAgent,
      );
      if (status !== 204) throw new Error(`browser ${br.index}: attach of tab ${t.index} in slot ${slot} → ${status}`);
    }),
  );
}

async function connectBrowsers(args: BrowsersArgs): Promise<BrowsersResult> {
  const t0 = performance.now();
  protocol = "via";
  port = args.port;
  rooms = args.rooms;
  presenceTarget = 0;
  localRoomCount = rooms.map(() => 0);
  const fresh = args.browsers.map(([index, room, tabIndices]) => {
    const br = newBrowser(index, room, tabIndices);
    browsers.push(br);
    for (const t of br.tabs) {
      tabs.push(t);
      byIndex.set(t.index, t);
      localRoomCount[room]!++;
    }
    return br;
  });
  // The attach requests' connections are closed once every browser is in: what stays is the streams.
  const attachAgent = new CountingAgent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const worker = async () => {
    while (next < fresh.length) await openBrowser(fresh[next++]!, args.shared, attachAgent, args.timeoutMs);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency, fresh.length) }, worker));
  } finally {
    attachAgent.destroy();
  }
  const streamSockets = args.shared
    ? browsers.filter((br) => br.sock && !br.sock.destroyed).length
    : tabs.filter((t) => t.sock && !t.sock.destroyed).length;
  return {
    open: tabs.filter((t) => !t.closed).length,
    ms: performance.now() - t0,
    endAt: wallNow(),
    streamSockets,
    openSockets: sockets.filter((s) => !s.destroyed).length,
  };
}

/** Waits until every local tab has shown the presence target (or the timeout). */
async function presence(args: PresenceArgs): Promise<PresenceResult> {
  const deadline = performance.now() + args.timeoutMs;
  while (presenceReached < tabs.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return {
    firstAt: presenceFirstAt,
    allAt: presenceReached === tabs.length ? presenceAllAt : 0,
    reached: presenceReached,
    tabs: tabs.length,
    maxSeen: presenceMax,
  };
}

/** `count` page loads, each a new session (no cookie), that never open their stream. */
async function pageLoads(args: PageLoadArgs): Promise<PageLoadResult> {
  const t0 = performance.now();
  protocol = args.protocol;
  port = args.port;
  const agent = new CountingAgent({ keepAlive: true, maxSockets: args.concurrency });
  const path = `/room/${encodeURIComponent(args.room)}`;
  let next = 0;
  let loaded = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < args.count) {
      next++;
      const page = await getPage(path, agent, args.timeoutMs);
      if (page.status !== 200 || !page.cookie) throw new Error(`page GET ${path} → ${page.status}`);
      if (protocol === "via" && !page.body.includes('<meta name="via-boot"')) throw new Error("page without via-boot");
      loaded++;
      bytes += page.bytes;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency, args.count) }, worker));
  } finally {
    agent.destroy();
  }
  return { loaded, ms: performance.now() - t0, bytes };
}

// ---- sending ----

/**
 * POSTs and resolves with the status (-1: no response). A request that fails with a reset on a reused
 * keep-alive connection, before any response, is sent once more, as browsers do: the server closed
 * that idle connection (its keep-alive timeout) as the request went out, so nothing ran.
 */
function post(
  path: string,
  headers: Record<string, string>,
  body: string,
  agent: Agent = postAgent,
  retry = true,
): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: HOST,
        port,
        path,
        method: "POST",
        agent,
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
        resolve(post(path, headers, body, agent, false));
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
async function send(t: Tab, seq: number, size: MessageSize = "small"): Promise<number> {
  sentBy.set(seq, t);
  const sentAt = wallNow();
  const text = messageText(seq, sentAt, size);
  let status = 0;
  if (protocol === "socketio") t.io!.emit("say", text);
  else if (protocol === "raw") {
    status = await post(
      `/send?room=${encodeURIComponent(rooms[t.room]!)}`,
      { "Content-Type": "text/plain; charset=utf-8", Cookie: t.cookie },
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
    pending.push(send(t, seq, args.size).then((status) => [seq, t.room, t.index, status]));
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
  const max = args.maxMessages ?? Number.POSITIVE_INFINITY;
  let n = 0;
  let rotate = 0;
  let stalls = 0;
  const records: SendRecord[] = [];
  await sleepUntil(args.startAt);
  windowOpen = true;
  startWindow();
  const slot = async () => {
    while (wallNow() < endAt && n < max) {
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
  // The window ends at endAt, or when the last slot is done (maxMessages), whichever comes first.
  let endWindow!: () => void;
  const windowEnd = new Promise<number>((resolve) => {
    endWindow = () => {
      windowOpen = false;
      resolve(wallNow());
    };
  });
  const windowTimer = setTimeout(endWindow, Math.max(0, endAt - wallNow()));
  await Promise.all(Array.from({ length: args.inflight }, slot));
  clearTimeout(windowTimer);
  endWindow();
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

  // Per tab: count each of its room's messages among what it received (an upsert of an id the tab
  // held was not recorded, so a seq seen twice came under two ids).
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
  for (const seq of mine) if (senderDuplicates.has(seq)) duplicates++;
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
    connectBrowsers: (args) => connectBrowsers(args as BrowsersArgs),
    presence: (args) => presence(args as PresenceArgs),
    pageLoads: (args) => pageLoads(args as PageLoadArgs),
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
      for (const br of browsers) br.sock?.destroy();
      postAgent.destroy();
      return tabs.length;
    },
  },
  { pid: process.pid },
);
