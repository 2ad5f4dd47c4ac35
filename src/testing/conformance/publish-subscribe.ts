// Conformance, publishing and subscribing: acks and seqs, core messages, wildcard matching, subject
// errors, handlers that throw, unsubscribe, msg-id dedupe and optimistic concurrency.
import assert from "node:assert/strict";
import { SubjectError, WrongLastSequenceError } from "../../pubsub/errors.ts";
import { collect, dec, range, rejectsWith, type Suite, settle, waitUntil } from "./support.ts";

export function publishSubscribeTests({ it }: Suite): void {
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
    await settle(ps, `${p}.a`, ms, c);
    assert.deepEqual(c.texts(), ["one", "two"], "the duplicate is not delivered");
  });

  it("expectLastSubjectSeq rejects a stale writer with WrongLastSequenceError", async ({ ps, p, ensure, stream }) => {
    await ensure({ subjects: [`${p}.>`] });
    const a = await ps.publish(`${p}.doc`, "v1", { expectLastSubjectSeq: 0 });
    assert.equal(a?.seq, 1);
    await ps.publish(`${p}.other`, "noise");
    await rejectsWith(ps.publish(`${p}.doc`, "v1 again", { expectLastSubjectSeq: 0 }), WrongLastSequenceError, (e) => {
      assert.equal(e.expected, 0);
      assert.equal(e.actual, 1);
    });
    const b = await ps.publish(`${p}.doc`, "v2", { expectLastSubjectSeq: 1 });
    assert.equal(b?.seq, 3);
    assert.equal((await ps.info(stream())).messages, 3);
  });
}
