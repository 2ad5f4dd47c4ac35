// The chat on NATS JetStream, seen and fed by a client that is not ours: plain @nats-io/transport-node
// (and @nats-io/jetstream for acked publishes), no via-ts engine. It reads a tab's message on
// chat.room.Go, the subject the original chat documents, and posts messages that tabs show; what it
// sends that is not a chat message is skipped and the room goes on. This is the runnable example of
// docs/MESSAGES.md: keep the two in step.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { type Chat, createChat, ensureChatStream } from "../../apps/chat/app.tsx";
import { ChatTab } from "../../harness/chat-client.ts";
import { type NatsServer, natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { Browser } from "../../harness/sse-client.ts";
import { openPubSub, type PubSub } from "../../src/index.ts";

const WAIT_MS = 10_000;
const ROOMS = ["Go", "C++ Café"];

/** A message in the documented format (docs/MESSAGES.md), as an outside service writes it. */
function chatMessage(text: string, user = { name: "Weather Bot", emoji: "🌦️" }) {
  return {
    v: 1,
    id: randomBytes(16).toString("base64url"), // unique: also the Nats-Msg-Id
    user,
    from: "service:weather", // not a browser's identity id, so no tab shows it as its own
    text,
    time: Date.now(),
  };
}

/** The first message on `subject` that `pred` accepts (subscribed before `trigger` runs). */
async function firstOn(
  nc: NatsConnection,
  subject: string,
  pred: (m: Msg) => boolean,
  trigger: () => Promise<unknown>,
): Promise<Msg> {
  let resolve!: (m: Msg) => void;
  const got = new Promise<Msg>((r) => {
    resolve = r;
  });
  const sub = nc.subscribe(subject, {
    callback: (err, m) => {
      if (!err && pred(m)) resolve(m);
    },
  });
  await nc.flush(); // the server knows the subscription before anything is published
  let timer: NodeJS.Timeout | undefined;
  try {
    await trigger();
    return await Promise.race([
      got,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`nothing on ${subject} within ${WAIT_MS} ms`)), WAIT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
}

const textOf = (m: Msg): string | undefined => {
  try {
    return (m.json() as { text?: string }).text;
  } catch {
    return undefined;
  }
};

const missing = natsServerMissing();
if (missing) {
  describe("chat: an outside NATS client", { skip: missing }, () => {});
} else {
  describe("chat: an outside NATS client", () => {
    let nats: NatsServer;
    let pubsub: PubSub;
    let chat: Chat;
    let url: string;
    let nc: NatsConnection;
    const tabs: ChatTab[] = [];
    const open = async (room: string) => {
      const tab = await ChatTab.open(url, room);
      tabs.push(tab);
      return tab;
    };

    before(async () => {
      nats = await startNatsServer();
      nc = await connect({ servers: nats.url, name: "not-via-ts" });
      pubsub = await openPubSub({ natsUrl: nats.url });
      // What the chat stored before readable subjects: Go's messages on chat.room.R28.
      await ensureChatStream(pubsub);
      const old = chatMessage("said before the upgrade", { name: "Old Owl", emoji: "🦉" });
      await jetstream(nc).publish("chat.room.R28", JSON.stringify(old), { msgID: old.id });
      chat = await createChat({ pubsub, rooms: ROOMS, app: { clientLimits: false } });
      ({ url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false }));
    });

    after(async () => {
      for (const tab of tabs) tab.close();
      await chat?.close();
      await pubsub?.close();
      await nc?.close();
      await nats?.stop();
    });

    test("a tab's message reaches a plain NATS subscriber on chat.room.Go, in the documented format", async () => {
      const tab = await open("Go");
      const name = /placeholder="([^"]+) says\.\.\."/.exec(tab.client.html)![1]!;
      const msg = await firstOn(
        nc,
        "chat.room.Go",
        (m) => textOf(m) === "Hello from a browser tab",
        async () => assert.equal((await tab.send("Hello from a browser tab")).status, 204),
      );
      assert.equal(msg.subject, "chat.room.Go");
      const body = msg.json() as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ["from", "id", "text", "time", "user", "v"]);
      assert.equal(body.v, 1);
      // 24 bytes in base64url: the time it was made, random bytes and a tag for the browser session.
      assert.match(body.id as string, /^[A-Za-z0-9_-]{32}$/);
      assert.deepEqual(Object.keys(body.user as object).sort(), ["emoji", "name"]);
      assert.equal((body.user as { name: string }).name, name);
      assert.equal(typeof body.from, "string");
      assert.ok(Math.abs((body.time as number) - Date.now()) < 60_000);
      // The chat publishes with its message id as the JetStream msg id.
      assert.equal(msg.headers?.get("Nats-Msg-Id"), body.id);
    });

    test("a JSON message published to chat.room.Go with a Nats-Msg-Id shows in a tab, once", async () => {
      const tab = await open("Go");
      const js = jetstream(nc);
      const post = chatMessage("Sunny, 24 °C");
      const ack = await js.publish("chat.room.Go", JSON.stringify(post), { msgID: post.id });
      assert.equal(ack.stream, "CHAT");
      assert.equal(ack.duplicate, false);
      // A retry with the same msg id within the 2-minute window is not stored again.
      const retry = await js.publish("chat.room.Go", JSON.stringify(post), { msgID: post.id });
      assert.deepEqual([retry.seq, retry.duplicate], [ack.seq, true]);
      await tab.waitUntil((m) => m.some((x) => x.id === post.id), WAIT_MS, "the posted message");
      const shown = tab.messages.filter((x) => x.id === post.id);
      assert.deepEqual(
        shown.map((x) => [x.author, x.text, x.seq]),
        [["Weather Bot", "Sunny, 24 °C", ack.seq]],
      );
      // And a page loaded now has it in its history.
      const page = (await new Browser(url).load("/room/Go")).html;
      assert.ok(page.includes(`id="m-${post.id}"`));
    });

    test("what is not a chat message is skipped, and the room goes on", async () => {
      const tab = await open("Go");
      const js = jetstream(nc);
      const good = chatMessage("still here");
      const bad: Array<[string, string | Uint8Array]> = [
        ["not JSON", "hello"],
        ["not an object", JSON.stringify("hello")],
        ["another version", JSON.stringify({ ...chatMessage("v2"), v: 2 })],
        ["no user", JSON.stringify({ ...chatMessage("no user"), user: undefined })],
        ["an emoji over 16", JSON.stringify(chatMessage("long emoji", { name: "Bot", emoji: "🦀".repeat(9) }))],
        ["a name over 64", JSON.stringify(chatMessage("long name", { name: "n".repeat(65), emoji: "🤖" }))],
        ["an empty id", JSON.stringify({ ...chatMessage("empty id"), id: "" })],
        ["text over 2,000", JSON.stringify(chatMessage("x".repeat(2001)))],
        ["time a string", JSON.stringify({ ...chatMessage("string time"), time: "now" })],
        ["not UTF-8", new Uint8Array([0xff, 0xfe, 0x7b])],
      ];
      for (const [what, data] of bad) await js.publish("chat.room.Go", data, { msgID: `bad ${what}` });
      await js.publish("chat.room.Go", JSON.stringify(good), { msgID: good.id });
      await tab.waitUntil((m) => m.some((x) => x.id === good.id), WAIT_MS, "the good message after the bad ones");
      const texts = tab.messages.map((x) => x.text);
      for (const t of ["v2", "no user", "long emoji", "long name", "empty id", "string time", "x".repeat(2001)]) {
        assert.ok(!texts.includes(t), `skipped: ${t.slice(0, 20)}`);
      }
      // A page load renders the room's history with the bad messages in it, and sending still works.
      const page = await new Browser(url).load("/room/Go");
      assert.ok(page.html.includes(`id="m-${good.id}"`));
      assert.equal((await tab.send("after the bad ones")).status, 204);
      await tab.waitUntil(
        (m) => m.some((x) => x.text === "after the bad ones" && x.seq !== undefined),
        WAIT_MS,
        "a message sent after the bad ones",
      );
    });

    test("a room whose name is not a plain token lives on its escaped subject, both ways", async () => {
      const subject = "chat.room.C~2B~2B~20Caf~C3~A9"; // "C++ Café" (docs/MESSAGES.md)
      const tab = await open("C++ Café");
      const msg = await firstOn(
        nc,
        subject,
        (m) => textOf(m) === "templates are fine",
        async () => assert.equal((await tab.send("templates are fine")).status, 204),
      );
      assert.equal(msg.subject, subject);
      const post = chatMessage("so is the coffee");
      await jetstream(nc).publish(subject, JSON.stringify(post), { msgID: post.id });
      await tab.waitUntil((m) => m.some((x) => x.id === post.id), WAIT_MS, "the posted message");
    });

    test("history stored under the old subject (chat.room.R28) shows in Go after the upgrade", async () => {
      const tab = await open("Go");
      const old = tab.messages.filter((x) => x.text === "said before the upgrade");
      assert.deepEqual(
        old.map((x) => x.author),
        ["Old Owl"],
      );
      // It is the room's first message: copied before anything else was said.
      assert.equal(tab.messages[0]?.text, "said before the upgrade");
    });
  });
}
