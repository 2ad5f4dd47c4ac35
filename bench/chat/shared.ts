// What bench:chat's orchestrator and its client processes share: the systems under test, the message
// text every system carries, and the latency histogram the client processes fill and the orchestrator
// merges.

/** The systems a run compares; each runs as its own server process (nats: plus a nats-server). */
export const SYSTEMS = ["raw", "socketio", "embedded", "nats"] as const;
export type System = (typeof SYSTEMS)[number];

export const SYSTEM_LABEL: Record<System, string> = {
  raw: "raw node:http SSE chat (bench/chat/raw-server.ts)",
  socketio: "Socket.IO 4 chat, default in-memory adapter (bench/chat/socketio-server.ts)",
  embedded: "our chat (the apps/chat CLI) on the embedded engine",
  nats: "our chat (the apps/chat CLI) on NATS JetStream (a local nats-server)",
};

/** How a client process talks to a system: our chat's protocol (both engines), raw SSE + POST, Socket.IO. */
export type Protocol = "via" | "raw" | "socketio";

export function protocolOf(system: System): Protocol {
  return system === "raw" ? "raw" : system === "socketio" ? "socketio" : "via";
}

// ---- the message ----

/** Filler that brings every message to MESSAGE_CHARS; the "&" checks that escaping round-trips. */
const FILLER =
  "The quick brown fox & the lazy dog carry this line through the chat to every tab in the room, again and again.";
/** Characters (= UTF-8 bytes: the text is ASCII) of every message text. */
export const MESSAGE_CHARS = 100;
/** A big message (the page-load scenario): the chat's limit of 2,000 characters, most of them 3 UTF-8 bytes. */
export const BIG_MESSAGE_CHARS = 2000;
const WIDE = "語";

/** Message sizes: `small` is 100 ASCII bytes, `big` ~5.9 KB (2,000 characters, the chat's limit). */
export type MessageSize = "small" | "big";

/**
 * The text of message `seq`: `#<seq> t=<send wall-clock ms> ` then filler, 100 characters in all (a
 * big one: then 3-byte characters up to 2,000 characters). The stamp is `performance.timeOrigin +
 * performance.now()`, comparable between processes on one machine.
 */
export function messageText(seq: number, sentAt: number, size: MessageSize = "small"): string {
  const head = `#${seq} t=${sentAt.toFixed(3)} `;
  if (size === "big") return head + WIDE.repeat(BIG_MESSAGE_CHARS - head.length);
  return head + FILLER.slice(0, Math.max(0, MESSAGE_CHARS - head.length));
}

/** UTF-8 bytes of a big message text (the head's length varies by a few bytes with the seq). */
export const BIG_MESSAGE_BYTES = Buffer.byteLength(messageText(1000, 1.7e12, "big"));

const TEXT_RE = /^#(\d+) t=(\d+\.\d+) /;

/** The seq and send stamp of a (decoded, unescaped) message text, or undefined for any other text. */
export function parseMessageText(text: string): { seq: number; sentAt: number } | undefined {
  const m = TEXT_RE.exec(text);
  return m ? { seq: Number(m[1]), sentAt: Number(m[2]) } : undefined;
}

// ---- latency histogram ----

// Log buckets of 1 % from 10 µs: bucket b holds [0.01 × 1.01^b, 0.01 × 1.01^(b+1)) ms. 2,500 buckets
// reach 0.01 × 1.01^2500 ms, far beyond any timeout, so nothing is clamped in practice.
const BUCKETS = 2500;
const LOG_STEP = Math.log(1.01);
const BASE_MS = 0.01;

/** Latencies in ms, to within 1 %; merged across processes by adding counts. */
export class Histogram {
  counts = new Float64Array(BUCKETS);
  n = 0;
  max = 0;
  sum = 0;

  add(ms: number): void {
    const v = Math.max(ms, BASE_MS);
    const b = Math.min(BUCKETS - 1, Math.floor(Math.log(v / BASE_MS) / LOG_STEP));
    this.counts[b]!++;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: HistogramData): void {
    for (const [b, c] of other.buckets) this.counts[b]! += c;
    this.n += other.n;
    this.sum += other.sum;
    this.max = Math.max(this.max, other.max);
  }

  /** The upper edge of the bucket holding the p-th percentile (p in 0..100); NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(this.max, BASE_MS * 1.01 ** (b + 1));
    }
    return this.max;
  }

  toData(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let b = 0; b < BUCKETS; b++) if (this.counts[b]! > 0) buckets.push([b, this.counts[b]!]);
    return { buckets, n: this.n, max: this.max, sum: this.sum };
  }
}

/** A histogram as it crosses the IPC channel: the non-empty buckets only. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  n: number;
  max: number;
  sum: number;
}
