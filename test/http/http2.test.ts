// The framework served over TLS (`app.listen(…, { tls })`): HTTP/2 for clients that offer it, HTTP/1.1
// for the others, on one port. The point of HTTP/2 here: a browser's tabs share one connection, each
// event stream one stream of it, where HTTP/1.1 gives a browser 6 connections per origin and every
// open tab holds one. Spoken to with node:http2 and node:https at the protocol level.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { type ClientHttp2Session, type ClientHttp2Stream, constants, connect as h2connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { connect as tcpConnect } from "node:net";
import { after, type TestContext, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { actionIn, parseEvents, type SseEvent } from "../../harness/sse-client.ts";
import { certOrSkip } from "../../harness/tls.ts";
import type { App, AppOptions } from "../../src/index.ts";
import { unescapeHtml } from "../../src/server/html.ts";
import { createFixtureApp } from "../support/fixture-app.tsx";

const running: App[] = [];
const sessions: ClientHttp2Session[] = [];
after(async () => {
  for (const s of sessions) s.destroy();
  await Promise.all(running.map((a) => a.close()));
});

interface Served {
  app: App;
  url: string;
  port: number;
  /** TCP connections the server accepted so far. */
  connections: () => number;
}

async function start(t: TestContext, options: AppOptions = {}): Promise<Served | null> {
  const cert = certOrSkip(t);
  if (!cert) return null;
  const { app } = createFixtureApp(options);
  running.push(app);
  const { url, port, server } = await app.listen(0, "127.0.0.1", {
    handleSignals: false,
    tls: { cert: cert.cert, key: cert.key },
  });
  let connections = 0;
  server.on("connection", () => connections++);
  return { app, url, port, connections: () => connections };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One browser over HTTP/2: one connection, one cookie jar, any number of tabs and streams. */
class H2Browser {
  readonly session: ClientHttp2Session;
  cookie = "";

  constructor(readonly url: string) {
    this.session = h2connect(url, { rejectUnauthorized: false });
    this.session.on("error", () => {});
    sessions.push(this.session);
  }

  request(
    path: string,
    opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({
        ":path": path,
        ":method": opts.method ?? "GET",
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...opts.headers,
      });
      let status = 0;
      let headers: IncomingHttpHeaders = {};
      let body = "";
      stream.setEncoding("utf8");
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = h;
      });
      stream.on("data", (d: string) => {
        body += d;
      });
      stream.on("end", () => resolve({ status, headers, body }));
      stream.on("error", reject);
      stream.end(opts.body);
    });
  }

  async load(path = "/"): Promise<H2Tab> {
    const res = await this.request(path);
    assert.equal(res.status, 200, res.body);
    const setCookie = res.headers["set-cookie"]?.[0];
    if (setCookie) this.cookie = setCookie.split(";")[0]!;
    const m = /<meta name="via-boot" content="([^"]*)">/.exec(res.body);
    assert.ok(m, "page has no via-boot meta");
    const boot = JSON.parse(unescapeHtml(m[1]!)) as { tab: string; signals: Record<string, unknown>; v: string };
    return new H2Tab(this, path, boot.tab, boot.signals, boot.v, res.body);
  }
}

class H2Tab {
  constructor(
    readonly browser: H2Browser,
    readonly path: string,
    readonly id: string,
    readonly signals: Record<string, unknown>,
    readonly version: string,
    readonly html: string,
  ) {}

  streamPath(): string {
    const q = new URLSearchParams({ tab: this.id, path: this.path, v: this.version });
    const hash = /<div id="via-view" data-via-hash="([^"]*)"/.exec(this.html)?.[1];
    if (hash) q.set("h", hash);
    return `/_via/sse?${q}`;
  }

  connect(): Promise<H2EventStream> {
    return H2EventStream.open(this.browser, this.streamPath());
  }

  action(elementId: string, signals: Record<string, unknown> = this.signals): Promise<Reply> {
    return this.browser.request(`/_via/action/${actionIn(this.html, elementId)}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "via-request": "1",
        "via-tab": this.id,
        origin: this.browser.url,
      },
      body: JSON.stringify({ signals }),
    });
  }
}

class H2EventStream {
  readonly events: SseEvent[] = [];
  raw = "";
  headers: IncomingHttpHeaders = {};
  closed = false;
  private buffer = "";

  private constructor(readonly stream: ClientHttp2Stream) {}

  static open(browser: H2Browser, path: string): Promise<H2EventStream> {
    const stream = browser.session.request(
      { ":path": path, accept: "text/event-stream", cookie: browser.cookie },
      { endStream: true },
    );
    const s = new H2EventStream(stream);
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      s.raw += chunk;
      s.buffer += chunk;
      const end = s.buffer.lastIndexOf("\n\n");
      if (end >= 0) {
        s.events.push(...parseEvents(s.buffer.slice(0, end + 2)));
        s.buffer = s.buffer.slice(end + 2);
      }
    });
    stream.on("close", () => {
      s.closed = true;
    });
    stream.on("error", () => {});
    return new Promise((resolve, reject) => {
      stream.once("response", (h) => {
        s.headers = h;
        resolve(s);
      });
      stream.once("close", () => reject(new Error(`stream closed before its response (code ${stream.rstCode})`)));
    });
  }

  async waitFor(pred: (e: SseEvent) => boolean, timeoutMs = 5_000): Promise<SseEvent> {
    const found = await until(() => this.events.find(pred), timeoutMs);
    if (!found) throw new Error(`timed out waiting for an event; got ${JSON.stringify(this.events).slice(0, 500)}`);
    return found;
  }
}

async function until<T>(fn: () => T | undefined | false, timeoutMs = 5_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function appended(text: string): (e: SseEvent) => boolean {
  return (e) => e.data.mode === "append" && e.data.elements === `<li>${text}</li>`;
}

/** An HTTPS request over HTTP/1.1 (node:https offers only http/1.1 in ALPN). */
function h1Request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply & { httpVersion: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: opts.method ?? "GET", headers: opts.headers, rejectUnauthorized: false, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, httpVersion: res.httpVersion }),
        );
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

test("over HTTP/2 one connection carries 10 event streams of one browser, and actions update them", async (t) => {
  const served = await start(t);
  if (!served) return;
  const browser = new H2Browser(served.url);
  const tabs: H2Tab[] = [];
  for (let i = 0; i < 10; i++) tabs.push(await browser.load());
  assert.match(browser.cookie, /^via_session=/);
  const streams = await Promise.all(tabs.map((tab) => tab.connect()));
  for (const s of streams) {
    assert.equal(s.headers[":status"], 200);
    assert.equal(s.headers["content-type"], "text/event-stream");
    // HTTP/2 has no connection-level headers: the stream's end ends the body.
    assert.equal(s.headers.connection, undefined);
    assert.equal(s.headers["transfer-encoding"], undefined);
  }
  await until(() => served.app.stats().connected === 10);
  assert.equal(served.app.stats().connected, 10, "all 10 streams are open at once");

  // A broadcast from one tab reaches all ten streams; a tab's own update reaches its stream.
  const res = await tabs[3]!.action("broadcast", { ...tabs[3]!.signals, text: "over h2" });
  assert.equal(res.status, 204, res.body);
  await Promise.all(streams.map((s) => s.waitFor(appended("over h2"))));
  assert.equal((await tabs[7]!.action("inc")).status, 204);
  const sig = await streams[7]!.waitFor((e) => e.event === "datastar-patch-signals");
  assert.deepEqual(JSON.parse(sig.data.signals!), { count: 1 });

  assert.equal(served.connections(), 1, "pages, streams and actions all went over one connection");
  for (const s of streams) s.stream.close();
});

test("HTTP/1.1 on the same TLS port: page, event stream (a plain body, Connection: close) and action", async (t) => {
  const served = await start(t);
  if (!served) return;
  const page = await h1Request(`${served.url}/`);
  assert.equal(page.httpVersion, "1.1");
  assert.equal(page.status, 200);
  const setCookie = page.headers["set-cookie"]?.[0] ?? "";
  assert.match(setCookie, /; Secure/, "a session cookie over TLS is Secure");
  const cookie = setCookie.split(";")[0]!;
  const boot = JSON.parse(unescapeHtml(/<meta name="via-boot" content="([^"]*)">/.exec(page.body)![1]!)) as {
    tab: string;
    v: string;
    signals: Record<string, unknown>;
  };
  const q = new URLSearchParams({ tab: boot.tab, path: "/", v: boot.v });
  let raw = "";
  const opened = new Promise<IncomingHttpHeaders & { version: string }>((resolve, reject) => {
    const req = httpsRequest(
      `${served.url}/_via/sse?${q}`,
      { headers: { Cookie: cookie, Accept: "text/event-stream" }, rejectUnauthorized: false, agent: false },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          raw += d;
        });
        resolve({ ...res.headers, version: res.httpVersion });
      },
    );
    req.on("error", reject);
    req.end();
    t.after(() => req.destroy());
  });
  const headers = await opened;
  assert.equal(headers.version, "1.1");
  assert.equal(headers["content-type"], "text/event-stream");
  assert.equal(headers.connection, "close");
  assert.equal(headers["transfer-encoding"], undefined, "not chunked");
  const res = await h1Request(`${served.url}/_via/action/${actionIn(page.body, "broadcast")}`, {
    method: "POST",
    headers: {
      Cookie: cookie,
      "Content-Type": "application/json",
      "Via-Request": "1",
      "Via-Tab": boot.tab,
      Origin: served.url,
    },
    body: JSON.stringify({ signals: { ...boot.signals, text: "over h1" } }),
  });
  assert.equal(res.status, 204, res.body);
  assert.ok(await until(() => raw.includes("<li>over h1</li>")), `the stream got the broadcast; got ${raw}`);
});

test("a stream cut for overflow is reset alone (RST_STREAM): the connection and the other tabs' streams go on", async (t) => {
  const served = await start(t, { queueCapBytes: 4 * 1024 * 1024 });
  if (!served) return;
  const browser = new H2Browser(served.url);
  const [stalled, other] = [await browser.load(), await browser.load()];
  const [ss, so] = [await stalled.connect(), await other.connect()];
  await until(() => served.app.stats().connected === 2);
  // The stalled tab's reader stops: its stream's window runs out and the server's writes back up.
  ss.stream.pause();
  // 40 × 64 KiB patches per click: the first backs up (held, under the 4 MiB cap), the next goes over it.
  for (let i = 0; i < 5 && !ss.closed; i++) {
    const res = await stalled.action("big");
    if (res.status !== 204) break;
    await until(() => ss.closed, 300);
  }
  assert.ok(await until(() => ss.closed), "the stalled stream was cut");
  assert.equal(ss.stream.rstCode, constants.NGHTTP2_CANCEL, "reset with RST_STREAM CANCEL");
  assert.equal(served.app.stats().overflows, 1);
  assert.equal(browser.session.closed || browser.session.destroyed, false, "the connection is still open");
  assert.equal(so.closed, false, "the other tab's stream is still open");

  const res = await other.action("broadcast", { ...other.signals, text: "after the cut" });
  assert.equal(res.status, 204, res.body);
  await so.waitFor(appended("after the cut"));
  assert.equal(served.connections(), 1);
});

test("over HTTP/2 the Host checks read :authority: an unknown name is refused, a Host beside it must agree", async (t) => {
  const served = await start(t, { metrics: true });
  if (!served) return;
  const browser = new H2Browser(served.url);
  const evil = await browser.request("/", { headers: { ":authority": `evil.example:${served.port}` } });
  assert.equal(evil.status, 403, evil.body);
  assert.match(evil.body, /host not allowed/);
  const both = await browser.request("/", {
    headers: { ":authority": `127.0.0.1:${served.port}`, host: `evil.example:${served.port}` },
  });
  assert.equal(both.status, 400, both.body);
  // Health checks and metrics answer any name, over TLS too.
  const health = await browser.request("/healthz", { headers: { ":authority": "10.1.2.3" } });
  assert.equal(health.status, 200);
  assert.equal((await browser.request("/readyz")).status, 200);
  const metrics = await browser.request("/metrics", { headers: { ":authority": "10.1.2.3" } });
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /via_streams_open/);
  // An action from another origin is refused; from the page's own (https://127.0.0.1:port) it runs.
  const tab = await browser.load();
  const foreign = await browser.request(`/_via/action/${actionIn(tab.html, "inc")}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "via-request": "1",
      "via-tab": tab.id,
      origin: "https://evil.example",
    },
    body: JSON.stringify({ signals: tab.signals }),
  });
  assert.equal(foreign.status, 403);
  await tab.connect();
  assert.equal((await tab.action("inc")).status, 204);
});

test("an action body over the cap gets its 413 over HTTP/2 without a Connection header, and the connection goes on", async (t) => {
  const served = await start(t, { maxBodyBytes: 1024 });
  if (!served) return;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  const browser = new H2Browser(served.url);
  const tab = await browser.load();
  await tab.connect();
  const res = await browser.request(`/_via/action/${actionIn(tab.html, "inc")}`, {
    method: "POST",
    headers: { "content-type": "application/json", "via-request": "1", "via-tab": tab.id, origin: served.url },
    body: JSON.stringify({ signals: { ...tab.signals, text: "x".repeat(4096) } }),
  });
  assert.equal(res.status, 413);
  assert.equal(res.headers.connection, undefined);
  assert.equal((await tab.action("inc")).status, 204, "the same connection serves the next request");
  assert.deepEqual(
    warnings.filter((w) => /connection header/i.test(w.message)).map((w) => w.message),
    [],
    "node warned about a connection header",
  );
});

// A shutdown budget far longer than the test's timeout: close() returning at all shows it did not wait for it.
test("keepalives reach idle HTTP/2 streams; app.close() says via-bye on each and closes the connection", {
  timeout: 60_000,
}, async (t) => {
  const served = await start(t, { keepaliveMs: 100, shutdownTimeoutMs: 600_000 });
  if (!served) return;
  const browser = new H2Browser(served.url);
  const streams = await Promise.all([1, 2, 3].map(async () => (await browser.load()).connect()));
  for (const s of streams) assert.ok(await until(() => s.raw.includes(": keepalive\n")), "a keepalive comment");
  let goaway = false;
  browser.session.on("goaway", () => {
    goaway = true;
  });
  await served.app.close();
  for (const s of streams) {
    const bye = await s.waitFor((e) => e.event === "via-bye");
    assert.equal(bye.data.reason, "server shutting down");
    assert.ok(await until(() => s.closed), "the stream ended");
  }
  assert.ok(await until(() => browser.session.closed || browser.session.destroyed), "the connection closed");
  assert.ok(goaway, "the client was told to go away (GOAWAY)");
});

test("an HTTP/2 connection is kept while it has an open stream, and closed after keepAliveTimeoutMs without one", async (t) => {
  const served = await start(t, { server: { keepAliveTimeoutMs: 300 } });
  if (!served) return;
  const busy = new H2Browser(served.url);
  const stream = await (await busy.load()).connect();
  // The idle connection's last request comes after the busy one's: once the idle one is closed, the
  // busy one would have been too, were its open stream not keeping it.
  const idle = new H2Browser(served.url);
  assert.equal((await idle.request("/healthz")).status, 200);
  assert.ok(await until(() => idle.session.closed || idle.session.destroyed, 3_000), "the idle connection closed");
  assert.equal(busy.session.closed || busy.session.destroyed, false, "a connection with an event stream stays");
  assert.equal(stream.closed, false);
  stream.stream.close();
  assert.ok(await until(() => busy.session.closed || busy.session.destroyed, 3_000), "closed once its stream ended");
});

test("HTTP/1.1 over TLS keeps the server limits: slow headers get a 408, a silent TLS handshake is dropped", async (t) => {
  const served = await start(t, { server: { headersTimeoutMs: 400, requestTimeoutMs: 400 } });
  if (!served) return;
  const slow = tlsConnect({
    port: served.port,
    host: "127.0.0.1",
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
  });
  let reply = "";
  slow.on("data", (d: Buffer) => {
    reply += d.toString();
  });
  slow.on("error", () => {});
  slow.once("secureConnect", () => slow.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  const slowClosed = new Promise<void>((resolve) => slow.once("close", () => resolve()));
  // A TCP connection that never starts TLS: closed after the handshake timeout (headersTimeoutMs).
  const silent = tcpConnect({ port: served.port, host: "127.0.0.1" });
  silent.on("error", () => {});
  const silentClosed = new Promise<void>((resolve) => silent.once("close", () => resolve()));
  // Both are closed within 5 s, over ten times the 400 ms limits (without the limits they stay open).
  let closed = 0;
  for (const p of [slowClosed, silentClosed]) void p.then(() => closed++);
  assert.ok(await until(() => closed === 2, 5_000), "both connections were closed");
  assert.match(reply, /^HTTP\/1\.1 408/);
});

test("over HTTP/2 the shared stream carries a browser's tabs: each tab's patch after its via-tab", async (t) => {
  const s = await start(t);
  if (!s) return;
  const browser = new H2Browser(s.url);
  const [a, b] = [await browser.load(), await browser.load()];
  const mux = await H2EventStream.open(browser, "/_via/mux");
  const named = await mux.waitFor((e) => e.event === "via-mux");
  const attach = (tab: H2Tab, slot: string) =>
    browser.request(`${tab.streamPath().replace("/_via/sse?", "/_via/attach?")}&mux=${named.data.id}&slot=${slot}`, {
      method: "POST",
      headers: { "via-request": "1", origin: s.url },
    });
  assert.equal((await attach(a, "1")).status, 204);
  assert.equal((await attach(b, "2")).status, 204);
  assert.deepEqual([s.app.stats().sharedStreams, s.app.stats().sharedTabs], [1, 2]);
  assert.equal((await a.action("inc", { ...a.signals, count: 41 })).status, 204);
  assert.equal((await b.action("inc")).status, 204);
  const patchOf = (count: number) => (e: SseEvent) =>
    e.event === "datastar-patch-signals" && e.data.signals === JSON.stringify({ count });
  await mux.waitFor(patchOf(42));
  await mux.waitFor(patchOf(1));
  // The patch of each tab comes in a run named by its slot.
  let slot = "";
  const slotOf = new Map<number, string>();
  for (const e of mux.events) {
    if (e.event === "via-tab") slot = e.data.slot!;
    for (const n of [42, 1]) if (patchOf(n)(e)) slotOf.set(n, slot);
  }
  assert.deepEqual([slotOf.get(42), slotOf.get(1)], ["1", "2"]);
  assert.equal(s.connections(), 1, "one connection for the page loads, the shared stream and the actions");
});
