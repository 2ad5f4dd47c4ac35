// bench:chat's client process (bench/chat/clients.ts) against a scripted stand-in of the chat: it opens
// the stream the way the runtime does (the view's hash and the list's position in the URL) before it
// sends, counts a message once per tab when its stored copy arrives, treats a re-sent item with an id
// the tab holds as an upsert (no delivery), and counts the same text under a second id as a duplicate
// and a message a tab never got as lost. A browser with several tabs (the tabs scenario) loads its pages
// in one session, opens one shared stream and attaches each tab to it under its own slot, and each event
// on that stream counts for the tab whose slot the last `via-tab` named.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import type * as Api from "../../bench/chat/client-api.ts";
import { Child } from "../../bench/common/ipc.ts";

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
/** A room page as the chat renders it: the boot meta, the view's hash, #messages with one old item, Send. */
function roomPage(tab: string, signals: Record<string, unknown>, more: boolean): string {
  const boot = JSON.stringify({ tab, signals, v: "v1" }).replaceAll('"', "&quot;");
  return (
    `<html><head><meta name="via-boot" content="${boot}"></head><body><div id="via-view" data-via-hash="${HASH}">` +
    `<ol id="messages" data-via-stream=""${more ? ' data-via-more=""' : ""}>${item("old", "#0 t=1.000 old", "", 7)}</ol>` +
    `<button type="button" id="send" data-on-click="a2">Send</button></div></body></html>`
  );
}

/** The seq a say action's statement carries (`#<seq> t=…`), and the statement. */
function said(body: string): { text: string; seq: number } {
  const text = (JSON.parse(body) as { signals: { statement: string } }).signals.statement;
  return { text, seq: Number(/^#(\d+) /.exec(text)![1]) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => resolve(body));
  });
}

/** Starts the stand-in and a client process against it; both end after the test (`cleanup` first). */
async function startClients(server: Server, cleanup: () => void): Promise<{ port: number; child: Child }> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const child = new Child("clients", new URL("../../bench/chat/clients.ts", import.meta.url));
  after(async () => {
    await child.call("stop").catch(() => {});
    await child.kill();
    cleanup();
    server.close();
  });
  await child.ready;
  return { port, child };
}

/** One open loop of `count` messages from tab 0, every 20 ms; the statuses of the sends. */
async function sendFromTab0(child: Child, count: number): Promise<number[]> {
  const sends = await child.call<Api.SendResult>("openLoop", {
    startAt: performance.timeOrigin + performance.now(),
    intervalMs: 20,
    firstSeq: 1,
    count,
    totalTabs: 1,
    measuredFrom: 1,
  } satisfies Api.OpenLoopArgs);
  return sends.records.map((r) => r[3]);
}

/** The loss check of seqs 1…count, all sent by tab 0 in room 0. */
function finishAll(child: Child, count: number): Promise<Api.FinishResult> {
  const messages = Array.from({ length: count }, (_, i): [number, number, number] => [i + 1, 0, 0]);
  return child.call<Api.FinishResult>("finish", { messages, timeoutMs: 500 } satisfies Api.FinishArgs);
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
      res.writeHead(200, { "Content-Type": "text/html", "Set-Cookie": `via_session=s${pages}; Path=/` });
      res.end(roomPage(tab, { statement: "", nick: "X" }, true));
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
      void readBody(req).then((body) => {
        const tab = req.headers["via-tab"] as string;
        const { text, seq } = said(body);
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
  const { port, child } = await startClients(server, () => {
    for (const s of streams.values()) s.destroy();
  });

  const connect = await child.call<Api.ConnectResult>("connect", {
    protocol: "via",
    port,
    rooms: ["Lobby"],
    tabs: [
      [0, 0],
      [1, 0],
    ],
    concurrency: 1,
    timeoutMs: 5_000,
  } satisfies Api.ConnectArgs);
  assert.equal(connect.open, 2);
  // As the runtime: the view's hash and the list (newest position 7, 1 item, older ones exist).
  for (const q of streamQueries) {
    assert.equal(q.get("h"), HASH);
    assert.equal(q.get("streams"), "messages:7:1:1");
    assert.equal(q.get("path"), "/room/Lobby");
    assert.equal(q.get("v"), "v1");
  }

  assert.deepEqual(await sendFromTab0(child, 3), [204, 204, 204]);
  const fin = await finishAll(child, 3);
  assert.equal(fin.expectedDeliveries, 3);
  assert.equal(fin.duplicates, 1, "the text of #2 under a second id");
  assert.equal(fin.lostDeliveries, 1, "#3 never reached tab 1");
  assert.deepEqual(fin.lostSeqs, [3]);
  assert.deepEqual(fin.unconfirmed, [], "the sender saw every message stored");
  assert.equal(fin.hist.n, 3, "deliveries: #1 once (its upsert is not one), #2 twice");
  const counters = await child.call<Api.Counters>("counters");
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
      res.writeHead(200, {
        "Content-Type": "text/html",
        ...(cookie ? {} : { "Set-Cookie": "via_session=b1; Path=/" }),
      });
      res.end(roomPage(tab, { statement: "" }, false));
      return;
    }
    if (req.method === "GET" && url.pathname === "/_via/mux") {
      muxCookies.push(cookie);
      res.writeHead(200, { "Content-Type": "text/event-stream", Connection: "close" });
      res.write("event: via-mux\ndata: id m1\n\n: keepalive\n\n");
      mux = res;
      return;
    }
    void readBody(req).then((body) => {
      if (req.method === "POST" && url.pathname === "/_via/attach") {
        attaches.push({ query: url.searchParams, cookie, viaRequest: String(req.headers["via-request"] ?? "") });
        slotOf.set(url.searchParams.get("tab")!, Number(url.searchParams.get("slot")));
        res.writeHead(url.searchParams.get("mux") === "m1" ? 204 : 404).end();
        return;
      }
      if (req.method === "POST" && url.pathname === "/_via/action/a2") {
        const { text, seq } = said(body);
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
  const { port, child } = await startClients(server, () => mux?.destroy());

  // One browser: tabs 0 and 1 (tab 0 sends).
  const connect = await child.call<Api.BrowsersResult>("connectBrowsers", {
    port,
    rooms: ["Lobby"],
    browsers: [[0, 0, [0, 1]]],
    shared: true,
    concurrency: 1,
    timeoutMs: 5_000,
  } satisfies Api.BrowsersArgs);
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

  assert.deepEqual(await sendFromTab0(child, 2), [204, 204]);
  const fin = await finishAll(child, 2);
  assert.equal(fin.expectedDeliveries, 2, "tab 1 gets both; tab 0 sent them");
  assert.equal(fin.hist.n, 1, "#1 reached tab 1 on its lane");
  assert.deepEqual(fin.lostSeqs, [2], "#2 came on the sender's lane only");
  assert.deepEqual(fin.unconfirmed, [], "the sender saw both stored, on its own lane");
  assert.equal(fin.duplicates, 0);
  const counters = await child.call<Api.Counters>("counters");
  assert.equal(counters.laneEnds, 1);
  assert.equal(counters.closed, 1, "tab 1's lane ended");
  assert.equal(counters.unexpected, 0, counters.unexpectedSample);
});
