// The shared event stream at the protocol level (docs/PROTOCOL.md §7): what the browser's shared
// worker opens, how tabs attach to it, what it carries, and what is refused.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, test } from "node:test";
import { until } from "../../harness/poll.ts";
import { Browser, EventStream, httpRequest, type SseEvent, type TabClient } from "../../harness/sse-client.ts";
import type { App, AppOptions } from "../../src/index.ts";
import { createFixtureApp } from "../support/fixture-app.tsx";

const running: App[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

async function start(options: AppOptions = {}): Promise<{ app: App; base: string }> {
  const { app } = createFixtureApp(options);
  running.push(app);
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  return { app, base: url };
}

async function openMux(browser: Browser): Promise<{ stream: EventStream; id: string }> {
  const stream = await EventStream.open(`${browser.base}/_via/mux`, { Cookie: browser.cookie });
  assert.equal(stream.status, 200);
  const named = await stream.waitFor((e) => e.event === "via-mux");
  return { stream, id: named.data.id! };
}

function attach(tab: TabClient, mux: string, slot: string, headers: Record<string, string> = {}) {
  const url = new URL(tab.streamUrl());
  url.pathname = "/_via/attach";
  url.searchParams.set("mux", mux);
  url.searchParams.set("slot", slot);
  return httpRequest(url.href, {
    method: "POST",
    headers: { "Via-Request": "1", Cookie: tab.browser.cookie, ...headers },
  });
}

/** The events of the shared stream by slot, as the worker routes them. */
function bySlot(events: SseEvent[]): Map<string, SseEvent[]> {
  const out = new Map<string, SseEvent[]>();
  let slot = "";
  for (const e of events) {
    if (e.event === "via-tab") slot = e.data.slot!;
    else if (e.event !== "via-mux") {
      const key = e.event === "via-tab-end" ? e.data.slot! : slot;
      out.set(key, [...(out.get(key) ?? []), e]);
    }
  }
  return out;
}

test("a shared stream carries each attached tab's events, each run after a via-tab naming its slot", async () => {
  const { app, base } = await start();
  const browser = new Browser(base);
  const a = await browser.load();
  const b = await browser.load();
  const { stream, id } = await openMux(browser);
  assert.equal((await attach(a, id, "1")).status, 204);
  assert.equal((await attach(b, id, "2")).status, 204);
  assert.deepEqual([app.stats().connected, app.stats().sharedStreams, app.stats().sharedTabs], [2, 1, 2]);

  // The action takes the browser's signals: a shows 5, b shows 0.
  assert.equal((await a.action(a.actionOf("inc"), { ...a.signals, count: 5 })).status, 204);
  assert.equal((await b.action(b.actionOf("inc"))).status, 204);
  const patched = (e: SseEvent, count: number) =>
    e.event === "datastar-patch-signals" && e.data.signals === JSON.stringify({ count });
  await until("both tabs' patches arrived", () => {
    const slots = bySlot(stream.events);
    return !!slots.get("1")?.some((e) => patched(e, 6)) && !!slots.get("2")?.some((e) => patched(e, 1));
  });
  const slots = bySlot(stream.events);
  assert.ok(!slots.get("2")?.some((e) => patched(e, 6)), "tab b never gets tab a's patch");
  assert.ok(!slots.get("1")?.some((e) => patched(e, 1)), "tab a never gets tab b's patch");
  stream.close();
});

test("attach refuses an unknown stream (404), another session (409), a taken or malformed slot, a forged tab and a missing Via-Request", async () => {
  const { base } = await start();
  const browser = new Browser(base);
  const tab = await browser.load();
  const other = await new Browser(base).load();
  const { stream, id } = await openMux(browser);
  assert.equal((await attach(tab, "nope", "1")).status, 404);
  const foreign = await attach(other, id, "1");
  assert.equal(foreign.status, 409);
  assert.match(foreign.body, /another session/);
  assert.equal((await attach(tab, id, "0")).status, 409);
  assert.equal((await attach(tab, id, "1")).status, 204);
  const second = await browser.load();
  assert.equal((await attach(second, id, "1")).status, 409, "a slot is never reused on one stream");
  const forged = Object.create(second) as TabClient;
  Object.defineProperty(forged, "tab", { value: `${second.tab.slice(0, -2)}AA` });
  assert.equal((await attach(forged, id, "3")).status, 403);
  assert.equal((await attach(second, id, "4", { "Via-Request": "" })).status, 403);
  assert.equal((await httpRequest(`${base}/_via/mux`, {})).status, 403, "no session, no shared stream");
  stream.close();
});

test("a tab attached elsewhere leaves its lane with via-tab-end; a closed shared stream detaches its tabs", async () => {
  const { app, base } = await start();
  const browser = new Browser(base);
  const tab = await browser.load();
  const { stream, id } = await openMux(browser);
  assert.equal((await attach(tab, id, "7")).status, 204);
  const own = await tab.connect();
  await stream.waitFor((e) => e.event === "via-tab-end" && e.data.slot === "7");
  assert.deepEqual([app.stats().connected, app.stats().sharedTabs], [1, 0]);
  own.close();
  assert.equal((await attach(tab, id, "8")).status, 204);
  stream.close();
  await until("the tab is detached", () => app.stats().connected === 0 && app.stats().detached === 1);
  assert.equal(app.stats().sharedStreams, 0);
});

test("a goodbye disposes the tab at once; park keeps it, detached, until it attaches again", async () => {
  const { app, base } = await start();
  const browser = new Browser(base);
  const [leaving, parking] = [await browser.load(), await browser.load()];
  const streams = [await leaving.connect(), await parking.connect()];
  await until("both tabs are live", () => app.stats().connected === 2);
  const post = (path: string, tab: TabClient, headers: Record<string, string> = {}) =>
    httpRequest(`${base}${path}?tab=${tab.tab}`, { method: "POST", headers: { Cookie: browser.cookie, ...headers } });

  assert.equal((await post("/_via/bye", leaving, { "Sec-Fetch-Site": "cross-site" })).status, 403);
  assert.equal((await post("/_via/bye", leaving)).status, 204);
  assert.equal(app.stats().tabs, 1, "the closed tab is gone at once");

  assert.equal((await post("/_via/park", parking)).status, 403, "park comes from the runtime (Via-Request)");
  assert.equal((await post("/_via/park", parking, { "Via-Request": "1" })).status, 204);
  await streams[1]!.waitForEnd();
  assert.deepEqual([app.stats().tabs, app.stats().connected], [1, 0]);
  assert.equal((await post("/_via/park", leaving, { "Via-Request": "1" })).status, 410);
  const again = await parking.connect();
  await until("the parked tab is back", () => app.stats().connected === 1);
  again.close();
});

test("a tab whose events pile up on a shared stream is cut alone; the other tabs on it stay attached", async () => {
  const { app, base } = await start({ queueCapBytes: 256 * 1024 });
  const port = Number(new URL(base).port);
  const browser = new Browser(base);
  const [flooded, quiet] = [await browser.load(), await browser.load()];
  // A raw socket that asks for the shared stream and then stops reading.
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  let raw = "";
  socket.on("data", (d: Buffer) => {
    raw += d.toString();
  });
  socket.write(`GET /_via/mux HTTP/1.1\r\nHost: localhost\r\nCookie: ${browser.cookie}\r\n\r\n`);
  await until("the shared stream is named", () => /data: id (\S+)/.test(raw));
  const id = /data: id (\S+)/.exec(raw)![1]!;
  assert.equal((await attach(flooded, id, "1")).status, 204);
  assert.equal((await attach(quiet, id, "2")).status, 204);
  socket.pause();
  // 40 × 64 KiB patches for the first tab, several times what the socket buffers plus its cap.
  for (let i = 0; i < 5; i++) await flooded.action(flooded.actionOf("big"));
  await until("the flooded tab was cut", () => app.stats().overflows === 1);
  assert.equal(app.stats().sharedTabs, 1, "the quiet tab is still on the shared stream");
  assert.equal(app.stats().sharedStreams, 1);
  socket.resume();
  assert.equal((await quiet.action(quiet.actionOf("inc"))).status, 204);
  await until(
    "the quiet tab's patch arrived after the cut",
    () => {
      const events = raw.split("\n\n");
      const end = events.findIndex((e) => e.includes("event: via-tab-end") && e.includes("data: slot 1"));
      const patch = events.findIndex((e, i) => i > end && e.includes('data: signals {"count":1}'));
      return end >= 0 && patch > end;
    },
    10_000,
  );
  socket.destroy();
});

test("park requests count as actions of the client address: past its limit they get a 429", async () => {
  const { base } = await start({ clientLimits: { actions: { ratePerSec: 0.01, burst: 1 } } });
  const browser = new Browser(base);
  const tab = await browser.load();
  const stream = await tab.connect();
  const park = () =>
    httpRequest(`${base}/_via/park?tab=${tab.tab}`, {
      method: "POST",
      headers: { Cookie: browser.cookie, "Via-Request": "1" },
    });
  assert.equal((await park()).status, 204);
  const refused = await park();
  assert.equal(refused.status, 429);
  assert.ok(refused.headers["retry-after"]);
  stream.close();
});
