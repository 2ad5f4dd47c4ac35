// The framework in real Chromium under its default headers (strict CSP, no 'unsafe-eval').
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, type TestContext, test } from "node:test";
import { browserOrSkip, closeBrowser, openPage, type ProbedPage } from "../../harness/browser.ts";
import type { App } from "../../src/index.ts";
import { createFixtureApp } from "../support/fixture-app.tsx";

const running: App[] = [];
after(async () => {
  await closeBrowser();
  await Promise.all(running.map((a) => a.close()));
});

// One secret for every server of this file: a restarted server must verify the tab ids of the first.
const secret = "browser tests: the same secret for every server life";

async function start(port = 0): Promise<{ app: App; url: string; port: number }> {
  const { app } = createFixtureApp({ secret });
  running.push(app);
  const res = await app.listen(port, "127.0.0.1", { handleSignals: false });
  return { app, url: res.url, port: res.port };
}

/** A fresh server and a page on it, online and closed after the test; null: no browser here (skipped). */
async function online(
  t: TestContext,
): Promise<{ p: ProbedPage; page: ProbedPage["page"]; app: App; url: string } | null> {
  const browser = await browserOrSkip(t);
  if (!browser) return null;
  const { app, url } = await start();
  const p = await openPage(browser, url);
  t.after(() => p.close());
  await p.page.waitForSelector("html[data-connection=online]");
  return { p, page: p.page, app, url };
}

test("browser: a click runs the action and the page shows the new state", async (t) => {
  const s = await online(t);
  if (!s) return;
  const { p } = s;
  for (let i = 0; i < 3; i++) await p.page.click("#click");
  await p.page.waitForFunction(() => document.querySelector("#clicks")?.textContent === "3");
  p.assertClean();
});

test("browser: typing is not disturbed while the server pushes patches and morphs every 100 ms", async (t) => {
  const s = await online(t);
  if (!s) return;
  const { p, page } = s;
  await page.click("#tick");
  await page.waitForFunction(() => Number(document.querySelector("#ticks")?.textContent) >= 2);
  await page.click("#text");
  const phrase = "the quick brown fox jumps over the lazy dog";
  await page.keyboard.type(phrase, { delay: 15 });
  // Move the caret into the middle and keep typing there, across several pushes.
  for (let i = 0; i < 8; i++) await page.keyboard.press("ArrowLeft");
  await page.keyboard.type("XY", { delay: 120 });
  const ticksBefore = Number(await page.textContent("#ticks"));
  // Two more pushes (morphs) after the last keystroke, then the input is looked at.
  await page.waitForFunction((n) => Number(document.querySelector("#ticks")?.textContent) > n + 1, ticksBefore);
  const state = await page.evaluate(() => {
    const el = document.querySelector<HTMLInputElement>("#text")!;
    return { value: el.value, caret: el.selectionStart, focused: document.activeElement === el };
  });
  const expected = `${phrase.slice(0, -8)}XY${phrase.slice(-8)}`;
  assert.equal(state.value, expected);
  assert.equal(state.caret, expected.length - 8);
  assert.ok(state.focused, "focus stays in the input");
  p.assertClean();
});

test("browser: the reconnect banner appears when the server goes away and clears when it is back", async (t) => {
  const browser = await browserOrSkip(t);
  if (!browser) return;
  const first = await start();
  // The browser itself logs the refused connections while the server is down; they are expected.
  const p = await openPage(browser, first.url, { allowConsole: [/ERR_CONNECTION_REFUSED|_via\/sse/] });
  const page = p.page;
  await page.waitForSelector("html[data-connection=online]");
  assert.equal(await page.isVisible("#via-banner"), false);
  await first.app.close();
  await page.waitForSelector("#via-banner", { state: "visible", timeout: 5000 });
  assert.notEqual(await page.getAttribute("html", "data-connection"), "online");
  // Same port, new process state: the tab is unknown there and re-bootstraps without a reload.
  await start(first.port);
  await page.waitForSelector("html[data-connection=online]", { timeout: 15_000 });
  await page.waitForSelector("#via-banner", { state: "hidden" });
  await page.click("#click");
  await page.waitForFunction(() => document.querySelector("#clicks")?.textContent === "1");
  p.assertClean();
  await p.close();
});

test("browser: a failing action shows a notification and the page keeps working", async (t) => {
  const s = await online(t);
  if (!s) return;
  const { p, page } = s;
  await page.click("#boom");
  await page.waitForSelector(".via-toast-error");
  assert.match((await page.textContent(".via-toast-error")) ?? "", /Something went wrong/);
  await page.click("#click");
  await page.waitForFunction(() => document.querySelector("#clicks")?.textContent === "1");
  p.assertClean();
});

test("browser: a page on another port of the same host cannot open a tab's event stream with the user's cookie", async (t) => {
  const s = await online(t);
  if (!s) return;
  const { p: victim, app, url } = s;
  // A tab id issued to the victim's session, as if it had leaked: only the origin checks stand between
  // the other site and a live tab (which would, say, put the victim in a chat room's presence list).
  const leaked = await victim.page.evaluate(async () => {
    const html = await (await fetch("/")).text();
    const meta = new DOMParser().parseFromString(html, "text/html").querySelector('meta[name="via-boot"]');
    return (JSON.parse(meta?.getAttribute("content") ?? "{}") as { tab: string }).tab;
  });
  // Same host, another port: "same-site", so the browser sends the SameSite=Lax session cookie along.
  const other = createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(`<!doctype html><title>waiting</title><script>
      const es = new EventSource(${JSON.stringify(`${url}/_via/sse?tab=${leaked}&path=/`)}, { withCredentials: true });
      es.onopen = () => { document.title = "open"; };
      es.onerror = () => { document.title = "refused"; es.close(); };
    </script>`);
  });
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  try {
    const attacker = await victim.context.newPage();
    await attacker.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
    await attacker.waitForFunction(() => document.title !== "waiting");
    assert.equal(await attacker.title(), "refused");
    assert.equal(app.stats().tabs, 1, "only the victim's own tab is live");
  } finally {
    other.close();
  }
});
