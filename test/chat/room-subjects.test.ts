// Upgrading to readable room subjects keeps the rooms' history: messages stored under a room's old
// subject (base64url of its name: "Go" was chat.room.R28) are copied to its subject now
// (chat.room.Go) once, in order, with their original time; and the chat is served from there.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createChat, ensureChatStream } from "../../apps/chat/app.tsx";
import {
  MOVED_FROM_HEADER,
  moveOldHistory,
  ORIGINAL_TIME_HEADER,
  oldRoomSubject,
  roomSubject,
} from "../../apps/chat/rooms.ts";
import { ChatTab } from "../../harness/chat-client.ts";
import { until } from "../../harness/poll.ts";
import { Browser } from "../../harness/sse-client.ts";
import { type Logger, openPubSub, type PubSub } from "../../src/index.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

async function engine(): Promise<PubSub> {
  const dir = await mkdtemp(join(tmpdir(), "via-room-subjects-"));
  const pubsub = await openPubSub({ dataDir: dir });
  cleanups.push(async () => {
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  await ensureChatStream(pubsub);
  return pubsub;
}

let n = 0;
/** A chat message as the chat stores it. */
function message(text: string, id = `old-${++n}`) {
  return { v: 1, id, user: { name: "Old Owl", emoji: "🦉" }, from: "old-owl", text, time: Date.now() };
}

/** Publishes as the chat before this change did: JSON on the room's old subject, its id as msg id. */
async function publishOld(pubsub: PubSub, room: string, text: string, id?: string): Promise<void> {
  const m = message(text, id);
  await pubsub.publish(oldRoomSubject(room)!, JSON.stringify(m), { msgId: m.id });
}

const texts = async (pubsub: PubSub, subject: string) =>
  (await pubsub.history(subject, { last: 1000 })).map((m) => {
    try {
      return (JSON.parse(new TextDecoder().decode(m.data)) as { text: string }).text;
    } catch {
      return "(unreadable)";
    }
  });

test("chat upgrade: history under the old subjects shows in its rooms, in order, with the original times", async () => {
  const pubsub = await engine();
  const rooms = ["Go", "C++ Café"];
  for (let i = 1; i <= 3; i++) await publishOld(pubsub, "Go", `go ${i}`);
  await pubsub.publish(oldRoomSubject("Go")!, "not json"); // skipped by the chat: not copied either
  await publishOld(pubsub, "C++ Café", "cpp 1");
  const stored = await pubsub.history("chat.room.R28", { last: 10 });
  // The copies are stored later than the originals, so the shown time tells them apart.
  const newest = Math.max(...stored.map((o) => o.time));
  await until("the clock is past the originals' stored time", () => Date.now() > newest, 1_000, 1);

  const chat = await createChat({ pubsub, rooms, app: { clientLimits: false } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(() => chat.close());

  assert.deepEqual(await texts(pubsub, "chat.room.Go"), ["go 1", "go 2", "go 3"]);
  assert.deepEqual(await texts(pubsub, "chat.room.C~2B~2B~20Caf~C3~A9"), ["cpp 1"]);
  const copies = await pubsub.history("chat.room.Go", { last: 10 });
  assert.deepEqual(
    copies.map((c) => [c.headers[MOVED_FROM_HEADER], c.headers[ORIGINAL_TIME_HEADER]]),
    stored.slice(0, 3).map((o) => ["chat.room.R28", String(o.time)]),
  );
  assert.deepEqual(
    copies.map((c) => c.data),
    stored.slice(0, 3).map((o) => o.data),
    "the JSON is copied as it was",
  );

  // A tab in Go shows the old messages, and the page their original times.
  const tab = await ChatTab.open(url, "Go");
  try {
    assert.deepEqual(
      tab.messages.map((m) => [m.id, m.text]),
      [
        ["old-1", "go 1"],
        ["old-2", "go 2"],
        ["old-3", "go 3"],
      ],
    );
    const page = (await new Browser(url).load("/room/Go")).html;
    for (const o of stored.slice(0, 3)) assert.ok(page.includes(`datetime="${new Date(o.time).toISOString()}"`));
    for (const c of copies) assert.ok(!page.includes(`datetime="${new Date(c.time).toISOString()}"`));
    // New messages go to the readable subject, after the old ones.
    assert.equal((await tab.send("new in Go")).status, 204);
    await tab.waitUntil((m) => m.some((x) => x.text === "new in Go" && x.seq !== undefined), 5_000, "the new message");
    assert.deepEqual(await texts(pubsub, "chat.room.Go"), ["go 1", "go 2", "go 3", "new in Go"]);
  } finally {
    tab.close();
  }

  // Once: a second start copies nothing; a message an old instance wrote since is copied at the next start.
  assert.deepEqual(
    (await moveOldHistory(pubsub, rooms)).map((r) => [r.room, r.moved]),
    [
      ["Go", 0],
      ["C++ Café", 0],
    ],
  );
  await publishOld(pubsub, "Go", "late go");
  assert.deepEqual(
    (await moveOldHistory(pubsub, rooms)).map((r) => [r.room, r.moved]),
    [
      ["Go", 1],
      ["C++ Café", 0],
    ],
  );
  assert.deepEqual(await texts(pubsub, "chat.room.Go"), ["go 1", "go 2", "go 3", "new in Go", "late go"]);
  assert.deepEqual(await texts(pubsub, "chat.room.R28"), ["go 1", "go 2", "go 3", "(unreadable)", "late go"]);
});

test("chat upgrade: a copy cut short is finished without duplicates (ids already in the room are skipped)", async () => {
  const pubsub = await engine();
  for (let i = 1; i <= 4; i++) await publishOld(pubsub, "Rust", `rust ${i}`, `rust-${i}`);
  // The first two were copied, then the process died before it wrote its mark (and the duplicate
  // window is long past: different msg ids).
  for (const m of (await pubsub.history(oldRoomSubject("Rust")!, { last: 4 })).slice(0, 2)) {
    await pubsub.publish(roomSubject("Rust"), m.data, { msgId: `earlier-${m.seq}` });
  }
  const [report] = await moveOldHistory(pubsub, ["Rust"]);
  assert.equal(report?.moved, 2);
  assert.deepEqual(await texts(pubsub, "chat.room.Rust"), ["rust 1", "rust 2", "rust 3", "rust 4"]);
});

test("chat upgrade: a room whose old subject is another room's subject now is left alone, with a warning", async () => {
  const pubsub = await engine();
  await publishOld(pubsub, "Go", "go 1");
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => warnings.push(msg), info: () => {} } as unknown as Logger;
  // "R28" is a plain name, so its subject is chat.room.R28: where "Go" used to be.
  assert.deepEqual(await moveOldHistory(pubsub, ["Go", "R28"], log), []);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /another room's subject/);
  assert.deepEqual(await texts(pubsub, "chat.room.Go"), []);
});
