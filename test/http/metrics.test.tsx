// /metrics through a real server: what a Prometheus scrape of an app reads (tabs, streams, actions,
// publishes, deliveries, feed lag, the engine's connection), where it is served (off by default, a path,
// a port of its own) and that two apps in one process keep apart.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Gauge } from "prom-client";
import { natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import { Browser, httpRequest } from "../../harness/sse-client.ts";
import { type AppOptions, createApp, HttpError, openPubSub, type PubSub } from "../../src/index.ts";
import { Button } from "../support/fixture-app.tsx";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

const SECRET = "metrics tests: a secret of at least thirty-two bytes";

async function engine(): Promise<PubSub> {
  const dir = await mkdtemp(join(tmpdir(), "via-metrics-"));
  const pubsub = await openPubSub({ dataDir: dir });
  await pubsub.ensureStream({ name: "NOTES", subjects: ["notes.>"] });
  cleanups.push(async () => {
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  return pubsub;
}

/** A page with a feed of notes.general, an action that publishes to it, and one that refuses with a 422. */
async function start(options: AppOptions = {}) {
  const app = createApp({ secret: SECRET, ...options });
  // The slow action runs until the test releases it (or the app closes), so a test can leave mid-action.
  const slowGate = { running: 0, release: () => {} };
  const released = new Promise<void>((resolve) => {
    slowGate.release = resolve;
  });
  const feed = options.pubsub
    ? app.feed<string>({ decode: (m) => new TextDecoder().decode(m.data), render: (text) => <li>{text}</li> })
    : undefined;
  app.page("/", async (c) => {
    const post = c.action(async () => {
      await c.publish("notes.general", "hello");
    });
    const refuse = c.action(() => {
      throw new HttpError(422, "not like that");
    });
    const slow = c.action(async () => {
      slowGate.running++;
      await released;
    });
    const list = feed ? await feed.join(c, "notes.general", undefined, { id: "notes" }) : undefined;
    c.view(() => (
      <main>
        <Button id="post" action={post} label="post" />
        <Button id="refuse" action={refuse} label="refuse" />
        <Button id="slow" action={slow} label="slow" />
        <ol id="notes" {...list?.container()} />
      </main>
    ));
  });
  cleanups.push(() => {
    slowGate.release();
    return app.close();
  });
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  return { app, base: url, slowGate };
}

/** The samples of a scrape in the Prometheus text format, by series (`name{labels}` as written). */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await httpRequest(url, { headers });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  return parse(res.body);
}

/** Scrapes until `ok` holds for the samples (what is counted when a response closes lands a moment later). */
async function scrapeUntil(url: string, ok: (s: Map<string, number>) => boolean): Promise<Map<string, number>> {
  let samples = new Map<string, number>();
  await until(
    () => `the metrics got there: ${JSON.stringify([...samples])}`,
    async () => {
      samples = await scrape(url);
      return ok(samples);
    },
    5_000,
    20,
  );
  return samples;
}

test("/metrics reports tabs, open streams, actions by status, publishes, deliveries and feed lag", async () => {
  const pubsub = await engine();
  const { app, base } = await start({ pubsub, metrics: true });
  const browser = new Browser(base);
  const a = await browser.load();
  const b = await browser.load();
  const sa = await a.connect();
  const sb = await b.connect();
  assert.equal((await a.action(a.actionOf("post"))).status, 204);
  assert.equal((await a.action(a.actionOf("refuse"))).status, 422);
  assert.equal((await a.action("no-such-action")).status, 404);
  await sa.waitFor((e) => e.data.elements?.includes("hello") === true);
  await sb.waitFor((e) => e.data.elements?.includes("hello") === true);
  await assert.rejects(app.pubsub!.publish("notes..bad", "x"), { name: "SubjectError" });

  const s = await scrapeUntil(`${base}/metrics`, (s) => s.get('via_actions_total{status="404"}') === 1);
  assert.equal(s.get("via_tabs"), 2);
  assert.equal(s.get("via_streams_open"), 2);
  assert.equal(s.get("via_tabs_detached"), 0);
  assert.equal(s.get("via_sessions"), 1);
  assert.equal(s.get("via_queued_bytes"), 0);
  assert.equal(s.get("via_queue_cap_bytes"), 1024 * 1024);
  assert.equal(s.get("via_stream_overflows_total"), 0);
  assert.equal(s.get('via_actions_total{status="204"}'), 1);
  assert.equal(s.get('via_actions_total{status="422"}'), 1);
  assert.equal(s.get('via_action_duration_seconds_count{outcome="ok"}'), 1);
  assert.equal(s.get('via_action_duration_seconds_count{outcome="refused"}'), 2);
  assert.equal(s.get('via_action_duration_seconds_bucket{le="+Inf",outcome="ok"}'), 1);
  assert.equal(s.get('via_publishes_total{result="stored"}'), 1);
  assert.equal(s.get('via_publishes_total{result="failed"}'), 1);
  assert.equal(s.get('via_publish_failures_total{error="SubjectError"}'), 1);
  assert.equal(s.get("via_publish_ack_seconds_count"), 1);
  assert.ok(s.get("via_publish_ack_seconds_sum")! > 0);
  // One feed subscription for the subject, whatever the number of tabs: one delivery, one observation.
  assert.equal(s.get("via_pubsub_deliveries_total"), 1);
  assert.equal(s.get("via_feed_delivery_delay_seconds_count"), 1);
  assert.ok(s.get("via_stream_events_total")! >= 2, "at least the message went to both streams");
  assert.ok(s.get("via_stream_bytes_total")! > 0);
  assert.equal(s.get('via_pubsub_connected{engine="embedded"}'), 1);
  assert.equal(s.get("via_pubsub_reconnects_total"), 0);
  // The process's own, from prom-client's defaults.
  assert.ok(s.get("process_resident_memory_bytes")! > 0);
  assert.ok(s.has("nodejs_eventloop_lag_seconds"));
  sa.close();
  sb.close();
});

test("/metrics answers any Host, like /healthz, while pages keep the Host allow-list", async () => {
  const { base } = await start({ metrics: true });
  const page = await httpRequest(`${base}/`, { headers: { Host: "10.1.2.3:7331" } });
  assert.equal(page.status, 403);
  const s = await scrape(`${base}/metrics`, { Host: "10.1.2.3:7331" });
  assert.equal(s.get("via_tabs"), 0);
  const post = await httpRequest(`${base}/metrics`, { method: "POST" });
  assert.equal(post.status, 405);
});

test("metrics are off by default: /metrics is an ordinary path and the engine is not wrapped", async () => {
  const pubsub = await engine();
  const { app, base } = await start({ pubsub });
  assert.equal(app.metrics, undefined);
  assert.equal(app.pubsub, pubsub);
  assert.equal((await httpRequest(`${base}/metrics`)).status, 404);
});

test("metrics on a port of their own at their own path: served there, and the app's port has none", async () => {
  const { app, base } = await start({ metrics: { port: 0, path: "/internal/prom" } });
  const port = app.metrics!.port!;
  assert.ok(port > 0);
  const own = `http://127.0.0.1:${port}`;
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const s = await scrapeUntil(`${own}/internal/prom`, (s) => s.get("via_streams_open") === 1);
  assert.equal(s.get("via_tabs"), 1);
  assert.equal((await httpRequest(`${own}/metrics`)).status, 404);
  assert.equal((await httpRequest(`${base}/internal/prom`)).status, 404);
  assert.equal((await httpRequest(`${base}/metrics`)).status, 404);
  stream.close();
  await app.close();
  // Closed with the app: nothing listens on its port any more.
  const refused = await new Promise<string | undefined>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code));
  });
  assert.equal(refused, "ECONNREFUSED");
});

test("two apps in one process keep their own metrics, and an app's own metric shows in its scrape only", async () => {
  const one = await start({ metrics: true });
  const two = await start({ metrics: true });
  const custom = new Gauge({ name: "app_rooms", help: "Rooms of the app.", registers: [one.app.metrics!.registry] });
  custom.set(5);
  const tab = await new Browser(one.base).load();
  const stream = await tab.connect();
  assert.equal((await tab.action(tab.actionOf("refuse"))).status, 422);
  const s1 = await scrapeUntil(`${one.base}/metrics`, (s) => s.get('via_actions_total{status="422"}') === 1);
  const s2 = await scrape(`${two.base}/metrics`);
  assert.equal(s1.get("via_tabs"), 1);
  assert.equal(s2.get("via_tabs"), 0);
  assert.equal(s2.get('via_actions_total{status="422"}'), undefined);
  assert.equal(s1.get("app_rooms"), 5);
  assert.equal(s2.get("app_rooms"), undefined);
  stream.close();
});

test("an action whose client goes away before the answer counts as aborted", async () => {
  const { base, slowGate } = await start({ metrics: true });
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  const body = JSON.stringify({ signals: tab.signals });
  const req = request(`${base}/_via/action/${tab.actionOf("slow")}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(body),
      "Via-Request": "1",
      "Via-Tab": tab.tab,
      Cookie: tab.browser.cookie,
    },
  });
  req.on("error", () => {});
  req.end(body);
  // The action runs until released; the client leaves while it runs.
  await until("the slow action runs", () => slowGate.running === 1);
  req.destroy();
  const s = await scrapeUntil(`${base}/metrics`, (s) => s.get('via_actions_total{status="aborted"}') === 1);
  slowGate.release();
  assert.equal(s.get('via_action_duration_seconds_count{outcome="aborted"}'), 1);
  assert.equal(s.get('via_actions_total{status="204"}'), undefined);
  stream.close();
});

test("a NATS engine's reconnects and connection state are scraped", { skip: natsServerMissing() }, async () => {
  const server = await startNatsServer();
  cleanups.push(() => server.stop());
  const pubsub = await openPubSub({ natsUrl: [server.url] });
  cleanups.push(() => pubsub.close());
  const { base } = await start({ pubsub, metrics: true });
  const url = `${base}/metrics`;
  let s = await scrape(url);
  assert.equal(s.get('via_pubsub_connected{engine="nats"}'), 1);
  assert.equal(s.get("via_pubsub_reconnects_total"), 0);
  await server.kill9();
  s = await scrapeUntil(url, (s) => s.get('via_pubsub_connected{engine="nats"}') === 0);
  await server.start();
  s = await scrapeUntil(url, (s) => s.get('via_pubsub_connected{engine="nats"}') === 1);
  assert.equal(s.get("via_pubsub_reconnects_total"), 1);
});
