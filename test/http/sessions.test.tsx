// Session data kept in the app's pub/sub engine (src/server/session-store.ts), through real servers: it
// survives a restart on the same data dir, another instance on the same nats-server reads it and follows
// its changes, it expires with the stream's max age, and a browser's first page load reads nothing.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import { Browser, type EventStream, type TabClient } from "../../harness/sse-client.ts";
import { type App, type AppOptions, createApp, openPubSub, type PubSub, TokenBucket } from "../../src/index.ts";
import { unescapeHtml } from "../../src/server/html.ts";
import { SESSION_STREAM, SESSION_SUBJECT_PREFIX } from "../../src/server/session-store.ts";
import { watchedEngine } from "../support/watched-engine.ts";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

async function embedded(): Promise<{ dir: string; open: () => Promise<PubSub> }> {
  const dir = await mkdtemp(join(tmpdir(), "via-sessions-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    async open() {
      const pubsub = await openPubSub({ dataDir: dir });
      cleanups.push(() => pubsub.close());
      return pubsub;
    },
  };
}

/** What the engine was asked about session subjects: reads (history) and writes (publish). */
interface Counts {
  reads: number;
  writes: number;
}

/** `pubsub` with its session reads and writes counted (what the app is given, as any engine would be). */
function counting(pubsub: PubSub): { engine: PubSub; counts: Counts } {
  const counts: Counts = { reads: 0, writes: 0 };
  const isSession = (subject: string) => subject.startsWith(`${SESSION_SUBJECT_PREFIX}.`);
  const engine = watchedEngine(pubsub, {
    publish: (subject) => {
      if (isSession(subject)) counts.writes++;
    },
    history: (subject) => {
      if (isSession(subject)) counts.reads++;
    },
  });
  return { engine, counts };
}

/**
 * A page that shows the session's "note" and "count" and sets them in one action (`save`, with the
 * `note` signal), and an action that sets any key (`put`, with `key` and `value`).
 */
async function start(options: AppOptions): Promise<{ app: App; base: string; errors: string[] }> {
  const app = createApp({ title: "sessions", clientLimits: false, ...options });
  const errors: string[] = [];
  app.page("/", (c) => {
    const note = c.signal("", { name: "note" });
    const key = c.signal("", { name: "key" });
    const value = c.signal("", { name: "value" });
    const save = c.action(
      () => {
        // Two sets in one action: one write.
        c.session.set("note", { text: note.value });
        c.session.set("count", (c.session.get<number>("count") ?? 0) + 1);
        c.sync();
      },
      { name: "save" },
    );
    const put = c.action(() => c.session.set(key.value, value.value), { name: "put" });
    const refused = c.action(
      () => {
        for (const bad of [new TokenBucket({ ratePerSec: 1, burst: 1 }), { at: new Date(0) }, () => 1]) {
          try {
            c.session.set("bad", bad);
          } catch (err) {
            errors.push((err as Error).message);
          }
        }
      },
      { name: "refused" },
    );
    c.view(() => (
      <main>
        <p id="note">{c.session.get<{ text: string }>("note")?.text ?? "(none)"}</p>
        <p id="count">{String(c.session.get<number>("count") ?? 0)}</p>
        <p id="keys">{["a", "b"].map((k) => `${k}=${c.session.get<string>(k) ?? "-"}`).join(" ")}</p>
        <button type="button" id="save" {...save.onClick()} />
        <button type="button" id="put" {...put.onClick()} />
        <button type="button" id="refused" {...refused.onClick()} />
      </main>
    ));
  });
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  cleanups.push(() => app.close());
  return { app, base: url, errors };
}

const shown = (html: string, id: string) => unescapeHtml(new RegExp(`<p id="${id}">([^<]*)</p>`).exec(html)?.[1] ?? "");

/** A live tab of `browser` on `base` (a page load, then its event stream). */
async function liveTab(browser: Browser, app: App): Promise<{ tab: TabClient; stream: EventStream }> {
  const connected = app.stats().connected;
  const tab = await browser.load("/");
  const stream = await tab.connect();
  assert.equal(stream.status, 200, stream.raw);
  cleanups.push(async () => stream.close());
  await until("the tab is live", () => app.stats().connected > connected);
  return { tab, stream };
}

/** The same browser (its cookie) on another server. */
function sameBrowser(browser: Browser, base: string): Browser {
  const moved = new Browser(base);
  moved.cookie = browser.cookie;
  return moved;
}

test("session data survives a restart on the same data dir (embedded), written once per action", async () => {
  const store = await embedded();
  const pubsub = await store.open();
  const first = await start({ pubsub });
  const browser = new Browser(first.base);
  const { tab } = await liveTab(browser, first.app);
  assert.equal((await tab.action("save", { ...tab.signals, note: "kept across restarts" })).status, 204);
  await until("the session is stored", async () => (await pubsub.info(SESSION_STREAM)).lastSeq === 1);
  assert.equal((await pubsub.info(SESSION_STREAM)).messages, 1, "two sets in one action are one write");
  // The subject names a keyed hash of the session, never its id (the cookie's bearer secret).
  const id = browser.cookie.slice("via_session=".length).split(".")[0]!;
  const subjects = Object.keys((await pubsub.info(SESSION_STREAM)).subjects);
  assert.equal(subjects.length, 1);
  assert.match(subjects[0]!, /^_via\.session\.[A-Za-z0-9_-]{22}$/);
  assert.ok(!subjects[0]!.includes(id), "no session id in the subject");

  await first.app.close();
  await pubsub.close();
  const second = await start({ pubsub: await store.open() });
  const page = await sameBrowser(browser, second.base).load("/");
  assert.equal(shown(page.html, "note"), "kept across restarts");
  assert.equal(shown(page.html, "count"), "1");
  assert.equal(second.app.stats().sessions, 0, "the page load read the session but keeps nothing");
});

test("a page load without a cookie reads nothing; one with a cookie reads once; page loads and refused requests write nothing", async () => {
  const store = await embedded();
  const { engine, counts } = counting(await store.open());
  const { app, base } = await start({ pubsub: engine });
  await app.whenReady();
  const startup = { ...counts };
  for (let i = 0; i < 5; i++) await new Browser(base).load("/");
  assert.deepEqual(counts, startup, "new browsers' page loads neither read nor write session data");

  const browser = new Browser(base);
  const tab = await browser.load("/");
  assert.equal(counts.reads, startup.reads, "the first page load of a browser reads nothing");
  for (let i = 0; i < 3; i++) await browser.load("/");
  assert.equal(counts.reads, startup.reads + 3, "each later page load of a session not held reads it once");
  // A stream refused for its tab id reads nothing: the read comes after every check.
  const other = await new Browser(base).load("/");
  const refused = await other.connectTo(tab.streamUrl());
  assert.equal(refused.status, 403);
  assert.equal(counts.reads, startup.reads + 3);
  assert.equal(counts.writes, startup.writes, "page loads and refused requests write nothing");
  assert.equal(app.stats().sessions, 0, "and keep no session in memory");

  // The live tab reads its session once, then holds it: later page loads read nothing.
  const stream = await tab.connect();
  cleanups.push(async () => stream.close());
  await until("the tab is live", () => app.stats().connected === 1);
  assert.equal(counts.reads, startup.reads + 4);
  await browser.load("/");
  assert.equal(counts.reads, startup.reads + 4, "a held session is not read again");
  assert.equal(app.stats().sessions, 1);
  assert.equal(counts.writes, startup.writes, "a live tab alone writes nothing");
});

test("session data must be JSON: a class instance, a Date or a function is refused with a clear error", async () => {
  const store = await embedded();
  const pubsub = await store.open();
  const { app, base, errors } = await start({ pubsub });
  const { tab } = await liveTab(new Browser(base), app);
  assert.equal((await tab.action("refused")).status, 204);
  assert.equal(errors.length, 3);
  assert.match(errors[0]!, /^session\.set\("bad"\): a TokenBucket is not JSON\./);
  assert.match(errors[1]!, /a Date at \.at is not JSON/);
  assert.match(errors[2]!, /a function is not JSON/);
  for (const message of errors) assert.match(message, /session\.memo\(key, make\)/, "the error names the way out");
  assert.equal((await pubsub.info(SESSION_STREAM)).messages, 0, "nothing was stored, and the session stays unwritten");
});

test("stored session data expires after the TTL: the stream's max age purges it", async () => {
  const store = await embedded();
  const pubsub = await store.open();
  const ttlMs = 1_500;
  const first = await start({ pubsub, sessions: { ttlMs } });
  const browser = new Browser(first.base);
  const { tab } = await liveTab(browser, first.app);
  assert.equal((await tab.action("save", { ...tab.signals, note: "short-lived" })).status, 204);
  await until("the session is stored", async () => (await pubsub.info(SESSION_STREAM)).messages === 1);
  assert.equal((await pubsub.info(SESSION_STREAM)).config.maxAge, ttlMs);
  await first.app.close();

  // Another app on the same engine reads it while it lives, and finds nothing once it expired.
  const second = await start({ pubsub, sessions: { ttlMs } });
  const visitor = sameBrowser(browser, second.base);
  assert.equal(shown((await visitor.load("/")).html, "note"), "short-lived");
  await until("the stream purged it", async () => (await pubsub.info(SESSION_STREAM)).messages === 0, 10_000);
  assert.equal(shown((await visitor.load("/")).html, "note"), "(none)");
});

test("sessions options are checked at createApp", () => {
  assert.throws(() => createApp({ sessions: { store: "engine" } }), /needs a pub\/sub engine/);
  assert.throws(() => createApp({ sessions: { ttlMs: 10 } }), /sessions\.ttlMs must be an integer of at least 1000/);
  assert.throws(
    () => createApp({ sessions: { store: "disk" as "memory" } }),
    /sessions\.store must be "engine" or "memory"/,
  );
});

test("NATS: a second instance with the same secret reads the session, follows its changes, and concurrent changes of two keys keep both", {
  skip: natsServerMissing(),
}, async () => {
  const nats = await startNatsServer();
  cleanups.push(() => nats.stop());
  const connect = async () => {
    const pubsub = await openPubSub({ natsUrl: [nats.url] });
    cleanups.push(() => pubsub.close());
    return pubsub;
  };
  const secret = "a secret both instances share, 32+ bytes";
  const one = await start({ pubsub: await connect(), secret });
  const twoEngine = counting(await connect());
  const two = await start({ pubsub: twoEngine.engine, secret });

  const browser = new Browser(one.base);
  const onOne = await liveTab(browser, one.app);
  assert.equal((await onOne.tab.action("save", { ...onOne.tab.signals, note: "from one" })).status, 204);
  const atTwo = sameBrowser(browser, two.base);
  await until("instance two reads it", async () => shown((await atTwo.load("/")).html, "note") === "from one");

  // Two holds the session now (a live tab): a change on one reaches it without a read.
  const onTwo = await liveTab(atTwo, two.app);
  const reads = twoEngine.counts.reads;
  assert.equal((await onOne.tab.action("save", { ...onOne.tab.signals, note: "changed on one" })).status, 204);
  await until("instance two follows the change", async () => {
    return shown((await atTwo.load("/")).html, "note") === "changed on one";
  });
  assert.equal(shown((await atTwo.load("/")).html, "count"), "2");
  assert.equal(twoEngine.counts.reads, reads, "the held session took the change live, with no read");

  // Both instances change a key of their own at once: the conflicting write merges, neither is lost.
  const [a, b] = await Promise.all([
    onOne.tab.action("put", { ...onOne.tab.signals, key: "a", value: "set on one" }),
    onTwo.tab.action("put", { ...onTwo.tab.signals, key: "b", value: "set on two" }),
  ]);
  assert.equal(a.status, 204);
  assert.equal(b.status, 204);
  const both = "a=set on one b=set on two";
  await until("both keys on one", async () => shown((await browser.load("/")).html, "keys") === both);
  await until("both keys on two", async () => shown((await atTwo.load("/")).html, "keys") === both);
  // And in the stored record, as a third instance (or a restart) would read it.
  const three = await start({ pubsub: await connect(), secret });
  const page = await sameBrowser(browser, three.base).load("/");
  assert.equal(shown(page.html, "keys"), both);
  assert.equal(shown(page.html, "note"), "changed on one");
});
