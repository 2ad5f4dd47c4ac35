// The framework through a real server on an ephemeral port, spoken to at the protocol level.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";
import { until } from "../../harness/poll.ts";
import { Browser, EventStream, httpRequest } from "../../harness/sse-client.ts";
import type { App, AppOptions } from "../../src/index.ts";
import { createFixtureApp, type FixtureState } from "../support/fixture-app.tsx";

const running: App[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

async function start(options: AppOptions = {}): Promise<{ app: App; base: string; state: FixtureState; port: number }> {
  const { app, state } = createFixtureApp(options);
  running.push(app);
  const { url, port } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  return { app, base: url, state, port };
}

test("page load, event stream and action: a click's result arrives as a signal patch", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  assert.equal(tab.signals.count, 0);
  const stream = await tab.connect();
  assert.equal(stream.status, 200);
  assert.equal(stream.headers["content-type"], "text/event-stream");
  assert.equal(stream.headers["x-accel-buffering"], "no");
  const res = await tab.action(tab.actionOf("inc"));
  assert.equal(res.status, 204);
  const ev = await stream.waitFor((e) => e.event === "datastar-patch-signals");
  assert.deepEqual(JSON.parse(ev.data.signals!), { count: 1 });
  assert.equal(
    stream.events.filter((e) => e.data.elements?.includes("via-view")).length,
    0,
    "the page's view was current: the stream did not send it again",
  );
  stream.close();
});

test("signals round trip: the browser's values reach the action and the re-render shows them escaped", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const hostile = `<img src=x onerror="alert(1)">`;
  const res = await tab.action(tab.actionOf("copy"), { ...tab.signals, text: hostile });
  assert.equal(res.status, 204);
  const render = await stream.waitFor(
    (e) => e.event === "datastar-patch-elements" && (e.data.elements ?? "").includes('id="echo"'),
  );
  assert.ok(render.data.elements!.includes("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
  assert.ok(!render.data.elements!.includes("<img"));
  const sig = await stream.waitFor((e) => e.event === "datastar-patch-signals");
  assert.deepEqual(JSON.parse(sig.data.signals!), { echo: hostile });
  stream.close();
});

test("two tabs of two sessions both receive a broadcast as an appended element", async () => {
  const { base } = await start();
  const alice = await new Browser(base).load();
  const bob = await new Browser(base).load();
  assert.notEqual(alice.browser.cookie, bob.browser.cookie);
  const [sa, sb] = [await alice.connect(), await bob.connect()];
  await alice.action(alice.actionOf("broadcast"), { ...alice.signals, text: "hello bob" });
  for (const s of [sa, sb]) {
    const ev = await s.waitFor((e) => e.data.mode === "append");
    assert.equal(ev.data.selector, "#feed");
    assert.equal(ev.data.elements, "<li>hello bob</li>");
  }
  sa.close();
  sb.close();
});

test("a tab id from another session is refused with 403 on the stream and on actions, live or not", async () => {
  const { base, app } = await start();
  const alice = await new Browser(base).load();
  const mallory = new Browser(base);
  await mallory.load();
  // Before alice's stream attached: the id does not verify for mallory's session.
  const early = await EventStream.open(alice.streamUrl(), { Cookie: mallory.cookie });
  assert.equal(early.status, 403);
  assert.match(early.raw, /not issued by this server to this session/);
  early.close();
  assert.equal(app.tabCount, 0, "nothing was built for the refused stream");
  // After: the live tab is pinned to alice's session.
  const own = await alice.connect();
  const stolen = await EventStream.open(alice.streamUrl(), { Cookie: mallory.cookie });
  assert.equal(stolen.status, 403);
  stolen.close();
  const res = await alice.action(alice.actionOf("inc"), alice.signals, { Cookie: mallory.cookie });
  assert.equal(res.status, 403);
  assert.match(res.body, /another session/);
  own.close();
});

test("a tab id the server never issued gets a 4xx on the stream and on actions and allocates nothing", async () => {
  const { base, app } = await start();
  const browser = new Browser(base);
  const tab = await browser.load();
  const forged = `${tab.tab.slice(0, 20)}${tab.tab[20] === "A" ? "B" : "A"}${tab.tab.slice(21)}`;
  for (const id of [forged, "A".repeat(43)]) {
    const url = `${base}/_via/sse?tab=${id}&path=/&v=${tab.version}`;
    const stream = await EventStream.open(url, { Cookie: browser.cookie });
    assert.equal(stream.status, 403, id);
    assert.match(stream.raw, /not issued by this server/);
    stream.close();
    const probe = await httpRequest(`${url}&probe=1`, { headers: { Cookie: browser.cookie } });
    assert.equal(probe.status, 403, "the runtime's probe learns the same");
    const res = await httpRequest(`${base}/_via/action/a2`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Via-Request": "1", "Via-Tab": id, Cookie: browser.cookie },
      body: '{"signals":{}}',
    });
    assert.equal(res.status, 403);
  }
  const short = await EventStream.open(`${base}/_via/sse?tab=${"A".repeat(22)}&path=/`, { Cookie: browser.cookie });
  assert.equal(short.status, 400, "an id of the wrong shape");
  short.close();
  assert.equal(app.tabCount, 0);
  assert.equal(app.stats().tabs, 0);
  const ok = await httpRequest(`${tab.streamUrl()}&probe=1`, { headers: { Cookie: browser.cookie } });
  assert.equal(ok.status, 204, "the probe of a good id builds nothing either");
  assert.equal(app.tabCount, 0);
});

test("an expired tab id cannot start a context, but a live tab keeps working past that age", async () => {
  const { base, app } = await start({ tabIdMaxAgeMs: 1_000 });
  const browser = new Browser(base);
  const old = await browser.load();
  const live = await browser.load();
  const stream = await live.connect();
  // Ids carry whole seconds: ask (with the probe, which builds nothing) until the old one has expired.
  const probe = () => httpRequest(`${old.streamUrl()}&probe=1`, { headers: { Cookie: browser.cookie } });
  await until("the old tab id expired", async () => (await probe()).status === 403, 5_000, 50);
  const late = await EventStream.open(old.streamUrl(), { Cookie: browser.cookie });
  assert.equal(late.status, 403);
  assert.match(late.raw, /expired/);
  late.close();
  assert.equal((await live.action(live.actionOf("inc"))).status, 204, "a live context is not affected");
  assert.equal(app.tabCount, 1);
  stream.close();
});

test("a context expires after its TTL without a stream, and its actions then get 410", async () => {
  const { base, app, state } = await start({ contextTtlMs: 150 });
  const tab = await new Browser(base).load();
  assert.equal(app.tabCount, 0, "a page load keeps no context");
  const stream = await tab.connect();
  assert.equal(app.tabCount, 1);
  stream.close();
  await until("the detached context expires", () => app.tabCount === 0);
  assert.equal(state.disposed, 1, "onDispose ran");
  const res = await tab.action(tab.actionOf("inc"));
  assert.equal(res.status, 410);
});

test("a reconnect within the TTL resyncs the whole view and the signals the server set", async () => {
  const { base, app } = await start();
  const tab = await new Browser(base).load();
  const first = await tab.connect();
  await tab.action(tab.actionOf("inc"));
  await first.waitFor((e) => e.event === "datastar-patch-signals");
  first.close();
  await until("the server sees the stream gone", () => app.stats().detached === 1);
  await tab.action(tab.actionOf("inc"), { ...tab.signals, count: 1 });
  const again = await tab.connect();
  const render = await again.waitFor((e) => e.event === "datastar-patch-elements");
  assert.match(render.data.elements!, /^<div id="via-view" data-via-hash="/);
  const sig = await again.waitFor((e) => e.event === "datastar-patch-signals");
  assert.deepEqual(JSON.parse(sig.data.signals!), { count: 2 });
  again.close();
});

test("after a server restart an unknown tab re-bootstraps a fresh context on its route without a reload", async () => {
  const secret = "a secret both lives of the server share, 32+ bytes";
  const first = await start({ secret });
  const browser = new Browser(first.base);
  const tab = await browser.load("/item/42");
  await first.app.close();
  const second = await start({ secret });
  const moved = new Browser(second.base);
  moved.cookie = browser.cookie;
  const stream = await EventStream.open(
    `${second.base}/_via/sse?tab=${tab.tab}&path=${encodeURIComponent("/item/42")}&v=${tab.version}`,
    { Cookie: moved.cookie },
  );
  assert.equal(stream.status, 200);
  const render = await stream.waitFor((e) => e.event === "datastar-patch-elements");
  assert.match(render.data.elements!, /Item 42/);
  assert.equal(second.app.tabCount, 1);
  stream.close();
  // A server with another secret cannot verify the id: 403, and the runtime's probe learns it (and reloads).
  const third = await start();
  const refused = await EventStream.open(`${third.base}/_via/sse?tab=${tab.tab}&path=%2Fitem%2F42&v=${tab.version}`, {
    Cookie: moved.cookie,
  });
  assert.equal(refused.status, 403);
  refused.close();
});

test("an unknown tab whose route no longer exists is told to reload", async () => {
  const { base, app } = await start();
  const browser = new Browser(base);
  const tab = await browser.load();
  const stream = await EventStream.open(`${base}/_via/sse?tab=${tab.tab}&path=/gone`, {
    Cookie: browser.cookie,
  });
  await stream.waitFor((e) => e.event === "via-reload");
  assert.equal(app.tabCount, 0);
});

test("an action body over the cap gets 413", async () => {
  const { base } = await start({ maxBodyBytes: 1024 });
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const res = await tab.action(tab.actionOf("copy"), { ...tab.signals, text: "x".repeat(5000) });
  assert.equal(res.status, 413);
  const ok = await tab.action(tab.actionOf("inc"));
  assert.equal(ok.status, 204, "the tab keeps working");
  stream.close();
});

test("actions beyond the per-tab burst get 429 with Retry-After", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const results = [];
  for (let i = 0; i < 25; i++) results.push(await tab.action(tab.actionOf("inc"), { ...tab.signals, count: i }));
  const limited = results.filter((r) => r.status === 429);
  assert.ok(limited.length >= 4, `expected 429s, got ${results.map((r) => r.status).join(",")}`);
  assert.match(String(limited[0]!.headers["retry-after"]), /^\d+$/);
  assert.equal(results.filter((r) => r.status === 204).length, 25 - limited.length);
  stream.close();
});

test("malformed action requests get a 4xx with a reason", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const url = `${base}/_via/action/${tab.actionOf("inc")}`;
  const headers = {
    "Content-Type": "application/json",
    "Via-Request": "1",
    "Via-Tab": tab.tab,
    Cookie: tab.browser.cookie,
  };
  const cases: Array<[string, Parameters<typeof httpRequest>[1], number, RegExp]> = [
    ["bad JSON", { method: "POST", headers, body: "{nope" }, 400, /JSON/],
    ["no Via-Request", { method: "POST", headers: { ...headers, "Via-Request": "" }, body: "{}" }, 403, /Via-Request/],
    [
      "cross-site",
      { method: "POST", headers: { ...headers, "Sec-Fetch-Site": "cross-site" }, body: '{"signals":{}}' },
      403,
      /cross-site/,
    ],
    [
      "foreign origin",
      { method: "POST", headers: { ...headers, Origin: "http://evil.example" }, body: '{"signals":{}}' },
      403,
      /Origin/,
    ],
    [
      "wrong content type",
      { method: "POST", headers: { ...headers, "Content-Type": "text/plain" }, body: "{}" },
      415,
      /json/i,
    ],
    ["bad tab id", { method: "POST", headers: { ...headers, "Via-Tab": "../../etc" }, body: "{}" }, 400, /tab/i],
    ["GET on an action", { method: "GET", headers }, 405, /not allowed/],
    ["wrong signal type", { method: "POST", headers, body: '{"signals":{"count":"many"}}' }, 400, /count/],
    ["bad cursor", { method: "POST", headers, body: '{"signals":{},"cursor":"1; drop"}' }, 400, /cursor/],
  ];
  for (const [name, opts, status, reason] of cases) {
    const res = await httpRequest(url, opts);
    assert.equal(res.status, status, `${name}: ${res.body}`);
    assert.match(res.body, reason, name);
  }
  const unknown = await httpRequest(`${base}/_via/action/a999`, { method: "POST", headers, body: '{"signals":{}}' });
  assert.equal(unknown.status, 404);
  assert.equal((await httpRequest(`${base}/item/%E0%A4%A`)).status, 400);
  assert.equal((await httpRequest(`${base}/nope`)).status, 404);
  assert.equal((await httpRequest(`${base}/`, { method: "DELETE" })).status, 405);
  assert.equal((await httpRequest(`${base}/_via/sse?tab=short`)).status, 400);
  stream.close();
});

test("actions of one tab run one at a time in arrival order", async () => {
  const { base, state } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const slow = tab.actionOf("slow");
  const results = await Promise.all([0, 1, 2, 3].map((n) => tab.action(slow, { ...tab.signals, count: n })));
  assert.deepEqual(
    results.map((r) => r.status),
    [204, 204, 204, 204],
  );
  // Requests may reach the server in any order, but each action finishes before the next starts.
  for (let i = 0; i < state.trace.length; i += 2) {
    const [s, e] = [state.trace[i]!, state.trace[i + 1]!];
    assert.equal(s.replace("start", "end"), e, `interleaved: ${state.trace.join(", ")}`);
  }
  stream.close();
});

test("an exception in an action is shown to the tab as a notification and the tab keeps working", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  assert.equal((await tab.action(tab.actionOf("boom"))).status, 204);
  const toast = await stream.waitFor((e) => e.data.selector === "#via-toasts");
  assert.match(toast.data.elements!, /Something went wrong/);
  assert.ok(!toast.data.elements!.includes("kaboom"), "internal details are not shown");
  await tab.action(tab.actionOf("user-error"));
  const shown = await stream.waitFor((e) => (e.data.elements ?? "").includes("That name is taken"));
  assert.ok(shown);
  assert.equal((await tab.action(tab.actionOf("inc"))).status, 204);
  await stream.waitFor((e) => e.event === "datastar-patch-signals");
  stream.close();
});

test("a reader that stops reading is cut off at the queue cap instead of buffering without bound", async () => {
  const { base, port, app } = await start({ queueCapBytes: 256 * 1024 });
  const tab = await new Browser(base).load();
  // A raw socket that sends the stream request and then never reads.
  const socket = connect(port, "127.0.0.1");
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  socket.write(
    `GET /_via/sse?tab=${tab.tab}&path=/ HTTP/1.1\r\nHost: localhost\r\nCookie: ${tab.browser.cookie}\r\n\r\n`,
  );
  socket.pause();
  await until("the stream attached", () => app.stats().connected === 1);
  // 40 × 64 KiB patches, several times more than the socket buffers plus the 256 KiB cap.
  for (let i = 0; i < 5; i++) await tab.action(tab.actionOf("big"));
  // Reading now drains what the kernel buffered and then meets the server's close.
  socket.resume();
  await closed;
  assert.equal(app.stats().overflows, 1);
  assert.equal(app.tabCount, 0, "a cut tab is disposed, not kept alive for another TTL");
  const again = await tab.connect();
  assert.equal(again.status, 200, "it re-bootstraps when it reconnects");
  assert.equal(app.tabCount, 1);
  assert.equal((await tab.action(tab.actionOf("inc"))).status, 204);
  again.close();
});

test("idle streams get a keepalive comment", async () => {
  const { base } = await start({ keepaliveMs: 50 });
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  await until("a keepalive comment arrived", () => stream.raw.includes(": keepalive\n\n"), 2_000, 20);
  stream.close();
});

test("pages carry strict security headers and a session cookie", async () => {
  const { base } = await start();
  const res = await httpRequest(`${base}/`);
  const csp = String(res.headers["content-security-policy"]);
  assert.match(csp, /script-src 'self'/);
  assert.ok(!csp.includes("unsafe-eval") && !csp.includes("unsafe-inline"));
  assert.equal(res.headers["x-content-type-options"], "nosniff");
  assert.equal(res.headers["referrer-policy"], "same-origin");
  const cookie = res.headers["set-cookie"]?.[0] ?? "";
  assert.match(cookie, /^via_session=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax$/);
  assert.ok(!/<script(?![^>]*\bsrc=)/.test(res.body), "no inline scripts");
});

test("the runtime is served from a content-hashed URL with a year-long cache", async () => {
  const { base } = await start();
  const page = await httpRequest(`${base}/`);
  const src = /<script type="module" src="([^"]+)"/.exec(page.body)?.[1];
  assert.match(src ?? "", /^\/_via\/static\/runtime\.[0-9a-f]{12}\.js$/);
  const js = await httpRequest(base + src);
  assert.equal(js.status, 200);
  assert.equal(js.headers["cache-control"], "public, max-age=31536000, immutable");
  assert.match(String(js.headers["content-type"]), /javascript/);
  assert.ok(!/\beval\(|new Function\(/.test(js.body), "no string-to-code in the runtime");
  assert.equal((await httpRequest(`${base}/_via/static/runtime.000000000000.js`)).status, 404);
  assert.equal((await httpRequest(`${base}/_via/static/..%2f..%2fpackage.json`)).status, 404);
});

// A budget far longer than the test's timeout: close() returning at all shows it did not wait for it.
test("graceful shutdown: readiness goes false, streams get a final event, contexts are disposed", {
  timeout: 60_000,
}, async () => {
  const { base, app, state } = await start({ shutdownTimeoutMs: 600_000 });
  assert.equal((await httpRequest(`${base}/healthz`)).status, 200);
  assert.equal((await httpRequest(`${base}/readyz`)).status, 200);
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  await until("the stream is attached", () => app.stats().connected === 1);
  await app.close();
  await stream.waitFor((e) => e.event === "via-bye");
  await stream.waitForEnd();
  assert.equal(state.disposed, 1);
  assert.equal(app.tabCount, 0);
});

test("a stream for an unknown tab whose path is no URL of ours is told to reload, not a 500", async () => {
  const { base } = await start();
  const browser = new Browser(base);
  const tab = await browser.load();
  for (const path of ["//", "///x", "/\\\\evil", "relative", "/item/1/extra"]) {
    const stream = await EventStream.open(`${base}/_via/sse?tab=${tab.tab}&path=${encodeURIComponent(path)}`, {
      Cookie: browser.cookie,
    });
    assert.equal(stream.status, 200, path);
    await stream.waitFor((e) => e.event === "via-reload");
  }
});

test("HEAD on a page answers as GET would and leaves no tab behind", async () => {
  const { base, app } = await start();
  assert.equal((await httpRequest(`${base}/item/7`, { method: "HEAD" })).status, 200);
  assert.equal((await httpRequest(`${base}/nope`, { method: "HEAD" })).status, 404);
  assert.equal(app.tabCount, 0);
});

test("page loads keep nothing on the server: no context, no queue, whatever they are sent later", async () => {
  // 200 page loads in a burst from one address: over the per-address limit, which is not tested here.
  const { base, app } = await start({ clientLimits: false });
  const browser = new Browser(base);
  const listener = await browser.load();
  const stream = await listener.connect();
  for (let i = 0; i < 200; i++) await browser.load();
  assert.equal(app.tabCount, 1, "only the tab whose stream attached");
  await listener.action(listener.actionOf("broadcast"), { ...listener.signals, text: "x".repeat(10_000) });
  await stream.waitFor((e) => e.data.mode === "append");
  assert.equal(app.stats().queuedBytes.total, 0);
  stream.close();
});

test("a detached tab queues nothing and catches up when it reattaches", async () => {
  const { base, app } = await start();
  const tab = await new Browser(base).load();
  const first = await tab.connect();
  first.close();
  await until("the server sees the stream gone", () => app.stats().detached === 1);
  // Pushes to the detached tab (its own actions, the shared feed) are dropped, not queued.
  await tab.action(tab.actionOf("click"));
  await tab.action(tab.actionOf("broadcast"), { ...tab.signals, text: "while away" });
  assert.equal(app.stats().queuedBytes.total, 0);
  const again = await tab.connect();
  const render = await again.waitFor((e) => e.event === "datastar-patch-elements");
  assert.match(render.data.elements!, /<output id="clicks">1<\/output>/, "the view it missed");
  again.close();
});

test("detached tabs are capped: past maxDetachedTabs the oldest is disposed and re-bootstraps when it returns", async () => {
  const { base, app } = await start({ maxDetachedTabs: 2 });
  const browser = new Browser(base);
  const tabs = [];
  for (let i = 0; i < 4; i++) {
    const tab = await browser.load();
    (await tab.connect()).close();
    tabs.push(tab);
    await until("the stream drop is seen", () => app.stats().detached + app.stats().detachedDropped === i + 1);
  }
  assert.equal(app.tabCount, 2, "only the newest 2 detached tabs are kept");
  assert.equal(app.stats().detachedDropped, 2);
  const first = await tabs[0]!.connect();
  assert.equal(first.status, 200);
  assert.equal(first.events.filter((e) => e.event === "via-reload").length, 0, "no reload");
  assert.equal((await tabs[0]!.action(tabs[0]!.actionOf("inc"))).status, 204);
  first.close();
});

test("the app-wide byte budget cuts the streams holding the most when readers stall", async () => {
  const { base, port, app } = await start({ queueCapBytes: 4 * 1024 * 1024, budgetBytes: 1024 * 1024 });
  const browser = new Browser(base);
  const sockets = [];
  const tabs = [];
  for (let i = 0; i < 3; i++) {
    const tab = await browser.load();
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(
      `GET /_via/sse?tab=${tab.tab}&path=/ HTTP/1.1\r\nHost: localhost\r\nCookie: ${browser.cookie}\r\n\r\n`,
    );
    socket.pause();
    sockets.push(socket);
    tabs.push(tab);
  }
  await until("three stalled streams attached", () => app.stats().connected === 3);
  for (let round = 0; round < 20 && app.stats().budget.cuts === 0; round++) {
    for (const tab of tabs) await tab.action(tab.actionOf("big"));
  }
  const stats = app.stats();
  assert.ok(stats.budget.cuts >= 1, `streams were cut at the budget: ${JSON.stringify(stats)}`);
  assert.ok(stats.queuedBytes.total <= 1024 * 1024 + 64 * 1024 * 40, "held bytes stay near the budget");
  for (const socket of sockets) socket.destroy();
});
