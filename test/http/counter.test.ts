// The counter example through a real server: per-tab state, and the shared feed (a channel into a
// streamed list) reaching every open tab once.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createCounterApp } from "../../examples/counter/app.tsx";
import { Browser } from "../../harness/sse-client.ts";
import type { App } from "../../src/index.ts";

const running: App[] = [];
after(async () => {
  await Promise.all(running.map((a) => a.close()));
});

test("counter example: the count is per tab, and a posted note reaches every open tab and later pages", async () => {
  const app = createCounterApp();
  running.push(app);
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  const [a, b] = [await new Browser(url).load(), await new Browser(url).load()];
  const [sa, sb] = [await a.connect("&streams=feed:0:0:0"), await b.connect("&streams=feed:0:0:0")];
  assert.equal((await a.action(a.actionOf("inc"))).status, 204);
  const render = await sa.waitFor((e) => (e.data.elements ?? "").includes('<output id="count">1</output>'));
  assert.ok(render);
  assert.equal((await a.action(a.actionOf("post"), { note: "hello <everyone>" })).status, 204);
  for (const s of [sa, sb]) {
    const ev = await s.waitFor((e) => e.data.selector === "#feed");
    assert.equal(ev.data.mode, "append");
    assert.match(ev.data.elements!, /hello &lt;everyone&gt;<\/li>$/);
  }
  assert.equal(sb.events.filter((e) => (e.data.elements ?? "").includes("count")).length, 0, "b's count is its own");
  const later = await new Browser(url).load();
  assert.match(later.html, /<ul id="feed" data-via-stream=""><li>.*hello &lt;everyone&gt;<\/li><\/ul>/);
  sa.close();
  sb.close();
});
