// app.stats(): tabs, open streams and the bytes the server holds for them, through a real server. The
// bound it reports is the one that matters for a tab that stops reading: its queue plus what its
// response still buffers stays under queueCapBytes, and going over cuts the stream (counted).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";
import { until } from "../../harness/poll.ts";
import { Browser } from "../../harness/sse-client.ts";
import { type App, type AppOptions, createApp } from "../../src/index.ts";

const running: App[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

/** One page with an action that pushes one patch of `kib` KiB (one event per action, one write per tick). */
async function start(options: AppOptions = {}, kib = 48) {
  const fast = { ratePerSec: 1000, burst: 1000 };
  const app = createApp({ ...options, tabRateLimit: fast, sessionRateLimit: fast });
  app.page("/", (c) => {
    const push = c.action(() => {
      c.patch("#log", <p>{"x".repeat(kib * 1024)}</p>, "append");
    });
    c.view(() => (
      <main>
        <button type="button" id="push" {...push.onClick()}>
          push
        </button>
        <div id="log" />
      </main>
    ));
  });
  running.push(app);
  const { url, port } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  return { app, base: url, port };
}

test("app.stats() counts live tabs, open streams and the bytes queued for them", async () => {
  const { app, base } = await start();
  const before = app.stats();
  assert.deepEqual(before, {
    tabs: 0,
    connected: 0,
    sharedStreams: 0,
    sharedTabs: 0,
    sessions: 0,
    detached: 0,
    backedUp: 0,
    queuedBytes: { total: 0, max: 0 },
    queueCapBytes: 1024 * 1024,
    overflows: 0,
    budget: { bytes: 128 * 1024 * 1024, cuts: 0 },
    detachedDropped: 0,
  });
  const browser = new Browser(base);
  const a = await browser.load();
  const b = await browser.load();
  assert.equal(app.stats().tabs, 0, "page loads are no tabs");
  const stream = await a.connect();
  const bs = await b.connect();
  assert.equal(app.stats().tabs, 2);
  assert.equal(app.stats().connected, 2);
  assert.equal(app.stats().sessions, 1, "one browser, one session, kept once its tabs are live");
  // b drops its stream: its context waits (detached) and what it is pushed is not queued.
  bs.close();
  await until("a dropped stream is detached", () => app.stats().detached !== 0);
  assert.equal((await b.action(b.actionOf("push"))).status, 204);
  assert.equal((await a.action(a.actionOf("push"))).status, 204);
  await stream.waitFor((e) => e.data.selector === "#log");
  const s = app.stats();
  assert.equal(s.tabs, 2);
  assert.equal(s.connected, 1);
  assert.equal(s.detached, 1);
  assert.equal(s.backedUp, 0);
  assert.equal(s.queuedBytes.total, 0, "a's stream took everything it was sent, and b holds nothing");
  stream.close();
});

test("a reader that stops reading: the server holds at most queueCapBytes for it (queue plus socket buffer), then resets its stream", async () => {
  const cap = 256 * 1024;
  const { app, base, port } = await start({ queueCapBytes: cap });
  const tab = await new Browser(base).load();
  // A raw socket that asks for the stream and then never reads.
  const socket = connect(port, "127.0.0.1");
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  let error: NodeJS.ErrnoException | undefined;
  socket.on("error", (err: NodeJS.ErrnoException) => {
    error = err;
  });
  let read = 0;
  socket.on("data", (d: Buffer) => {
    read += d.length;
  });
  socket.write(
    `GET /_via/sse?tab=${tab.tab}&path=/ HTTP/1.1\r\nHost: localhost\r\nCookie: ${tab.browser.cookie}\r\n\r\n`,
  );
  socket.pause();
  await until("a stream is connected", () => app.stats().connected !== 0);
  // One 48 KiB event per action: the kernel's socket buffers (a few MiB on loopback) fill first, then
  // the response buffers, then the queue. Far more than all of that together is sent.
  let max = 0;
  let backedUpSeen = false;
  let sent = 0;
  for (let i = 0; i < 400 && app.stats().overflows === 0; i++) {
    assert.equal((await tab.action(tab.actionOf("push"))).status, 204);
    sent += 48 * 1024;
    const s = app.stats();
    max = Math.max(max, s.queuedBytes.max);
    if (s.backedUp > 0) backedUpSeen = true;
  }
  const s = app.stats();
  assert.ok(backedUpSeen, `the stream backed up: ${JSON.stringify(s)}`);
  assert.equal(s.overflows, 1, `the stream was cut over the cap: ${JSON.stringify(s)}`);
  assert.ok(max <= cap, `held ${max} bytes for the tab, over the ${cap}-byte cap`);
  assert.equal(s.connected, 0);
  assert.equal(s.queuedBytes.total, 0, "nothing is kept for a cut stream");
  assert.equal(s.tabs, 0, "the cut tab is disposed (its lifetime is not re-armed); it re-bootstraps on reconnect");
  // The cut is a reset: the stale backlog the kernel held for the reader is dropped, and the reader
  // learns of the cut as soon as it reads again instead of first draining megabytes it will not use.
  socket.resume();
  await closed;
  assert.ok(read < sent / 2, `read ${read} of ${sent} bytes before the reset (${error?.code ?? "no error"})`);
});

test("a tab whose whole view is bigger than the queue cap still resyncs after a reconnect (one event always fits an empty queue)", async () => {
  const cap = 64 * 1024;
  const app = createApp({ queueCapBytes: cap });
  app.page("/", (c) => {
    c.view(() => (
      <main>
        <p id="big">{"y".repeat(cap * 2)}</p>
      </main>
    ));
  });
  running.push(app);
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  const tab = await new Browser(url).load();
  // A stream that reports no view hash (a page from elsewhere) gets the whole view.
  const stream = await tab.connectTo(tab.streamUrl().replace(/&h=[^&]*/, ""));
  const render = await stream.waitFor((e) => e.event === "datastar-patch-elements", 3000);
  assert.match(render.data.elements ?? "", /^<div id="via-view" data-via-hash="/);
  assert.ok((render.data.elements ?? "").length > cap, "the render is bigger than the cap");
  assert.equal(app.stats().overflows, 0, "the stream was not cut");
  assert.equal(stream.ended, false);
  stream.close();
});
