// Conformance, durability: what survives a crash and restart of the storage (messages, seqs, epochs,
// dedupe ids, the last seq of an emptied stream), and a subscriber resuming across it.
import assert from "node:assert/strict";
import type { Delivery } from "../../pubsub/types.ts";
import { dec, range, type Suite, waitUntil } from "./support.ts";

export function restartTests({ it, h, ms }: Suite): void {
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
    await waitUntil(
      async () => (await ctx.ps.info(stream())).messages === 0,
      ms(5000),
      () => "the messages to expire",
    );
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
    // A barrier: the subscription delivers in order, so once seq 14 arrived nothing earlier is to come.
    await ctx.ps.publish(subject, "barrier");
    await waitUntil(
      () => seen.includes(14),
      ms(5000),
      () => `${seen.length}/14: ${seen.join(",")}`,
    );
    assert.deepEqual(seen, range(1, 14));
    off();
  });
}
