// The short version of `npm run drill:nats-bounce` (scripts/drills/nats-bounce.ts): the chat CLI on a real
// nats-server, drill traffic from 10 writer tabs and 2 observer tabs, and nats-server restarted under it on
// the same port and store. Every observer must receive again, the messages sent during the outage must be
// stored once it is back, and at the end every observer and a fresh tab (whole history paged in) must show
// every acknowledged message once and in each writer's order. runNatsBounce stops every process it started.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { natsServerMissing } from "../../harness/nats-server.ts";
import { type BounceOptions, runNatsBounce } from "../../scripts/drills/nats/bounce.ts";
import { everyObserverAt } from "../../scripts/drills/nats/recovery.ts";
import { bounceTable, finalTable } from "../../scripts/drills/nats/report.ts";
import { assertFinalIntact, assertRecovered, withReport } from "./drill-report.ts";

async function drill(opts: Pick<BounceOptions, "bounces" | "kill">): Promise<void> {
  const { r: out, report } = await withReport(
    (log) =>
      runNatsBounce({ ...opts, outageMs: 1_500, writers: 10, observers: 2, upMs: 1_000, recoveryLimitMs: 20_000, log }),
    (o) => `${bounceTable(o.records)}\n${finalTable(o.final)}\n${o.error ?? ""}`,
  );
  assert.equal(out.error, undefined, report);
  assert.equal(out.records.length, opts.bounces, report);
  for (const r of out.records) {
    assertRecovered(r, report);
    assert.ok(r.sentWhileDown > 0, `nothing was sent during the outage\n${report}`);
    // A generous bound (the machine is shared): measured 0.1-0.5 s from nats-server back to every observer.
    const all = everyObserverAt(r)!;
    assert.ok(
      all - r.backAt! < 15_000,
      `observers took ${Math.round(all - r.backAt!)} ms after the restart\n${report}`,
    );
  }
  assertFinalIntact(out.final, report);
  assert.ok(out.pass, report);
}

describe("nats-bounce drill (the chat while its nats-server restarts)", () => {
  const missing = natsServerMissing();
  test(
    "chat tabs get every acknowledged message once, in order, after nats-server restarts",
    { timeout: 50_000, skip: missing },
    () => drill({ bounces: 2, kill: false }),
  );
  test(
    "messages sent while nats-server was killed with SIGKILL are stored once it is back, in order",
    { timeout: 50_000, skip: missing },
    () => drill({ bounces: 1, kill: true }),
  );
});
