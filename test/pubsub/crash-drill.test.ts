// A short crash drill on both engines (the full one is `npm run drill:engine-crash`): writers publish numbered
// messages with msg ids while the process holding the data is killed with SIGKILL and restarted on the same
// storage; afterwards the stream, read back by a fresh engine, must hold every acknowledged message exactly
// once, at the seq of its ack, in each writer's order. Real processes throughout: the embedded engine in a
// child process, a real nats-server. runDrill kills its children and removes its temp dirs in any case.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { type DrillEngine, runDrill, summary } from "../../scripts/drills/engine-crash/drill.ts";
import { testOnEachEngine, withReport } from "../drills/drill-report.ts";

const KILLS = 3;
const WRITERS = 4;

async function drill(engine: DrillEngine): Promise<void> {
  const { r, report } = await withReport(
    (log) =>
      runDrill({
        engine,
        kills: KILLS,
        writers: WRITERS,
        minAcksBetweenKills: 20,
        maxUpMs: 400,
        maxDownMs: 150,
        tailMs: 300,
        timeLimitMs: 40_000,
        log,
      }),
    summary,
  );
  assert.equal(r.kills.length, KILLS, report);
  assert.ok(r.acked >= KILLS * 20, `too few acks to mean anything\n${report}`);
  assert.deepEqual(
    { lost: r.lost, duplicated: r.duplicated, reordered: r.reordered, wrongSeq: r.wrongSeq, unexpected: r.unexpected },
    { lost: 0, duplicated: 0, reordered: 0, wrongSeq: 0, unexpected: 0 },
    report,
  );
  assert.ok(r.pass, report);
}

describe("crash drill (kill -9 under write load)", () => {
  testOnEachEngine(
    {
      embedded: "embedded engine loses, duplicates and reorders no acknowledged message across kill -9",
      nats: "nats engine loses, duplicates and reorders no acknowledged message across kill -9 of nats-server",
    },
    45_000,
    drill,
  );
});
