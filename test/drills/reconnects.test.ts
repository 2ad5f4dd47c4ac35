// A short reconnects drill (the full one, 100 drops, is `npm run drill:reconnects`): during chat traffic
// one tab's stream is dropped from the client side again and again and reopened like the runtime does
// (same tab id, the view's hash and the list's newest position). After every reconnect it must catch up,
// and before every drop and at the end it must show exactly what an observer that never dropped shows
// (over the range both show), with no list reset, and every message a writer saw acknowledged, once and
// in order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runReconnectsDrill, summary } from "../../scripts/drills/reconnects/drill.ts";
import { withReport } from "./drill-report.ts";

test("a tab dropped and reconnected 40 times during traffic shows every message once and in order, like a tab that never dropped", {
  timeout: 50_000,
}, async () => {
  const { r, report } = await withReport(
    (log) =>
      runReconnectsDrill({
        drops: 40,
        writers: 5,
        intervalMs: 200,
        minUpMs: 30,
        maxUpMs: 200,
        maxGapMs: 200,
        timeLimitMs: 45_000,
        log,
      }),
    summary,
  );
  assert.equal(r.connects, 41, report);
  assert.ok(r.missedWhileAway > 5, `gaps must have missed messages for the reconnects to mean anything\n${report}`);
  assert.deepEqual(
    {
      missing: r.missing,
      extra: r.extra,
      duplicated: r.duplicated,
      reordered: r.reordered,
      badCycles: r.badCycles,
      holes: r.holes,
      resets: r.resets,
    },
    { missing: [], extra: [], duplicated: [], reordered: [], badCycles: [], holes: [], resets: 0 },
    report,
  );
  assert.ok(r.sameAsObserver, report);
  assert.ok(r.roomMessages > 50, `the lists must overlap on enough messages to mean anything\n${report}`);
  assert.deepEqual({ lost: r.acks.lost, duplicated: r.acks.duplicated }, { lost: [], duplicated: [] }, report);
  assert.ok(r.acks.acked > 50, report);
  assert.ok(r.pass, report);
});
