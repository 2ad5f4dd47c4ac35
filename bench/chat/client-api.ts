// What the bench:chat orchestrator (bench/chat.ts) asks its client processes (bench/chat/clients.ts)
// over IPC, and what they answer: the arguments and results of each command, and the counters of
// everything unusual a tab saw.
import type { HistogramData, MessageSize, Protocol } from "./shared.ts";

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

export function emptyCounters(): Counters {
  return {
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
}
