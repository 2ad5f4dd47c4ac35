// bench:chat's client process (bench/chat/clients.ts) against a scripted stand-in of the chat: it opens
// the stream the way the runtime does (the view's hash and the list's position in the URL) before it
// sends, counts a message once per tab when its stored copy arrives, treats a re-sent item with an id
// the tab holds as an upsert (no delivery), and counts the same text under a second id as a duplicate
// and a message a tab never got as lost. A browser with several tabs (the tabs scenario) loads its pages
// in one session, opens one shared stream and attaches each tab to it under its own slot, and each event
// on that stream counts for the tab whose slot the last `via-tab` named.
import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import type {
  BrowsersArgs,
  BrowsersResult,
  ConnectArgs,
  ConnectResult,
  Counters,
  FinishArgs,
  FinishResult,
  OpenLoopArgs,
  SendResult,
} from "../../bench/chat/clients.ts";
import { Child } from "../../bench/sse/ipc.ts";

const TAB_IDS = ["A".repeat(43), "B".repeat(43)];
const HASH = "hash0123456789ab";

/** One stored item as the chat's feed renders it (pos: its stream position; none for the sender's own patches). */
function item(id: string, text: string, cls: string, pos?: number): string {
  const at = pos === undefined ? "" : ` data-via-pos="${pos}"`;
  return (
    `<li${at} class="chat-message${cls}" id="m-${id}"><div class="bubble"><header><strong class="author">X</strong>` +
    `</header><p class="text">${text.replaceAll("&", "&amp;")}</p></div></li>`
  );
}
function append(html: string, eventId?: number): string {
  return (
    "event: datastar-patch-elements\n" +
    (eventId === undefined ? "" : `id: ${eventId}\n`) +
    `data: selector #messages\ndata: mode append\ndata: elements ${html}\n\n`
  );
}

test("bench:chat clients: stored copies, upserts, duplicates and losses", { timeout: 60_000 }, async () => {
  const streams = new Map<string, ServerResponse>();
  const streamQueries: URLSearchParams[] = [];
  let pages = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method === "GET" && url.pathname === "/room/Lobby") {
      const tab = TAB_IDS[pages++ % 2]!;
      const boot = JSON.stringify({ tab, signals: { statement: "", nick: "X" }, v: "v1" }).replaceAll('"', "&quot;");
      res.writeHead(200, { "Content-Type": "text/html", "Set-Cookie": `via_session=s${pages}; Path=/` });
      res.end(
        `<html><head><meta name="via-boot" content="${boot}"></head><body><div id="via-view" data-via-hash="${HASH}">` +
          `<ol id="messages" data-via-stream="" data-via-more="">${item("old", "#0 t=1.000 old", "", 7)}</ol>` +
          `<button type="button" id="send" data-on-click="a2">Send</button></div></body></html>`,
      );
      return;
    }
    if (req.method === "GET" && url.pathname === "/_via/sse") {
      streamQueries.push(url.searchParams);
      res.writeHead(200, { "Content-Type": "text/event-stream", Connection: "close" });
      res.write(": hello\n\n");
      streams.set(url.searchParams.get("tab")!, res);
      return;
    }
    if (req.method === "POST" && url.pathname === "/_via/action/a2") {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        const tab = req.headers["via-tab"] as string;
        const text = (JSON.parse(body) as { signals: { statement: string } }).signals.statement;
        const seq = Number(/^#(\d+) /.exec(text)![1]);
        res.writeHead(streams.has(tab) ? 204 : 410).end();
        const sender = streams.get(TAB_IDS[0]!)!;
        const other = streams.get(TAB_IDS[1]!)!;
        const id = `msg${seq}`;
        sender.write(append(item(id, text, " mine sending")));
        if (seq === 1) {
          // Stored copy and ack to the sender (an upsert), the stored copy twice to the other tab.
          sender.write(append(item(id, text, " mine", 10), 10));
          sender.write(append(item(id, text, " mine")));
          other.write(append(item(id, text, "", 10), 10));
          other.write(append(item(id, text, "", 10), 10));
        } else if (seq === 2) {
          // The same text stored twice, as two ids: a duplicate for the other tab.
          sender.write(append(item(id, text, " mine", 11), 11));
          other.write(append(item(id, text, "", 11), 11));
          other.write(append(item("again2", text, "", 12), 12));
        } else {
          // Never reaches the other tab: lost.
          sender.write(append(item(id, text, " mine", 13), 13));
        }
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const child = new Child("clients", new URL("../../bench/chat/clients.ts", import.meta.url));
  after(async () => {
    await child.call("stop").catch(() => {});
    await child.kill();
    for (const s of streams.values()) s.destroy();
    server.close();
  });
  await child.ready;

  const connect = await child.call<ConnectResult>("connect", {
    protocol: "via",
    port,
    rooms: ["Lobby"],
    tabs: [
      [0, 0],
      [1, 0],
    ],
    concurrency: 1,
    timeoutMs: 5_000,
  } satisfies ConnectArgs);
  assert.equal(connect.open, 2);
  // As the runtime: the view's hash and the list (newest position 7, 1 item, older ones exist).
  for (const q of streamQueries) {
    assert.equal(q.get("h"), HASH);
    assert.equal(q.get("streams"), "messages:7:1:1");
    assert.equal(q.get("path"), "/room/Lobby");
    assert.equal(q.get("v"), "v1");
  }

  const sends = await child.call<SendResult>("openLoop", {
    startAt: performance.timeOrigin + performance.now(),
    intervalMs: 20,
    firstSeq: 1,
    count: 3,
    totalTabs: 1,
    measuredFrom: 1,
  } satisfies OpenLoopArgs);
  assert.deepEqual(
    sends.records.map((r) => r[3]),
    [204, 204, 204],
  );
  const fin = await child.call<FinishResult>("finish", {
    messages: [
      [1, 0, 0],
      [2, 0, 0],
      [3, 0, 0],
    ],
    timeoutMs: 500,
  } satisfies FinishArgs);
  assert.equal(fin.expectedDeliveries, 3);
  assert.equal(fin.duplicates, 1, "the text of #2 under a second id");
  assert.equal(fin.lostDeliveries, 1, "#3 never reached tab 1");
  assert.deepEqual(fin.lostSeqs, [3]);
  assert.deepEqual(fin.unconfirmed, [], "the sender saw every message stored");
  assert.equal(fin.hist.n, 3, "deliveries: #1 once (its upsert is not one), #2 twice");
  const counters = await child.call<Counters>("counters");
  assert.equal(counters.upserts, 2, "the sender's ack after the stored copy, and #1 re-sent to tab 1");
  assert.equal(counters.unexpected, 0, counters.unexpectedSample);
});

test("bench:chat clients: a browser's tabs on one shared stream, each event routed by its slot", {
  timeout: 60_000,
}, async () => {
  const tabIds = ["C".repeat(43), "D".repeat(43)];
  let mux: ServerResponse | undefined;
  const pageCookies: string[] = [];
  const muxCookies: string[] = [];
  const attaches: Array<{ query: URLSearchParams; cookie: string; viaRequest: string }> = [];
  const slotOf = new Map<string, number>();
  let pages = 0;
  const lane = (slot: number, events: string) => `event: via-tab\ndata: slot ${slot}\n\n${events}`;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const cookie = req.headers.cookie ?? "";
    if (req.method === "GET" && url.pathname === "/room/Lobby") {
      pageCookies.push(cookie);
      const tab = tabIds[pages++]!;
      const boot = JSON.stringify({ tab, signals: { statement: "" }, v: "v1" }).replaceAll('"', "&quot;");
      res.writeHead(200, {
        "Content-Type": "text/html",
        ...(cookie ? {} : { "Set-Cookie": "via_session=b1; Path=/" }),
      });
      res.end(
        `<html><head><meta name="via-boot" content="${boot}"></head><body><div id="via-view" data-via-hash="${HASH}">` +
          `<ol id="messages" data-via-stream="">${item("old", "#0 t=1.000 old", "", 7)}</ol>` +
          `<button type="button" id="send" data-on-click="a2">Send</button></div></body></html>`,
      );
      return;
    }
    if (req.method === "GET" && url.pathname === "/_via/mux") {
      muxCookies.push(cookie);
      res.writeHead(200, { "Content-Type": "text/event-stream", Connection: "close" });
      res.write("event: via-mux\ndata: id m1\n\n: keepalive\n\n");
      mux = res;
      return;
    }
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      if (req.method === "POST" && url.pathname === "/_via/attach") {
        attaches.push({ query: url.searchParams, cookie, viaRequest: String(req.headers["via-request"] ?? "") });
        slotOf.set(url.searchParams.get("tab")!, Number(url.searchParams.get("slot")));
        res.writeHead(url.searchParams.get("mux") === "m1" ? 204 : 404).end();
        return;
      }
      if (req.method === "POST" && url.pathname === "/_via/action/a2") {
        const text = (JSON.parse(body) as { signals: { statement: string } }).signals.statement;
        const seq = Number(/^#(\d+) /.exec(text)![1]);
        res.writeHead(204).end();
        const sender = slotOf.get(req.headers["via-tab"] as string)!;
        const other = sender === 1 ? 2 : 1;
        const id = `msg${seq}`;
        if (seq === 1) {
          // The sender's "sending", the other tab's stored copy, then the sender's: three runs.
          mux!.write(lane(sender, append(item(id, text, " mine sending"))));
          mux!.write(lane(other, append(item(id, text, " mine", 10), 10)));
          mux!.write(lane(sender, append(item(id, text, " mine", 10), 10)));
        } else {
          // Only the sender's lane gets it (lost for the other tab), then the other tab's lane ends.
          mux!.write(lane(sender, append(item(id, text, " mine", 11), 11)));
          mux!.write(`event: via-tab-end\ndata: slot ${other}\n\n`);
        }
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const child = new Child("clients", new URL("../../bench/chat/clients.ts", import.meta.url));
  after(async () => {
    await child.call("stop").catch(() => {});
    await child.kill();
    mux?.destroy();
    server.close();
  });
  await child.ready;

  // One browser: tabs 0 and 1 (tab 0 sends).
  const connect = await child.call<BrowsersResult>("connectBrowsers", {
    port,
    rooms: ["Lobby"],
    browsers: [[0, 0, [0, 1]]],
    shared: true,
    concurrency: 1,
    timeoutMs: 5_000,
  } satisfies BrowsersArgs);
  assert.equal(connect.open, 2);
  assert.equal(connect.streamSockets, 1, "one shared stream for the browser");
  assert.deepEqual(pageCookies, ["", "via_session=b1"], "the second page is the same session's");
  assert.deepEqual(muxCookies, ["via_session=b1"]);
  assert.deepEqual(attaches.map((a) => [a.query.get("tab"), a.query.get("mux"), a.query.get("slot")]).sort(), [
    [tabIds[0], "m1", "1"],
    [tabIds[1], "m1", "2"],
  ]);
  for (const a of attaches) {
    assert.equal(a.cookie, "via_session=b1");
    assert.equal(a.viaRequest, "1");
    // The tab's own stream query, as the runtime sends it.
    assert.equal(a.query.get("h"), HASH);
    assert.equal(a.query.get("streams"), "messages:7:1:0");
    assert.equal(a.query.get("path"), "/room/Lobby");
    assert.equal(a.query.get("v"), "v1");
  }

  const sends = await child.call<SendResult>("openLoop", {
    startAt: performance.timeOrigin + performance.now(),
    intervalMs: 20,
    firstSeq: 1,
    count: 2,
    totalTabs: 1,
    measuredFrom: 1,
  } satisfies OpenLoopArgs);
  assert.deepEqual(
    sends.records.map((r) => r[3]),
    [204, 204],
  );
  const fin = await child.call<FinishResult>("finish", {
    messages: [
      [1, 0, 0],
      [2, 0, 0],
    ],
    timeoutMs: 500,
  } satisfies FinishArgs);
  assert.equal(fin.expectedDeliveries, 2, "tab 1 gets both; tab 0 sent them");
  assert.equal(fin.hist.n, 1, "#1 reached tab 1 on its lane");
  assert.deepEqual(fin.lostSeqs, [2], "#2 came on the sender's lane only");
  assert.deepEqual(fin.unconfirmed, [], "the sender saw both stored, on its own lane");
  assert.equal(fin.duplicates, 0);
  const counters = await child.call<Counters>("counters");
  assert.equal(counters.laneEnds, 1);
  assert.equal(counters.closed, 1, "tab 1's lane ended");
  assert.equal(counters.unexpected, 0, counters.unexpectedSample);
});
