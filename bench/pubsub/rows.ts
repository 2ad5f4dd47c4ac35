// The measurements of bench:pubsub, written once against the PubSub interface and run on both engines
// by bench/pubsub/worker.ts. Every function bounds its work in count and time.
import { ascending, percentile } from "../../harness/stats.ts";
import type { PubSub } from "../../src/pubsub/types.ts";

/** 100-byte payload (ASCII), the size nats-facts §4 measured with. */
export const PAYLOAD = new TextEncoder().encode("x".repeat(100));

export const STREAMS = {
  pub: { name: "BPUB", subjects: ["bpub.>"] },
  fan: { name: "BFAN", subjects: ["bfan.>"] },
  hist: { name: "BHIST", subjects: ["bhist.>"] },
} as const;
/** Captured by no stream: the core (non-stream) fan-out subject. */
export const CORE_SUBJECT = "bcore.room";
export const FAN_SUBJECT = "bfan.room";
export const roomSubject = (r: number) => `bhist.room.${r}`;

/** Runs fn(0..n-1) with at most `window` calls in flight, in index order per lane. */
export async function pipelined(n: number, window: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
}

/** Deletes the stream if it exists (both engines implement deleteStream) and creates it empty. */
export async function freshStream(ps: PubSub, cfg: { name: string; subjects: readonly string[] }): Promise<void> {
  try {
    await ps.deleteStream?.(cfg.name);
  } catch {
    // did not exist
  }
  await ps.ensureStream({ name: cfg.name, subjects: [...cfg.subjects] });
}

/** Acked publishes per second: `n` messages, `window` in flight (1 = await each). */
export async function publishRate(ps: PubSub, subject: string, n: number, window: number): Promise<number> {
  const t0 = performance.now();
  await pipelined(n, window, async () => {
    const ack = await ps.publish(subject, PAYLOAD);
    if (!ack) throw new Error(`${subject}: publish was not acked by a stream`);
  });
  return n / ((performance.now() - t0) / 1000);
}

/** Live subscriptions that count deliveries; `waitFor(total)` resolves once that many have arrived. */
export function fanoutSubscribers(ps: PubSub, subject: string, count: number) {
  let delivered = 0;
  let target = Number.POSITIVE_INFINITY;
  let lastAt = 0;
  let wake: (() => void) | null = null;
  const handler = () => {
    delivered++;
    if (delivered >= target) {
      lastAt = performance.now();
      wake?.();
      wake = null;
    }
  };
  const offs = Array.from({ length: count }, () => ps.subscribe(subject, handler));
  return {
    /** Resets the counter and expects `total` deliveries; returns when they arrived (the time of the last one). */
    async expect(total: number, run: () => Promise<void>, timeoutMs: number): Promise<{ lastAt: number }> {
      delivered = 0;
      target = total;
      lastAt = 0;
      const done = new Promise<void>((resolve) => {
        wake = resolve;
      });
      await run();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([done, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        throw new Error(`${subject}: ${delivered} of ${total} deliveries after ${timeoutMs} ms`);
      }
      target = Number.POSITIVE_INFINITY;
      return { lastAt };
    },
    close() {
      for (const off of offs) off();
    },
  };
}

/**
 * Deliveries per second for one publisher → `subs` subscribers of one subject: `n` publishes with
 * `window` in flight, timed from the first publish to the last delivery.
 */
export async function fanoutRate(
  fan: ReturnType<typeof fanoutSubscribers>,
  ps: PubSub,
  subject: string,
  subs: number,
  n: number,
  window: number,
  timeoutMs: number,
): Promise<number> {
  const t0 = performance.now();
  const { lastAt } = await fan.expect(
    n * subs,
    () => pipelined(n, window, () => ps.publish(subject, PAYLOAD)),
    timeoutMs,
  );
  return (n * subs) / ((lastAt - t0) / 1000);
}

/** Fills the history stream round-robin over `rooms` rooms, unless it already holds `total` messages. */
export async function fillHistory(ps: PubSub, total: number, rooms: number): Promise<{ filled: boolean; ms: number }> {
  await ps.ensureStream({ name: STREAMS.hist.name, subjects: [...STREAMS.hist.subjects] });
  const info = await ps.info(STREAMS.hist.name);
  if (info.messages >= total) return { filled: false, ms: 0 };
  if (info.messages > 0) {
    await ps.deleteStream?.(STREAMS.hist.name);
    await ps.ensureStream({ name: STREAMS.hist.name, subjects: [...STREAMS.hist.subjects] });
  }
  const t0 = performance.now();
  await pipelined(total, 100, (i) => ps.publish(roomSubject(i % rooms), PAYLOAD));
  return { filled: true, ms: performance.now() - t0 };
}

/** Deterministic PRNG (mulberry32), so both engines get the same sequence of rooms and positions. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LatencyStats {
  p50: number;
  p99: number;
}

export function stats(samples: number[]): LatencyStats {
  const s = ascending(samples);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
}

export interface HistoryPlan {
  /** Rooms for the "last 50" calls. */
  lastRooms: number[];
  /** (room, beforeSeq) pairs for the "older page" calls. */
  older: Array<{ room: number; beforeSeq: number }>;
}

/**
 * The calls to time: random rooms, and for older pages a random beforeSeq between the 60th message of every
 * room and 80% of the stream (so well past the newest 200 messages of any room): each call reads 50 stored
 * messages that are not the newest.
 */
export function historyPlan(seed: number, calls: number, rooms: number, total: number): HistoryPlan {
  const rnd = prng(seed);
  const low = rooms * 60;
  const high = Math.floor(total * 0.8);
  if (high <= low) throw new Error(`history plan: ${total} messages over ${rooms} rooms is too few for older pages`);
  const lastRooms = Array.from({ length: calls }, () => Math.floor(rnd() * rooms));
  const older = Array.from({ length: calls }, () => ({
    room: Math.floor(rnd() * rooms),
    beforeSeq: low + Math.floor(rnd() * (high - low)),
  }));
  return { lastRooms, older };
}

/** Times each call of the plan; checks every answer (50 messages of the right room, seq-ordered, < beforeSeq). */
export async function historyLatency(
  ps: PubSub,
  plan: HistoryPlan,
): Promise<{ last: LatencyStats; older: LatencyStats; lastSamples: number[]; olderSamples: number[] }> {
  const lastSamples: number[] = [];
  for (const room of plan.lastRooms) {
    const subject = roomSubject(room);
    const t0 = performance.now();
    const msgs = await ps.history(subject, { last: 50 });
    lastSamples.push(performance.now() - t0);
    checkPage(msgs, subject, Number.POSITIVE_INFINITY);
  }
  const olderSamples: number[] = [];
  for (const { room, beforeSeq } of plan.older) {
    const subject = roomSubject(room);
    const t0 = performance.now();
    const msgs = await ps.history(subject, { beforeSeq, limit: 50 });
    olderSamples.push(performance.now() - t0);
    checkPage(msgs, subject, beforeSeq);
  }
  return { last: stats(lastSamples), older: stats(olderSamples), lastSamples, olderSamples };
}

function checkPage(msgs: Array<{ subject: string; seq: number }>, subject: string, beforeSeq: number): void {
  if (msgs.length !== 50) throw new Error(`history ${subject} before ${beforeSeq}: ${msgs.length} messages, not 50`);
  let prev = 0;
  for (const m of msgs) {
    if (m.subject !== subject || m.seq <= prev || m.seq >= beforeSeq) {
      throw new Error(`history ${subject} before ${beforeSeq}: bad message ${m.subject} #${m.seq} after #${prev}`);
    }
    prev = m.seq;
  }
}
