// The chat CLI as a real process on the embedded engine: stopped (SIGTERM) or killed (-9) and started
// again on the same data dir and port. History must survive, and open tabs must come back by
// themselves (no reload) and show what was said while they were away.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { browserOrSkip, closeBrowser, openPage, type ProbedPage } from "../../harness/browser.ts";
import { say, waitForMessage } from "../../harness/chat-page.ts";
import { type ChatProcess, type ChatProcessOptions, startChatProcess } from "../../harness/chat-process.ts";

const WAIT_MS = 10_000;
/** The runtime's reconnect backoff tops out at 10 s (±30 %); a restart takes a few seconds more. */
const RECOVER_MS = 30_000;
// While the server is down the browser itself logs the refused connections of its retries.
const EXPECTED_WHILE_DOWN = [/ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|_via\/sse/];

after(closeBrowser);

/** Every process and temp dir of a test is cleaned up after it, whatever happened. */
function harness(t: TestContext) {
  const procs: ChatProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "via-chat-restart-"));
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill9()));
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    async start(opts: ChatProcessOptions = {}): Promise<ChatProcess> {
      const p = await startChatProcess({ dataDir: dir, ...opts });
      procs.push(p);
      return p;
    },
  };
}

async function tab(t: TestContext, browser: Browser, url: string, allow: RegExp[] = []): Promise<ProbedPage> {
  const p = await openPage(browser, null, { allowConsole: [...EXPECTED_WHILE_DOWN, ...allow] });
  t.after(() => p.close());
  p.page.setDefaultTimeout(WAIT_MS);
  const dialogs: string[] = [];
  p.page.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await p.page.goto(url);
  await p.page.waitForSelector("html[data-connection=online]");
  return p;
}

const texts = (page: Page) =>
  page.$$eval("#messages > li.chat-message .text", (els) => els.map((el) => el.textContent ?? ""));

/** Marks the document, so a reload (a new document) would show. */
async function mark(page: Page, value: string): Promise<void> {
  await page.evaluate((v) => {
    (window as unknown as { __marker: string }).__marker = v;
  }, value);
}

async function assertSameDocument(page: Page, value: string): Promise<void> {
  const seen = await page.evaluate(() => ({
    marker: (window as unknown as { __marker?: string }).__marker,
    navigations: performance.getEntriesByType("navigation").length,
  }));
  assert.deepEqual(seen, { marker: value, navigations: 1 }, "the tab recovered without a reload");
}

/** The chat's first life on a fresh data dir, and the URL of `room` on it; null: skipped (no browser here). */
async function firstLife(t: TestContext, roomName: string) {
  const browser = await browserOrSkip(t);
  if (!browser) return null;
  const h = harness(t);
  const first = await h.start();
  return { browser, h, first, room: `${first.url}/room/${roomName}` };
}

test("restart: after SIGTERM and a start on the same data dir, history is intact and open tabs recover by themselves", async (t) => {
  const s = await firstLife(t, "Go");
  if (!s) return;
  const { browser, h, first, room } = s;

  // A stays as it is through the restart; C goes offline for it, so it surely misses what is said
  // while it is away and has to catch up when it is back.
  const a = await tab(t, browser, room);
  const c = await tab(t, browser, room);
  await mark(a.page, "tab A");
  await mark(c.page, "tab C");
  const before = ["before the restart 1", "before the restart 2", "before the restart 3"];
  for (const text of before) await say(a.page, text);
  for (const text of before) await waitForMessage(a.page, text);

  await c.context.setOffline(true);
  assert.equal(await first.stop(), 0, `a clean exit on SIGTERM:\n${first.output()}`);
  await a.page.waitForFunction(() => document.documentElement.dataset.connection !== "online");
  assert.match(first.output(), /shutting down/);

  const second = await h.start({ port: first.port });
  assert.equal(second.url, first.url);

  // A fresh tab sees the history, and says something while C is still away.
  const b = await tab(t, browser, room);
  assert.deepEqual((await texts(b.page)).slice(-3), before, "history intact after the restart");
  await say(b.page, "said while C was away");
  await waitForMessage(b.page, "said while C was away");

  // A comes back by itself (reconnect backoff), in the same document.
  await a.page.waitForSelector("html[data-connection=online]", { timeout: RECOVER_MS });
  await assertSameDocument(a.page, "tab A");
  await waitForMessage(a.page, "said while C was away");

  // C comes back when its network does, and catches up.
  await c.context.setOffline(false);
  await c.page.waitForSelector("html[data-connection=online]", { timeout: RECOVER_MS });
  await assertSameDocument(c.page, "tab C");
  await waitForMessage(c.page, "said while C was away");

  // Live again: a message from another user after the restart reaches both recovered tabs, once.
  await say(b.page, "after the restart");
  for (const p of [a, c]) {
    await waitForMessage(p.page, "after the restart");
    await p.page.waitForSelector("#via-banner", { state: "hidden" });
    const seen = await texts(p.page);
    for (const text of [...before, "said while C was away", "after the restart"]) {
      assert.equal(seen.filter((x) => x === text).length, 1, `"${text}" shown exactly once`);
    }
  }
  // And the recovered tab can send.
  await say(a.page, "A is back");
  await waitForMessage(b.page, "A is back");
  for (const p of [a, b, c]) p.assertClean();
});

test("restart: messages acknowledged before a kill -9 are still there after the restart", async (t) => {
  const s = await firstLife(t, "Rust");
  if (!s) return;
  const { browser, h, first, room } = s;
  // The kill ends A's open event stream. Its body ends with the connection (no chunked encoding), so
  // the browser sees an ordinary end of stream and reconnects; it logs no error for it.
  const a = await tab(t, browser, room);
  await mark(a.page, "tab A");
  const sent = Array.from({ length: 5 }, (_, i) => `acknowledged ${i + 1}`);
  for (const text of sent) await say(a.page, text);
  // Acknowledged = shown as stored, no longer pending.
  for (const text of sent) await waitForMessage(a.page, text);
  assert.equal(await a.page.$$eval("li.chat-message.sending", (els) => els.length), 0);

  await first.kill9();
  const second = await h.start({ port: first.port });

  const b = await tab(t, browser, room);
  assert.deepEqual((await texts(b.page)).slice(-5), sent, "every acknowledged message survived the kill");
  await a.page.waitForSelector("html[data-connection=online]", { timeout: RECOVER_MS });
  await assertSameDocument(a.page, "tab A");
  assert.deepEqual((await texts(a.page)).slice(-5), sent, "the recovered tab shows them once, in order");
  await say(b.page, `after the crash on ${second.port}`);
  await waitForMessage(a.page, `after the crash on ${second.port}`);
  a.assertClean();
  b.assertClean();
});
