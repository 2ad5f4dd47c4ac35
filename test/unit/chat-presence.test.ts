// Presence of the chat example, on the real embedded engine (SQLite in a temp dir). Two Presence
// objects on one engine stand for two instances: each ignores its own snapshots and keeps the other's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Member, Presence, type Roster, SHOWN_MEMBERS } from "../../apps/chat/presence.tsx";
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

async function until(pred: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test("presence coalesces a burst of 1,000 joins into a few roster updates that name at most 50 people", async () => {
  const p = new Presence(app, pubsub, log);
  const updates: Roster[] = [];
  const unwatch = p.watch("burst", (r) => updates.push(r));
  const leaves = Array.from({ length: 1000 }, (_, i) => p.join("burst", `tab-${i}`, person(i)));
  await until(() => updates.at(-1)?.count === 1000, "a roster of 1,000");
  assert.ok(updates.length <= 3, `expected a few coalesced updates, got ${updates.length}`);
  const last = updates.at(-1)!;
  assert.equal(last.members.length, SHOWN_MEMBERS);
  assert.equal(last.members[0]!.name, "Person 0000");
  for (const leave of leaves) leave();
  await until(() => updates.at(-1)?.count === 0, "an empty roster");
  unwatch();
  await p.close();
});

test("presence counts a person once across instances and sees the other instance's room of 1,000", async () => {
  const a = new Presence(app, pubsub, log);
  const b = new Presence(app, pubsub, log);
  a.join("r", "a1", person(1));
  a.join("r", "a2", person(2));
  b.join("r", "b1", person(2)); // the same person in a tab on the other instance
  b.join("r", "b2", person(3));
  await until(() => a.roster("r").count === 3 && b.roster("r").count === 3, "3 people on both");
  assert.deepEqual(
    a.roster("r").members.map((m) => m.id),
    ["id-1", "id-2", "id-3"],
  );
  for (let i = 10; i < 1010; i++) a.join("big", `t${i}`, person(i));
  await until(() => b.roster("big").count === 1000, "the other instance's 1,000");
  assert.equal(b.roster("big").members.length, SHOWN_MEMBERS);
  // An instance that closes takes its people with it at once.
  await a.close();
  await until(() => b.roster("big").count === 0 && b.roster("r").count === 2, "a's people gone");
  await b.close();
});
