// Stored NATS messages as the engine hands them out (StreamMessage), from each way of reading them: a
// consumer's JsMsg, a stream leader's message get (JSON), or a direct get's reply (the stream's headers
// carry subject, seq and time).
import type { JsMsg, StoredMsg } from "@nats-io/jetstream";
import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import type { Headers, StreamMessage } from "../types.ts";

export const MSG_ID_HDR = "Nats-Msg-Id";

/** Headers a direct get adds to the stored message's own: where and when it was stored. */
const DIRECT_HDRS = new Set([
  "Nats-Stream",
  "Nats-Subject",
  "Nats-Sequence",
  "Nats-Time-Stamp",
  "Nats-Last-Sequence",
  "Nats-Num-Pending",
]);

/** The app's headers: the engine's own (msg id, expectations) and the server's (direct get) left out. */
export function fromNatsHeaders(h: MsgHdrs | undefined, direct = false): Headers {
  const out: Headers = {};
  if (!h) return out;
  for (const k of h.keys()) {
    if (k === MSG_ID_HDR || k.startsWith("Nats-Expected-")) continue;
    if (direct && DIRECT_HDRS.has(k)) continue;
    out[k] = h.get(k);
  }
  return out;
}

/**
 * Frozen like the embedded engine's: one object is shared by every local subscriber of the message.
 * Positional, because the feed makes one per message and an argument object would be one more.
 */
function stored(
  stream: string,
  subject: string,
  seq: number,
  time: number,
  data: Uint8Array,
  headers: MsgHdrs | undefined,
  direct = false,
): StreamMessage {
  return Object.freeze({ subject, data, headers: Object.freeze(fromNatsHeaders(headers, direct)), stream, seq, time });
}

/** A consumer's message. */
export function toStreamMessage(stream: string, m: JsMsg): StreamMessage {
  return stored(stream, m.subject, m.seq, Math.floor(m.info.timestampNanos / 1_000_000), m.data, m.headers);
}

/** A stream leader's answer to a message get (STREAM.MSG.GET). */
export function fromStoredMsg(stream: string, m: StoredMsg): StreamMessage {
  return stored(stream, m.subject, m.seq, parseNatsTime(m.timestamp), m.data, m.header);
}

/**
 * RFC 3339 with up to nanoseconds ("2026-12-03T06:48:06.847362011Z") to ms since the epoch, truncated
 * like a consumer's `timestampNanos / 1e6`, so a message read either way has the same time.
 */
export function parseNatsTime(ts: string): number {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return Date.parse(ts);
  const ms = Number((m[2] ?? "").padEnd(3, "0").slice(0, 3));
  return Date.parse(`${m[1]}${m[3]}`) + ms;
}

/** A direct get's reply (status 0). */
export function fromDirectReply(stream: string, r: Msg): StreamMessage {
  const h = r.headers!;
  const time = parseNatsTime(h.get("Nats-Time-Stamp"));
  return stored(stream, h.get("Nats-Subject"), Number(h.get("Nats-Sequence")), time, r.data, h, true);
}
