// Real Chromium against a hand-driven server: the page follows PROTOCOL §1 under its strict CSP,
// the event stream is written by hand in Datastar v1 format, and actions are recorded.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, type TestContext, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { Page } from "playwright-core";
import { browserOrSkip, closeBrowser, openPage, type ProbedPage } from "../../harness/browser.ts";
import { until } from "../../harness/poll.ts";
import { buildRuntime } from "../../src/client/build.ts";

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";
const TAB = "AAAAAAAAAAAAAAAAAAAAAA";
const CSS = "#log { height: 60px; overflow: auto; } #log p { height: 20px; margin: 0; }";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Stream {
  query: URLSearchParams;
  res: ServerResponse;
  closed: boolean;
}

interface ActionRequest {
  id: string;
  headers: IncomingMessage["headers"];
  body: { signals: Record<string, Json>; cursor?: string };
  start: number;
  end: number;
}

interface ActionReply {
  status: number;
  text?: string;
  delay?: number;
  headers?: Record<string, string>;
}

interface PageSpec {
  view: string;
  signals?: Record<string, Json>;
  /** The boot signals as raw JSON, for keys an object literal cannot carry (`__proto__`). */
  bootSignals?: string;
  toasts?: boolean;
  inlineScript?: boolean;
}

let runtime = "";

before(async () => {
  runtime = (await buildRuntime()).code;
});
after(closeBrowser);

const escapeAttr = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function pageHtml(spec: PageSpec): string {
  const signals = spec.bootSignals ?? JSON.stringify(spec.signals ?? {});
  const boot = `{"tab":${JSON.stringify(TAB)},"signals":${signals},"v":"testhash"}`;
  return `<!doctype html>
<html lang="en" data-connection="connecting">
<head>
  <meta charset="utf-8">
  <title>runtime test</title>
  <meta name="via-boot" content="${escapeAttr(boot)}">
  <link rel="stylesheet" href="/_via/static/app.css">
  <script type="module" src="/_via/static/runtime.js"></script>
  ${spec.inlineScript ? "<script>document.title = 'inline ran';</script>" : ""}
</head>
<body>
  <div id="via-view">${spec.view}</div>
  <div id="via-banner" role="status" hidden>Reconnecting…</div>
  ${spec.toasts === false ? "" : '<div id="via-toasts" aria-live="polite"></div>'}
</body>
</html>`;
}

/** A tiny stand-in for the via server, driven by the test. */
async function startServer(t: TestContext, spec: PageSpec) {
  const streams: Stream[] = [];
  const actions: ActionRequest[] = [];
  const held: Array<() => void> = [];
  let pageLoads = 0;
  let eventId = 0;
  const state = {
    holdStreams: false,
    /** Answer the event stream (and its probe) with this status instead of opening it. */
    refuseStreams: 0,
    probes: 0,
    reply: (_id: string): ActionReply => ({ status: 204 }),
  };

  const openStream = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    const stream: Stream = { query, res, closed: false };
    req.on("close", () => {
      stream.closed = true;
    });
    streams.push(stream);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/") {
      pageLoads++;
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP });
      res.end(pageHtml(spec));
    } else if (url.pathname === "/_via/static/runtime.js") {
      res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
      res.end(runtime);
    } else if (url.pathname === "/_via/static/app.css") {
      res.writeHead(200, { "Content-Type": "text/css; charset=utf-8" });
      res.end(CSS);
    } else if (url.pathname === "/_via/sse" && url.searchParams.get("probe") === "1") {
      state.probes++;
      res.writeHead(state.refuseStreams || 204).end();
    } else if (url.pathname === "/_via/sse" && state.refuseStreams) {
      res.writeHead(state.refuseStreams, { "Content-Type": "text/plain" }).end("refused");
    } else if (url.pathname === "/_via/sse") {
      if (state.holdStreams) held.push(() => openStream(req, res, url.searchParams));
      else openStream(req, res, url.searchParams);
    } else if (req.method === "POST" && url.pathname.startsWith("/_via/action/")) {
      const start = Date.now();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const id = decodeURIComponent(url.pathname.slice("/_via/action/".length));
        const reply = state.reply(id);
        if (reply.delay) await delay(reply.delay); // a slow answer, as the test asked
        const record: ActionRequest = {
          id,
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
          start,
          end: Date.now(),
        };
        actions.push(record);
        res.writeHead(reply.status, { "Content-Type": "text/plain; charset=utf-8", ...reply.headers });
        res.end(reply.text ?? "");
      });
    } else if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/`,
    state,
    streams,
    actions,
    get pageLoads() {
      return pageLoads;
    },
    /** Writes one Datastar event to the newest open stream; returns its id. */
    send(event: string, lines: string[]): number {
      const stream = streams.at(-1);
      assert.ok(stream && !stream.closed, "no open event stream");
      eventId++;
      stream.res.write(`event: ${event}\nid: ${eventId}\n${lines.map((l) => `data: ${l}\n`).join("")}\n`);
      return eventId;
    },
    releaseHeld(): void {
      state.holdStreams = false;
      for (const open of held.splice(0)) open();
    },
  };
}

type TestServer = Awaited<ReturnType<typeof startServer>>;

/**
 * Boots a page against a fresh server and waits until its stream is online. With `clock`, the page's
 * timers run on Playwright's fake clock (installed before the page loads, flowing until a test pauses it).
 */
async function setup(
  t: TestContext,
  spec: PageSpec,
  allowConsole: RegExp[] = [],
  { clock = false } = {},
): Promise<{ server: TestServer; probe: ProbedPage; page: Page } | null> {
  const browser = await browserOrSkip(t);
  if (!browser) return null;
  const server = await startServer(t, spec);
  const probe = await openPage(browser, null, { allowConsole });
  t.after(() => probe.close());
  if (clock) await probe.page.clock.install();
  await probe.page.goto(server.url);
  await until("the event stream", () => server.streams.length === 1);
  await until("state online", async () => (await state(probe.page)) === "online");
  return { server, probe, page: probe.page };
}

type Booted = NonNullable<Awaited<ReturnType<typeof setup>>>;
type Boot = (spec: PageSpec, allowConsole?: RegExp[], options?: { clock?: boolean }) => Promise<Booted>;
const SKIPPED = Symbol("no browser here");

/**
 * A test whose page `boot` opens (as `setup` does; the test is skipped without a browser), and whose
 * page must end clean: no console error, page error or CSP violation.
 */
function pageTest(name: string, body: (boot: Boot) => Promise<void>): void {
  test(name, async (t) => {
    let probe: ProbedPage | undefined;
    const boot: Boot = async (...args) => {
      const s = await setup(t, ...args);
      if (!s) throw SKIPPED;
      probe = s.probe;
      return s;
    };
    try {
      await body(boot);
    } catch (err) {
      if (err === SKIPPED) return;
      throw err;
    }
    probe?.assertClean();
  });
}

const signals = (page: Page) => page.evaluate(() => window.__via?.signals());
const state = (page: Page) => page.evaluate(() => window.__via?.state());

/** The element patches, as the server would write them: one data line per HTML line. */
function elements(html: string, opts: { selector?: string; mode?: string } = {}): string[] {
  const lines: string[] = [];
  if (opts.selector) lines.push(`selector ${opts.selector}`);
  if (opts.mode) lines.push(`mode ${opts.mode}`);
  for (const line of html.split("\n")) lines.push(`elements ${line}`);
  return lines;
}

test("runtime bundle and shared worker contain no eval or Function constructor and stay small", async () => {
  const { worker } = await buildRuntime();
  for (const code of [runtime, worker]) assert.doesNotMatch(code, /\beval\s*\(|new Function\b|\bFunction\s*\(/);
  // idiomorph is about 9 KB of it.
  assert.ok(runtime.length < 24_000, `runtime is ${runtime.length} bytes`);
  assert.ok(worker.length < 4_000, `worker is ${worker.length} bytes`);
});

test("browser harness reports CSP violations", async (t) => {
  const browser = await browserOrSkip(t);
  if (!browser) return;
  const server = await startServer(t, { view: "<p>x</p>", inlineScript: true });
  const probe = await openPage(browser, server.url, { allowConsole: [/Content Security Policy/] });
  t.after(() => probe.close());
  await until("a CSP violation report", () => probe.problems.cspViolations.length > 0);
  assert.match(probe.problems.cspViolations[0] ?? "", /script-src/);
  assert.notEqual(await probe.page.title(), "inline ran");
});

pageTest("runtime morphs an outer patch without losing the focused input's value and caret", async (boot) => {
  const items = (n: number) => Array.from({ length: n }, (_, i) => `<p>item ${i + 1}</p>`).join("");
  const view = (count: number, n: number) =>
    `<input id="draft" data-bind="draft" value=""><div id="log">${items(n)}</div><p id="count">${count}</p>`;
  const { server, page } = await boot({ view: view(0, 20), signals: { draft: "" } });

  await page.locator("#draft").click();
  await page.keyboard.type("hello world");
  for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowLeft");
  await page.locator("#log").evaluate((el) => {
    el.scrollTop = 100;
  });

  server.send("datastar-patch-elements", elements(`<div id="via-view">${view(1, 21)}</div>`));
  await until("the morph", async () => (await page.locator("#count").textContent()) === "1");

  assert.equal(await page.locator("#log p").count(), 21);
  assert.equal(await page.locator("#draft").inputValue(), "hello world");
  const caret = await page.locator("#draft").evaluate((el) => {
    const input = el as HTMLInputElement;
    return { start: input.selectionStart, end: input.selectionEnd, focused: document.activeElement === input };
  });
  assert.deepEqual(caret, { start: 8, end: 8, focused: true });
  assert.equal(await page.locator("#log").evaluate((el) => el.scrollTop), 100);
  assert.equal((await signals(page))?.draft, "hello world");
});

pageTest("runtime applies append, prepend, before, after, inner, replace and remove modes", async (boot) => {
  const view =
    '<ul id="list"><li id="b">b</li></ul><div id="box"><span>old</span></div>' +
    '<p id="gone">x</p><p class="rm">1</p><p class="rm">2</p><div id="swap">s</div><svg id="pic"></svg>';
  const { server, page } = await boot({ view, signals: { room: "Rust" } });

  server.send("datastar-patch-elements", elements('<li id="c">c</li>', { selector: "#list", mode: "append" }));
  server.send("datastar-patch-elements", elements('<li id="a">a</li>', { selector: "#list", mode: "prepend" }));
  server.send("datastar-patch-elements", elements('<h2 id="title">t</h2>', { selector: "#list", mode: "before" }));
  server.send(
    "datastar-patch-elements",
    elements('<p id="foot">f</p>\n<input id="room" data-bind="room">', { selector: "#list", mode: "after" }),
  );
  server.send("datastar-patch-elements", elements("<em>new</em>", { selector: "#box", mode: "inner" }));
  server.send(
    "datastar-patch-elements",
    elements('<section id="swap2">r</section>', { selector: "#swap", mode: "replace" }),
  );
  server.send("datastar-patch-elements", elements("", { selector: ".rm", mode: "remove" }));
  server.send("datastar-patch-elements", elements('<p id="gone"></p>', { mode: "remove" }));
  // A view transition applies its patch later; the next event must still land after it.
  server.send("datastar-patch-elements", [
    "selector #list",
    "mode append",
    "useViewTransition true",
    'elements <li id="d">d</li>',
  ]);
  server.send("datastar-patch-elements", elements('<li id="e">e</li>', { selector: "#list", mode: "append" }));
  server.send("datastar-patch-elements", [
    "selector #pic",
    "mode append",
    "namespace svg",
    'elements <circle id="dot" r="2"></circle>',
  ]);
  // outer without selector: each top-level element finds its target by id.
  server.send("datastar-patch-elements", elements('<li id="a">A!</li>\n<li id="c">C!</li>'));
  const last = server.send(
    "datastar-patch-elements",
    elements('<i id="done"></i>', { selector: "#via-view", mode: "append" }),
  );
  assert.ok(last > 0);
  await until("all patches applied", async () => (await page.locator("#done").count()) === 1);

  const shape = await page
    .locator("#via-view")
    .evaluate((root) => Array.from(root.children, (el) => `${el.tagName.toLowerCase()}#${el.id}:${el.textContent}`));
  assert.deepEqual(shape, [
    "h2#title:t",
    "ul#list:A!bC!de",
    "p#foot:f",
    "input#room:",
    "div#box:new",
    "section#swap2:r",
    "svg#pic:",
    "i#done:",
  ]);
  assert.equal(
    await page.locator("#dot").evaluate((el) => el.namespaceURI),
    "http://www.w3.org/2000/svg",
    "namespace svg parses as SVG",
  );
  assert.equal(await page.locator("#box").innerHTML(), "<em>new</em>");
  // A bound input inserted by a patch takes the signal's value.
  assert.equal(await page.locator("#room").inputValue(), "Rust");
});

pageTest("runtime sends signals with the action and sets data-on set-signals before firing", async (boot) => {
  const view =
    '<input id="name" data-bind="name"><span id="room" data-text="room"></span>' +
    '<button id="go" data-on-click=\'{"action":"pick","set":{"room":"Rust"}}\'>Go</button>' +
    '<a id="lnk" href="/elsewhere" data-on-click="follow"><span id="inner">link</span></a>';
  const { server, page } = await boot({ view, signals: { name: "", room: "General", _secret: 1 } });
  assert.equal(await page.locator("#room").textContent(), "General");

  await page.locator("#name").fill("Ann");
  await page.locator("#go").click();
  await until("the action", () => server.actions.length === 1);
  const [action] = server.actions;
  assert.equal(action?.id, "pick");
  assert.equal(action?.headers["via-tab"], TAB);
  assert.equal(action?.headers["via-request"], "1");
  assert.equal(action?.headers["content-type"], "application/json");
  assert.deepEqual(action?.body, { signals: { name: "Ann", room: "Rust" } });
  assert.equal(await page.locator("#room").textContent(), "Rust");
  assert.equal((await signals(page))?._secret, 1, "client-only signals stay in the store");

  // A click inside a link fires the action and does not navigate.
  await page.locator("#inner").click();
  await until("the link action", () => server.actions.length === 2);
  assert.equal(server.actions[1]?.id, "follow");
  // A later click's action arriving shows the page is still this one: a navigation would have left it.
  await page.locator("#go").click();
  await until("a later action", () => server.actions.length === 3);
  assert.equal(server.pageLoads, 1);
  assert.equal(new URL(page.url()).pathname, "/");
});

pageTest("runtime keydown Enter trigger fires only for Enter", async (boot) => {
  const view =
    '<form id="f"><input id="msg" data-bind="msg" data-on-keydown=\'{"action":"send","key":"Enter"}\'></form>' +
    '<button id="ping" data-on-click="ping">ping</button>';
  const { server, page } = await boot({ view, signals: { msg: "" } });

  await page.locator("#msg").click();
  await page.keyboard.type("hi");
  await page.keyboard.press("Enter");
  // Actions go out one at a time in order: an action of the typed keys would have come first.
  await until("the Enter action", () => server.actions.length >= 1);
  assert.deepEqual(
    server.actions.map((a) => a.id),
    ["send"],
  );
  assert.deepEqual(server.actions[0]?.body, { signals: { msg: "hi" } });
  // And a later click's action comes next: Enter fired once.
  await page.locator("#ping").click();
  await until("a later action", () => server.actions.length >= 2);
  assert.deepEqual(
    server.actions.map((a) => a.id),
    ["send", "ping"],
  );
  // preventDefault on Enter stops the form's implicit submission.
  assert.equal(server.pageLoads, 1);
});

pageTest("runtime debounces input triggers", async (boot) => {
  const view =
    '<input id="q" data-bind="q" data-on-input="search">' +
    '<input id="later" data-bind="later" data-on-input=\'{"action":"slow","debounce":2000}\'>' +
    '<button id="ping" data-on-click="ping">ping</button>';
  const { server, page } = await boot({ view, signals: { q: "", later: "" } }, [], { clock: true });
  // From here the page's time moves only when the test moves it.
  await page.clock.pauseAt(await page.evaluate(() => Date.now() + 1_000));
  const ids = () => server.actions.map((a) => a.id);

  await page.locator("#q").click();
  await page.keyboard.type("hello");
  await page.clock.runFor(300);
  await until("the debounced action", () => server.actions.length === 1);
  assert.equal(server.actions[0]?.id, "search");
  assert.equal(server.actions[0]?.body.signals.q, "hello");

  // A custom debounce longer than the default: still quiet 1,999 ms after the last keystroke. Actions
  // go out in order, so once a later click's action is in, a fired debounce's would be too.
  await page.locator("#later").click();
  await page.keyboard.type("ab");
  await page.clock.runFor(1_999);
  await page.locator("#ping").click();
  await until("the click's action", () => server.actions.length >= 2);
  assert.deepEqual(
    ids(),
    ["search", "ping"],
    "five input events, one action; the custom debounce outlasts the default",
  );
  await page.clock.runFor(1);
  await until("the custom debounce action", () => server.actions.length === 3);
  assert.equal(server.actions[2]?.id, "slow");
  assert.equal(server.actions[2]?.body.signals.later, "ab");
  assert.deepEqual(ids(), ["search", "ping", "slow"]);
});

pageTest("runtime binds text, textarea, select, checkbox and number inputs two-way", async (boot) => {
  const view =
    '<input id="t" data-bind="text"><span id="tt" data-text="text"></span>' +
    '<textarea id="ta" data-bind="notes"></textarea>' +
    '<select id="sel" data-bind="color"><option>red</option><option>blue</option></select>' +
    '<input id="cb" type="checkbox" data-bind="agree">' +
    '<input id="num" type="number" data-bind="qty"><span id="nt" data-text="qty"></span>' +
    '<input id="seeded" data-bind="seeded" value="from-server">';
  const { page } = await boot({ view, signals: { text: "a", notes: "n", color: "blue", agree: true, qty: 2 } });

  assert.equal(await page.locator("#t").inputValue(), "a");
  assert.equal(await page.locator("#tt").textContent(), "a");
  assert.equal(await page.locator("#ta").inputValue(), "n");
  assert.equal(await page.locator("#sel").inputValue(), "blue");
  assert.equal(await page.locator("#cb").isChecked(), true);
  assert.equal(await page.locator("#num").inputValue(), "2");

  await page.locator("#t").fill("typed");
  await page.locator("#ta").fill("line1\nline2");
  await page.locator("#sel").selectOption("red");
  await page.locator("#cb").click();
  await page.locator("#num").fill("42");
  assert.equal(await page.locator("#tt").textContent(), "typed");
  assert.equal(await page.locator("#nt").textContent(), "42");
  assert.deepEqual(await signals(page), {
    text: "typed",
    notes: "line1\nline2",
    color: "red",
    agree: false,
    qty: 42,
    seeded: "from-server",
  });
});

pageTest("runtime merge-patches signals and updates bound inputs and data-text", async (boot) => {
  const view =
    '<span id="c" data-text="count"></span><input id="n" type="number" data-bind="count">' +
    '<input id="agree" type="checkbox" data-bind="agree"><span id="g" data-text="greeting"></span>';
  const { server, page } = await boot({
    view,
    signals: { count: 1, profile: { name: "a", age: 3 }, agree: false, _local: "x" },
  });

  // A JSON value may span several data lines; they are joined with "\n".
  server.send("datastar-patch-signals", [
    'signals {"count":5,"profile":{"age":null,"city":"Oslo"},',
    'signals "agree":true,"greeting":"hi"}',
  ]);
  await until("the signal patch", async () => (await page.locator("#c").textContent()) === "5");
  assert.deepEqual(await signals(page), {
    count: 5,
    profile: { name: "a", city: "Oslo" },
    agree: true,
    greeting: "hi",
    _local: "x",
  });
  assert.equal(await page.locator("#n").inputValue(), "5");
  assert.equal(await page.locator("#agree").isChecked(), true);
  assert.equal(await page.locator("#g").textContent(), "hi");

  server.send("datastar-patch-signals", ["onlyIfMissing true", 'signals {"count":9,"fresh":1,"greeting":null}']);
  server.send("datastar-patch-signals", ['signals {"_local":null}']);
  await until("the second patch", async () => !("_local" in ((await signals(page)) ?? {})));
  const now = await signals(page);
  assert.equal(now?.count, 5);
  assert.equal(now?.fresh, 1);
  assert.equal(now?.greeting, "hi");
});

pageTest("runtime shows the reconnect banner when the stream drops and hides it when back", async (boot) => {
  const { server, page } = await boot({ view: '<p id="x">x</p>' });
  const banner = page.locator("#via-banner");
  const connection = () => page.locator("html").getAttribute("data-connection");

  assert.equal(await connection(), "online");
  assert.equal(await banner.isHidden(), true);
  const lastId = server.send("datastar-patch-signals", ['signals {"seen":true}']);
  await until("the event", async () => (await signals(page))?.seen === true);

  server.state.holdStreams = true;
  server.streams[0]?.res.end();
  await until("state connecting", async () => (await connection()) === "connecting");
  await until("the banner", () => banner.isVisible(), 3000);
  assert.equal(await banner.textContent(), "Reconnecting…");

  server.releaseHeld();
  await until("back online", async () => (await connection()) === "online");
  assert.equal(await banner.isHidden(), true);
  const query = server.streams[1]?.query;
  assert.equal(query?.get("tab"), TAB);
  assert.equal(query?.get("path"), "/");
  assert.equal(query?.get("v"), "testhash");
  assert.equal(
    query?.has("last"),
    false,
    "no event id: the view's hash and the lists' positions say what the page has",
  );
  assert.ok(lastId > 0);
  assert.equal(server.pageLoads, 1);
});

pageTest("runtime reconnects with backoff on via-bye without reloading", async (boot) => {
  const { server, page } = await boot({ view: '<p id="x">x</p>' });

  const sent = Date.now();
  server.send("via-bye", ["reason shutting down"]);
  await until("the runtime to drop the stream", () => server.streams[0]?.closed);
  await until("the reconnect", () => server.streams.length === 2);
  assert.ok(Date.now() - sent >= 150, "the reconnect waited for the backoff");
  assert.equal(server.streams[1]?.query.get("tab"), TAB);
  await until("back online", async () => (await state(page)) === "online");
  assert.equal(server.pageLoads, 1);
});

pageTest("runtime reloads on via-reload", async (boot) => {
  const { server } = await boot({ view: '<p id="x">x</p>' });

  server.send("via-reload", ["reason runtime version changed"]);
  await until("the reload", () => server.pageLoads === 2);
  await until("the new page's stream", () => server.streams.length === 2);
});

pageTest("runtime sends actions one at a time in order", async (boot) => {
  const view = ["a1", "a2", "a3"].map((a) => `<button id="${a}" data-on-click="${a}">${a}</button>`).join("");
  const { server, page } = await boot({ view });
  server.state.reply = (id) => ({ status: 204, delay: id === "a1" ? 300 : id === "a2" ? 100 : 0 });

  await page.locator("#a1").click();
  await page.locator("#a2").click();
  await page.locator("#a3").click();
  await until("three actions", () => server.actions.length === 3);
  assert.deepEqual(
    server.actions.map((a) => a.id),
    ["a1", "a2", "a3"],
  );
  for (let i = 1; i < 3; i++) {
    const prev = server.actions[i - 1];
    const cur = server.actions[i];
    assert.ok(prev && cur && cur.start >= prev.end, `action ${i + 1} was sent before action ${i} finished`);
  }
});

pageTest("runtime shows a toast with the reason of a failed action", async (boot) => {
  const view = '<button id="go" data-on-click="spam">go</button><button id="ok" data-on-click="ok">ok</button>';
  // The browser itself logs failed fetches; that line is expected here, nothing else is.
  const { server, page } = await boot({ view, toasts: false }, [/Failed to load resource: .* 429/], { clock: true });
  server.state.reply = (id) =>
    id === "spam"
      ? { status: 429, text: "Too many actions, slow down", headers: { "Retry-After": "1" } }
      : { status: 204 };

  await page.locator("#go").click();
  const toast = page.locator("#via-toasts .via-toast");
  await until("the toast", async () => (await toast.count()) === 1);
  assert.equal(await toast.textContent(), "Too many actions, slow down");
  // Past the Retry-After second on the page's clock; then a later action, which would come after a retry.
  await page.clock.runFor(1_500);
  await page.locator("#ok").click();
  await until("the later action", () => server.actions.some((a) => a.id === "ok"));
  assert.deepEqual(
    server.actions.map((a) => a.id),
    ["spam", "ok"],
    "a rate-limited action is not retried",
  );
});

pageTest(
  "runtime reconnects the stream at once when an action gets 410 and holds later actions until it is back",
  async (boot) => {
    const view = '<button id="go" data-on-click="act">go</button><button id="next" data-on-click="next">next</button>';
    const { server, page } = await boot({ view }, [/Failed to load resource: .* 410/]);
    server.state.reply = (id) => (id === "act" ? { status: 410, text: "unknown tab" } : { status: 204 });
    server.state.holdStreams = true;

    await page.locator("#go").click();
    await page.locator("#next").click();
    await until("the old stream to be dropped", () => server.streams[0]?.closed, 1000);
    assert.equal(await page.locator("#via-toasts .via-toast").textContent(), "unknown tab");
    // A negative check (the next action is not sent yet), so a short fixed wait: nothing the runtime
    // does marks the moment it would have sent it.
    await delay(300);
    assert.deepEqual(
      server.actions.map((a) => a.id),
      ["act"],
      "the next action waits for the new stream",
    );

    server.releaseHeld();
    await until("the held action", () => server.actions.length === 2);
    assert.equal(server.actions[1]?.id, "next");
    assert.equal(server.streams.length, 2);
    assert.equal(server.streams[1]?.query.get("tab"), TAB);
    assert.equal(await state(page), "online");
  },
);

pageTest(
  "runtime keeps a streamed list's items through a view morph and updates an item with a known id in place",
  async (boot) => {
    const list =
      '<ol id="log" data-via-stream=""><li id="i1" data-via-pos="7">one</li><li id="i2" data-via-pos="8">two</li></ol>';
    const { server, page } = await boot({ view: `<main id="main"><h1 id="title">v1</h1>${list}</main>` });
    // A re-rendered view carries the list element empty and with a new attribute: items stay.
    server.send(
      "datastar-patch-elements",
      elements(
        '<div id="via-view"><main id="main"><h1 id="title">v2</h1><ol id="log" data-via-stream="" data-via-more=""></ol></main></div>',
      ),
    );
    await until("the morph", async () => (await page.textContent("#title")) === "v2");
    assert.deepEqual(await page.$$eval("#log > li", (els) => els.map((e) => e.textContent)), ["one", "two"]);
    assert.equal(await page.getAttribute("#log", "data-via-more"), "");
    // Appending an item whose id is in the list morphs it in place (and keeps its position).
    server.send(
      "datastar-patch-elements",
      elements('<li id="i1">one, edited</li><li id="i3" data-via-pos="9">three</li>', {
        selector: "#log",
        mode: "append",
      }),
    );
    await until("the new item", async () => (await page.$$("#log > li")).length === 3);
    assert.deepEqual(await page.$$eval("#log > li", (els) => els.map((e) => e.textContent)), [
      "one, edited",
      "two",
      "three",
    ]);
    assert.equal(await page.getAttribute("#i1", "data-via-pos"), "7");
    // A reconnect reports the list: newest position, item count, more.
    server.streams[0]?.res.end();
    await until("the reconnect", () => server.streams.length === 2);
    assert.equal(server.streams[1]?.query.get("streams"), "log:9:3:1");
  },
);

pageTest("runtime sends a list's oldest position as the cursor of its Load older action", async (boot) => {
  const view =
    '<button id="older" data-on-click="{&quot;action&quot;:&quot;log-older&quot;,&quot;page&quot;:&quot;log&quot;}">older</button>' +
    '<ol id="log" data-via-stream=""><li id="a" data-via-pos="40">a</li><li id="mine">sending</li><li id="b" data-via-pos="41">b</li></ol>';
  const { server, page } = await boot({ view });
  await page.click("#older");
  await until("the action", () => server.actions.length === 1);
  assert.equal(server.actions[0]?.id, "log-older");
  assert.equal(server.actions[0]?.body.cursor, "40");
});

pageTest("runtime reloads once when its stream is refused for its tab id (probe 403), not in a loop", async (boot) => {
  const { server } = await boot({ view: '<p id="x">x</p>' }, [/status of 403/]);
  server.state.refuseStreams = 403;
  server.streams[0]?.res.end();
  await until("the reload", () => server.pageLoads === 2);
  // The reloaded page is refused too: it keeps retrying (and probing) with backoff instead of reloading again.
  await until("the reloaded page's retries", () => server.state.probes >= 3);
  assert.equal(server.pageLoads, 2);
});

// Prototype pollution: JSON from the server or the page (boot signals, signal patches, trigger specs)
// and names in the page reach no prototype, and action bodies carry only real signals.

/** Keys a pollution in these tests would put on the page's Object.prototype (none may be there). */
const leakedToPrototype = (page: Page) =>
  page.evaluate(() => ["polluted", "set", "page", "action"].filter((k) => Object.hasOwn(Object.prototype, k)));

const pollutedProbe = (page: Page) => page.evaluate(() => (({}) as Record<string, unknown>).polluted);

/** Sends a marker patch and waits for it: every event written before it has been applied by then. */
async function applied(server: TestServer, page: Page, n: number): Promise<void> {
  server.send("datastar-patch-signals", [`signals {"_applied":${n}}`]);
  await page.waitForFunction((want) => window.__via?.signals()._applied === want, n);
}

/** Clicks `selector` and returns the body of the action it sends (the n-th action of the test). */
async function actionBody(server: TestServer, page: Page, selector: string, n = 1) {
  await page.click(selector);
  await until(`action ${n}`, () => server.actions.length === n);
  return server.actions[n - 1]?.body;
}

pageTest("a signal patch naming __proto__ changes no prototype, at the top or nested under a signal", async (boot) => {
  const view = '<span id="p" data-text="polluted"></span><button id="go" data-on-click="go">go</button>';
  const { server, page } = await boot({ view, signals: { count: 1, profile: { name: "a" } } });

  server.send("datastar-patch-signals", ['signals {"__proto__":{"polluted":"yes"}}']);
  server.send("datastar-patch-signals", ['signals {"profile":{"__proto__":{"polluted":"yes"}}}']);
  server.send("datastar-patch-signals", ['signals {"fresh":{"__proto__":{"polluted":"yes"},"x":1}}']);
  server.send("datastar-patch-signals", ["onlyIfMissing true", 'signals {"__proto__":{"polluted":"yes"}}']);
  await applied(server, page, 1);

  assert.equal(await pollutedProbe(page), undefined, "({}).polluted");
  assert.deepEqual(await leakedToPrototype(page), []);
  assert.equal(await page.textContent("#p"), "");
  const real = { count: 1, profile: { name: "a" }, fresh: { x: 1 } };
  assert.deepEqual(await signals(page), { ...real, _applied: 1 });
  assert.deepEqual(await actionBody(server, page, "#go"), { signals: real });
});

pageTest(
  "a signal patch naming constructor.prototype or prototype adds no signal and changes no prototype",
  async (boot) => {
    const view = '<button id="go" data-on-click="go">go</button>';
    const { server, page } = await boot({ view, signals: { profile: { name: "a" } } });

    server.send("datastar-patch-signals", ['signals {"constructor":{"prototype":{"polluted":"yes"}}}']);
    server.send("datastar-patch-signals", ['signals {"profile":{"constructor":{"prototype":{"polluted":"yes"}}}}']);
    server.send("datastar-patch-signals", ['signals {"prototype":{"polluted":"yes"}}']);
    await applied(server, page, 1);

    assert.equal(await pollutedProbe(page), undefined, "({}).polluted");
    assert.deepEqual(await leakedToPrototype(page), []);
    assert.deepEqual(await signals(page), { profile: { name: "a" }, _applied: 1 });
    assert.deepEqual(await actionBody(server, page, "#go"), { signals: { profile: { name: "a" } } });
  },
);

pageTest(
  "a signal patch that tries to give every trigger a set and a page adds nothing to later action bodies",
  async (boot) => {
    const view =
      '<input id="d" data-bind="draft"><button id="go" data-on-click="go">go</button>' +
      '<ol id="log" data-via-stream=""><li id="i1" data-via-pos="5">one</li></ol>';
    const { server, page } = await boot({ view, signals: { draft: "d" } });

    server.send("datastar-patch-signals", ['signals {"__proto__":{"set":{"evil":"yes"},"page":"log"}}']);
    await applied(server, page, 1);

    assert.deepEqual(await actionBody(server, page, "#go"), { signals: { draft: "d" } });
    assert.deepEqual(await leakedToPrototype(page), []);
  },
);

pageTest(
  "boot signals naming __proto__, constructor or prototype change no prototype and stay out of action bodies",
  async (boot) => {
    const view = '<span id="p" data-text="polluted"></span><button id="go" data-on-click="go">go</button>';
    const bootSignals =
      '{"__proto__":{"polluted":"yes","set":{"evil":"yes"}},"constructor":{"prototype":{"polluted":"yes"}},' +
      '"prototype":1,"profile":{"__proto__":{"polluted":"yes"},"name":"a"},"count":1}';
    const { server, page } = await boot({ view, bootSignals });

    assert.equal(await pollutedProbe(page), undefined, "({}).polluted");
    assert.deepEqual(await leakedToPrototype(page), []);
    assert.equal(await page.textContent("#p"), "");
    const real = { profile: { name: "a" }, count: 1 };
    assert.deepEqual(await signals(page), real);
    assert.deepEqual(await actionBody(server, page, "#go"), { signals: real });
  },
);

pageTest(
  "trigger attributes and specs naming inherited properties fire nothing and raise no page error",
  async (boot) => {
    const view =
      '<button id="events" data-on-constructor="evil" data-on-tostring="evil" data-on-__proto__="evil">e</button>' +
      '<button id="proto" data-on-click=\'{"__proto__":{"action":"evil"}}\'>p</button>' +
      '<button id="ctor" data-on-click=\'{"constructor":{"action":"evil"},"prototype":{"action":"evil"}}\'>c</button>' +
      '<button id="go" data-on-click="go">go</button>';
    const { server, page } = await boot({ view, signals: { count: 1 } });

    for (const id of ["#events", "#proto", "#ctor"]) await page.click(id);
    // Actions go out in click order: once the last click's action is in, any earlier one would be too.
    assert.deepEqual(await actionBody(server, page, "#go"), { signals: { count: 1 } });
    assert.deepEqual(
      server.actions.map((a) => a.id),
      ["go"],
    );
    assert.deepEqual(await leakedToPrototype(page), []);
  },
);

pageTest(
  "an action id naming an inherited property is an ordinary id: sent as written, with only real signals",
  async (boot) => {
    // The server accepts action names like these (ACTION_ID), so the runtime passes them through unread.
    const view =
      '<button id="ts" data-on-click="toString">t</button><button id="c" data-on-click="constructor">c</button>';
    const { server, page } = await boot({ view, signals: { count: 1 } });

    assert.deepEqual(await actionBody(server, page, "#ts"), { signals: { count: 1 } });
    assert.deepEqual(await actionBody(server, page, "#c", 2), { signals: { count: 1 } });
    assert.deepEqual(
      server.actions.map((a) => a.id),
      ["toString", "constructor"],
    );
  },
);

pageTest(
  "a trigger spec's set naming __proto__, constructor or prototype, or not an object, adds no signals",
  async (boot) => {
    const view =
      '<span id="p" data-text="polluted"></span>' +
      '<button id="str" data-on-click=\'{"action":"str","set":"toString"}\'>s</button>' +
      '<button id="arr" data-on-click=\'{"action":"arr","set":["x"]}\'>a</button>' +
      '<button id="keys" data-on-click=\'{"action":"keys","set":{"__proto__":{"polluted":"yes"},' +
      '"constructor":{"prototype":{"polluted":"yes"}},"prototype":1,"room":"Rust"}}\'>k</button>';
    const { server, page } = await boot({ view, signals: { count: 1 } });

    assert.deepEqual(await actionBody(server, page, "#str"), { signals: { count: 1 } });
    assert.deepEqual(await actionBody(server, page, "#arr", 2), { signals: { count: 1 } });
    assert.deepEqual(await actionBody(server, page, "#keys", 3), { signals: { count: 1, room: "Rust" } });
    assert.equal(await page.textContent("#p"), "", "the store's prototype is untouched");
    assert.equal(await pollutedProbe(page), undefined, "({}).polluted");
  },
);

pageTest(
  "a prototype polluted by another script gives triggers no options and action bodies no fields",
  async (boot) => {
    const view =
      '<input id="d" data-bind="draft"><button id="go" data-on-click="go">go</button>' +
      '<button id="json" data-on-click=\'{"action":"json"}\'>j</button>' +
      '<ol id="log" data-via-stream=""><li id="i1" data-via-pos="5">one</li></ol>';
    const { server, page } = await boot({ view, signals: { draft: "d" } });

    await page.evaluate(() => Object.assign(Object.prototype, { set: { evil: "yes" }, page: "log" }));
    assert.deepEqual(await actionBody(server, page, "#go"), { signals: { draft: "d" } });
    assert.deepEqual(await actionBody(server, page, "#json", 2), { signals: { draft: "d" } });
  },
);

pageTest("an element patch naming an inherited namespace parses as plain HTML", async (boot) => {
  const { server, page } = await boot({ view: '<p id="x">old</p><p id="y">old</p>' });

  server.send("datastar-patch-elements", ["namespace __proto__", ...elements('<p id="x"><b>new</b></p>')]);
  server.send("datastar-patch-elements", ["namespace constructor", ...elements('<p id="y"><b>new</b></p>')]);
  await page.waitForFunction(() => document.querySelector("#y b")?.textContent === "new");
  assert.equal(await page.innerHTML("#x"), "<b>new</b>");
  assert.equal(await page.innerHTML("#y"), "<b>new</b>");
});

pageTest(
  "bound and text elements naming __proto__, constructor or toString read no inherited property and seed no signal",
  async (boot) => {
    const view =
      '<input id="b1" data-bind="constructor" value="seed"><input id="b2" data-bind="__proto__" value="seed">' +
      '<span id="t1" data-text="toString"></span><span id="t2" data-text="constructor"></span>' +
      '<span id="t3" data-text="__proto__"></span><button id="go" data-on-click="go">go</button>';
    const { server, page } = await boot({ view, signals: { count: 1 } });

    for (const id of ["#t1", "#t2", "#t3"]) assert.equal(await page.textContent(id), "", id);
    assert.equal(await page.inputValue("#b1"), "seed");
    assert.equal(await page.inputValue("#b2"), "seed");
    await page.fill("#b1", "typed");
    await page.fill("#b2", "typed");
    assert.deepEqual(await actionBody(server, page, "#go"), { signals: { count: 1 } });
    for (const id of ["#t1", "#t2", "#t3"]) assert.equal(await page.textContent(id), "", id);
    assert.deepEqual(await leakedToPrototype(page), []);
  },
);
