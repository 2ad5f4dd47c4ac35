// The smoke version of `npm run fuzz`: 1,500 malformed requests (fixed seed) against the chat on the
// embedded engine; every one must get its expected 4xx (with a reason) or valid 2xx, and afterwards
// the server must be healthy, carry a chat message end to end, hold no more live tabs than the streams
// that attached legitimately and no more sessions than those tabs hold plus the pages that issued a
// fresh cookie, and Object.prototype must be as it was.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatReport, runFuzz } from "../../scripts/fuzz/run.ts";

const SEED = 20_260_127;

test("malformed requests get 4xx with a reason and the chat stays healthy", { timeout: 90_000 }, async () => {
  const report = await runFuzz({ seed: SEED, count: 1500 });
  assert.equal(report.count, 1500);
  assert.equal(report.after.serverListening, true);
  assert.equal(report.after.healthz, 200);
  assert.equal(report.after.roundTrip, "ok");
  assert.equal(report.findings.length, 0, formatReport(report));
  // Refused and forged requests allocate nothing: the live tabs are the legitimate ones.
  const { live, legit, forged } = report.after.tabs;
  assert.equal(forged, 0, `${forged} tabs were started by forged ids`);
  assert.ok(live <= legit, `${live} live tabs, ${legit} legitimate`);
  // Refused requests and cookies the server did not sign keep no session: what is kept is held by a
  // live tab, or was issued with a fresh cookie by a page load.
  const { sessions } = report.after;
  assert.ok(
    sessions.live <= sessions.legit + sessions.issued,
    `${sessions.live} sessions kept, ${sessions.legit} held by live tabs, ${sessions.issued} issued by pages`,
  );
  assert.deepEqual(report.after.prototypeKeys, [], "Object.prototype gained keys during the run");
  // Every category ran, the security ones (cookies, Host, forwarding headers, prototype keys) included.
  for (const category of [
    "page",
    "static",
    "stream",
    "action",
    "method",
    "raw",
    "session",
    "host",
    "forwarded",
    "proto",
  ])
    assert.ok(report.counts[category], `no ${category} cases ran`);
});
