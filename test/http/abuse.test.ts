// What an attacker tries against a running app, each as the request an attacker would send: limits a
// new cookie would reset, planted session ids, cross-site streams, foreign Host names, slow clients.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, test } from "node:test";
import { until } from "../../harness/poll.ts";
import { Browser, EventStream, httpRequest } from "../../harness/sse-client.ts";
import type { App, AppOptions } from "../../src/index.ts";
import { createFixtureApp } from "../support/fixture-app.tsx";

const running: App[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

async function start(options: AppOptions = {}): Promise<{ app: App; base: string; port: number }> {
  const { app } = createFixtureApp(options);
  running.push(app);
  const { url, port } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  return { app, base: url, port };
}

/** A raw connection, to send requests by hand (slowly, or with headers a client library would fix). */
function rawSocket(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    socket.on("data", (d) => {
      text += d.toString();
    });
    socket.on("close", () => {
      closed = true;
    });
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, received: () => text, closed: () => closed }));
    socket.once("error", reject);
  });
}

// ---- limits a new cookie cannot reset ----

test("new sessions are limited per client address: fresh cookies past the limit get a 429 with Retry-After", async () => {
  const { base } = await start({ clientLimits: { newSessions: { ratePerSec: 1 / 60, burst: 3 } } });
  const returning = new Browser(base);
  await returning.load();
  for (let i = 0; i < 2; i++) await new Browser(base).load();
  const refused = await httpRequest(`${base}/`);
  assert.equal(refused.status, 429);
  assert.match(refused.body, /too many new sessions from your network/);
  assert.ok(Number(refused.headers["retry-after"]) >= 1, "Retry-After says when to come back");
  assert.equal(refused.headers["set-cookie"], undefined, "a refused request is issued no session");
  // A browser that already has its session is not a new session: it still loads pages.
  assert.equal((await httpRequest(`${base}/`, { headers: { Cookie: returning.cookie } })).status, 200);
});

test("actions are limited per client address across sessions, so fresh cookies do not buy more", async () => {
  const { base } = await start({
    clientLimits: { actions: { ratePerSec: 0.01, burst: 5 } },
    tabRateLimit: { ratePerSec: 100, burst: 100 },
    sessionRateLimit: { ratePerSec: 100, burst: 100 },
  });
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const tab = await new Browser(base).load();
    await tab.connect();
    for (let j = 0; j < 2; j++) statuses.push((await tab.action(tab.actionOf("inc"))).status);
    tab.stream?.close();
  }
  assert.deepEqual(statuses, [204, 204, 204, 204, 204, 429, 429, 429]);
});

test("page loads are limited per client address", async () => {
  const { base } = await start({ clientLimits: { pageLoads: { ratePerSec: 0.01, burst: 4 } } });
  const browser = new Browser(base);
  for (let i = 0; i < 4; i++) await browser.load();
  const refused = await httpRequest(`${base}/`, { headers: { Cookie: browser.cookie } });
  assert.equal(refused.status, 429);
  assert.match(refused.body, /too many page loads/);
  assert.ok(refused.headers["retry-after"]);
});

test("open event streams are capped per client address, and a closed one frees its place", async () => {
  const { base, app } = await start({ clientLimits: { openStreams: 2 } });
  const browser = new Browser(base);
  const tabs = [await browser.load(), await browser.load(), await browser.load()];
  const first = await tabs[0]!.connect();
  await tabs[1]!.connect();
  const third = await tabs[2]!.connect();
  assert.equal(third.status, 429);
  await third.waitForEnd();
  assert.match(third.raw, /too many open event streams from your network/);
  await until("the first two streams attached", () => app.stats().connected === 2);
  assert.equal(app.stats().tabs, 2, "the refused stream built no tab");
  first.close();
  await until("the first stream's close was seen", () => app.stats().connected === 1);
  const retried = await tabs[2]!.connect();
  assert.equal(retried.status, 200);
  retried.close();
  tabs[1]!.stream?.close();
});

test("X-Forwarded-For is ignored unless trustProxy is set: a client cannot pick its own address", async () => {
  const limits = { newSessions: { ratePerSec: 1 / 60, burst: 1 } };
  const direct = await start({ clientLimits: limits });
  const spoof = (n: number) => httpRequest(`${direct.base}/`, { headers: { "X-Forwarded-For": `203.0.113.${n}` } });
  assert.equal((await spoof(1)).status, 200);
  assert.equal((await spoof(2)).status, 429, "a made-up X-Forwarded-For is still the same client");

  const proxied = await start({ clientLimits: limits, trustProxy: true });
  const via = (chain: string) => httpRequest(`${proxied.base}/`, { headers: { "X-Forwarded-For": chain } });
  assert.equal((await via("203.0.113.1")).status, 200);
  assert.equal((await via("203.0.113.2")).status, 200, "behind a trusted proxy, clients are told apart");
  assert.equal(
    (await via("198.51.100.7, 203.0.113.2")).status,
    429,
    "only the entry our proxy appended counts, not what the client wrote before it",
  );
  assert.equal((await via("2001:db8:1:2::1")).status, 200);
  assert.equal((await via("2001:db8:1:2:ffff::9")).status, 429, "an IPv6 client is one /64");
});

test("an app's own per-client limit (RateLimiter on c.clientAddress) answers 429 with Retry-After and the tab keeps working", async () => {
  const { base } = await start();
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  assert.equal((await tab.action(tab.actionOf("limited"))).status, 204);
  assert.equal((await tab.action(tab.actionOf("limited"))).status, 204);
  const refused = await tab.action(tab.actionOf("limited"));
  assert.equal(refused.status, 429);
  assert.match(refused.body, /two per minute from your network; try again in \d+ s/);
  assert.ok(Number(refused.headers["retry-after"]) >= 1);
  // The refusal did not stop the tab's action queue.
  assert.equal((await tab.action(tab.actionOf("inc"))).status, 204);
  // Two limited actions and the inc each set the count: three patches, the last from after the 429.
  await stream.waitFor((e) => e.event === "datastar-patch-signals", 3000, 2);
  stream.close();
});

// ---- sessions the server issued ----

test("a planted session id is not adopted: the page gets a fresh session and a new cookie", async () => {
  const { base } = await start();
  const planted = "via_session=FixedByAttacker0000000000";
  const res = await httpRequest(`${base}/`, { headers: { Cookie: planted } });
  assert.equal(res.status, 200);
  const cookie = res.headers["set-cookie"]?.[0] ?? "";
  assert.match(cookie, /^via_session=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22};/);
  assert.ok(!cookie.includes("FixedByAttacker"));
});

test("a session cookie with a forged or altered signature gets a fresh session", async () => {
  const { base } = await start();
  const browser = new Browser(base);
  await browser.load();
  const [id, mac] = browser.cookie.slice("via_session=".length).split(".") as [string, string];
  const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
  for (const value of [`${flip(id)}.${mac}`, `${id}.${flip(mac)}`, id, `${id}.`]) {
    const res = await httpRequest(`${base}/`, { headers: { Cookie: `via_session=${value}` } });
    assert.equal(res.status, 200);
    assert.ok(res.headers["set-cookie"], `${value}: a new session`);
  }
  // The genuine cookie keeps its session: no new cookie.
  const same = await httpRequest(`${base}/`, { headers: { Cookie: browser.cookie } });
  assert.equal(same.headers["set-cookie"], undefined);
});

test("page loads and refused requests keep no session in memory; a live tab keeps its session", async () => {
  const { base, app } = await start();
  for (let i = 0; i < 5; i++) await new Browser(base).load();
  assert.equal(app.stats().sessions, 0, "page loads keep no session");
  const tab = await new Browser(base).load();
  const other = await new Browser(base).load();
  // A stream with a tab id issued to another session, and one with a planted cookie: both refused.
  const stolen = await EventStream.open(tab.streamUrl(), { Cookie: other.browser.cookie });
  assert.equal(stolen.status, 403);
  const planted = await EventStream.open(tab.streamUrl(), { Cookie: "via_session=FixedByAttacker0000000000" });
  assert.equal(planted.status, 403);
  await planted.waitForEnd();
  assert.match(planted.raw, /no session cookie this server issued/);
  assert.equal(app.stats().sessions, 0, "refused requests keep no session");
  const stream = await tab.connect();
  await until("the tab attached", () => app.stats().connected === 1);
  assert.equal(app.stats().sessions, 1);
  stream.close();
});

test("a signed session survives a restart: an app with the same secret adopts it and the tab resumes", async () => {
  const secret = "s".repeat(32);
  const first = await start({ secret });
  const tab = await new Browser(first.base).load();
  await first.app.close();
  const second = await start({ secret });
  const stream = await EventStream.open(tab.streamUrl().replace(first.base, second.base), {
    Cookie: tab.browser.cookie,
  });
  assert.equal(stream.status, 200);
  await until("the tab attached on the new app", () => second.app.stats().connected === 1);
  stream.close();
});

// ---- same origin rules on every endpoint ----

test("the event stream refuses other sites and origins, as actions do", async () => {
  const { base, app } = await start();
  const tab = await new Browser(base).load();
  const refused: Record<string, string>[] = [
    { "Sec-Fetch-Site": "same-site" },
    { "Sec-Fetch-Site": "cross-site" },
    { Origin: "http://127.0.0.1:1" },
    { Origin: "https://evil.example" },
  ];
  for (const headers of refused) {
    const stream = await tab.connect("", headers);
    assert.equal(stream.status, 403, JSON.stringify(headers));
    await stream.waitForEnd();
    assert.match(stream.raw, /refused/);
  }
  assert.equal(app.stats().tabs, 0, "no refused stream started a tab");
  const own = await tab.connect("", { "Sec-Fetch-Site": "same-origin", Origin: base });
  assert.equal(own.status, 200);
  own.close();
});

test("a Host the app does not answer to is refused (DNS rebinding), health checks answer any Host", async () => {
  const { base, port } = await start();
  const tab = await new Browser(base).load();
  await tab.connect();
  const evil = { Host: "evil.example", Origin: "http://evil.example" };
  const action = await tab.action(tab.actionOf("inc"), tab.signals, evil);
  assert.equal(action.status, 403);
  assert.match(action.body, /host not allowed: "evil.example"/);
  assert.equal((await httpRequest(`${base}/`, { headers: { Host: `evil.example:${port}` } })).status, 403);
  assert.equal((await httpRequest(`${base}/healthz`, { headers: { Host: "10.1.2.3:8080" } })).status, 200);
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    assert.equal((await httpRequest(`${base}/`, { headers: { Host: host } })).status, 200, host);
  }
  tab.stream?.close();
});

test("a request naming two Hosts is a 400, whichever comes first", async () => {
  const { port } = await start();
  for (const hosts of ["Host: localhost\r\nHost: evil.example", "Host: evil.example\r\nHost: localhost"]) {
    const { socket, received } = await rawSocket(port);
    socket.write(`GET / HTTP/1.1\r\n${hosts}\r\nConnection: close\r\n\r\n`);
    await until("the answer arrived", () => received().includes("\r\n\r\n"));
    assert.match(received(), /^HTTP\/1\.1 400/, hosts);
    socket.destroy();
  }
});

test("allowedHosts names the hosts of a deployment, with subdomains by a leading dot, or any host", async () => {
  const listed = await start({ allowedHosts: ["chat.example.com", ".example.org"] });
  const status = async (base: string, host: string) =>
    (await httpRequest(`${base}/`, { headers: { Host: host } })).status;
  assert.equal(await status(listed.base, "chat.example.com"), 200);
  assert.equal(await status(listed.base, "a.b.example.org:443"), 200);
  assert.equal(await status(listed.base, "example.org"), 200);
  assert.equal(await status(listed.base, "example.com"), 403);
  assert.equal(await status(listed.base, "notexample.org"), 403);
  const any = await start({ allowedHosts: "any" });
  assert.equal(await status(any.base, "whatever.example"), 200);
});

// ---- timeouts and caps ----

const quick = { headersTimeoutMs: 500, requestTimeoutMs: 500 };

/**
 * Writes `chunk` every 100 ms (a client that never finishes) until the server closes the connection,
 * which must happen within 5 s: ten times the `quick` timeouts (without them it would stay open).
 */
async function trickleUntilCut(socket: Socket, closed: () => boolean, chunk: string): Promise<void> {
  const trickle = setInterval(() => socket.writable && socket.write(chunk), 100);
  try {
    await until("the server closed the connection", closed, 5_000);
  } finally {
    clearInterval(trickle);
  }
}

test("a client sending its headers slowly is cut off within the headers timeout", async () => {
  const { port } = await start({ server: quick });
  const { socket, received, closed } = await rawSocket(port);
  socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n");
  await trickleUntilCut(socket, closed, "X-Slow: 1\r\n");
  assert.match(received(), /^HTTP\/1\.1 408/);
});

test("an action body trickled byte by byte is cut off within the request timeout", async () => {
  const { base, port } = await start({ server: quick });
  const tab = await new Browser(base).load();
  await tab.connect();
  const { socket, closed } = await rawSocket(port);
  socket.write(
    `POST /_via/action/${tab.actionOf("inc")} HTTP/1.1\r\nHost: localhost\r\nVia-Request: 1\r\nVia-Tab: ${tab.tab}\r\n` +
      `Cookie: ${tab.browser.cookie}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
  );
  await trickleUntilCut(socket, closed, " ");
  tab.stream?.close();
});

test("an event stream outlives the request timeout: the timeout bounds receiving a request, not the response", async () => {
  const { base } = await start({ server: quick, keepaliveMs: 200 });
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  // Keepalives keep arriving well past the timeout (and the 1 s interval Node checks it on).
  const keepalives = () => stream.raw.match(/^: keepalive$/gm)?.length ?? 0;
  await until("ten keepalives arrived", () => keepalives() >= 10, 10_000);
  assert.equal(stream.ended, false);
  stream.close();
});

test("the server caps its connections: past maxConnections new ones are closed at once", async () => {
  const { port } = await start({ server: { maxConnections: 3 } });
  const held = await Promise.all([rawSocket(port), rawSocket(port), rawSocket(port)]);
  // Send a request on each so the server has certainly accepted them.
  for (const h of held) h.socket.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
  await until("the held connections were answered", () => held.every((h) => h.received().includes("200 OK")));
  const extra = await rawSocket(port);
  await until("the connection over the cap was closed", extra.closed);
  assert.equal(extra.received(), "");
  for (const h of held) h.socket.destroy();
});
