// A short chat-level crash drill (the full one is `npm run drill:crash`): the real chat CLI is killed with
// SIGKILL twice while 10 writer tabs send numbered messages, and started again on the same port and data.
// Every message a writer saw stored must then be in the room exactly once and in order, on a fresh tab
// after "Load older" to the start, in the stream read through the pub/sub API, and on the observer tabs
// that reconnected after every restart; and every send the chat answered must be stored once or shown
// "not sent" in its writer's tab. On NATS both kills come between Send's answer (204) and the stream's ack
// (nats-server paused; then resumed, or killed as well so the dead chat's publishes are lost): the tabs keep
// those sends and the restarted chat publishes them again. The drill kills its processes and removes its
// temp dirs in any case.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { type ChatEngine, runCrashDrill, summary } from "../../scripts/drills/crash/drill.ts";
import { assertIntact, testOnEachEngine, withReport } from "./drill-report.ts";

async function drill(engine: ChatEngine): Promise<void> {
  const { r, report } = await withReport(
    (log) => runCrashDrill({ engine, kills: 2, writers: 10, observers: 2, timeLimitMs: 45_000, log }),
    summary,
  );
  assert.equal(r.kills.length, 2, report);
  assert.ok(r.acked >= 60, `too few acks to mean anything\n${report}`);
  assertIntact([r.tab, r.stream, ...r.observers], report);
  assert.ok(r.tabMatchesStream, `the fresh tab shows exactly what the stream holds\n${report}`);
  assert.ok(!r.historyCapped, report);
  assert.deepEqual(r.acceptedMissing, [], `answered sends missing from their writers' tabs\n${report}`);
  assert.equal(r.acceptedNotStored, 0, `answered sends never stored (and not shown "not sent")\n${report}`);
  if (engine === "nats") {
    assert.ok(r.answeredUnstored >= 2, `the kills did not come between answers and acks\n${report}`);
    assert.deepEqual(
      r.kills.map((k) => k.nats),
      ["resumed", "killed"],
      report,
    );
  }
  assert.ok(r.pass, report);
}

describe("chat crash drill (kill -9 of the chat server under a storm of writers)", () => {
  testOnEachEngine(
    {
      embedded:
        "embedded: after kill -9 and restarts of the chat, every acknowledged message is shown once and in order",
      nats: "nats: a chat killed between answering sends and their acks loses none of them (stored once after the restart), and every acknowledged message is shown once and in order",
    },
    50_000,
    drill,
  );
});
