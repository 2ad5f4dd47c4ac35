// Shared fan-out through a real server: a Feed (stored messages as streamed lists), a Channel (one
// patch for a group of tabs) and a plain streamed list, at the protocol level, on the embedded engine.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { until } from "../../harness/poll.ts";
import { Browser, type EventStream, type TabClient } from "../../harness/sse-client.ts";
import { type App, type AppOptions, createApp, type Feed, openPubSub, type PubSub } from "../../src/index.ts";
import { Button } from "../support/fixture-app.tsx";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/** A message the tests publish: who sent it and what it says. */
type Note = { from: string; text: string };

interface Started {
  app: App;
  base: string;
  port: number;
  pubsub: PubSub;
  dir: string;
  stop: () => Promise<void>;
  feed: Feed<Note, string>;
  renders: () => number;
  decodes: () => number;
}

const notes = (room: string) => `notes.${room}`;

interface FeedTestOptions extends AppOptions {
  pageSize?: number;
  limit?: number;
  fillLimit?: number;
  /** A data dir of a previous start (a restart); a new one by default. */
  dir?: string;
  /** The NOTES stream's messages per subject (default 5,000). */
  perSubject?: number;
  cacheBytes?: number;
}

async function start(options: FeedTestOptions = {}) {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "via-feed-")));
  const pubsub = await openPubSub({ dataDir: dir });
  await pubsub.ensureStream({ name: "NOTES", subjects: ["notes.>"], maxMsgsPerSubject: options.perSubject ?? 5_000 });
  const fast = { ratePerSec: 10_000, burst: 10_000 };
  const app = createApp({ pubsub, tabRateLimit: fast, sessionRateLimit: fast, ...options });
  let renders = 0;
  let decodes = 0;
  const feed = app.feed<Note, string>({
    decode: (msg) => {
      decodes++;
      const note = JSON.parse(new TextDecoder().decode(msg.data)) as Note;
      if (typeof note.text !== "string") throw new Error("not a note");
      return note;
    },
    render: (note, { seq }, variant) => {
      renders++;
      return (
        <li id={`n-${seq}`} class={variant}>
          {note.text}
        </li>
      );
    },
    variant: (note, me) => (note.from === me ? "mine" : "other"),
    pageSize: options.pageSize ?? 5,
    limit: options.limit ?? 1000,
    ...(options.fillLimit ? { fillLimit: options.fillLimit } : {}),
    ...(options.cacheBytes ? { cacheBytes: options.cacheBytes } : {}),
  });
  app.page("/room/:room", async (c) => {
    const me = c.signal("", { name: "me" });
    const list = await feed.join(c, notes(c.params.room!), c.session.id.slice(0, 8), { id: "notes" });
    const roster = app.channel(`room:${c.params.room}`);
    roster.join(c);
    const hello = c.action(() => roster.patch("#hello", <p id="hello">hi from {me.value}</p>));
    const mine = c.stream("mine", { limit: 3 });
    const add = c.action(() => mine.insert(<li>{me.value}</li>));
    if (!c.live) mine.insert(<li>first</li>);
    c.view(() => (
      <main>
        <Button id="hello-all" action={hello} label="hello" />
        <Button id="add" action={add} label="add" />
        {list.more ? <Button id="older" action={list.older} label="older" /> : <p id="start">start</p>}
        <ol {...list.container()} />
        <ul {...mine.container()} />
        <p id="hello" />
      </main>
    ));
  });
  const { url, port } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.close();
    await pubsub.close();
  };
  cleanups.push(async () => {
    await stop();
    if (!options.dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    app,
    base: url,
    port,
    pubsub,
    dir,
    stop,
    feed,
    renders: () => renders,
    decodes: () => decodes,
  } satisfies Started;
}

async function say(s: Started, room: string, text: string, from = "someone"): Promise<number> {
  const ack = await s.pubsub.publish(notes(room), JSON.stringify({ from, text }));
  return ack!.seq;
}

/** The list report the runtime sends for a page: newest position, items, more. */
function listReport(html: string, id = "notes"): string {
  const open = new RegExp(`<ol id="${id}" data-via-stream=""( data-via-more="")?>([\\s\\S]*?)</ol>`).exec(html);
  if (!open) return "";
  const positions = [...open[2]!.matchAll(/data-via-pos="(\d+)"/g)].map((m) => Number(m[1]));
  const items = (open[2]!.match(/<li/g) ?? []).length;
  return `${id}:${positions.length ? Math.max(...positions) : 0}:${items}:${open[1] ? 1 : 0}`;
}

function connectLikeRuntime(tab: TabClient): Promise<EventStream> {
  return tab.connect(`&streams=${encodeURIComponent(listReport(tab.html))}`);
}

const appended = (s: EventStream, selector = "#notes") =>
  s.events.filter((e) => e.data.selector === selector && e.data.mode === "append");

test("a feed message is decoded, rendered and encoded once per variant, and every tab gets the same bytes", async () => {
  const s = await start();
  const tabs: Array<{ tab: TabClient; stream: EventStream }> = [];
  for (let i = 0; i < 20; i++) {
    const tab = await new Browser(s.base).load("/room/a");
    tabs.push({ tab, stream: await connectLikeRuntime(tab) });
  }
  const [rendersBefore, decodesBefore] = [s.renders(), s.decodes()];
  const seq = await say(s, "a", "to everyone");
  for (const { stream } of tabs) await stream.waitFor((e) => e.id === String(seq));
  assert.equal(s.decodes() - decodesBefore, 1, "decoded once");
  assert.equal(s.renders() - rendersBefore, 1, "rendered once: every tab has the same variant");
  const frames = new Set(tabs.map(({ stream }) => JSON.stringify(stream.events.find((e) => e.id === String(seq)))));
  assert.equal(frames.size, 1, "the same event for every tab");
  const [frame] = [...frames];
  assert.match(frame!, /data-via-pos=\\"\d+\\" id=\\"n-\d+\\" class=\\"other\\">to everyone/);
  for (const { stream } of tabs) stream.close();
});

test("a feed renders the author's tabs their own variant ('mine') and everyone else the shared one", async () => {
  const s = await start();
  const browser = new Browser(s.base);
  const author = await browser.load("/room/v");
  const authorStream = await connectLikeRuntime(author);
  const other = await new Browser(s.base).load("/room/v");
  const otherStream = await connectLikeRuntime(other);
  const me = /via_session=([^;]{8})/.exec(browser.cookie)![1]!;
  const seq = await say(s, "v", "my words", me);
  const mine = await authorStream.waitFor((e) => e.id === String(seq));
  const theirs = await otherStream.waitFor((e) => e.id === String(seq));
  assert.match(mine.data.elements!, /class="mine"/);
  assert.match(theirs.data.elements!, /class="other"/);
  authorStream.close();
  otherStream.close();
});

test("a page shows the last page of the feed; messages stored before its stream attached arrive once, in order", async () => {
  const s = await start({ pageSize: 3 });
  for (let i = 1; i <= 5; i++) await say(s, "p", `old ${i}`);
  const tab = await new Browser(s.base).load("/room/p");
  assert.deepEqual(
    [...tab.html.matchAll(/>(old \d)</g)].map((m) => m[1]),
    ["old 3", "old 4", "old 5"],
  );
  assert.match(tab.html, /<ol id="notes" data-via-stream="" data-via-more="">/, "older ones exist");
  const between = [await say(s, "p", "between 1"), await say(s, "p", "between 2")];
  const stream = await connectLikeRuntime(tab);
  await stream.waitFor((e) => e.id === String(between[1]));
  assert.deepEqual(
    appended(stream).map((e) => e.id),
    between.map(String),
  );
  const live = await say(s, "p", "live");
  await stream.waitFor((e) => e.id === String(live));
  assert.equal(appended(stream).length, 3, "no duplicate at the seam");
  stream.close();
});

/** A tab of `room` that saw one message ("seen") live, then dropped its stream: it is detached now. */
async function seenThenAway(s: Started, room: string): Promise<{ tab: TabClient; seen: number }> {
  const tab = await new Browser(s.base).load(`/room/${room}`);
  const first = await connectLikeRuntime(tab);
  const seen = await say(s, room, "seen");
  await first.waitFor((e) => e.id === String(seen));
  first.close();
  await until("a dropped stream is detached", () => s.app.stats().detached !== 0);
  return { tab, seen };
}

test("a tab that reconnects gets exactly what it missed, in order; a gap over fillLimit resets its list", async () => {
  const s = await start({ pageSize: 3, fillLimit: 10 });
  const { tab, seen } = await seenThenAway(s, "r");
  const missed: number[] = [];
  for (let i = 0; i < 4; i++) missed.push(await say(s, "r", `missed ${i}`));
  assert.equal(s.app.stats().queuedBytes.total, 0, "a detached tab holds nothing");
  const again = await tab.connect(`&streams=notes:${seen}:1:0`);
  await again.waitFor((e) => e.id === String(missed.at(-1)));
  assert.deepEqual(
    appended(again).map((e) => e.id),
    missed.map(String),
  );
  again.close();
  // Away for longer than fillLimit messages: the list is replaced by the last page instead.
  await until("a dropped stream is detached", () => s.app.stats().detached !== 0);
  for (let i = 0; i < 12; i++) await say(s, "r", `long gone ${i}`);
  const last = await say(s, "r", "newest");
  const third = await tab.connect(`&streams=notes:${missed.at(-1)}:6:0`);
  const reset = await third.waitFor((e) => e.data.selector === "#notes" && e.data.mode === "inner");
  assert.deepEqual(
    [...(reset.data.elements ?? "").matchAll(/>(long gone \d+|newest)</g)].map((m) => m[1]),
    ["long gone 10", "long gone 11", "newest"],
  );
  assert.equal(appended(third).length, 0);
  const view = await third.waitFor((e) => (e.data.elements ?? "").startsWith('<div id="via-view"'));
  assert.match(view.data.elements!, /id="older"/, "Load older appears after the reset");
  assert.ok(last > 0);
  third.close();
});

test("a list whose newest message the stream has evicted shows a gap marker, then what is left after the hole", async () => {
  const s = await start({ pageSize: 3, perSubject: 5 });
  const { tab, seen } = await seenThenAway(s, "e");
  // Six more: the room keeps five, so "seen" and the first message after it are gone.
  for (let i = 0; i < 6; i++) await say(s, "e", `later ${i}`);
  const again = await tab.connect(`&streams=notes:${seen}:1:0`);
  await again.waitFor((e) => e.data.elements?.includes(">later 5<") ?? false);
  const added = appended(again).map((e) => e.data.elements ?? "");
  assert.match(added[0] ?? "", /^<li class="via-gap" role="note">[^<]*expired[^<]*<\/li>$/, "a visible marker first");
  assert.deepEqual(
    added.slice(1).map((html) => />(later \d)</.exec(html)?.[1]),
    ["later 1", "later 2", "later 3", "later 4", "later 5"],
    "then every message after the hole, in order",
  );
  assert.equal(
    again.events.some((e) => e.data.selector === "#notes" && e.data.mode === "inner"),
    false,
    "the list is not reset: what the page shows stays",
  );
  again.close();
});

test("a fill bigger than half the queue cap resets the list instead of overflowing at every reconnect", async () => {
  const s = await start({ pageSize: 3, queueCapBytes: 64 * 1024 });
  const { tab, seen } = await seenThenAway(s, "b");
  let last = 0;
  for (let i = 0; i < 60; i++) last = await say(s, "b", `long ${i} ${"z".repeat(1_000)}`); // ~60 KB in all
  const again = await tab.connect(`&streams=notes:${seen}:1:0`);
  const reset = await again.waitFor((e) => e.data.selector === "#notes" && e.data.mode === "inner");
  assert.match(reset.data.elements ?? "", new RegExp(`id="n-${last}"`));
  assert.equal(s.app.stats().overflows, 0);
  assert.equal(again.ended, false);
  again.close();
});

test("a feed list resumes after a server restart from the position the page reports", async () => {
  const secret = "feed tests: one secret for both lives of the server";
  const first = await start({ secret });
  const tab = await new Browser(first.base).load("/room/x");
  const seq = await say(first, "x", "before");
  const stream = await connectLikeRuntime(tab);
  await stream.waitFor((e) => e.id === String(seq));
  stream.close();
  await first.stop();
  const second = await start({ secret, dir: first.dir });
  const missed = await say(second, "x", "while it restarted");
  const url = tab.streamUrl(`&streams=notes:${seq}:1:0`).replace(first.base, second.base);
  const again = await tab.connectTo(url);
  assert.equal(again.status, 200, "the tab id verifies on the new server");
  const next = await say(second, "x", "after");
  await again.waitFor((e) => e.id === String(next));
  assert.deepEqual(
    appended(again).map((e) => e.id),
    [String(missed), String(next)],
  );
  again.close();
});

test("Load older prepends the page before the cursor and says when the start is reached", async () => {
  const s = await start({ pageSize: 2 });
  const seqs = [];
  for (let i = 1; i <= 5; i++) seqs.push(await say(s, "o", `m${i}`));
  const tab = await new Browser(s.base).load("/room/o");
  const stream = await connectLikeRuntime(tab);
  const older = tab.actionOf("older");
  assert.equal(older, "notes-older");
  assert.equal((await tab.action(older, tab.signals, {}, String(seqs[3]))).status, 204);
  const page = await stream.waitFor((e) => e.data.mode === "prepend");
  assert.equal(page.data.selector, "#notes");
  assert.deepEqual(
    [...page.data.elements!.matchAll(/>(m\d)</g)].map((m) => m[1]),
    ["m2", "m3"],
  );
  assert.equal((await tab.action(older, tab.signals, {}, String(seqs[1]))).status, 204);
  await stream.waitFor((e) => e.data.mode === "prepend" && (e.data.elements ?? "").includes(">m1<"));
  const view = await stream.waitFor((e) => (e.data.elements ?? "").includes('id="start"'));
  assert.ok(view, "the start of the list is shown once nothing older is left");
  stream.close();
});

test("a feed list over its limit has its oldest items trimmed and offers Load older", async () => {
  const s = await start({ pageSize: 2, limit: 10 });
  const tab = await new Browser(s.base).load("/room/t");
  const stream = await connectLikeRuntime(tab);
  let last = 0;
  for (let i = 0; i < 12; i++) last = await say(s, "t", `t${i}`);
  await stream.waitFor((e) => e.id === String(last));
  const trim = await stream.waitFor((e) => e.data.mode === "remove");
  assert.equal(trim.data.selector, "#notes > :nth-child(-n+1)", "down to the limit: 11 held, 1 removed");
  await stream.waitFor((e) => (e.data.elements ?? "").includes('id="older"'));
  stream.close();
});

test("the feed's render cache stays within its byte budget however many messages pass", async () => {
  const s = await start({ cacheBytes: 32 * 1024 });
  const tab = await new Browser(s.base).load("/room/k");
  const stream = await connectLikeRuntime(tab);
  let last = 0;
  for (let i = 0; i < 200; i++) last = await say(s, "k", `cached ${i} ${"c".repeat(500)}`);
  await stream.waitFor((e) => e.id === String(last));
  const { cached, cachedBytes } = s.feed.stats();
  assert.ok(cachedBytes <= 32 * 1024, `${cachedBytes} bytes cached`);
  assert.ok(cached > 5 && cached < 200, `${cached} messages cached`);
  stream.close();
});

test("a channel patch is rendered once and goes to every member's stream, not to page loads or detached tabs", async () => {
  const s = await start();
  const a = await new Browser(s.base).load("/room/c");
  const b = await new Browser(s.base).load("/room/c");
  await new Browser(s.base).load("/room/c"); // a page load only: no member
  const [sa, sb] = [await connectLikeRuntime(a), await connectLikeRuntime(b)];
  const detached = await new Browser(s.base).load("/room/c");
  (await connectLikeRuntime(detached)).close();
  await until("a dropped stream is detached", () => s.app.stats().detached !== 0);
  assert.equal(s.app.channel("room:c").size, 3, "the attached tabs and the detached one");
  assert.equal((await a.action(a.actionOf("hello-all"), { me: "ann" })).status, 204);
  for (const stream of [sa, sb]) {
    const ev = await stream.waitFor((e) => e.data.selector === "#hello");
    assert.equal(ev.data.elements, '<p id="hello">hi from ann</p>');
  }
  assert.equal(s.app.stats().queuedBytes.total, 0, "nothing held for the detached member");
  sa.close();
  sb.close();
});

test("a plain streamed list: the page renders its items, inserts are patches, and the limit trims the oldest", async () => {
  const s = await start();
  const tab = await new Browser(s.base).load("/room/s");
  assert.match(tab.html, /<ul id="mine" data-via-stream=""><li>first<\/li><\/ul>/);
  const stream = await tab.connect("&streams=mine:0:1:0");
  for (const word of ["two", "three", "four"]) {
    assert.equal((await tab.action(tab.actionOf("add"), { me: word })).status, 204);
  }
  await stream.waitFor((e) => e.data.selector === "#mine" && (e.data.elements ?? "").includes("four"));
  const trim = await stream.waitFor((e) => e.data.selector === "#mine > :nth-child(-n+1)");
  assert.equal(trim.data.mode, "remove");
  stream.close();
});

test("a tab's server memory does not grow with the messages its feed shows", { timeout: 120_000 }, async (t) => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const heap = () => {
    for (let i = 0; i < 3; i++) gc();
    return process.memoryUsage().heapUsed;
  };
  // 240 browsers from one address: over the per-address limits, which are not what is measured here.
  const s = await start({ contextTtlMs: 50, clientLimits: false });
  // Lean readers that discard what they read, so only the server's memory is measured.
  const open = async (n: number) => {
    const sockets = [];
    for (let i = 0; i < n; i++) {
      const tab = await new Browser(s.base).load("/room/m");
      const socket = connect(s.port, "127.0.0.1");
      socket.on("data", () => {});
      socket.on("error", () => {});
      socket.write(
        `GET ${tab.streamUrl().slice(s.base.length)}&streams=notes:0:0:0 HTTP/1.1\r\nHost: localhost\r\nCookie: ${tab.browser.cookie}\r\n\r\n`,
      );
      sockets.push(socket);
    }
    await until(`${n} streams are connected`, () => s.app.stats().connected >= n);
    return sockets;
  };
  const growthWith = async (tabs: number) => {
    const sockets = await open(tabs);
    const before = heap();
    for (let i = 0; i < 1000; i++) await say(s, "m", `message ${i} ${"x".repeat(100)}`);
    // Wait until every reader had the last one written (nothing queued), then measure.
    await until("every queued byte is written", () => s.app.stats().queuedBytes.total <= 0);
    const after = heap();
    for (const socket of sockets) socket.destroy();
    await until("every tab is gone", () => s.app.stats().tabs <= 0);
    return after - before;
  };
  const few = await growthWith(20);
  const many = await growthWith(220);
  const perTab = (many - few) / 200;
  t.diagnostic(
    `heap growth over 1,000 messages: ${few} B with 20 tabs, ${many} B with 220: ${Math.round(perTab)} B per tab`,
  );
  // A per-tab list of shown messages costs about 55 B per tab and message (55 KB per tab here); the
  // bound sits far above the heap's own noise between two runs (about 1 KB per tab) and far below that.
  assert.ok(
    perTab < 8 * 1024,
    `heap grew ${Math.round(perTab)} B per tab over 1,000 messages (few: ${few}, many: ${many})`,
  );
});

test("a channel knows who is present: attached members, and dropped ones for the grace period only", async () => {
  const app = createApp({ contextTtlMs: 60_000 });
  let changes = 0;
  app.page("/:who", (c) => {
    app.channel<string>("lobby", { grace: 300, onChange: () => changes++ }).join(c, c.params.who);
    c.view(() => <p>{c.params.who}</p>);
  });
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(() => app.close());
  const present = () => app.channel<string>("lobby").present().sort();
  const ann = await new Browser(url).load("/ann");
  const bob = await new Browser(url).load("/bob");
  assert.deepEqual(present(), [], "page loads are not members");
  const [sa, sb] = [await ann.connect(), await bob.connect()];
  assert.deepEqual(present(), ["ann", "bob"]);
  const before = changes;
  sb.close();
  await until("a dropped stream is detached", () => app.stats().detached !== 0);
  assert.deepEqual(present(), ["ann", "bob"], "a dropped stream is still present during the grace");
  // onChange is told when the grace ends (present() already knows by the clock).
  await until("onChange is told the grace ended", () => changes !== before, 5_000, 20);
  assert.deepEqual(present(), ["ann"]);
  const back = await bob.connect();
  assert.deepEqual(present(), ["ann", "bob"], "back when it reattaches");
  sa.close();
  back.close();
});
