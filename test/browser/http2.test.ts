// The chat served over HTTPS (self-signed certificate, `app.listen(…, { tls })`) in real Chromium: one
// browser context (one person: one cookie jar, one connection pool) opens 10 tabs of a room, each with
// an event stream of its own. Over HTTP/2 they share one connection, so all of them load and go live;
// over plain HTTP/1.1 a browser's 6 connections per origin would each be held by a tab's stream.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { Page } from "playwright-core";
import { createChat } from "../../apps/chat/app.tsx";
import { browserOrSkip, closeBrowser } from "../../harness/browser.ts";
import { say, waitForMessage } from "../../harness/chat-page.ts";
import { certOrSkip } from "../../harness/tls.ts";
import { openPubSub } from "../../src/pubsub/index.ts";

const TABS = 10;
const WAIT_MS = 15_000;

after(closeBrowser);

test("chat over HTTPS/HTTP/2: 10 tabs of one browser all load, go live and receive a message", async (t) => {
  const browser = await browserOrSkip(t);
  if (!browser) return;
  const cert = certOrSkip(t);
  if (!cert) return;
  const dir = mkdtempSync(join(tmpdir(), "via-h2-browser-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pubsub = await openPubSub({ dataDir: dir });
  t.after(() => pubsub.close());
  const chat = await createChat({ pubsub });
  t.after(() => chat.close());
  const { url, server } = await chat.app.listen(0, "127.0.0.1", {
    handleSignals: false,
    tls: { cert: cert.cert, key: cert.key },
  });
  let connections = 0;
  server.on("connection", () => connections++);
  assert.match(url, /^https:\/\//);

  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.after(() => context.close());
  // Every tab on an event stream of its own (the runtime's fallback without SharedWorker): what HTTP/2
  // has to carry here. Tabs sharing one stream through the worker are test/browser/tabs.test.ts.
  await context.addInitScript(() => {
    Reflect.deleteProperty(globalThis, "SharedWorker");
  });
  const errors: string[] = [];
  const pages: Page[] = [];
  for (let i = 0; i < TABS; i++) {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("pageerror", (err) => errors.push(`tab ${i}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") errors.push(`tab ${i}: ${msg.text()}`);
    });
    pages.push(page);
  }
  // Opened one after another, each left open: tab 7 onwards is where HTTP/1.1 would stall.
  for (const page of pages) {
    await page.goto(`${url}/room/Go`);
    await page.waitForSelector("html[data-connection=online]");
  }
  for (const [i, page] of pages.entries()) {
    const protocol = await page.evaluate(
      () => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).nextHopProtocol,
    );
    assert.equal(protocol, "h2", `tab ${i} was loaded over HTTP/2`);
  }
  assert.ok(chat.app.stats().tabs >= 1, "the tabs are live on the server");

  const text = `hello all ${Math.random().toString(36).slice(2, 8)}`;
  await say(pages[0]!, text);
  await Promise.all(pages.map((page) => waitForMessage(page, text)));
  assert.ok(connections <= 2, `the ${TABS} tabs shared the browser's connection (${connections} opened)`);
  assert.deepEqual(errors, [], "no page error or console error");
});
