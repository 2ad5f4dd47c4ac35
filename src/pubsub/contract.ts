// The parts of the PubSub contract (types.ts) that do not depend on how an engine stores or moves
// messages: checking the caller's arguments, calling a subscriber's handler, and the wording of the
// errors both give. Every engine goes through these, so the same mistake is refused with the same class
// and the same message whichever engine runs, and the conformance suite can hold both to one text.
import type { Logger } from "../log.ts";
import { PubSubClosedError, PubSubError, StreamConfigError, StreamNotFoundError } from "./errors.ts";
import { parsePattern, parsePublishSubject } from "./subjects.ts";
import type { Delivery, Handler, Headers, HistoryQuery, PublishOptions, SubscribeOptions } from "./types.ts";

export { resolveStreamConfig } from "./config.ts";

/** history() never returns more than this many messages per call on either engine; page with afterSeq/beforeSeq. */
export const MAX_HISTORY = 1000;

/** The texts of the errors an engine throws for a caller's mistake (TypeError unless noted). */
export const contractMessage = {
  handler: "handler must be a function",
  data: "data must be a Uint8Array or a string",
  msgId: "msgId must be a non-empty string",
  headers: "headers must be an object of string values",
  /** PubSubError: a header name the NATS header syntax cannot carry. */
  headerName: (name: string) => `header name ${JSON.stringify(name)} must be printable ASCII without ':'`,
  /** PubSubError: a header value that would end the header line. */
  headerValue: (name: string) => `header ${name} must be a string without CR or LF`,
  nonNegativeInteger: (what: string, got: unknown) => `${what} must be a non-negative integer, got ${String(got)}`,
  historyQuery: "history query must be {last}, {afterSeq, limit} or {beforeSeq, limit}",
  /** StreamConfigError: ensureStream with a subject another stream already captures (partly or wholly). */
  subjectsOverlap: (stream: string, subject: string, otherSubject: string, otherStream: string) =>
    `stream ${stream}: subject ${JSON.stringify(subject)} overlaps subject ${JSON.stringify(otherSubject)} of stream ${otherStream}`,
} as const;

export function assertOpen(closed: boolean): void {
  if (closed) throw new PubSubClosedError();
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function nonNegativeInteger(v: unknown, what: string): number {
  if (!isNonNegativeInteger(v)) throw new TypeError(contractMessage.nonNegativeInteger(what, v));
  return v;
}

// Printable ASCII except ':' (the NATS header syntax), so a header means the same on both engines.
const HEADER_NAME = /^[!-9;-~]+$/;

/** Validates message headers; returns them as entries (empty when there are none). */
export function checkHeaders(headers: Headers | undefined): Array<[string, string]> {
  if (headers === undefined) return [];
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    throw new TypeError(contractMessage.headers);
  }
  const entries = Object.entries(headers);
  for (const [k, v] of entries) {
    if (!HEADER_NAME.test(k)) throw new PubSubError(contractMessage.headerName(k));
    if (typeof v !== "string" || /[\r\n]/.test(v)) throw new PubSubError(contractMessage.headerValue(k));
  }
  return entries;
}

/** A publish call's arguments, checked. */
export interface CheckedPublish {
  /** The engine's own copy: a retry may send it later, and the caller may reuse its buffer meanwhile. */
  payload: Uint8Array;
  /** The caller's headers as entries, validated. */
  headers: Array<[string, string]>;
  msgId: string | undefined;
  expectLastSubjectSeq: number | undefined;
}

const encoder = new TextEncoder();

/** Checks publish(subject, data, opts) in one order for every engine: subject, data, headers, msgId, expectation. */
export function checkPublish(subject: string, data: Uint8Array | string, opts: PublishOptions): CheckedPublish {
  parsePublishSubject(subject);
  let payload: Uint8Array;
  if (typeof data === "string") payload = encoder.encode(data);
  else if (data instanceof Uint8Array) payload = new Uint8Array(data);
  else throw new TypeError(contractMessage.data);
  const headers = checkHeaders(opts.headers);
  const { msgId, expectLastSubjectSeq } = opts;
  if (msgId !== undefined && (typeof msgId !== "string" || msgId.length === 0)) {
    throw new TypeError(contractMessage.msgId);
  }
  if (expectLastSubjectSeq !== undefined) nonNegativeInteger(expectLastSubjectSeq, "expectLastSubjectSeq");
  return { payload, headers, msgId, expectLastSubjectSeq };
}

/** Checks subscribe(pattern, handler, opts); returns where a replay starts (undefined: live only). */
export function checkSubscribe(pattern: string, handler: Handler, opts: SubscribeOptions): number | undefined {
  parsePattern(pattern);
  if (typeof handler !== "function") throw new TypeError(contractMessage.handler);
  const { fromSeq } = opts;
  return fromSeq === undefined ? undefined : nonNegativeInteger(fromSeq, "fromSeq");
}

/** A history query, checked, with its count capped at MAX_HISTORY (a caller asking for "everything" gets a page). */
export type HistoryRead =
  | { kind: "last"; count: number }
  | { kind: "after"; afterSeq: number; limit: number }
  | { kind: "before"; beforeSeq: number; limit: number };

/** Checks history(subject, query): one literal subject (a wildcard throws SubjectError) and one query form. */
export function checkHistory(subject: string, query: HistoryQuery): HistoryRead {
  parsePublishSubject(subject);
  if (typeof query !== "object" || query === null) throw new TypeError(contractMessage.historyQuery);
  const q = query as Partial<{ last: number; afterSeq: number; beforeSeq: number; limit: number }>;
  const capped = (n: unknown, what: string) => Math.min(nonNegativeInteger(n, what), MAX_HISTORY);
  if (q.last !== undefined) return { kind: "last", count: capped(q.last, "last") };
  if (q.afterSeq !== undefined) {
    return { kind: "after", afterSeq: nonNegativeInteger(q.afterSeq, "afterSeq"), limit: capped(q.limit, "limit") };
  }
  if (q.beforeSeq !== undefined) {
    return { kind: "before", beforeSeq: nonNegativeInteger(q.beforeSeq, "beforeSeq"), limit: capped(q.limit, "limit") };
  }
  throw new TypeError(contractMessage.historyQuery);
}

// What no engine can name a stream: the NATS client refuses these characters (they would break the
// API subject or a file path: the nats CLI's rule), and the embedded engine only creates names of
// [A-Za-z0-9_-].
const IMPOSSIBLE_STREAM_NAME = /[\s.*>/\\]/;

/** Checks the name given to info() or deleteStream(): a name no stream can have is simply not found. */
export function checkStreamName(stream: string): string {
  if (typeof stream !== "string" || stream.length === 0 || IMPOSSIBLE_STREAM_NAME.test(stream)) {
    throw new StreamNotFoundError(String(stream));
  }
  return stream;
}

/** ensureStream refused because another stream captures some of the same subjects. */
export function subjectsOverlapError(
  stream: string,
  subject: string,
  otherSubject: string,
  otherStream: string,
): StreamConfigError {
  return new StreamConfigError(contractMessage.subjectsOverlap(stream, subject, otherSubject, otherStream));
}

/**
 * Calls a subscriber's handler with one delivery. A handler that throws, or returns a promise that
 * rejects, is logged: one failing handler must not stop delivery to it or to anyone else.
 */
export function invokeHandler(handler: Handler, d: Delivery, log: Logger, pattern: string): void {
  const failed = (err: unknown) =>
    log.error({ err, pattern, subject: d.subject, seq: d.seq }, "subscription handler threw");
  try {
    const r = handler(d) as unknown;
    if (r instanceof Promise) r.catch(failed);
  } catch (err) {
    failed(err);
  }
}
