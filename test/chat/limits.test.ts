// The chat's send limits through a real server: per browser session, and per room and client
// address, so fresh cookies from one machine cannot flush a room's history. Refusals are 429s with
// Retry-After and a message the runtime shows; the draft stays typed.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type ChatOptions, createChat } from "../../apps/chat/app.tsx";
import { ChatTab } from "../../harness/chat-client.ts";
import { openPubSub } from "../../src/index.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

async function start(opts: Partial<ChatOptions> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "via-chat-limits-"));
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, ...opts });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(async () => {
    await chat.close();
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  return url;
}

test("one address cannot flush a room with fresh sessions: past the per-room limit sends get a 429, other rooms still take them", async () => {
  const url = await start({ sendRate: 10, roomSendLimit: { ratePerSec: 0.01, burst: 6 } });
  const statuses: number[] = [];
  let refusal = { body: "", retryAfter: "" };
  // Three browsers (three sessions), three messages each, all from this machine.
  for (let i = 0; i < 3; i++) {
    const tab = await ChatTab.open(url, "Go");
    for (let j = 0; j < 3; j++) {
      const res = await tab.send(`flood ${i}.${j}`);
      statuses.push(res.status);
      if (res.status === 429) refusal = { body: res.body, retryAfter: String(res.headers["retry-after"]) };
    }
    tab.close();
  }
  assert.deepEqual(statuses, [204, 204, 204, 204, 204, 204, 429, 429, 429]);
  assert.match(
    refusal.body,
    /This room gets too many messages from your network\. Try again in \d+ s; your message is kept\./,
  );
  assert.ok(Number(refusal.retryAfter) >= 1, "Retry-After says when");
  const elsewhere = await ChatTab.open(url, "Rust");
  assert.equal((await elsewhere.send("another room")).status, 204);
  elsewhere.close();
});

test("a session sending too fast gets a 429 and the refused message is not sent", async () => {
  const url = await start();
  const tab = await ChatTab.open(url, "Go");
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await tab.send(`burst ${i}`)).status);
  // The chat's default: 5 in a burst, then 1 per second per session.
  assert.deepEqual(statuses, [204, 204, 204, 204, 204, 429]);
  const refused = await tab.send("still too fast");
  assert.equal(refused.status, 429);
  assert.match(refused.body, /You are sending too fast\. Try again in \d+ s; your message is kept\./);
  await tab.waitUntil((m) => m.filter((x) => x.text.startsWith("burst ")).length === 5, 5_000, "five stored");
  assert.ok(!tab.messages.some((m) => m.text === "still too fast"), "the refused message was not sent");
  tab.close();
});
