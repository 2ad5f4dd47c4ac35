// A short reconnects drill (the full one, 100 drops, is `npm run drill:reconnects`): during chat traffic
// one tab's stream is dropped from the client side again and again and reopened like the runtime does
// (same tab id, `last`). Before every drop and at the end it must show exactly what an observer that
// never dropped shows, and every message a writer saw acknowledged, once and in order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runReconnectsDrill, summary } from "../../scripts/drills/reconnects/drill.ts";

test("a tab dropped and reconnected 40 times during traffic shows every message once and in order, like a tab that never dropped", {
  timeout: 50_000,
}, async () => {
  const lines: string[] = [];
  const r = await runReconnectsDrill({
    drops: 40,
    writers: 5,
    intervalMs: 200,
    minUpMs: 30,
    maxUpMs: 200,
    maxGapMs: 200,
    timeLimitMs: 45_000,
    log: (l) => lines.push(l),
  });
  const report = `${lines.join("\n")}\n${summary(r)}`;
  assert.equal(r.connects, 41, report);
  assert.ok(r.missedWhileAway > 5, `gaps must have missed messages for the reconnects to mean anything\n${report}`);
  assert.deepEqual(
    { missing: r.missing, extra: r.extra, duplicated: r.duplicated, reordered: r.reordered, badCycles: r.badCycles },
    { missing: [], extra: [], duplicated: [], reordered: [], badCycles: [] },
    report,
  );
  assert.ok(r.sameAsObserver, report);
  assert.deepEqual({ lost: r.acks.lost, duplicated: r.acks.duplicated }, { lost: [], duplicated: [] }, report);
  assert.ok(r.acks.acked > 50, report);
  assert.ok(r.pass, report);
});
