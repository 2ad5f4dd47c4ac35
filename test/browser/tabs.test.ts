// One person with many tabs of the chat open in one browser (one context: one cookie jar, one
// connection pool, one shared worker). A browser keeps six HTTP/1.1 connections per origin, so with
// an event stream per tab the seventh tab would never load; the tabs share one stream through the
// runtime's SharedWorker, and fall back to streams of their own when it is missing or dies.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type Chat, type ChatOptions, createChat } from "../../apps/chat/app.tsx";
import { roomSubject } from "../../apps/chat/rooms.ts";
import { browserOrSkip, closeBrowser } from "../../harness/browser.ts";
import { say, waitForMessage } from "../../harness/chat-page.ts";
import { until } from "../../harness/poll.ts";
import { openPubSub } from "../../src/pubsub/index.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import type { AppOptions } from "../../src/server/app.ts";

const TABS = 12;
const WAIT_MS = 15_000;
/** The presence grace of the test that proves a parked tab outlives it (the chat's default is 5 s). */
const GRACE_MS = 500;

after(closeBrowser);

interface Server {
  url: string;
  chat: Chat;
  pubsub: PubSub;
  port: number;
}

type ChatSettings = Omit<ChatOptions, "pubsub" | "app">;

/** The chat on the embedded engine in `dir`, on `port` (0: any). */
async function startChat(dir: string, port = 0, app: AppOptions = {}, settings: ChatSettings = {}): Promise<Server> {
  const pubsub = await openPubSub({ dataDir: dir });
  const chat = await createChat({ pubsub, ...settings, app: { clientLimits: false, ...app } });
  const listening = await chat.app.listen(port, "127.0.0.1", { handleSignals: false });
  return { url: listening.url, chat, pubsub, port: listening.port };
}

async function stopChat(s: Server): Promise<void> {
  await s.chat.close();
  await s.pubsub.close();
}

interface Setup {
  browser: Browser;
  /** The running chat (a test that restarts it sets the new one here: it is stopped after the test). */
  server: Server;
  dir: string;
  /** One browser profile: one cookie jar, one connection pool, one shared worker. */
  context: BrowserContext;
  problems: Problems;
}

/** A chat on a fresh data dir and a fresh browser context, both closed after the test; null: skipped. */
async function setup(t: TestContext, app: AppOptions = {}, settings: ChatSettings = {}): Promise<Setup | null> {
  const browser = await browserOrSkip(t);
  if (!browser) return null;
  const dir = mkdtempSync(join(tmpdir(), "via-tabs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s: Setup = {
    browser,
    dir,
    server: await startChat(dir, 0, app, settings),
    context: await browser.newContext(),
    problems: { errors: [], log: [] },
  };
  t.after(async () => {
    await s.context.close();
    await stopChat(s.server);
  });
  return s;
}

interface Problems {
  errors: string[];
  /** What else the pages logged (warnings say why a tab left the shared stream). */
  log: string[];
}

/** `n` tabs of `path` in one context, opened one after the other (as a person opens them). */
async function openTabs(context: BrowserContext, base: string, path: string, n: number, problems: Problems) {
  const pages: Page[] = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("pageerror", (err) => problems.errors.push(`tab ${i}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.errors.push(`tab ${i}: ${msg.text()}`);
      else problems.log.push(`tab ${i}: ${msg.type()} ${msg.text()}`);
    });
    await page.goto(base + path);
    try {
      await page.waitForSelector("html[data-connection=online]");
    } catch (err) {
      throw new Error(`tab ${i} did not come online: ${problems.log.join("; ")}`, { cause: err });
    }
    pages.push(page);
  }
  return pages;
}

const tag = () => Math.random().toString(36).slice(2, 8);

// Scripts for the pages are strings: the test loader's helpers (esbuild's __name) do not exist there.

/** In the page: note the time a message with `text` appears in the list (call with JSON of the text). */
const watchArrival = (text: string) => `{
  const list = document.getElementById("messages");
  new MutationObserver(() => {
    if ([...list.querySelectorAll("li.chat-message .text")].some((el) => el.textContent === ${JSON.stringify(text)}))
      window.__arrivedAt ??= Date.now();
  }).observe(list, { childList: true, subtree: true });
}`;

/** A browser without SharedWorker (Chrome on Android), whose page visibility the test sets. */
const NO_SHARED_WORKER_CONTROLLED_VISIBILITY = `{
  delete window.SharedWorker;
  let hidden = false;
  Object.defineProperty(document, "hidden", { get: () => hidden });
  Object.defineProperty(document, "visibilityState", { get: () => (hidden ? "hidden" : "visible") });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
}`;
const setHidden = (page: Page, hidden: boolean) => page.evaluate(`window.__setHidden(${hidden})`);

/** Publishes `n` chat messages into `room` straight through the engine (as an outside service would). */
async function publishMessages(pubsub: PubSub, room: string, texts: string[], perSecond: number): Promise<void> {
  for (const text of texts) {
    const id = `ext-${tag()}${tag()}`;
    const message = { v: 1, id, user: { name: "Feeder", emoji: "🤖" }, from: "feeder", text, time: Date.now() };
    await pubsub.publish(roomSubject(room), JSON.stringify(message), { msgId: id });
    await delay(1_000 / perSecond); // pacing: traffic spread over time, not a wait for anything
  }
}

/** The texts a page shows, oldest first. */
function shownTexts(page: Page): Promise<string[]> {
  return page.$$eval("#messages > li.chat-message .text", (els) => els.map((el) => el.textContent ?? ""));
}

/** Every shared worker of the browser, closed as if it crashed (DevTools protocol). */
async function killSharedWorkers(browser: Browser): Promise<number> {
  const cdp = await browser.newBrowserCDPSession();
  const { targetInfos } = (await cdp.send("Target.getTargets")) as {
    targetInfos: Array<{ targetId: string; type: string }>;
  };
  const workers = targetInfos.filter((x) => x.type === "shared_worker");
  for (const w of workers) await cdp.send("Target.closeTarget", { targetId: w.targetId });
  await cdp.detach();
  return workers.length;
}

/** How the server's connected tabs get their events: own streams, shared streams, tabs in all. */
function transports(server: Server): { own: number; shared: number; tabs: number } {
  const stats = server.chat.app.stats();
  return { own: stats.connected - stats.sharedTabs, shared: stats.sharedStreams, tabs: stats.connected };
}

test("twelve tabs in one browser all load, receive a new message within 2 s and can send", async (t) => {
  // The tabs share one session: a send rate whose burst (5×) covers the test's 13 messages at once.
  const s = await setup(t, {}, { sendRate: 3 });
  if (!s) return;
  const { server, context, problems } = s;
  const pages = await openTabs(context, server.url, "/room/Go", TABS, problems);

  assert.deepEqual(transports(server), { own: 0, shared: 1, tabs: TABS }, "every tab rides the one shared stream");

  const id = tag();
  // Each tab notes when the message appears (same machine: one clock for the pages and the test).
  await Promise.all(pages.map((p) => p.evaluate(watchArrival(`hello all ${id}`))));
  const sentAt = Date.now();
  await say(pages[0]!, `hello all ${id}`);
  await Promise.all(pages.map((p) => waitForMessage(p, `hello all ${id}`)));
  const arrivals = await Promise.all(pages.map((p) => p.evaluate("window.__arrivedAt ?? 0") as Promise<number>));
  const slowest = Math.max(...arrivals) - sentAt;
  t.diagnostic(`the slowest of ${TABS} tabs showed the message ${slowest} ms after Enter`);
  assert.ok(slowest < 2_000, `every tab shows a new message within 2 s (slowest ${slowest} ms)`);

  for (const [i, page] of pages.entries()) await say(page, `from tab ${i} ${id}`);
  for (const page of pages) for (let i = 0; i < TABS; i++) await waitForMessage(page, `from tab ${i} ${id}`);
  assert.deepEqual(problems.errors, []);
});

test("a tab closed mid-traffic does not disturb the other tabs", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { server, context, problems } = s;
  const pages = await openTabs(context, server.url, "/room/Go", 6, problems);
  const texts = Array.from({ length: 40 }, (_, i) => `traffic ${i} ${tag()}`);
  const feeding = publishMessages(server.pubsub, "Go", texts, 20);
  await waitForMessage(pages[0]!, texts[10]!);
  await pages[2]!.close();
  await feeding;
  const rest = pages.filter((_, i) => i !== 2);
  for (const page of rest) {
    await waitForMessage(page, texts.at(-1)!);
    const shown = (await shownTexts(page)).filter((x) => x.startsWith("traffic "));
    assert.deepEqual(shown, texts, "every message, once, in order");
  }
  await until("the closed tab is gone from the server", () => server.chat.app.stats().connected === 5, WAIT_MS);
  assert.deepEqual(transports(server), { own: 0, shared: 1, tabs: 5 });
  assert.deepEqual(problems.errors, []);
});

test("a browser closed with its tabs on a shared stream leaves presence within seconds", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { browser, server, context: watcher, problems } = s;
  const visitor = await browser.newContext();
  let visitorOpen = true;
  t.after(() => (visitorOpen ? visitor.close() : undefined));
  const [a] = await openTabs(watcher, server.url, "/room/Go", 1, problems);
  await openTabs(visitor, server.url, "/room/Go", 3, problems);
  const people = () => a!.textContent("#presence .count");
  await until("both people are here", async () => (await people()) === "2 people here", WAIT_MS);
  assert.deepEqual(transports(server), { own: 0, shared: 2, tabs: 4 });
  const closedAt = Date.now();
  visitorOpen = false;
  await visitor.close();
  await until("the visitor left", async () => (await people()) === "1 person here", 10_000);
  t.diagnostic(`the closed browser left presence ${Date.now() - closedAt} ms after it closed`);
  assert.deepEqual(transports(server), { own: 0, shared: 1, tabs: 1 });
  assert.deepEqual(problems.errors, []);
});

test("the server restarts with twelve tabs open and every tab recovers without a reload", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { context, problems } = s;
  const pages = await openTabs(context, s.server.url, "/room/Go", TABS, problems);
  // A reload would lose this.
  await Promise.all(pages.map((p) => p.evaluate("window.__notReloaded = true")));

  await stopChat(s.server);
  await Promise.all(pages.map((p) => p.waitForSelector("html:not([data-connection=online])")));
  s.server = await startChat(s.dir, s.server.port);
  const server = s.server;
  await Promise.all(pages.map((p) => p.waitForSelector("html[data-connection=online]", { timeout: 30_000 })));
  await until("every tab is attached again", () => transports(server).tabs === TABS, WAIT_MS);
  assert.deepEqual(transports(server), { own: 0, shared: 1, tabs: TABS });

  const id = tag();
  await say(pages[3]!, `after the restart ${id}`);
  await Promise.all(pages.map((p) => waitForMessage(p, `after the restart ${id}`)));
  const kept = await Promise.all(pages.map((p) => p.evaluate("window.__notReloaded === true")));
  assert.deepEqual(kept, Array(TABS).fill(true), "no tab reloaded");
  // The browser logs the refused connection attempts while the server is down; nothing else.
  assert.deepEqual(
    problems.errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
    [],
  );
});

test("when the shared worker dies, the tabs go on with streams of their own", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { browser, server, context, problems } = s;
  const pages = await openTabs(context, server.url, "/room/Go", 4, problems);
  assert.deepEqual(transports(server), { own: 0, shared: 1, tabs: 4 });

  assert.equal(await killSharedWorkers(browser), 1);
  await until(
    "every tab has a stream of its own",
    () => {
      const now = transports(server);
      return now.own === 4 && now.shared === 0;
    },
    WAIT_MS,
  );
  const id = tag();
  await say(pages[1]!, `after the worker ${id}`);
  await Promise.all(pages.map((p) => waitForMessage(p, `after the worker ${id}`)));
  assert.ok(
    problems.log.some((l) => l.includes("the shared worker ended")),
    "the tabs say why they left it",
  );
  assert.deepEqual(problems.errors, []);
});

test("without SharedWorker each tab has its own stream; a hidden one parks, stays present and resyncs when shown", async (t) => {
  const s = await setup(t, { parkHiddenTabsAfterMs: 300 }, { presenceGraceMs: GRACE_MS });
  if (!s) return;
  const { browser, server, context: watcher, problems } = s;
  const hider = await browser.newContext();
  t.after(() => hider.close());
  await hider.addInitScript(NO_SHARED_WORKER_CONTROLLED_VISIBILITY);
  const [a] = await openTabs(watcher, server.url, "/room/Go", 1, problems);
  const [b] = await openTabs(hider, server.url, "/room/Go", 1, problems);
  const people = (page: Page) => page.textContent("#presence .count");
  await until("both are here", async () => (await people(a!)) === "2 people here", WAIT_MS);
  assert.deepEqual(transports(server), { own: 1, shared: 1, tabs: 2 });

  await setHidden(b!, true);
  await until("the hidden tab released its stream", () => server.chat.app.stats().connected === 1, WAIT_MS);
  const id = tag();
  await say(a!, `while hidden ${id}`);
  // Past the grace a dropped stream gets, and the presence interval after it: a parked tab is still
  // here. A negative check on the server's clock, so a fixed wait, short because the grace is.
  await delay(GRACE_MS + 1_000);
  assert.equal(await people(a!), "2 people here", "a parked tab stays present");

  await setHidden(b!, false);
  await waitForMessage(b!, `while hidden ${id}`);
  assert.equal(server.chat.app.stats().connected, 2);

  await b!.close({ runBeforeUnload: true });
  await until("the closed tab left at once", async () => (await people(a!)) === "1 person here", 3_000);
  assert.deepEqual(problems.errors, []);
});
