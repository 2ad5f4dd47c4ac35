// The engine conformance suite: written once, run against every PubSub engine (embedded SQLite, a single
// nats-server, a 3-node cluster, or a third engine of your own). Each test name is a behaviour claim of
// the PubSub contract in src/pubsub/types.ts; an engine is conformant when all of them pass.
//
// It ships in the package as `via-ts/testing` and registers its tests with node:test (Node's built-in
// runner, nothing to install). Usage, from a test file run with `node --test`:
//
//   import { runConformance } from "via-ts/testing";
//   runConformance({ name: "my-engine", open, restart, restartKeepsSubscriptions: false, cleanup });
//
// The suite checks errors by class: an engine throws the classes exported by `via-ts/pubsub`
// (StreamNotFoundError, WrongLastSequenceError, ...), from the same installed copy of via-ts.
//
// EngineHarness contract:
// - open(): a fresh, open engine. Storage may be shared by all engines of one harness (one nats-server
//   for the whole run is fine): every test uses its own stream names and subject prefix, so no test sees
//   another's data. Each test closes the engines it opened (close() is idempotent, so a harness may close
//   leftovers again in cleanup()).
// - restart(engine): simulate a crash of the storage and come back, returning the engine to use afterwards.
//   Embedded: close + reopen the same data dir (a new engine). NATS: kill -9 and restart the server(s)
//   while the engine keeps running, then return the same engine once it can publish again.
// - restartKeepsSubscriptions: true when subscriptions made before restart() keep delivering after it (the
//   same engine stayed up); false when the suite must subscribe again with fromSeq to resume.
// - cleanup(): called once after the suite (stop servers, remove temp dirs).
// - replicas: put into every stream config the suite creates (3 for a cluster).
// - timeScale: multiplies the suite's waits and timeouts for slow setups (default 1).
//
// The suite never assumes an engine's byte accounting (JetStream adds per-message overhead) nor exact
// expiry timing beyond "gone within a few max-ages".
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, type TestContext, test } from "node:test";
import {
  PubSubClosedError,
  StreamConfigError,
  StreamLimitError,
  StreamNotFoundError,
  SubjectError,
  WrongLastSequenceError,
} from "../pubsub/errors.ts";
import type { Delivery, PubSub, StreamConfig, StreamInfo, SubscribeOptions } from "../pubsub/types.ts";

export interface EngineHarness {
  /** Prefix of every test title, e.g. "embedded", "nats", "nats-cluster". */
  name: string;
  /** A fresh open engine (see the contract above). */
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

const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

interface Ctx {
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

/** Subscribes and records deliveries; waitFor resolves when `n` have arrived. */
function collect(ps: PubSub, pattern: string, ms: (n: number) => number, opts?: SubscribeOptions) {
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

async function waitUntil(cond: () => boolean, timeout: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeout} ms waiting for ${what()}`);
    await sleep(5);
  }
}

async function rejectsWith<E extends Error>(
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

export function runConformance(h: EngineHarness): void {
  const scale = h.timeScale ?? 1;
  const ms = (n: number) => Math.round(n * scale);
  const run = randomBytes(3).toString("hex");
  let counter = 0;

  describe(`${h.name} conformance`, () => {
    after(() => h.cleanup());

    /** Registers one test with a fresh engine and unique names; closes whatever engine is current at the end. */
    const it = (name: string, fn: (ctx: Ctx) => Promise<void>) =>
      test(`${h.name}: ${name}`, { timeout: ms(20_000) }, async (t) => {
        const n = ++counter;
        const p = `cf${run}${n}`;
        const ctx: Ctx = {
          t,
          ps: await h.open(),
          p,
          stream: (suffix = "") => `CF_${run}_${n}${suffix ? `_${suffix}` : ""}`,
          ensure: (config) =>
            ctx.ps.ensureStream({
              name: ctx.stream(),
              ...(h.replicas !== undefined ? { replicas: h.replicas } : {}),
              ...config,
            }),
          restart: async () => {
            ctx.ps = await h.restart(ctx.ps);
          },
          ms,
        };
        try {
          await fn(ctx);
        } finally {
          await ctx.ps.close();
        }
      });

    // ---- publish & subscribe --------------------------------------------------------------------

    it("publish to a stream subject returns increasing seqs", async ({ ps, p, ensure, stream }) => {
      await ensure({ subjects: [`${p}.>`] });
      const acks = [];
      for (let i = 0; i < 5; i++) acks.push(await ps.publish(`${p}.a`, `m${i}`));
      assert.deepEqual(
        acks,
        range(1, 5).map((seq) => ({ stream: stream(), seq, duplicate: false })),
      );
    });

    it("a stored publish is readable as soon as it resolves", async ({ ps, p, ensure }) => {
      await ensure({ subjects: [`${p}.>`] });
      const ack = await ps.publish(`${p}.a`, "x");
      const hist = await ps.history(`${p}.a`, { last: 1 });
      assert.equal(hist[0]?.seq, ack?.seq);
    });

    it("core publish reaches live subscribers and returns null", async ({ ps, p, ms }) => {
      const c = collect(ps, `${p}.core`, ms);
      const ack = await ps.publish(`${p}.core`, "hello", { headers: { "X-Kind": "greeting" } });
      assert.equal(ack, null);
      await c.waitFor(1);
      const m = c.msgs[0]!;
      assert.equal(m.subject, `${p}.core`);
      assert.equal(dec.decode(m.data), "hello");
      assert.deepEqual(m.headers, { "X-Kind": "greeting" });
      assert.equal(m.stream, undefined);
      assert.equal(m.seq, undefined);
      assert.equal(m.time, undefined);
    });

    it("wildcards: `*` matches exactly one token, `>` one or more, `a*b` is literal", async ({ ps, p, ms }) => {
      const star = collect(ps, `${p}.*.x`, ms);
      const gt = collect(ps, `${p}.>`, ms);
      const aGt = collect(ps, `${p}.a.>`, ms);
      const lit = collect(ps, `${p}.a*b`, ms);
      for (const s of [`${p}.a.x`, `${p}.b.x`, `${p}.a.b.x`, `${p}.a`, `${p}.axb`, `${p}.a*b`]) await ps.publish(s, s);
      // One publisher, so a sentinel every subscription matches arrives after everything before it.
      await ps.publish(`${p}.a.x`, "end");
      await ps.publish(`${p}.a*b`, "end");
      for (const c of [star, gt, aGt, lit])
        await waitUntil(
          () => c.texts().includes("end"),
          ms(5000),
          () => "sentinel",
        );
      assert.deepEqual(star.texts(), [`${p}.a.x`, `${p}.b.x`, "end"]);
      assert.deepEqual(gt.texts(), [
        `${p}.a.x`,
        `${p}.b.x`,
        `${p}.a.b.x`,
        `${p}.a`,
        `${p}.axb`,
        `${p}.a*b`,
        "end",
        "end",
      ]);
      assert.deepEqual(aGt.texts(), [`${p}.a.x`, `${p}.a.b.x`, "end"]);
      assert.deepEqual(lit.texts(), [`${p}.a*b`, "end"]);
    });

    it("invalid subjects and patterns throw SubjectError naming the subject and the rule", async ({ ps, p }) => {
      const bad: [string, RegExp][] = [
        [`${p}..x`, /empty/],
        [`.${p}`, /empty/],
        [`${p}.`, /empty/],
        ["", /empty/],
        [`${p}.*`, /`\*` or `>`/],
        [`${p}.>`, /`\*` or `>`/],
        [`${p}.my room`, /whitespace/],
        [`${p}.tab\there`, /whitespace/],
        [`${p}.${"x".repeat(2000)}`, /bytes/],
      ];
      for (const [s, rule] of bad) {
        await rejectsWith(ps.publish(s, "x"), SubjectError, (e) => {
          assert.equal(e.subject, s);
          assert.match(e.rule, rule);
          assert.ok(e.message.includes(e.rule), e.message);
        });
      }
      for (const [s, rule] of [
        [`${p}.>.x`, /last/],
        [`${p}..*`, /empty/],
        ["", /empty/],
        [`${p}. *`, /whitespace/],
      ] as [string, RegExp][]) {
        assert.throws(
          () => ps.subscribe(s, () => {}),
          (e: unknown) => e instanceof SubjectError && e.subject === s && rule.test(e.rule),
        );
      }
      await rejectsWith(ps.history(`${p}.*`, { last: 1 }), SubjectError);
    });

    it("a handler that throws does not stop delivery to it or to other subscribers", async ({ ps, p, ms }) => {
      let thrown = 0;
      ps.subscribe(`${p}.x`, () => {
        thrown++;
        throw new Error("handler bug (expected in this test)");
      });
      const ok = collect(ps, `${p}.x`, ms);
      for (let i = 0; i < 3; i++) await ps.publish(`${p}.x`, `${i}`);
      await ok.waitFor(3);
      await waitUntil(
        () => thrown === 3,
        ms(2000),
        () => `${thrown}/3 calls of the throwing handler`,
      );
      assert.deepEqual(ok.texts(), ["0", "1", "2"]);
    });

    it("unsubscribe stops delivery and is harmless twice", async ({ ps, p, ms }) => {
      const gone = collect(ps, `${p}.x`, ms);
      const stays = collect(ps, `${p}.x`, ms);
      gone.off();
      gone.off();
      await ps.publish(`${p}.x`, "1");
      await ps.publish(`${p}.x`, "2");
      await stays.waitFor(2);
      assert.equal(gone.msgs.length, 0);
    });

    // ---- dedupe & optimistic concurrency --------------------------------------------------------

    it("msgId dedupe returns the original seq and stores nothing", async ({ ps, p, ensure, stream, ms }) => {
      await ensure({ subjects: [`${p}.>`] });
      const c = collect(ps, `${p}.>`, ms);
      const first = await ps.publish(`${p}.a`, "one", { msgId: "id-1" });
      const again = await ps.publish(`${p}.a`, "one, retried", { msgId: "id-1" });
      const other = await ps.publish(`${p}.a`, "two", { msgId: "id-2" });
      assert.deepEqual(first, { stream: stream(), seq: 1, duplicate: false });
      assert.deepEqual(again, { stream: stream(), seq: 1, duplicate: true });
      assert.deepEqual(other, { stream: stream(), seq: 2, duplicate: false });
      const info = await ps.info(stream());
      assert.equal(info.messages, 2);
      assert.equal(info.lastSeq, 2);
      await c.waitFor(2);
      await sleep(ms(50));
      assert.deepEqual(c.texts(), ["one", "two"], "the duplicate is not delivered");
    });

    it("expectLastSubjectSeq rejects a stale writer with WrongLastSequenceError", async ({ ps, p, ensure, stream }) => {
      await ensure({ subjects: [`${p}.>`] });
      const a = await ps.publish(`${p}.doc`, "v1", { expectLastSubjectSeq: 0 });
      assert.equal(a?.seq, 1);
      await ps.publish(`${p}.other`, "noise");
      await rejectsWith(
        ps.publish(`${p}.doc`, "v1 again", { expectLastSubjectSeq: 0 }),
        WrongLastSequenceError,
        (e) => {
          assert.equal(e.expected, 0);
          assert.equal(e.actual, 1);
        },
      );
      const b = await ps.publish(`${p}.doc`, "v2", { expectLastSubjectSeq: 1 });
      assert.equal(b?.seq, 3);
      assert.equal((await ps.info(stream())).messages, 3);
    });

    // ---- history --------------------------------------------------------------------------------

    it("history last/afterSeq/beforeSeq return one subject in ascending seq order", async ({ ps, p, ensure }) => {
      await ensure({ subjects: [`${p}.>`] });
      for (let i = 1; i <= 10; i++) await ps.publish(i % 2 ? `${p}.a` : `${p}.b`, `m${i}`);
      const seqs = (ms: { seq: number }[]) => ms.map((m) => m.seq);
      const a = `${p}.a`; // seqs 1 3 5 7 9
      assert.deepEqual(seqs(await ps.history(a, { last: 3 })), [5, 7, 9]);
      assert.deepEqual(seqs(await ps.history(a, { last: 100 })), [1, 3, 5, 7, 9]);
      assert.deepEqual(seqs(await ps.history(a, { afterSeq: 3, limit: 2 })), [5, 7]);
      assert.deepEqual(seqs(await ps.history(a, { afterSeq: 0, limit: 2 })), [1, 3]);
      assert.deepEqual(seqs(await ps.history(a, { afterSeq: 9, limit: 5 })), []);
      assert.deepEqual(seqs(await ps.history(a, { beforeSeq: 7, limit: 2 })), [3, 5]);
      assert.deepEqual(seqs(await ps.history(a, { beforeSeq: 2, limit: 5 })), [1]);
      const last = await ps.history(`${p}.b`, { last: 1 });
      assert.equal(last[0]?.subject, `${p}.b`);
      assert.equal(dec.decode(last[0]!.data), "m10");
      assert.deepEqual(await ps.history(`${p}.nothing`, { last: 5 }), []);
    });

    // ---- replay ---------------------------------------------------------------------------------

    it("subscribe fromSeq replays, then continues live with no gap and no duplicate at the seam", async ({
      ps,
      p,
      ensure,
      ms,
    }) => {
      await ensure({ subjects: [`${p}.>`] });
      const subject = `${p}.room`;
      const before = 300;
      const during = 300;
      await Promise.all(range(1, before).map((i) => ps.publish(subject, `m${i}`)));
      await ps.publish(`${p}.elsewhere`, "not this subject");
      const c = collect(ps, subject, ms, { fromSeq: 1 });
      // Publish while the replay is being delivered, in small waves to interleave with it.
      for (let w = 0; w < during / 10; w++) {
        await Promise.all(range(1, 10).map((k) => ps.publish(subject, `m${before + w * 10 + k}`)));
      }
      await c.waitFor(before + during, 10_000);
      await sleep(ms(50));
      const expected = [...range(1, before), ...range(before + 2, before + during + 1)]; // seq 301 is elsewhere
      assert.deepEqual(c.seqs(), expected);
      assert.deepEqual(
        c.texts(),
        range(1, before + during).map((i) => `m${i}`),
      );
    });

    it("subscribe fromSeq: a wildcard pattern replays only matching subjects, in seq order", async ({
      ps,
      p,
      ensure,
      ms,
    }) => {
      await ensure({ subjects: [`${p}.>`] });
      for (let i = 1; i <= 9; i++) await ps.publish(`${p}.${["r1", "r2", "x"][i % 3]}.msg`, `m${i}`);
      const c = collect(ps, `${p}.*.msg`, ms, { fromSeq: 4 });
      const r = collect(ps, `${p}.r1.>`, ms, { fromSeq: 1 });
      await c.waitFor(6);
      await r.waitFor(3);
      await ps.publish(`${p}.r1.msg`, "live");
      await c.waitFor(7);
      await r.waitFor(4);
      assert.deepEqual(c.seqs(), [4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(r.seqs(), [3, 6, 9, 10]); // r1 is i % 3 === 0
    });

    it("subscribe fromSeq below the first seq starts at the first stored; fromSeq = last + 1 gets only new ones", async ({
      ps,
      p,
      ensure,
      ms,
    }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgs: 5 });
      for (let i = 1; i <= 10; i++) await ps.publish(`${p}.s`, `m${i}`);
      const low = collect(ps, `${p}.s`, ms, { fromSeq: 1 });
      const mid = collect(ps, `${p}.s`, ms, { fromSeq: 8 });
      const next = collect(ps, `${p}.s`, ms, { fromSeq: 11 });
      await low.waitFor(5);
      await mid.waitFor(3);
      await ps.publish(`${p}.s`, "m11");
      await low.waitFor(6);
      await mid.waitFor(4);
      await next.waitFor(1);
      await sleep(ms(50));
      assert.deepEqual(low.seqs(), [6, 7, 8, 9, 10, 11]);
      assert.deepEqual(mid.seqs(), [8, 9, 10, 11]);
      assert.deepEqual(next.seqs(), [11]);
    });

    it("every delivered stream message carries subject, stream, seq, time, data and headers", async ({
      ps,
      p,
      ensure,
      stream,
      ms,
    }) => {
      await ensure({ subjects: [`${p}.>`] });
      const live = collect(ps, `${p}.>`, ms);
      const data = Uint8Array.from(range(0, 255));
      const headers = { "X-Trace": "abc", Lang: "fr", Empty: "" };
      const t0 = Date.now();
      const ack = await ps.publish(`${p}.bin`, data, { headers });
      const t1 = Date.now();
      await live.waitFor(1);
      const replayed = collect(ps, `${p}.>`, ms, { fromSeq: 1 });
      await replayed.waitFor(1);
      const [hist] = await ps.history(`${p}.bin`, { last: 1 });
      for (const [how, m] of [
        ["live", live.msgs[0]],
        ["replay", replayed.msgs[0]],
        ["history", hist],
      ] as const) {
        assert.ok(m, how);
        assert.equal(m.subject, `${p}.bin`, how);
        assert.equal(m.stream, stream(), how);
        assert.equal(m.seq, ack?.seq, how);
        assert.equal(typeof m.time, "number", how);
        // Server clocks may differ from ours a little (NATS): allow a second either side.
        assert.ok(m.time! >= t0 - 1000 && m.time! <= t1 + 1000, `${how}: time ${m.time} not in [${t0}, ${t1}]`);
        assert.ok(m.data instanceof Uint8Array, how);
        assert.deepEqual(new Uint8Array(m.data), data, how);
        assert.deepEqual(m.headers, headers, how);
      }
    });

    // ---- info & epoch ---------------------------------------------------------------------------

    it("info reports config defaults, first/last seq, message and per-subject counts", async ({
      ps,
      p,
      ensure,
      stream,
    }) => {
      const created = await ensure({ subjects: [`${p}.>`] });
      assert.equal(created.name, stream());
      assert.deepEqual(created.config.subjects, [`${p}.>`]);
      assert.equal(created.config.maxMsgs, 0);
      assert.equal(created.config.maxAge, 0);
      assert.equal(created.config.discard, "old");
      assert.equal(created.config.duplicateWindow, 120_000);
      assert.equal(created.firstSeq, 1);
      assert.equal(created.lastSeq, 0);
      assert.equal(created.messages, 0);
      for (const s of ["a", "b", "a", "c", "a"]) await ps.publish(`${p}.${s}`, "x");
      const info = await ps.info(stream());
      assert.equal(info.firstSeq, 1);
      assert.equal(info.lastSeq, 5);
      assert.equal(info.messages, 5);
      assert.ok(info.bytes > 0);
      assert.deepEqual(info.subjects, { [`${p}.a`]: 3, [`${p}.b`]: 1, [`${p}.c`]: 1 });
      assert.equal(typeof info.epoch, "string");
      assert.ok(info.epoch.length > 0);
      await rejectsWith(ps.info(stream("missing")), StreamNotFoundError);
    });

    it("epoch is stable across ensureStream and restart, and changes when the stream is deleted and recreated", async (ctx) => {
      const { p, ensure, stream } = ctx;
      const e1 = (await ensure({ subjects: [`${p}.>`] })).epoch;
      await ctx.ps.publish(`${p}.a`, "x");
      assert.equal((await ensure({ subjects: [`${p}.>`], maxMsgs: 100 })).epoch, e1);
      await ctx.restart();
      assert.equal((await ctx.ps.info(stream())).epoch, e1);
      if (!ctx.ps.deleteStream) {
        ctx.t.skip("engine has no deleteStream: the recreate half of this claim is not checked");
        return;
      }
      await ctx.ps.deleteStream(stream());
      await rejectsWith(ctx.ps.info(stream()), StreamNotFoundError);
      const again = await ensure({ subjects: [`${p}.>`] });
      assert.notEqual(again.epoch, e1);
      assert.equal(again.lastSeq, 0);
      assert.equal(again.firstSeq, 1);
      assert.equal((await ctx.ps.publish(`${p}.a`, "y"))?.seq, 1);
    });

    // ---- limits ---------------------------------------------------------------------------------

    it("maxMsgs with discard old evicts the oldest", async ({ ps, p, ensure }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgs: 5 });
      for (let i = 0; i < 8; i++) await ps.publish(`${p}.a`, `${i}`);
      const info = await ensure({ subjects: [`${p}.>`], maxMsgs: 5 });
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [5, 4, 8]);
    });

    it("maxMsgs with discard new rejects with StreamLimitError and keeps what is stored", async ({
      ps,
      p,
      ensure,
      stream,
    }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgs: 5, discard: "new" });
      for (let i = 0; i < 5; i++) await ps.publish(`${p}.a`, `${i}`);
      await rejectsWith(ps.publish(`${p}.a`, "6th"), StreamLimitError, (e) => assert.equal(e.limit, "maxMsgs"));
      const info = await ps.info(stream());
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [5, 1, 5]);
    });

    it("maxMsgsPerSubject evicts a subject's oldest message from the middle of the stream", async ({
      ps,
      p,
      ensure,
      stream,
    }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgsPerSubject: 2 });
      for (const s of ["b", "a", "a", "a"]) await ps.publish(`${p}.${s}`, s);
      const info = await ps.info(stream());
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [3, 1, 4]);
      assert.deepEqual(info.subjects, { [`${p}.a`]: 2, [`${p}.b`]: 1 });
      assert.deepEqual(
        (await ps.history(`${p}.a`, { last: 10 })).map((m) => m.seq),
        [3, 4],
      );
    });

    it("maxMsgsPerSubject with discard new rejects only the full subject", async ({ ps, p, ensure }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgsPerSubject: 2, discard: "new" });
      await ps.publish(`${p}.a`, "1");
      await ps.publish(`${p}.a`, "2");
      await rejectsWith(ps.publish(`${p}.a`, "3"), StreamLimitError, (e) => assert.equal(e.limit, "maxMsgsPerSubject"));
      assert.equal((await ps.publish(`${p}.b`, "1"))?.seq, 3);
    });

    it("maxBytes with discard new rejects instead of evicting (unlike nats-server 2.9.10)", async ({
      ps,
      p,
      ensure,
      stream,
    }) => {
      const maxBytes = 1000;
      await ensure({ subjects: [`${p}.>`], maxBytes, discard: "new" });
      const payload = "x".repeat(100);
      let acked = 0;
      let rejected = 0;
      for (let i = 0; i < 20; i++) {
        try {
          await ps.publish(`${p}.a`, payload);
          assert.equal(rejected, 0, "a publish was accepted after one was rejected");
          acked++;
        } catch (err) {
          assert.ok(err instanceof StreamLimitError, String(err));
          assert.equal(err.limit, "maxBytes");
          rejected++;
        }
      }
      assert.ok(acked >= 3 && rejected > 0, `acked ${acked}, rejected ${rejected}`);
      const info = await ps.info(stream());
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [acked, 1, acked]);
      assert.ok(info.bytes <= maxBytes, `bytes ${info.bytes}`);
    });

    it("maxBytes with discard old evicts the oldest", async ({ ps, p, ensure, stream }) => {
      const maxBytes = 1000;
      await ensure({ subjects: [`${p}.>`], maxBytes });
      for (let i = 0; i < 20; i++) await ps.publish(`${p}.a`, "x".repeat(100));
      const info = await ps.info(stream());
      assert.equal(info.lastSeq, 20);
      assert.ok(info.firstSeq > 1 && info.messages === 20 - info.firstSeq + 1, JSON.stringify(info));
      assert.ok(info.bytes <= maxBytes, `bytes ${info.bytes}`);
    });

    it("maxMsgSize rejects a larger payload with StreamLimitError", async ({ ps, p, ensure }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgSize: 16 });
      assert.equal((await ps.publish(`${p}.a`, "0123456789"))?.seq, 1);
      await rejectsWith(ps.publish(`${p}.a`, "x".repeat(17)), StreamLimitError, (e) =>
        assert.equal(e.limit, "maxMsgSize"),
      );
    });

    it("maxAge expires messages on its own; then first = last + 1 and seqs are not reused", async ({
      ps,
      p,
      ensure,
      stream,
      ms,
    }) => {
      const maxAge = 300;
      await ensure({ subjects: [`${p}.>`], maxAge });
      for (let i = 0; i < 3; i++) await ps.publish(`${p}.a`, `${i}`);
      // No reads while the messages age out: expiry must not depend on them.
      await sleep(ms(maxAge * 3));
      const info = await ps.info(stream());
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq, info.bytes], [0, 4, 3, 0]);
      assert.deepEqual(info.subjects, {});
      assert.deepEqual(await ps.history(`${p}.a`, { last: 10 }), []);
      assert.equal((await ps.publish(`${p}.a`, "after"))?.seq, 4);
    });

    it("msgId dedupe ends when the duplicate window has passed", async ({ ps, p, ensure, stream, ms }) => {
      await ensure({ subjects: [`${p}.>`], duplicateWindow: 300 });
      assert.equal((await ps.publish(`${p}.a`, "1", { msgId: "m" }))?.seq, 1);
      assert.deepEqual(await ps.publish(`${p}.a`, "1", { msgId: "m" }), { stream: stream(), seq: 1, duplicate: true });
      await sleep(ms(600));
      assert.deepEqual(await ps.publish(`${p}.a`, "1", { msgId: "m" }), { stream: stream(), seq: 2, duplicate: false });
    });

    it("ensureStream with tighter limits trims at once", async ({ ps, p, ensure, stream }) => {
      await ensure({ subjects: [`${p}.>`], maxMsgs: 10 });
      for (let i = 0; i < 10; i++) await ps.publish(`${p}.${i % 2 ? "a" : "b"}`, `${i}`);
      const tighter = await ensure({ subjects: [`${p}.>`], maxMsgs: 3 });
      assert.deepEqual([tighter.messages, tighter.firstSeq, tighter.lastSeq], [3, 8, 10]);
      assert.equal(tighter.config.maxMsgs, 3);
      const perSubject = await ensure({ subjects: [`${p}.>`], maxMsgs: 3, maxMsgsPerSubject: 1 });
      assert.deepEqual(perSubject.subjects, { [`${p}.a`]: 1, [`${p}.b`]: 1 });
      assert.deepEqual([perSubject.messages, perSubject.firstSeq, perSubject.lastSeq], [2, 9, 10]);
      assert.equal((await ps.info(stream())).messages, 2);
    });

    it("duplicateWindow defaults to min(2 min, maxAge) and may not exceed maxAge", async ({
      p,
      ensure,
      stream,
      ps,
    }) => {
      const info = await ensure({ subjects: [`${p}.>`], maxAge: 1000 });
      assert.equal(info.config.duplicateWindow, 1000);
      await rejectsWith(
        ps.ensureStream({ name: stream("b"), subjects: [`${p}x.>`], maxAge: 1000, duplicateWindow: 5000 }),
        StreamConfigError,
      );
    });

    it("streams with overlapping subjects are refused with StreamConfigError", async ({ ps, p, ensure, stream }) => {
      await ensure({ subjects: [`${p}.a.>`] });
      await rejectsWith(ps.ensureStream({ name: stream("two"), subjects: [`${p}.*.x`] }), StreamConfigError);
      await rejectsWith(ps.ensureStream({ name: stream("three"), subjects: [`${p}.>`] }), StreamConfigError);
      // Disjoint subjects are fine, and re-ensuring the same stream is not an overlap with itself.
      await ps.ensureStream({ name: stream("four"), subjects: [`${p}.b.>`] });
      await ensure({ subjects: [`${p}.a.>`] });
    });

    // ---- restart --------------------------------------------------------------------------------

    it("restart keeps messages, seqs and epoch", async (ctx) => {
      const { p, ensure, stream } = ctx;
      await ensure({ subjects: [`${p}.>`], maxMsgsPerSubject: 100 });
      for (let i = 1; i <= 5; i++) await ctx.ps.publish(`${p}.${i % 2 ? "a" : "b"}`, `m${i}`, { msgId: `id${i}` });
      const before = await ctx.ps.info(stream());
      await ctx.restart();
      const afterRestart = await ctx.ps.info(stream());
      assert.deepEqual(afterRestart, before);
      const dup = await ctx.ps.publish(`${p}.a`, "m1", { msgId: "id1" });
      assert.deepEqual(dup, { stream: stream(), seq: 1, duplicate: true }, "dedupe ids survive the restart");
      assert.equal((await ctx.ps.publish(`${p}.a`, "m6"))?.seq, 6);
      const hist = await ctx.ps.history(`${p}.a`, { last: 10 });
      assert.deepEqual(
        hist.map((m) => [m.seq, dec.decode(m.data)]),
        [
          [1, "m1"],
          [3, "m3"],
          [5, "m5"],
          [6, "m6"],
        ],
      );
    });

    it("restart keeps the last seq of an emptied stream: first = last + 1, no reuse", async (ctx) => {
      const { p, ensure, stream } = ctx;
      await ensure({ subjects: [`${p}.>`], maxAge: 300 });
      for (let i = 0; i < 3; i++) await ctx.ps.publish(`${p}.a`, `${i}`);
      await sleep(ms(900));
      await ctx.restart();
      const info = await ctx.ps.info(stream());
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [0, 4, 3]);
      assert.equal((await ctx.ps.publish(`${p}.a`, "next"))?.seq, 4);
    });

    it("a subscriber resumes after restart with no gap and no duplicate", async (ctx) => {
      const { p, ensure } = ctx;
      await ensure({ subjects: [`${p}.>`] });
      const subject = `${p}.room`;
      const seen: number[] = [];
      const handler = (m: Delivery) => seen.push(m.seq!);
      let off = ctx.ps.subscribe(subject, handler);
      for (let i = 0; i < 5; i++) await ctx.ps.publish(subject, `m${i}`);
      await waitUntil(
        () => seen.length === 5,
        ms(5000),
        () => `${seen.length}/5`,
      );
      // These may or may not reach the subscriber before the restart; either way none may be lost.
      await Promise.all(range(1, 3).map((i) => ctx.ps.publish(subject, `late${i}`)));
      await ctx.restart();
      if (!h.restartKeepsSubscriptions) {
        off();
        off = ctx.ps.subscribe(subject, handler, { fromSeq: (seen.at(-1) ?? 0) + 1 });
      }
      for (let i = 0; i < 5; i++) await ctx.ps.publish(subject, `after${i}`);
      await waitUntil(
        () => seen.length >= 13,
        ms(15_000),
        () => `${seen.length}/13: ${seen.join(",")}`,
      );
      await sleep(ms(100));
      assert.deepEqual(seen, range(1, 13));
      off();
    });

    // ---- concurrency & lifecycle ----------------------------------------------------------------

    it("20 concurrent publishers get distinct, increasing seqs", async ({ ps, p, ensure, stream }) => {
      await ensure({ subjects: [`${p}.>`] });
      const perWriter = 25;
      const results = await Promise.all(
        range(1, 20).map(async (w) => {
          const seqs: number[] = [];
          for (let i = 0; i < perWriter; i++) seqs.push((await ps.publish(`${p}.w${w}`, `${w}:${i}`))!.seq);
          return seqs;
        }),
      );
      for (const seqs of results) {
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, "per-writer seqs increase");
      }
      const all = results.flat().sort((a, b) => a - b);
      assert.deepEqual(all, range(1, 20 * perWriter));
      const info = await ps.info(stream());
      assert.equal(info.messages, 20 * perWriter);
      assert.equal(Object.keys(info.subjects).length, 20);
    });

    it("a closed engine refuses every call with PubSubClosedError; close is idempotent", async ({
      ps,
      p,
      ensure,
      stream,
    }) => {
      await ensure({ subjects: [`${p}.>`] });
      await ps.close();
      await ps.close();
      await rejectsWith(ps.publish(`${p}.a`, "x"), PubSubClosedError);
      await rejectsWith(ps.publish(`${p}.core`, "x"), PubSubClosedError);
      assert.throws(() => ps.subscribe(`${p}.a`, () => {}), PubSubClosedError);
      await rejectsWith(ps.ensureStream({ name: stream(), subjects: [`${p}.>`] }), PubSubClosedError);
      await rejectsWith(ps.history(`${p}.a`, { last: 1 }), PubSubClosedError);
      await rejectsWith(ps.info(stream()), PubSubClosedError);
      if (ps.deleteStream) await rejectsWith(ps.deleteStream(stream()), PubSubClosedError);
    });
  });
}
