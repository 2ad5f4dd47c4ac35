// Presence of the chat example, on the real embedded engine (SQLite in a temp dir). Two Presence
// objects on one engine stand for two instances: each ignores its own snapshots and keeps the other's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Member, Presence, type Roster, SHOWN_MEMBERS } from "../../apps/chat/presence.tsx";
import { until } from "../../harness/poll.ts";
import { type App, createApp, createLogger, openPubSub, type PubSub } from "../../src/index.ts";

let dir: string;
let pubsub: PubSub;
let app: App;
const log = createLogger("silent");

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "via-presence-"));
  pubsub = await openPubSub({ dataDir: dir });
  app = createApp({ pubsub, logger: log });
  await app.whenReady();
});
after(async () => {
  await app.close();
  await pubsub.close();
  rmSync(dir, { recursive: true, force: true });
});

const person = (i: number): Member => ({ id: `id-${i}`, name: `Person ${String(i).padStart(4, "0")}`, emoji: "🦊" });

/** The longest a room's changes are gathered before its roster is recomputed (a room of 20,000+ tabs). */
const MAX_INTERVAL_MS = 2_000;

test("presence coalesces a burst of 1,000 joins into a few roster updates that name at most 50 people", async (t) => {
  // Fake time: the burst's interval passes when the test says so, not on the machine's clock.
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const p = new Presence(app, pubsub, log);
  const updates: Roster[] = [];
  const unwatch = p.watch("burst", (r) => updates.push(r));
  const leaves = Array.from({ length: 1000 }, (_, i) => p.join("burst", `tab-${i}`, person(i)));
  assert.equal(updates.length, 0, "no update before the room's interval has passed");
  t.mock.timers.tick(MAX_INTERVAL_MS);
  assert.equal(updates.length, 1, "the 1,000 joins make one update");
  const last = updates.at(-1)!;
  assert.equal(last.count, 1000);
  assert.equal(last.members.length, SHOWN_MEMBERS);
  assert.equal(last.members[0]!.name, "Person 0000");
  for (const leave of leaves) leave();
  t.mock.timers.tick(MAX_INTERVAL_MS);
  assert.deepEqual(updates.at(-1), { count: 0, members: [] }, "the 1,000 leaves make one update, to an empty roster");
  assert.equal(updates.length, 2);
  unwatch();
  // Closing publishes through the engine, which runs on real time.
  t.mock.timers.reset();
  await p.close();
});

test("presence counts a person once across instances and sees the other instance's room of 1,000", async () => {
  const a = new Presence(app, pubsub, log);
  const b = new Presence(app, pubsub, log);
  a.join("r", "a1", person(1));
  a.join("r", "a2", person(2));
  b.join("r", "b1", person(2)); // the same person in a tab on the other instance
  b.join("r", "b2", person(3));
  await until("3 people on both", () => a.roster("r").count === 3 && b.roster("r").count === 3, 3_000);
  assert.deepEqual(
    a.roster("r").members.map((m) => m.id),
    ["id-1", "id-2", "id-3"],
  );
  for (let i = 10; i < 1010; i++) a.join("big", `t${i}`, person(i));
  await until("the other instance's 1,000", () => b.roster("big").count === 1000, 3_000);
  assert.equal(b.roster("big").members.length, SHOWN_MEMBERS);
  // An instance that closes takes its people with it at once.
  await a.close();
  await until("a's people gone", () => b.roster("big").count === 0 && b.roster("r").count === 2, 3_000);
  await b.close();
});
