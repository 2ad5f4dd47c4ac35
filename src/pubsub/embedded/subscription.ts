// A subscription of the embedded engine, and its replay from disk (subscribe with fromSeq). The replay
// reads pages of the stream with setImmediate between them, so a long replay does not starve other I/O;
// live messages for a stream still being replayed are left to the reader, which switches the
// subscription to live in the same synchronous step that reads the last page (see replayFromDisk).
import type { Logger } from "../../log.ts";
import { invokeHandler } from "../contract.ts";
import { isLiteral, matchesPattern } from "../subjects.ts";
import type { Handler, StreamMessage } from "../types.ts";
import type { Store, StreamState } from "./store.ts";

/** Messages read per replay step; between steps the event loop runs (other I/O is not starved). */
const REPLAY_PAGE = 256;

export interface Position {
  epoch: string;
  /** Last seq delivered (or skipped as not matching) to this subscription. */
  seq: number;
}

export class Subscription {
  closed = false;
  /** Per stream: where this subscription stands. Live messages at or below it are not delivered again. */
  readonly positions = new Map<string, Position>();
  /** Streams still being replayed from disk: live messages for them are left to the replay reader. */
  readonly replaying = new Set<string>();
  remove: () => void = () => {};
  constructor(
    readonly pattern: string,
    readonly handler: Handler,
  ) {}
}

/** Delivers the stream's stored messages after the subscription's position, then hands it over to live delivery. */
export function replayFromDisk(
  sub: Subscription,
  st: StreamState,
  store: Store,
  log: Logger,
  engineClosed: () => boolean,
): void {
  const literal = isLiteral(sub.pattern);
  const step = (): void => {
    if (sub.closed || engineClosed()) return;
    const pos = sub.positions.get(st.name);
    if (st.deleted || !pos || pos.epoch !== st.epoch) {
      sub.replaying.delete(st.name);
      return;
    }
    let page: StreamMessage[];
    try {
      store.tx(() => store.expire(st, Date.now())); // never replay what has expired
      page = literal
        ? store.readSubjectFrom(st, sub.pattern, pos.seq + 1, REPLAY_PAGE)
        : store.readFrom(st, pos.seq + 1, REPLAY_PAGE);
    } catch (err) {
      log.error({ err, pattern: sub.pattern, stream: st.name }, "embedded pubsub: replay read failed");
      sub.replaying.delete(st.name);
      return;
    }
    for (const m of page) {
      if (sub.closed || engineClosed()) return;
      pos.seq = m.seq; // also past non-matching rows: they never concern this subscription
      if (literal || matchesPattern(sub.pattern, m.subject)) {
        Object.freeze(m.headers);
        invokeHandler(sub.handler, Object.freeze(m), log, sub.pattern);
      }
    }
    if (page.length < REPLAY_PAGE) {
      // Caught up with everything committed so far. Switch to live in this same synchronous step:
      // nothing can commit in between (commits run in the flush, on this thread), so the next
      // commit is dispatched live and is above pos.seq.
      pos.seq = Math.max(pos.seq, st.lastSeq);
      sub.replaying.delete(st.name);
    } else {
      setImmediate(step);
    }
  };
  setImmediate(step);
}
