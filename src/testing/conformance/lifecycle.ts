// Conformance, the engine as a whole: concurrent publishers, a closed engine, and invalid arguments,
// which every engine refuses with the same errors and messages (src/pubsub/contract.ts).
import assert from "node:assert/strict";
import { contractMessage } from "../../pubsub/contract.ts";
import { PubSubClosedError, PubSubError, StreamNotFoundError } from "../../pubsub/errors.ts";
import type { Handler, HistoryQuery } from "../../pubsub/types.ts";
import { range, rejectsWith, type Suite } from "./support.ts";

export function lifecycleTests({ it }: Suite): void {
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

  it("invalid arguments are refused with the contract's errors and messages", async ({ ps, p, ensure, stream }) => {
    await ensure({ subjects: [`${p}.>`] });
    const withMessage = (message: string) => (e: Error) => assert.equal(e.message, message);
    const bad = <T>(v: unknown) => v as T;
    await rejectsWith(ps.publish(`${p}.a`, bad<string>(42)), TypeError, withMessage(contractMessage.data));
    await rejectsWith(ps.publish(`${p}.a`, "x", { msgId: "" }), TypeError, withMessage(contractMessage.msgId));
    await rejectsWith(
      ps.publish(`${p}.a`, "x", { expectLastSubjectSeq: -1 }),
      TypeError,
      withMessage(contractMessage.nonNegativeInteger("expectLastSubjectSeq", -1)),
    );
    await rejectsWith(
      ps.publish(`${p}.core`, "x", { headers: bad<Record<string, string>>("X-Kind: a") }),
      TypeError,
      withMessage(contractMessage.headers),
    );
    await rejectsWith(
      ps.publish(`${p}.a`, "x", { headers: { "a:b": "x" } }),
      PubSubError,
      withMessage(contractMessage.headerName("a:b")),
    );
    await rejectsWith(
      ps.publish(`${p}.a`, "x", { headers: { "X-Line": "a\r\nb" } }),
      PubSubError,
      withMessage(contractMessage.headerValue("X-Line")),
    );
    assert.throws(() => ps.subscribe(`${p}.a`, bad<Handler>("not a function")), {
      name: "TypeError",
      message: contractMessage.handler,
    });
    assert.throws(() => ps.subscribe(`${p}.a`, () => {}, { fromSeq: 1.5 }), {
      name: "TypeError",
      message: contractMessage.nonNegativeInteger("fromSeq", 1.5),
    });
    await rejectsWith(
      ps.history(`${p}.a`, bad<HistoryQuery>({})),
      TypeError,
      withMessage(contractMessage.historyQuery),
    );
    await rejectsWith(
      ps.history(`${p}.a`, { last: -1 }),
      TypeError,
      withMessage(contractMessage.nonNegativeInteger("last", -1)),
    );
    await rejectsWith(
      ps.history(`${p}.a`, bad<HistoryQuery>({ afterSeq: 0 })),
      TypeError,
      withMessage(contractMessage.nonNegativeInteger("limit", undefined)),
    );
    // A name no stream can have is not found, on every engine, without asking any server.
    await rejectsWith(ps.info(`${stream()}.x`), StreamNotFoundError);
    // Nothing of the refused publishes was stored.
    assert.equal((await ps.info(stream())).messages, 0);
  });
}
