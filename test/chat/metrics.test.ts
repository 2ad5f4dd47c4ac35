// The chat CLI serves Prometheus metrics by default; --metrics and --metrics-port move or turn them off.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { ChatTab } from "../../harness/chat-client.ts";
import { type ChatProcess, type ChatProcessOptions, startChatProcess } from "../../harness/chat-process.ts";
import { until } from "../../harness/poll.ts";
import { httpRequest } from "../../harness/sse-client.ts";

async function chat(t: TestContext, opts: ChatProcessOptions = {}): Promise<ChatProcess> {
  const dir = mkdtempSync(join(tmpdir(), "via-chat-metrics-"));
  const proc = await startChatProcess({ dataDir: dir, ...opts });
  t.after(async () => {
    await proc.kill9();
    rmSync(dir, { recursive: true, force: true });
  });
  return proc;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("the chat serves /metrics by default: its open tab, a sent message's publish and its feed delivery", async (t) => {
  const proc = await chat(t);
  const tab = await ChatTab.open(proc.url, "Go");
  assert.equal((await tab.send("hello metrics")).status, 204);
  await tab.waitUntil((m) => m.some((x) => x.text === "hello metrics" && x.state === "sent"), 10_000, "the message");
  let text = "";
  // The action's answer is counted when its response closes: poll, don't sleep.
  await until(
    () => `an action is counted:\n${text}`,
    async () => {
      const res = await httpRequest(`${proc.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers["content-type"] ?? "", /^text\/plain; version=0\.0\.4/);
      text = res.body;
      return sample(text, 'via_actions_total{status="204"}') !== undefined;
    },
    5_000,
  );
  assert.equal(sample(text, "via_tabs"), 1);
  assert.equal(sample(text, "via_streams_open"), 1);
  assert.ok(sample(text, 'via_publishes_total{result="stored"}')! >= 1);
  assert.ok(sample(text, "via_publish_ack_seconds_count")! >= 1);
  assert.ok(sample(text, "via_feed_delivery_delay_seconds_count")! >= 1);
  assert.equal(sample(text, 'via_pubsub_connected{engine="embedded"}'), 1);
  tab.close();
});

test("--metrics off leaves /metrics to the pages (404)", async (t) => {
  const proc = await chat(t, { metrics: "off" });
  assert.equal((await httpRequest(`${proc.url}/metrics`)).status, 404);
});

test("--metrics-port serves the metrics on a port of their own, at the --metrics path", async (t) => {
  const proc = await chat(t, { metrics: "/prom", metricsPort: 0 });
  const url = /metrics on (http:\/\/[^\s"]+)/.exec(proc.output())?.[1];
  assert.ok(url, `the start-up log names the metrics URL:\n${proc.output()}`);
  assert.match(url, /\/prom$/);
  const res = await httpRequest(url);
  assert.equal(res.status, 200);
  assert.equal(sample(res.body, "via_tabs"), 0);
  assert.equal((await httpRequest(`${proc.url}/prom`)).status, 404);
  assert.equal((await httpRequest(`${proc.url}/metrics`)).status, 404);
});
