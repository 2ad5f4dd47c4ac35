// A send survives the instance that answered it: the browser keeps it (the `outbox` signal) until the
// stream confirms it stored, and a re-bootstrapped tab hands it to whichever instance it reconnects to,
// which publishes it again with the same message id: stored once, or shown "not sent" with Retry, never
// silently gone. On NATS the chat answers Send before the stream's ack, so the test pauses nats-server to
// hold sends in that window, kills the chat there, and either resumes nats-server (the publish lands, its
// ack is lost) or kills it too (the publish is lost). Protocol-level tabs reconnect like the runtime,
// which fires the view's `data-on-reconnect` action; a real Chromium does the same on its own.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { createChat } from "../../apps/chat/app.tsx";
import { newMessageId } from "../../apps/chat/outbox.ts";
import { roomSubject } from "../../apps/chat/rooms.ts";
import { browserOrSkip, closeBrowser, openPage } from "../../harness/browser.ts";
import { ChatTab } from "../../harness/chat-client.ts";
import { type ChatProcess, startChatProcess } from "../../harness/chat-process.ts";
import { type NatsServer, natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import { openPubSub } from "../../src/index.ts";
import type { PubSub } from "../../src/pubsub/types.ts";

after(closeBrowser);

type Outbox = Array<{ id: string; text: string }>;
const outboxOf = (tab: ChatTab) => (tab.client.signals.outbox ?? []) as Outbox;
const dec = new TextDecoder();

/** How many stored messages of a room have this text (the whole room, through the pub/sub API). */
async function storedCount(pubsub: PubSub, room: string, text: string): Promise<number> {
  let n = 0;
  for (let after = 0; ; ) {
    const page = await pubsub.history(roomSubject(room), { afterSeq: after, limit: 1000 });
    if (page.length === 0) return n;
    for (const m of page) if ((JSON.parse(dec.decode(m.data)) as { text: string }).text === text) n++;
    after = page.at(-1)!.seq;
  }
}

/** The chat CLI on a nats-server of its own; everything is stopped after the test. */
async function natsChat(
  t: TestContext,
): Promise<{ nats: NatsServer; chat: () => ChatProcess; restart(): Promise<void> }> {
  const nats = await startNatsServer();
  const procs: ChatProcess[] = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill9()));
    await nats.stop();
  });
  const opts = { nats: nats.url, sendRate: 10, clientLimits: false };
  procs.push(await startChatProcess(opts));
  return {
    nats,
    chat: () => procs.at(-1)!,
    async restart() {
      procs.push(await startChatProcess({ ...opts, port: procs.at(-1)!.port }));
    },
  };
}

const missing = natsServerMissing();

for (const fate of ["killed", "resumed"] as const) {
  const what =
    fate === "killed"
      ? "never stored (nats-server died with the publish)"
      : "stored, but its ack lost (nats-server read the publish after the chat died)";
  test(`a send answered just before its chat instance died, ${what}, ends stored once and shown sent after the tab reconnects`, {
    skip: missing,
    timeout: 60_000,
  }, async (t) => {
    const h = await natsChat(t);
    const tab = await ChatTab.open(h.chat().url, "Go");
    t.after(() => tab.close());
    assert.equal((await tab.send("before")).status, 204);
    await tab.waitUntil(
      (m) => m.some((x) => x.text === "before" && x.state === "sent"),
      5_000,
      "the first send stored",
    );

    // nats-server stops answering: the chat answers Send at once, the stream cannot store it.
    await h.nats.pause();
    const text = "typed just before the crash";
    assert.equal((await tab.send(text)).status, 204);
    // The browser holds it before it is told the send was taken: in its outbox, shown "sending".
    assert.deepEqual(
      outboxOf(tab).map((e) => e.text),
      [text],
    );
    assert.equal(tab.messages.find((m) => m.text === text)?.state, "sending");

    await h.chat().kill9();
    if (fate === "killed") {
      await h.nats.kill9();
      await h.nats.start();
    } else {
      h.nats.resume();
    }
    await h.restart();
    // Reconnecting re-bootstraps the tab on the new process; the runtime then fires the resend action.
    await tab.connect();
    const resent = await tab.reconnectAction;
    assert.equal(resent?.status, 204, "the view's data-on-reconnect action was fired and taken");
    await tab.waitUntil((m) => m.some((x) => x.text === text && x.state === "sent"), 15_000, "the send shown stored");
    await tab.waitUntil(() => outboxOf(tab).length === 0, 5_000, "an empty outbox");

    const reader = await openPubSub({ natsUrl: h.nats.url });
    try {
      await until("the message is in the stream", async () => (await storedCount(reader, "Go", text)) > 0, 10_000);
      assert.equal(await storedCount(reader, "Go", text), 1, "stored exactly once");
      assert.equal(await storedCount(reader, "Go", "before"), 1);
    } finally {
      await reader.close();
    }
    assert.equal(tab.messages.filter((m) => m.text === text).length, 1, "shown once");
  });
}

test("the outbox is published again only for this session's own fresh sends: another session's id is ignored, a stale one is looked up in the room (shown sent if there, 'not sent' if not)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "via-chat-outbox-"));
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, app: { clientLimits: false } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  t.after(async () => {
    await chat.close();
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  const alice = await ChatTab.open(url, "Go");
  const mallory = await ChatTab.open(url, "Go");
  t.after(() => {
    alice.close();
    mallory.close();
  });
  assert.equal((await alice.send("alice's message")).status, 204);
  await alice.waitUntil(
    (m) => m.some((x) => x.text === "alice's message" && x.state === "sent"),
    5_000,
    "alice's message stored",
  );
  const aliceId = alice.messages.find((m) => m.text === "alice's message")!.id;

  // Mallory's session id is the cookie's first part (its own: a browser knows its cookie).
  const sid = mallory.client.browser.cookie.split("=")[1]!.split(".")[0]!;
  const tenMinutesAgo = Date.now() - 10 * 60_000;
  const staleStored = newMessageId(sid, tenMinutesAgo);
  const staleLost = newMessageId(sid, tenMinutesAgo);
  // An old send of Mallory's that the room has (published then, with its id).
  await pubsub.publish(
    roomSubject("Go"),
    JSON.stringify({
      v: 1,
      id: staleStored,
      user: { name: "Old Me", emoji: "🦊" },
      from: "someone",
      text: "old and stored",
      time: tenMinutesAgo,
    }),
    { msgId: staleStored },
  );
  const resend = /data-on-reconnect="([^"]*)"/.exec(mallory.client.html)![1]!;
  const action = (JSON.parse(resend.replaceAll("&quot;", '"')) as { action: string }).action;
  const res = await mallory.client.action(action, {
    ...mallory.client.signals,
    outbox: [
      { id: aliceId, text: "forged over alice's" },
      { id: staleStored, text: "old and stored" },
      { id: staleLost, text: "old and lost" },
    ],
  });
  assert.equal(res.status, 204);
  await mallory.waitUntil(
    (m) => m.some((x) => x.text === "old and lost" && x.state === "failed"),
    5_000,
    "the stale unknown send shown not sent",
  );
  await mallory.waitUntil(
    (m) => m.some((x) => x.id === staleStored && x.state === "sent"),
    5_000,
    "the stale stored send shown sent",
  );
  // A later send of Mallory's is stored after anything the resend published (one tab's actions run in order).
  assert.equal((await mallory.send("mallory's next")).status, 204);
  await mallory.waitUntil(
    (m) => m.some((x) => x.text === "mallory's next" && x.state === "sent"),
    5_000,
    "mallory's next stored",
  );
  assert.equal(await storedCount(pubsub, "Go", "forged over alice's"), 0, "another session's id is not published");
  assert.equal(await storedCount(pubsub, "Go", "alice's message"), 1);
  assert.equal(await storedCount(pubsub, "Go", "old and stored"), 1, "a stale send the room has is not stored again");
  assert.equal(await storedCount(pubsub, "Go", "old and lost"), 0, "a stale unknown send is not published blindly");
  assert.ok(!mallory.messages.some((m) => m.text === "forged over alice's"));
  assert.deepEqual(
    outboxOf(mallory).map((e) => e.id),
    [staleLost],
    "the outbox keeps what is not confirmed",
  );
});

test("in a real browser, a message sent just before its chat instance died is stored once and shown sent after the page reconnects by itself", {
  skip: missing,
  timeout: 90_000,
}, async (t) => {
  const browser = await browserOrSkip(t);
  if (!browser) return;
  const h = await natsChat(t);
  const p = await openPage(browser, null, {
    allowConsole: [/ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|ERR_EMPTY_RESPONSE|_via\//],
  });
  t.after(() => p.close());
  const page = p.page;
  page.setDefaultTimeout(10_000);
  await page.goto(`${h.chat().url}/room/Go`);
  await page.waitForSelector("html[data-connection=online]");
  const text = "typed by a person just before the crash";
  await h.nats.pause();
  await page.fill("#statement", text);
  await page.press("#statement", "Enter");
  // Taken: the input is cleared and the message is shown "sending".
  await page.waitForFunction(() => document.querySelector<HTMLInputElement>("#statement")?.value === "");
  await page.waitForSelector("#messages > li.chat-message.sending");
  await h.chat().kill9();
  await h.nats.kill9();
  await h.nats.start();
  await h.restart();
  // The runtime reconnects by itself (backoff up to 10 s), then fires the resend action.
  await page.waitForFunction(
    (expected) =>
      [...document.querySelectorAll("#messages > li.chat-message")].some(
        (li) =>
          li.querySelector(".text")?.textContent === expected &&
          !li.classList.contains("sending") &&
          !li.classList.contains("failed"),
      ),
    text,
    { timeout: 40_000 },
  );
  const reader = await openPubSub({ natsUrl: h.nats.url });
  try {
    await until("the message is in the stream", async () => (await storedCount(reader, "Go", text)) > 0, 10_000);
    assert.equal(await storedCount(reader, "Go", text), 1, "stored exactly once");
  } finally {
    await reader.close();
  }
  const shown = await page.$$eval("#messages > li.chat-message .text", (els) => els.map((el) => el.textContent));
  assert.equal(shown.filter((x) => x === text).length, 1, "shown once");
  p.assertClean();
});
