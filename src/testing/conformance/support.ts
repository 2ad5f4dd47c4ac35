// What every topic of the conformance suite shares: the harness an engine author provides, the context
// each test gets, and the small helpers the tests are written with. The contract the harness must keep
// is documented in src/testing/conformance.ts.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { Delivery, PubSub, StreamConfig, StreamInfo, SubscribeOptions } from "../../pubsub/types.ts";

export interface EngineHarness {
  /** Prefix of every test title, e.g. "embedded", "nats", "nats-cluster". */
  name: string;
  /** A fresh open engine (see the contract in conformance.ts). */
  open(): Promise<PubSub>;
  /** Crash and restart the storage under the engine; returns the engine to use from now on. */
  restart(engine: PubSub): Promise<PubSub>;
  /** Do subscriptions made before restart() keep delivering after it? */
  restartKeepsSubscriptions: boolean;
  /** Called once after all tests. */
  cleanup(): Promise<void>;
  /** Replicas for every stream the suite creates (default: not set, i.e. the engine's default). */
  replicas?: number;
  /** Multiplies waits and timeouts (default 1). */
  timeScale?: number;
}

export interface Ctx {
  t: TestContext;
  /** The engine under test (replaced by restart()). */
  ps: PubSub;
  /** A subject prefix (one token) no other test uses. */
  p: string;
  /** A stream name no other test uses; `stream("x")` gives a second one. */
  stream(suffix?: string): string;
  /** ensureStream with the harness's replicas and a unique name by default. */
  ensure(config: Partial<StreamConfig> & { subjects: string[] }): Promise<StreamInfo>;
  restart(): Promise<void>;
  /** Scaled milliseconds. */
  ms(n: number): number;
}

/** Registers one test with a fresh engine and unique names. */
export type It = (name: string, fn: (ctx: Ctx) => Promise<void>) => void;

/** What a topic file gets to register its tests with. */
export interface Suite {
  it: It;
  h: EngineHarness;
  /** Scaled milliseconds (the harness's timeScale). */
  ms: (n: number) => number;
}

export const dec = new TextDecoder();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Subscribes and records deliveries; waitFor resolves when `n` have arrived. */
export function collect(ps: PubSub, pattern: string, ms: (n: number) => number, opts?: SubscribeOptions) {
  const msgs: Delivery[] = [];
  const off = ps.subscribe(pattern, (m) => msgs.push(m), opts);
  return {
    msgs,
    off,
    seqs: () => msgs.map((m) => m.seq),
    texts: () => msgs.map((m) => dec.decode(m.data)),
    async waitFor(n: number, timeout = 5000): Promise<void> {
      await waitUntil(
        () => msgs.length >= n,
        ms(timeout),
        () => `${pattern}: ${msgs.length}/${n} messages`,
      );
    },
  };
}

type Collector = ReturnType<typeof collect>;
let markers = 0;

/**
 * Returns once nothing published before it has a delivery still to come to these collectors: publishes
 * a marker on `subject` (every collector's pattern must match it) and waits until each got it. A
 * subscription delivers in order, so whatever was published earlier arrived first. The marker is taken
 * out of what the collectors recorded (on a stream it still takes a seq). This is how a test proves
 * "and nothing more" without waiting a fixed time.
 */
export async function settle(
  ps: PubSub,
  subject: string,
  ms: (n: number) => number,
  ...cs: Collector[]
): Promise<void> {
  const marker = `settle-marker-${++markers}`;
  const isMarker = (m: Delivery) => dec.decode(m.data) === marker;
  await ps.publish(subject, marker);
  await waitUntil(
    () => cs.every((c) => c.msgs.some(isMarker)),
    ms(5000),
    () => `the marker on ${subject}`,
  );
  for (const c of cs) c.msgs.splice(c.msgs.findIndex(isMarker), 1);
}

export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  timeout: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout} ms waiting for ${what()}`);
    await sleep(5);
  }
}

export async function rejectsWith<E extends Error>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => E,
  check?: (e: E) => void,
): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    check?.(err);
    return err;
  }
  assert.fail(`expected ${cls.name}, but it resolved`);
}
