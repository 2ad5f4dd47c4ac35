// How a client process opens its tabs, as browsers do: the page (a new session, or another tab of one),
// then the event stream on the same keep-alive connection, or (the tabs scenario) one shared stream
// per browser with its tabs attached to it; and page loads that never open their stream.
import { type Agent, request } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { actionIn, bootOf, hasBoot, messageItems, messageList, viewHashOf } from "../../../harness/chat-markup.ts";
import { sleep } from "../../../harness/cleanup.ts";
import {
  feedBody,
  getRequest,
  parseResponse,
  type RawResponse,
  type SseParse,
  sseParseState,
  takeStreamHead,
} from "../../../harness/sse-parse.ts";
import { wallNow } from "../../common/ipc.ts";
import type {
  BrowsersArgs,
  BrowsersResult,
  ConnectArgs,
  ConnectResult,
  PageLoadArgs,
  PageLoadResult,
  PresenceArgs,
  PresenceResult,
} from "../client-api.ts";
import { parseMessageText } from "../shared.ts";
import { NO_POSITIONS, onEvent, onItem, onMuxEvent, phase, presence } from "./deliveries.ts";
import { post } from "./send.ts";
import {
  type Browser,
  browsers,
  byIndex,
  CountingAgent,
  counters,
  HOST,
  intern,
  onClosed,
  sockets,
  type Tab,
  tabs,
  unexpected,
  world,
} from "./world.ts";

function newTab(index: number, room: number): Tab {
  const t: Tab = {
    ...sseParseState(() => {}),
    index,
    room,
    path: "",
    cookie: "",
    tabId: "",
    actionId: "",
    signals: {},
    viewHash: "",
    sock: undefined,
    io: undefined,
    closed: false,
    received: new Uint32Array(64),
    receivedIds: new Uint32Array(64),
    nReceived: 0,
    pageIds: [],
    maxPos: 0,
    presence: 0,
    presenceReached: false,
  };
  t.emit = (ev) => onEvent(t, ev);
  return t;
}

/**
 * A raw connection of tab `t` (or of a browser's shared stream) to the server: registered for cleanup,
 * read as latin1, with a timeout.
 * `fail` rejects (once) and destroys it; `settle` stops the timeout once the caller resolved.
 */
function tabConnection(t: { sock: Socket | undefined }, timeoutMs: number, what: string, reject: (err: Error) => void) {
  const sock = netConnect({ host: HOST, port: world.port });
  sockets.push(sock);
  t.sock = sock;
  const state = { settled: false };
  const timer = setTimeout(() => fail(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  function fail(err: Error): void {
    if (state.settled) return;
    settle();
    sock.destroy();
    reject(err);
  }
  function settle(): void {
    state.settled = true;
    clearTimeout(timer);
  }
  sock.setEncoding("latin1");
  sock.setNoDelay(true);
  return { sock, state, fail, settle };
}

/** A GET request's bytes to the server under test, with the session cookie if there is one. */
function get(path: string, accept: string, cookie: string): string {
  return getRequest(`${HOST}:${world.port}`, path, accept, cookie);
}

/**
 * An event stream's response head at the start of `buf` (see takeStreamHead): notes in `p` whether the
 * body is chunked and returns the body bytes that came with the head.
 */
function streamHead(p: SseParse, buf: string): string | undefined {
  const head = takeStreamHead(buf);
  if (!head) return undefined;
  p.chunked = head.chunked;
  return head.rest;
}

/**
 * Reads an event stream's response on `sock` into `p`: the head first (a bad one fails), then the
 * body. `onHead` runs once the head is in, before the body bytes that came with it; `pending` is what
 * the connection already read after an earlier response on it.
 */
function readStream(sock: Socket, p: SseParse, fail: (err: Error) => void, onHead: () => void, pending = ""): void {
  let head: string | undefined = "";
  const take = (chunk: string) => {
    if (head === undefined) {
      if (phase.windowOpen) phase.windowReads++;
      feedBody(p, chunk);
      return;
    }
    head += chunk;
    let rest: string | undefined;
    try {
      rest = streamHead(p, head);
    } catch (err) {
      fail(err as Error);
      return;
    }
    if (rest === undefined) return;
    head = undefined;
    onHead();
    if (rest) feedBody(p, rest);
  };
  sock.on("data", take);
  if (pending) take(pending);
}

/**
 * Opens an event stream on a raw socket; resolves once the `200` response head is in. The body is read
 * as latin1 (one char per byte, so chunk sizes count right): only ASCII is read from it (markup, and
 * the seq and stamp at the start of a message's text).
 */
function openStream(t: Tab, path: string, cookie: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(t, timeoutMs, "stream open", reject);
    sock.on("connect", () => sock.write(get(path, "text/event-stream", cookie)));
    readStream(sock, t, fail, () => {
      settle();
      resolve();
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error("socket closed before the response"));
      else onClosed(t);
    });
  });
}

/** What the page's #messages list holds, as the runtime reports it: `messages:<newest>:<count>:<more>`. */
function readList(t: Tab, html: string): string {
  const list = messageList(html);
  if (!list) throw new Error('page without <ol id="messages" data-via-stream="">');
  const items = messageItems(list.items);
  t.pageIds = items.map((i) => intern(i.id));
  for (const i of items) if (i.pos > t.maxPos) t.maxPos = i.pos;
  return `messages:${t.maxPos}:${items.length}:${list.more ? 1 : 0}`;
}

/** A page load's response. */
type Page = Pick<RawResponse, "status" | "cookie" | "body" | "bytes">;

/**
 * A page load: without a cookie a new browser session, with one another tab of that browser. Like a
 * browser, it repeats the request once after a reset on a reused keep-alive connection before any
 * response (the server had closed it as idle).
 */
function getPage(path: string, agent: Agent, timeoutMs: number, cookie = "", retry = true): Promise<Page> {
  return new Promise((resolve, reject) => {
    const headers = cookie ? { Cookie: cookie } : {};
    const req = request({ host: HOST, port: world.port, path, agent, headers, timeout: timeoutMs }, (res) => {
      let body = "";
      let bytes = 0;
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
        bytes += Buffer.byteLength(c);
      });
      res.on("end", () => {
        const cookie = res.headers["set-cookie"]?.[0]?.split(";")[0] ?? "";
        resolve({ status: res.statusCode ?? 0, cookie, body, bytes });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`page GET timed out after ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === "ECONNRESET") {
        counters.staleRetries++;
        resolve(getPage(path, agent, timeoutMs, cookie, false));
      } else reject(new Error(`page GET ${path}: ${err.message} (${err.code})`));
    });
    req.end();
  });
}

/**
 * Reads what tab `t`'s stream request needs from its page: a new session (its cookie), or another tab
 * of the session whose cookie `t` has. Returns the stream URL.
 */
function pageInfo(t: Tab, page: Page): string {
  if (page.status !== 200) throw new Error(`page GET ${t.path} → ${page.status}: ${page.body.slice(0, 300)}`);
  if (!page.cookie && !t.cookie) throw new Error(`page GET ${t.path}: no session cookie`);
  if (page.cookie) t.cookie = page.cookie;
  if (world.protocol === "raw") return `/sse?room=${encodeURIComponent(world.rooms[t.room]!)}`;
  const boot = bootOf(page.body);
  if (!boot) throw new Error(`page GET ${t.path}: no via-boot meta`);
  t.tabId = boot.tab;
  t.signals = boot.signals;
  t.actionId = actionIn(page.body, "send");
  t.viewHash = viewHashOf(page.body) ?? "";
  // As the runtime's streamUrl(): tab, path, version, the view's hash, then what each streamed list holds.
  const q = new URLSearchParams({ tab: t.tabId, path: t.path, v: boot.v });
  if (t.viewHash) q.set("h", t.viewHash);
  q.set("streams", readList(t, page.body));
  return `/_via/sse?${q}`;
}

/**
 * A chat or raw tab, as a browser opens it: the page (a new session: no cookie) and then, on the same
 * keep-alive connection, the event stream with the session cookie; resolves once the stream's `200`
 * head is in. (A new connection for the stream if the server closes the page's.)
 */
function openPageAndStream(t: Tab, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(t, timeoutMs, "tab open", reject);
    let phase: "page" | "stream" = "page";
    let buf = "";
    sock.on("connect", () => sock.write(get(t.path, "text/html", "")));
    const onPage = (chunk: string) => {
      buf += chunk;
      const page = parseResponse(buf);
      if (!page) return;
      let streamPath: string;
      try {
        streamPath = pageInfo(t, page);
      } catch (err) {
        fail(err as Error);
        return;
      }
      sock.off("data", onPage);
      if (page.close) {
        // The server ends this connection: the stream goes on a new one, as a browser's would.
        settle();
        sock.removeAllListeners("close");
        sock.destroy();
        openStream(t, streamPath, t.cookie, timeoutMs).then(resolve, reject);
        return;
      }
      phase = "stream";
      sock.write(get(streamPath, "text/event-stream", t.cookie));
      readStream(
        sock,
        t,
        fail,
        () => {
          settle();
          resolve();
        },
        page.rest,
      );
    };
    sock.on("data", onPage);
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error(`socket closed before the ${phase} response`));
      else onClosed(t);
    });
  });
}

async function openTab(t: Tab, pageAgent: Agent, timeoutMs: number): Promise<void> {
  const room = world.rooms[t.room]!;
  if (world.protocol !== "socketio") {
    t.path = `/room/${encodeURIComponent(room)}`;
    return openPageAndStream(t, timeoutMs);
  }
  // Loaded only when needed: it makes every other client process slower to start.
  const { io: ioClient } = await import("socket.io-client");
  const s = ioClient(`http://${HOST}:${world.port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs,
    query: { room },
    // Counted sockets; engine.io-client hands `agent` to ws, which makes its request through it.
    agent: pageAgent as unknown as string,
  });
  t.io = s;
  s.on("msg", (m: { id?: unknown; text?: unknown }) => {
    const parsed = typeof m?.text === "string" ? parseMessageText(m.text) : undefined;
    if (parsed) onItem(t, parsed.seq, parsed.sentAt, String(m.id), NO_POSITIONS, "sent");
    else unexpected("unparseable Socket.IO message");
  });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("connect_error", (err) => reject(err));
  });
  s.on("disconnect", () => onClosed(t));
}

export async function connectAll(args: ConnectArgs): Promise<ConnectResult> {
  const t0 = performance.now();
  world.protocol = args.protocol;
  world.port = args.port;
  world.rooms = args.rooms;
  presence.target = args.presenceTarget ?? 0;
  presence.firstAt = 0;
  presence.allAt = 0;
  presence.reached = 0;
  presence.max = 0;
  world.localRoomCount = world.rooms.map(() => 0);
  const fresh = args.tabs.map(([index, room]) => {
    const t = newTab(index, room);
    tabs.push(t);
    byIndex.set(index, t);
    world.localRoomCount[room]!++;
    return t;
  });
  // Socket.IO's connections go through this agent (counted sockets); chat and raw tabs load their
  // page and open their stream on one connection of their own.
  const pageAgent = new CountingAgent({ keepAlive: false });
  let next = 0;
  const worker = async () => {
    while (next < fresh.length) {
      const t = fresh[next++]!;
      await openTab(t, pageAgent, args.timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, fresh.length) }, worker));
  return { open: tabs.filter((t) => !t.closed).length, ms: performance.now() - t0, endAt: wallNow() };
}

function newBrowser(index: number, room: number, tabIndices: number[]): Browser {
  const br: Browser = {
    ...sseParseState(() => {}),
    index,
    room,
    cookie: "",
    tabs: tabIndices.map((i) => newTab(i, room)),
    sock: undefined,
    muxId: "",
    onMuxId: undefined,
    bySlot: new Map(),
    lane: undefined,
    closed: false,
  };
  br.emit = (ev) => onMuxEvent(br, ev);
  return br;
}

/** Opens browser `br`'s shared stream (`GET /_via/mux` with its cookie); resolves with the stream's id. */
function openMux(br: Browser, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const { sock, state, fail, settle } = tabConnection(br, timeoutMs, "shared stream open", reject);
    br.onMuxId = () => {
      br.onMuxId = undefined;
      if (!br.muxId) {
        fail(new Error("via-mux without an id"));
        return;
      }
      settle();
      resolve();
    };
    sock.on("connect", () => sock.write(get("/_via/mux", "text/event-stream", br.cookie)));
    readStream(sock, br, fail, () => {});
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!state.settled) fail(new Error("socket closed before the shared stream's id"));
      br.closed = true;
      for (const t of br.bySlot.values()) onClosed(t);
    });
  });
}

/**
 * Browser `br`: its tabs' pages, one after another on one keep-alive connection (the first makes the
 * session, the others send its cookie), then either one shared stream with every tab attached to it
 * (slots 1…T, the attaches at once, as tabs do) or a stream of its own per tab.
 */
async function openBrowser(br: Browser, shared: boolean, attachAgent: Agent, timeoutMs: number): Promise<void> {
  const path = `/room/${encodeURIComponent(world.rooms[br.room]!)}`;
  const pageAgent = new CountingAgent({ keepAlive: true, maxSockets: 1 });
  const streamPaths: string[] = [];
  try {
    for (const t of br.tabs) {
      t.path = path;
      t.cookie = br.cookie;
      streamPaths.push(pageInfo(t, await getPage(path, pageAgent, timeoutMs, br.cookie)));
      br.cookie = t.cookie;
    }
  } finally {
    pageAgent.destroy();
  }
  if (!shared) {
    await Promise.all(br.tabs.map((t, i) => openStream(t, streamPaths[i]!, br.cookie, timeoutMs)));
    return;
  }
  await openMux(br, timeoutMs);
  await Promise.all(
    br.tabs.map(async (t, i) => {
      const slot = i + 1;
      br.bySlot.set(slot, t);
      // As the runtime: the tab's stream query, plus the shared stream and the slot its worker gave it.
      const query = streamPaths[i]!.slice(streamPaths[i]!.indexOf("?") + 1);
      const status = await post(
        `/_via/attach?${query}&mux=${encodeURIComponent(br.muxId)}&slot=${slot}`,
        { "Via-Request": "1", Cookie: br.cookie },
        "",
        attachAgent,
      );
      if (status !== 204) throw new Error(`browser ${br.index}: attach of tab ${t.index} in slot ${slot} → ${status}`);
    }),
  );
}

export async function connectBrowsers(args: BrowsersArgs): Promise<BrowsersResult> {
  const t0 = performance.now();
  world.protocol = "via";
  world.port = args.port;
  world.rooms = args.rooms;
  presence.target = 0;
  world.localRoomCount = world.rooms.map(() => 0);
  const fresh = args.browsers.map(([index, room, tabIndices]) => {
    const br = newBrowser(index, room, tabIndices);
    browsers.push(br);
    for (const t of br.tabs) {
      tabs.push(t);
      byIndex.set(t.index, t);
      world.localRoomCount[room]!++;
    }
    return br;
  });
  // The attach requests' connections are closed once every browser is in: what stays is the streams.
  const attachAgent = new CountingAgent({ keepAlive: true, maxSockets: 16 });
  let next = 0;
  const worker = async () => {
    while (next < fresh.length) await openBrowser(fresh[next++]!, args.shared, attachAgent, args.timeoutMs);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency, fresh.length) }, worker));
  } finally {
    attachAgent.destroy();
  }
  const streamSockets = args.shared
    ? browsers.filter((br) => br.sock && !br.sock.destroyed).length
    : tabs.filter((t) => t.sock && !t.sock.destroyed).length;
  return {
    open: tabs.filter((t) => !t.closed).length,
    ms: performance.now() - t0,
    endAt: wallNow(),
    streamSockets,
    openSockets: sockets.filter((s) => !s.destroyed).length,
  };
}

/** Waits until every local tab has shown the presence target (or the timeout). */
export async function waitForPresence(args: PresenceArgs): Promise<PresenceResult> {
  const deadline = performance.now() + args.timeoutMs;
  while (presence.reached < tabs.length && performance.now() < deadline) await sleep(10);
  return {
    firstAt: presence.firstAt,
    allAt: presence.reached === tabs.length ? presence.allAt : 0,
    reached: presence.reached,
    tabs: tabs.length,
    maxSeen: presence.max,
  };
}

/** `count` page loads, each a new session (no cookie), that never open their stream. */
export async function pageLoads(args: PageLoadArgs): Promise<PageLoadResult> {
  const t0 = performance.now();
  world.protocol = args.protocol;
  world.port = args.port;
  const agent = new CountingAgent({ keepAlive: true, maxSockets: args.concurrency });
  const path = `/room/${encodeURIComponent(args.room)}`;
  let next = 0;
  let loaded = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < args.count) {
      next++;
      const page = await getPage(path, agent, args.timeoutMs);
      if (page.status !== 200 || !page.cookie) throw new Error(`page GET ${path} → ${page.status}`);
      if (world.protocol === "via" && !hasBoot(page.body)) throw new Error("page without via-boot");
      loaded++;
      bytes += page.bytes;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency, args.count) }, worker));
  } finally {
    agent.destroy();
  }
  return { loaded, ms: performance.now() - t0, bytes };
}
