// app.handler is a plain node:http handler: it works inside a server (or framework) the app does not own.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { Browser } from "../../harness/sse-client.ts";
import { createFixtureApp } from "../support/fixture-app.tsx";

test("app.handler serves pages, streams and actions when mounted in someone else's node:http server", async () => {
  const { app } = createFixtureApp();
  // A host server with its own route, delegating everything else to the app, as Express/Fastify/Hono would.
  const server = createServer((req, res) => {
    if (req.url === "/host-only") {
      res.end("host");
      return;
    }
    app.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(async () => {
    await app.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tab = await new Browser(base).load();
  const stream = await tab.connect();
  assert.equal((await tab.action(tab.actionOf("inc"))).status, 204);
  const ev = await stream.waitFor((e) => e.event === "datastar-patch-signals");
  assert.deepEqual(JSON.parse(ev.data.signals!), { count: 1 });
  const host = await fetch(`${base}/host-only`);
  assert.equal(await host.text(), "host");
  stream.close();
});
