// Conformance, reading stored messages: history queries, replay with fromSeq (and its seam with live
// delivery), and the fields every stored message carries however it was read.
import assert from "node:assert/strict";
import { collect, dec, range, type Suite, settle } from "./support.ts";

export function historyTests({ it }: Suite): void {
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
    await settle(ps, subject, ms, c);
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
    await settle(ps, `${p}.s`, ms, low, mid, next);
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
}
