// The chat's identity through a real server: a page load (or a thousand) stores nothing; the first
// post or rename stores this browser's identity, under a hash of its session and in the session's
// data, for later pages, also after a restart. Names
// people can trust: no rename to (a look-alike of) the name of someone in the room, no random default
// that someone there has, and no bidi override in what messages show.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Chat, createChat } from "../../apps/chat/app.tsx";
import { DEFAULT_AUTHORS, IDENTITY_STREAM } from "../../apps/chat/identity.ts";
import { roomSubject } from "../../apps/chat/rooms.ts";
import { ChatTab } from "../../harness/chat-client.ts";
import { until } from "../../harness/poll.ts";
import { Browser } from "../../harness/sse-client.ts";
import { type AppOptions, openPubSub, type PubSub } from "../../src/index.ts";
import { unescapeHtml } from "../../src/server/html.ts";
import { SESSION_STREAM } from "../../src/server/session-store.ts";
import { watchedEngine } from "../support/watched-engine.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

test("chat identity: page loads store nothing; the first post stores the identity a later page shows", async () => {
  // 31 new browsers from one address: more than the per-address limit on new sessions allows.
  const { chat, pubsub, url } = await startChat({ contextTtlMs: 1_000 });
  const stored = async () => (await pubsub.info(IDENTITY_STREAM)).messages;
  for (let i = 0; i < 30; i++) await new Browser(url).load("/room/Go");
  assert.equal(await stored(), 0, "30 page loads of new browsers wrote no identity");
  assert.equal((await pubsub.info(SESSION_STREAM)).messages, 0, "and no session data");
  assert.equal(chat.app.stats().sessions, 0, "and kept no session in memory");

  const browser = new Browser(url);
  const tab = await ChatTab.open(url, "Go", browser);
  const name = /placeholder="([^"]+) says\.\.\."/.exec(tab.client.html)![1]!;
  assert.equal((await tab.send("hello")).status, 204);
  await tab.waitUntil((m) => m.some((x) => x.text === "hello" && x.seq !== undefined), 5_000, "the stored message");
  await until("the identity is stored", async () => (await stored()) !== 0);
  tab.close();
  // A later page of the same browser, after its context is gone, shows the stored name.
  await until("the tab's context is gone", () => chat.app.tabCount === 0, 5_000, 20);
  const again = await browser.load("/room/Rust");
  assert.match(again.html, new RegExp(`placeholder="${name} says\\.\\.\\."`));
});

/** A chat on a fresh embedded engine, closed after the file's tests (every browser is a new session). */
async function startChat(app: AppOptions = {}): Promise<{ chat: Chat; pubsub: PubSub; url: string }> {
  const dir = await mkdtemp(join(tmpdir(), "via-identity-"));
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, app: { clientLimits: false, ...app } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(async () => {
    await chat.close();
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { chat, pubsub, url };
}

/** Waits until someone named `name` is among the people in Go on `chat`. */
function untilInGo(chat: Chat, name: string): Promise<void> {
  return until(`the tab in Go as ${name}`, () =>
    [...chat.presence.everyoneNow("Go").values()].some((m) => m.name === name),
  );
}

/** The tab's random name, from its page's "<Name> says..." placeholder. */
function nameIn(html: string): string {
  return unescapeHtml(/placeholder="([^"]+) says\.\.\."/.exec(html)![1]!);
}

/**
 * Presses Save in the tab's Nickname field with `nick` typed in; resolves with the toast the tab's
 * stream shows for it, and whether the server set the field's signal meanwhile.
 */
async function rename(tab: ChatTab, nick: string): Promise<{ toast: string; nickSet: boolean }> {
  const stream = tab.client.stream!;
  const from = stream.events.length;
  const res = await tab.client.action(tab.client.actionOf("save-nick"), { ...tab.client.signals, nick });
  assert.equal(res.status, 204, res.body);
  const toast = await stream.waitFor(
    (e) => e.event === "datastar-patch-elements" && e.data.selector === "#via-toasts",
    5_000,
    from,
  );
  const nickSet = stream.events
    .slice(from)
    .some((e) => e.event === "datastar-patch-signals" && "nick" in JSON.parse(e.data.signals ?? "{}"));
  return { toast: unescapeHtml(toast.data.elements ?? ""), nickSet };
}

test("chat identity: a rename to the name of someone in the room, or a look-alike in any case, is refused with a message and the draft kept", async () => {
  const { url } = await startChat();
  const a = await ChatTab.open(url, "Go");
  const browserB = new Browser(url);
  const b = await ChatTab.open(url, "Go", browserB);
  const bName = nameIn(b.client.html);
  try {
    // Three words: never one of the two-word default names, which B may have drawn.
    const taken = await rename(a, "Wise Snow Tiger");
    assert.match(taken.toast, /You are now Wise Snow Tiger\./);

    // Latin "Wise Snow Tiger" against Cyrillic і and Т; then the same name in small letters.
    for (const lookalike of ["W\u0456se Snow \u0422iger", "wise snow tiger", "Wise Snow Tiger"]) {
      const refused = await rename(b, lookalike);
      assert.match(refused.toast, /via-toast-error/, lookalike);
      assert.match(
        refused.toast,
        /Someone in this room is already called “Wise Snow Tiger”\. Choose a nickname that does not look like theirs\./,
        lookalike,
      );
      assert.equal(refused.nickSet, false, "the field keeps what was typed");
    }
    // B is still B: its messages carry its name, and its next page shows it.
    assert.equal((await b.send("still me")).status, 204);
    await b.waitUntil((m) => m.some((x) => x.text === "still me" && x.author === bName), 5_000, "B's message");
    assert.equal(nameIn((await browserB.load("/room/Go")).html), bName);

    // One's own name is no conflict; nor is the name in a room where nobody has it.
    assert.match((await rename(a, "WISE SNOW TIGER")).toast, /You are now WISE SNOW TIGER\./);
    const bInRust = await ChatTab.open(url, "Rust", browserB);
    try {
      assert.match(
        (await rename(bInRust, "W\u0456se Snow \u0422iger")).toast,
        /You are now W\u0456se Snow \u0422iger\./,
      );
    } finally {
      bInRust.close();
    }
  } finally {
    a.close();
    b.close();
  }
});

test("chat identity: a new visitor's random name is never one that someone in the room has", async () => {
  const { chat, url } = await startChat();
  // All 100 default names are in Go (half of them in capitals: a look-alike is taken as well).
  const leave = DEFAULT_AUTHORS.map((author, i) =>
    chat.presence.join("Go", `bot-${i}`, {
      id: `bot-${i}`,
      name: i % 2 ? author.name.toUpperCase() : author.name,
      emoji: author.emoji,
    }),
  );
  await until("100 people in Go", () => chat.presence.roster("Go").count === 100);
  const defaults = new Set(DEFAULT_AUTHORS.map((a) => a.name));
  for (let i = 0; i < 10; i++) {
    const name = nameIn((await new Browser(url).load("/room/Go")).html);
    assert.match(name, /^[A-Z][a-z]+ [A-Z][a-z]+ \d+$/, "a default name with a number");
    assert.ok(defaults.has(name.replace(/ \d+$/, "")), name);
  }
  // One default free again: every new visitor gets that one, on the page and once the tab is live.
  const free = DEFAULT_AUTHORS.findIndex((a) => a.name === "Gentle Otter");
  leave[free]!();
  await until("99 people in Go", () => chat.presence.roster("Go").count === 99);
  for (let i = 0; i < 5; i++) assert.equal(nameIn((await new Browser(url).load("/room/Go")).html), "Gentle Otter");
  const tab = await ChatTab.open(url, "Go");
  try {
    assert.equal(nameIn(tab.client.html), "Gentle Otter");
    await untilInGo(chat, "Gentle Otter");
  } finally {
    tab.close();
  }
  // Elsewhere the defaults are free.
  assert.ok(defaults.has(nameIn((await new Browser(url).load("/room/Rust")).html)));
});

test("chat: a message with a right-to-left override is stored and shown without it, inside an isolating element", async () => {
  const { chat, pubsub, url } = await startChat();
  const tab = await ChatTab.open(url, "Go");
  const name = nameIn(tab.client.html);
  try {
    // Displayed as "transfer exe.png" with the override.
    assert.equal((await tab.send("transfer \u202Egnp.exe\u202C")).status, 204);
    await tab.waitUntil((m) => m.some((x) => x.text === "transfer gnp.exe" && x.seq !== undefined), 5_000, "stored");
    // Another client of the stream stores one with the override in the text and the name.
    await pubsub.publish(
      roomSubject("Go"),
      JSON.stringify({
        v: 1,
        id: "from-another-client",
        user: { name: "Mallory\u202E", emoji: "😈" },
        from: "another",
        text: "invoice \u202Efdp.exe",
        time: Date.now(),
      }),
    );
    await tab.waitUntil((m) => m.some((x) => x.text === "invoice fdp.exe"), 5_000, "the other client's message");
    assert.equal(tab.messages.find((x) => x.text === "invoice fdp.exe")?.author, "Mallory");

    const stored = (await pubsub.history(roomSubject("Go"), { last: 10 })).map(
      (msg) => (JSON.parse(new TextDecoder().decode(msg.data)) as { text: string }).text,
    );
    assert.ok(stored.includes("transfer gnp.exe"), "our input is stored without the override");

    await until("the tab in the roster", () => chat.presence.roster("Go").members.some((m) => m.name === name));
    const page = (await new Browser(url).load("/room/Go")).html;
    assert.match(page, new RegExp(`<li title="${name}"><span aria-hidden="true">\\S+</span> <bdi>${name}</bdi></li>`));
    assert.ok(!page.includes("\u202E") && !page.includes("\u202C"), "no override on the page");
    assert.ok(page.includes('<div class="body" dir="auto"><p class="text">transfer gnp.exe</p></div>'));
    assert.ok(page.includes('<div class="body" dir="auto"><p class="text">invoice fdp.exe</p></div>'));
    assert.ok(page.includes('<bdi><strong class="author">Mallory</strong></bdi>'));
  } finally {
    tab.close();
  }
});

test("chat identity: a renamed user keeps the name after the chat restarts, read with the session (no identity lookup)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "via-identity-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, app: { clientLimits: false } });
  const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
  const browser = new Browser(url);
  const tab = await ChatTab.open(url, "Go", browser);
  // A live tab of a browser that never said anything stores nothing.
  assert.equal((await pubsub.info(SESSION_STREAM)).messages, 0);
  try {
    assert.match((await rename(tab, "Renamed Rita")).toast, /You are now Renamed Rita\./);
  } finally {
    tab.close();
  }
  await chat.close();
  await pubsub.close();

  // The same data dir, a new process's chat: the engine is watched for what the page load reads.
  const inner = await openPubSub({ dataDir: dir });
  const reads: string[] = [];
  const engine = watchedEngine(inner, {
    history: (subject) => {
      reads.push(subject.split(".").slice(0, -1).join("."));
    },
  });
  const again = await createChat({ pubsub: engine, app: { clientLimits: false } });
  const restarted = await again.app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(async () => {
    await again.close();
    await inner.close();
  });
  reads.length = 0;
  const returning = new Browser(restarted.url);
  returning.cookie = browser.cookie;
  const page = await returning.load("/room/Rust");
  assert.equal(nameIn(page.html), "Renamed Rita");
  assert.deepEqual(
    reads.filter((prefix) => !prefix.startsWith("chat.room")),
    ["_via.session"],
    "one read of the session, no identity lookup",
  );
  const live = await ChatTab.open(restarted.url, "Go", returning);
  try {
    assert.equal(nameIn(live.client.html), "Renamed Rita");
    await untilInGo(again, "Renamed Rita");
  } finally {
    live.close();
  }
});
