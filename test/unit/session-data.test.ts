// Session data is JSON (src/server/session-data.ts): what may be set, what is refused and how the
// refusal reads, the size cap, what `get` returns; and the store's reads (src/server/session-store.ts):
// concurrent loads of one session share one read, a new session reads nothing.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { until } from "../../harness/poll.ts";
import { silentLogger } from "../../src/log.ts";
import { openPubSub, type PubSub } from "../../src/pubsub/index.ts";
import { TokenBucket } from "../../src/server/rate-limit.ts";
import { SessionStore } from "../../src/server/session.ts";
import {
  MAX_SESSION_BYTES,
  resolveSessionOptions,
  SESSION_SUBJECT_PREFIX,
  SessionDataError,
} from "../../src/server/session-store.ts";
import { watchedEngine } from "../support/watched-engine.ts";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

const secret = Buffer.alloc(32, 7);

const limits = { rateLimit: { ratePerSec: 10, burst: 10 }, idleTtlMs: 60_000 };

function memoryStore(): SessionStore {
  const store = new SessionStore(secret, limits);
  cleanups.push(() => store.close());
  return store;
}

/** A request carrying `cookie` (the `name=value` part of a Set-Cookie). */
function requestWith(cookie: string): IncomingMessage {
  return { headers: { cookie: cookie.split(";")[0] } } as IncomingMessage;
}

test("session data: JSON values are stored as frozen copies; anything else is refused, saying what and where", () => {
  const session = memoryStore().create();
  const value = { name: "Wise Tiger", tags: ["a", 1, true, null], nested: { deep: [{ x: -0.5 }] } };
  session.set("profile", value);
  const got = session.get<typeof value>("profile")!;
  assert.deepEqual(got, value);
  assert.notEqual(got, value, "a copy: changing the original afterwards changes nothing stored");
  assert.ok(Object.isFrozen(got) && Object.isFrozen(got.nested.deep[0]), "read-only: set it again to change it");
  assert.throws(() => {
    (got as { name: string }).name = "x";
  }, TypeError);

  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const refusals: Array<[unknown, RegExp]> = [
    [new TokenBucket({ ratePerSec: 1, burst: 1 }), /a TokenBucket is not JSON/],
    [new Map(), /a Map is not JSON/],
    [{ when: new Date() }, /a Date at \.when is not JSON/],
    [{ list: [1, () => 2] }, /a function at \.list\[1\] is not JSON/],
    [undefined, /undefined \(use session\.delete to remove a key\) is not JSON/],
    [{ n: Number.NaN }, /NaN \(not a finite number\) at \.n is not JSON/],
    [{ n: Number.POSITIVE_INFINITY }, /Infinity \(not a finite number\) at \.n/],
    [10n, /a bigint is not JSON/],
    [Symbol("s"), /a symbol is not JSON/],
    [cycle, /a circular reference at \.self/],
    [{ [Symbol("k")]: 1 }, /an object with symbol keys/],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    [[1, , 3], /a hole in an array at \[1\]/],
  ];
  for (const [bad, message] of refusals) {
    assert.throws(
      () => session.set("bad", bad),
      (err: unknown) => err instanceof SessionDataError && message.test((err as Error).message),
      String(message),
    );
  }
  assert.equal(session.get("bad"), undefined, "nothing of a refused value is kept");
  assert.throws(() => session.set("", 1), /keys are strings of 1-256 characters/);

  // A "__proto__" key from parsed input stays a plain key.
  session.set("parsed", JSON.parse('{"__proto__": {"polluted": true}}'));
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  assert.deepEqual(Object.keys(session.get<object>("parsed")!), ["__proto__"]);

  // The whole session's data is capped.
  session.set("big", "x".repeat(MAX_SESSION_BYTES / 2));
  assert.throws(
    () => session.set("bigger", "y".repeat(MAX_SESSION_BYTES / 2)),
    /the session's data would be [\d,]+ bytes as JSON; the limit is 65,536/,
  );
  assert.equal(session.get("bigger"), undefined);
});

test("session.memo keeps any per-process value, made once", () => {
  const session = memoryStore().create();
  let made = 0;
  const make = () => {
    made++;
    return new TokenBucket({ ratePerSec: 1, burst: 5 });
  };
  const bucket = session.memo("limiter", make);
  assert.equal(session.memo("limiter", make), bucket);
  assert.equal(made, 1);
  assert.equal(session.get("limiter"), undefined, "a memo is no session data");
});

test("session options: defaults follow the engine; bad values are refused", () => {
  assert.equal(resolveSessionOptions(undefined, true).store, "engine");
  assert.equal(resolveSessionOptions(undefined, false).store, "memory");
  assert.equal(resolveSessionOptions({ store: "memory" }, true).store, "memory");
  assert.equal(resolveSessionOptions(undefined, true).ttlMs, 30 * 24 * 3600_000);
  assert.throws(() => resolveSessionOptions({ ttlMs: 1.5e3 + 0.5 }, true), RangeError);
  assert.throws(() => resolveSessionOptions({ replicas: 0 }, true), /replicas must be a positive integer/);
});

/** An embedded engine whose session reads are counted and held until `release()`. */
async function gatedEngine(): Promise<{ pubsub: PubSub; reads: () => number; release: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), "via-session-data-"));
  const inner = await openPubSub({ dataDir: dir });
  cleanups.push(async () => {
    await inner.close();
    await rm(dir, { recursive: true, force: true });
  });
  let reads = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const pubsub = watchedEngine(inner, {
    history: async (subject) => {
      if (!subject.startsWith(`${SESSION_SUBJECT_PREFIX}.`)) return;
      reads++;
      await gate;
    },
  });
  return { pubsub, reads: () => reads, release: open };
}

test("the engine store: concurrent loads of one session share one read; a new or held session reads nothing", async () => {
  const { pubsub, reads, release } = await gatedEngine();
  const sessions = resolveSessionOptions(undefined, true);
  const store = await SessionStore.open(secret, { ...limits, sessions, pubsub, logger: silentLogger });
  cleanups.push(() => store.close());

  const fresh = store.create();
  assert.equal(await store.load(fresh), fresh, "a new session has nothing to read");
  assert.equal(reads(), 0);

  const cookie = store.cookie(fresh, false);
  const requests = Array.from({ length: 5 }, () => store.fromRequest(requestWith(cookie))!);
  assert.throws(() => requests[0]!.get("x"), /this session's data is not loaded/, "no data before the read");
  const loading = Promise.all(requests.map((s) => store.load(s)));
  assert.equal(reads(), 1, "one read for five concurrent requests");
  release();
  const loaded = await loading;
  assert.ok(
    loaded.every((s) => s === loaded[0]),
    "they share one session",
  );
  assert.equal(store.size, 0, "loading holds nothing");
  store.remember(loaded[0]!);
  assert.equal(store.size, 1);
  assert.equal(
    await store.load(store.fromRequest(requestWith(cookie))!),
    loaded[0],
    "a held session is not read again",
  );
  assert.equal(reads(), 1);
});

test("the engine store: two instances changing different keys of one session at once keep both", async () => {
  const { pubsub, release } = await gatedEngine();
  release();
  const sessions = resolveSessionOptions(undefined, true);
  const open = async (engine = pubsub) => {
    const store = await SessionStore.open(secret, { ...limits, sessions, pubsub: engine, logger: silentLogger });
    cleanups.push(() => store.close());
    return store;
  };
  // Two does not follow the subjects live (as if deliveries lagged): its conflict alone must merge.
  const [one, two] = [await open(), await open({ ...pubsub, subscribe: () => () => {} })];
  const cookie = one.cookie(one.create(), false);
  const load = async (store: SessionStore) => store.remember(await store.load(store.fromRequest(requestWith(cookie))!));
  const [a, b] = [await load(one), await load(two)];
  // Both write on the next turn, both expecting the subject to be empty: one's goes first, two's conflicts.
  a.set("a", 1);
  b.set("b", 2);
  const third = await open();
  const read = () => third.load(third.fromRequest(requestWith(cookie))!);
  await until("both keys are stored", async () => {
    const s = await read();
    return s.get("a") !== undefined && s.get("b") !== undefined;
  });
  const s = await read();
  assert.deepEqual([s.get("a"), s.get("b")], [1, 2], "the stored record has both");
  await until("each instance has the other's key", () => a.get("b") !== undefined && b.get("a") !== undefined);
  assert.deepEqual([a.get("b"), b.get("a")], [2, 1], "and each instance has the other's key");
});

test("the engine store: a write that fails is logged and retried, never thrown into the code that set the value", async () => {
  const { pubsub, release } = await gatedEngine();
  release();
  let failing = true;
  const flaky: PubSub = {
    ...pubsub,
    publish: (subject, data, opts) =>
      failing && subject.startsWith(`${SESSION_SUBJECT_PREFIX}.`)
        ? Promise.reject(new Error("engine unreachable"))
        : pubsub.publish(subject, data, opts),
  };
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const sessions = resolveSessionOptions(undefined, true);
  const store = await SessionStore.open(secret, { ...limits, sessions, pubsub: flaky, logger });
  cleanups.push(() => store.close());
  const session = store.create();
  session.set("kept", "in this process");
  assert.equal(session.get("kept"), "in this process");
  await until("the failure is logged", () => lines.some((l) => /could not be stored; retrying/.test(l.msg)));
  failing = false;
  // The retry (after 1 s) stores it.
  const other = await SessionStore.open(secret, { ...limits, sessions, pubsub, logger: silentLogger });
  cleanups.push(() => other.close());
  const cookie = store.cookie(session, false);
  await until("the retry stored it", async () => {
    const loaded = await other.load(other.fromRequest(requestWith(cookie))!);
    return loaded.get("kept") === "in this process";
  });
});
