// Conformance, streams: info and epochs, and every limit (count, per subject, bytes, message size, age,
// duplicate window), tightened limits, config checks and overlapping subjects.
import assert from "node:assert/strict";
import { contractMessage } from "../../pubsub/contract.ts";
import { StreamConfigError, StreamLimitError, StreamNotFoundError } from "../../pubsub/errors.ts";
import { rejectsWith, type Suite, sleep } from "./support.ts";

export function streamTests({ it }: Suite): void {
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
    // Poll by publishing again: within the window each try is answered as a duplicate and stores nothing.
    let ack = await ps.publish(`${p}.a`, "1", { msgId: "m" });
    const deadline = Date.now() + ms(5000);
    while (ack?.duplicate && Date.now() < deadline) {
      await sleep(ms(20));
      ack = await ps.publish(`${p}.a`, "1", { msgId: "m" });
    }
    assert.deepEqual(ack, { stream: stream(), seq: 2, duplicate: false });
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

  it("duplicateWindow defaults to min(2 min, maxAge) and may not exceed maxAge", async ({ p, ensure, stream, ps }) => {
    const info = await ensure({ subjects: [`${p}.>`], maxAge: 1000 });
    assert.equal(info.config.duplicateWindow, 1000);
    await rejectsWith(
      ps.ensureStream({ name: stream("b"), subjects: [`${p}x.>`], maxAge: 1000, duplicateWindow: 5000 }),
      StreamConfigError,
    );
  });

  it("streams with overlapping subjects are refused with StreamConfigError", async ({ ps, p, ensure, stream }) => {
    await ensure({ subjects: [`${p}.a.>`] });
    await rejectsWith(ps.ensureStream({ name: stream("two"), subjects: [`${p}.*.x`] }), StreamConfigError, (e) =>
      // The same words on every engine: which subject overlaps which, of which stream.
      assert.equal(e.message, contractMessage.subjectsOverlap(stream("two"), `${p}.*.x`, `${p}.a.>`, stream())),
    );
    await rejectsWith(ps.ensureStream({ name: stream("three"), subjects: [`${p}.>`] }), StreamConfigError);
    // Disjoint subjects are fine, and re-ensuring the same stream is not an overlap with itself.
    await ps.ensureStream({ name: stream("four"), subjects: [`${p}.b.>`] });
    await ensure({ subjects: [`${p}.a.>`] });
  });
}
