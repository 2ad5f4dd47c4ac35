// No silent holes in a room's list: messages the room evicted (past its history limit) before a tab got
// them show as a marker item where they were, then what the room still keeps; a gap the room can still
// fill is filled. Through the chat's real protocol (a protocol-level tab that applies patches like the
// runtime), on the embedded engine (a tab away while the room moved on) and on NATS (the chat's own feed
// fell behind while the room moved on; its NATS connection goes through a proxy the test cuts).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Chat, createChat } from "../../apps/chat/app.tsx";
import { roomSubject } from "../../apps/chat/rooms.ts";
import { ChatTab } from "../../harness/chat-client.ts";
import { natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import type { SseEvent } from "../../harness/sse-client.ts";
import { openPubSub } from "../../src/index.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import { startTcpProxy } from "../pubsub/tcp-proxy.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

/** A message as another instance or client of the room would store it. */
async function post(pubsub: PubSub, room: string, text: string): Promise<number> {
  const id = randomBytes(16).toString("base64url");
  const message = { v: 1, id, user: { name: "Calm Otter", emoji: "🦦" }, from: "test-writer", text, time: Date.now() };
  const ack = await pubsub.publish(roomSubject(room), JSON.stringify(message), { msgId: id });
  return ack!.seq;
}

const texts = (tab: ChatTab) => tab.messages.map((m) => m.text);
const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix} ${from + i}`);

/** The events of the tab's current stream, and where a marker and a given message arrived in them. */
function markerBefore(tab: ChatTab, text: string): { marker: string; markerAt: number; textAt: number } {
  const events: SseEvent[] = tab.client.stream?.events ?? [];
  const at = (pred: (e: SseEvent) => boolean) => events.findIndex(pred);
  const markerAt = at((e) => (e.data.elements ?? "").includes('class="chat-gap"'));
  const textAt = at((e) => (e.data.elements ?? "").includes(`<p class="text">${text}</p>`));
  const marker = markerAt < 0 ? "" : /<li class="chat-gap"[\s\S]*?<\/li>/.exec(events[markerAt]!.data.elements!)![0];
  return { marker, markerAt, textAt };
}

// The marker is JSX (escaped like every text), with the times as <time> elements the runtime localizes:
// "between" the list's last message and the next one when this process knows the first, else "before".
const TIME = '<time datetime="[^"<>]+" data-local-time="true">\\d\\d:\\d\\d</time>';
const MARKER = new RegExp(
  `^<li class="chat-gap" id="gap-\\d+" role="note">Some messages sent (?:between ${TIME} and ${TIME}|before ${TIME}) ` +
    "expired before this tab got them: this room keeps its last 20 messages\\.</li>$",
);

async function startChat(pubsub: PubSub, rooms = ["Go", "Rust"]): Promise<{ chat: Chat; url: string }> {
  const chat = await createChat({ pubsub, rooms, roomHistory: 20, app: { clientLimits: false } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(() => chat.close());
  return { chat, url };
}

/** The chat on the embedded engine (rooms keep 20), a tab in Go, and five messages it shows. */
async function embeddedTabWithFive(): Promise<{ pubsub: PubSub; tab: ChatTab }> {
  const dir = await mkdtemp(join(tmpdir(), "via-chat-gaps-"));
  const pubsub = await openPubSub({ dataDir: dir });
  cleanups.push(async () => {
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { url } = await startChat(pubsub);
  const tab = await ChatTab.open(url, "Go");
  cleanups.push(async () => tab.close());
  for (let i = 1; i <= 5; i++) await post(pubsub, "Go", `before ${i}`);
  await tab.waitUntil((m) => m.length === 5, 5_000, "5 messages");
  return { pubsub, tab };
}

/** The tab is away while `n` messages ("after 1" … "after n") come to Go, then back until it shows the newest. */
async function awayWhile(pubsub: PubSub, tab: ChatTab, n: number): Promise<void> {
  tab.disconnect();
  for (let i = 1; i <= n; i++) await post(pubsub, "Go", `after ${i}`);
  await tab.connect();
  await tab.waitUntil((m) => m.at(-1)?.text === `after ${n}`, 5_000, "the newest message");
}

test("a tab away while its room evicted everything after its newest message shows an 'expired' marker there, then what the room still keeps", async () => {
  const { pubsub, tab } = await embeddedTabWithFive();

  // Away while 30 more come: the room keeps 20, so its last 10 seen ones and the first 10 new ones are gone.
  await awayWhile(pubsub, tab, 30);

  assert.deepEqual(texts(tab), [...range("before", 1, 5), ...range("after", 11, 30)], "nothing filled in wrongly");
  const { marker, markerAt, textAt } = markerBefore(tab, "after 11");
  assert.match(marker, MARKER);
  assert.ok(markerAt >= 0 && markerAt < textAt, "the marker comes before the first message after the gap");
});

test("a tab away for a gap the room still keeps gets it filled, in order, without a marker", async () => {
  const { pubsub, tab } = await embeddedTabWithFive();
  await awayWhile(pubsub, tab, 12);
  assert.deepEqual(texts(tab), [...range("before", 1, 5), ...range("after", 1, 12)]);
  assert.equal(markerBefore(tab, "after 1").markerAt, -1, "no marker");
});

const missing = natsServerMissing();

test("a tab following a room live shows an 'expired' marker, not a silent skip, when the room evicted messages before this instance's feed got them; a room that lost nothing gets no marker", {
  skip: missing,
}, async () => {
  const server = await startNatsServer();
  cleanups.push(() => server.stop());
  // The chat reaches NATS through a proxy the test cuts; the room's other writer does not.
  const proxy = await startTcpProxy(server.port);
  cleanups.push(() => proxy.close());
  const chatPubsub = await openPubSub({ natsUrl: proxy.url });
  cleanups.push(() => chatPubsub.close());
  const { url } = await startChat(chatPubsub);
  const writer = await openPubSub({ natsUrl: server.url });
  cleanups.push(() => writer.close());
  const go = await ChatTab.open(url, "Go");
  const rust = await ChatTab.open(url, "Rust");
  cleanups.push(async () => {
    go.close();
    rust.close();
  });
  for (let i = 1; i <= 3; i++) await post(writer, "Go", `go ${i}`);
  for (let i = 1; i <= 3; i++) await post(writer, "Rust", `rust ${i}`);
  await go.waitUntil((m) => m.length === 3, 5_000, "Go's 3 messages");
  await rust.waitUntil((m) => m.length === 3, 5_000, "Rust's 3 messages");

  // The chat's feed is cut off while Go gets 30 messages (it keeps 20) and Rust 2; the tabs stay connected.
  proxy.cut();
  await until("the chat noticed the cut", () => chatPubsub.status?.().connected === false, 5_000, 5);
  for (let i = 1; i <= 30; i++) await post(writer, "Go", `go after ${i}`);
  for (let i = 1; i <= 2; i++) await post(writer, "Rust", `rust after ${i}`);
  proxy.restore();
  await go.waitUntil((m) => m.at(-1)?.text === "go after 30", 15_000, "Go's newest message");
  await rust.waitUntil((m) => m.at(-1)?.text === "rust after 2", 15_000, "Rust's newest message");

  assert.deepEqual(texts(go), [...range("go", 1, 3), ...range("go after", 11, 30)]);
  const { marker, markerAt, textAt } = markerBefore(go, "go after 11");
  assert.match(marker, MARKER);
  assert.ok(markerAt >= 0 && markerAt < textAt, "the marker comes before the first message after the gap");
  assert.equal(go.connects, 1, "live: the tab's stream never dropped");

  assert.deepEqual(texts(rust), [...range("rust", 1, 3), ...range("rust after", 1, 2)]);
  assert.equal(markerBefore(rust, "rust after 1").markerAt, -1, "Rust lost nothing: no marker");
});
