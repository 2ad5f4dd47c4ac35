// The chat's identity through a real server: a page load (or a thousand) stores nothing; the first
// post or rename stores this browser's identity, under a hash of its session, for later pages.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createChat } from "../../apps/chat/app.tsx";
import { IDENTITY_STREAM } from "../../apps/chat/identity.ts";
import { openPubSub } from "../../src/index.ts";
import { ChatTab } from "../support/chat-client.ts";
import { Browser } from "../support/sse-client.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

test("chat identity: page loads store nothing; the first post stores the identity a later page shows", async () => {
  const dir = await mkdtemp(join(tmpdir(), "via-identity-"));
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, app: { contextTtlMs: 1_000 } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(async () => {
    await chat.close();
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  const stored = async () => (await pubsub.info(IDENTITY_STREAM)).messages;
  for (let i = 0; i < 30; i++) await new Browser(url).load("/room/Go");
  assert.equal(await stored(), 0, "30 page loads of new browsers wrote no identity");

  const browser = new Browser(url);
  const tab = await ChatTab.open(url, "Go", browser);
  const name = /placeholder="([^"]+) says\.\.\."/.exec(tab.client.html)![1]!;
  assert.equal((await tab.send("hello")).status, 204);
  await tab.waitUntil((m) => m.some((x) => x.text === "hello" && x.seq !== undefined), 5_000, "the stored message");
  while ((await stored()) === 0) await new Promise((r) => setTimeout(r, 10));
  tab.close();
  // A later page of the same browser, after its context is gone, shows the stored name.
  while (chat.app.tabCount > 0) await new Promise((r) => setTimeout(r, 20));
  const again = await browser.load("/room/Rust");
  assert.match(again.html, new RegExp(`placeholder="${name} says\\.\\.\\."`));
});
