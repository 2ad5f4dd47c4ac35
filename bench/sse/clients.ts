// bench:sse client child: holds thousands of event streams open on raw node:net sockets and times
// every fan-out message that arrives on them.
//
// A via "tab" is what a browser tab costs the server: a page GET without a cookie (a new session; we
// read the session cookie, the via-boot tab id and the view's hash) and then the event stream with
// that cookie and that hash, as the runtime opens it (the live context is built then). A raw "tab" is
// just the stream. Parsing is minimal: the SSE body is scanned for `data-t="<send wall ms>:<seq>"`,
// which every fan-out element carries; nothing else is decoded (not even the events: splitting them
// would cost more than the scan).
//
// Transports (`--h2`): "http" is plain HTTP/1.1, a connection per stream; "https" is HTTP/1.1 over TLS
// (a TLS connection per stream, as a server with TLS serves clients without HTTP/2); "h2" is HTTP/2
// over TLS, `streamsPerConnection` tabs' pages and streams on one connection (a browser's tabs share
// one; here each tab still has its own session cookie, so only the transport differs).

import { Agent, type IncomingMessage, request } from "node:http";
import { type ClientHttp2Session, connect as h2connect } from "node:http2";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { bootOf, viewHashOf } from "../../harness/chat-markup.ts";
import { sleep } from "../../harness/cleanup.ts";
import { getRequest, takeStreamHead } from "../../harness/sse-parse.ts";
import { percentile } from "../../harness/stats.ts";
import { serveIpc, wallNow } from "../common/ipc.ts";
import { STAMP_ATTR } from "./fanout.ts";

export type Transport = "http" | "https" | "h2";

export interface ConnectArgs {
  kind: "via" | "raw";
  /** Default "http". */
  transport?: Transport;
  /** h2: tabs per HTTP/2 connection (default 100). */
  streamsPerConnection?: number;
  port: number;
  /** Total streams to have open when done (adds to what is open). */
  total: number;
  batch: number;
  timeoutMs: number;
}

export interface ConnectResult {
  open: number;
  ms: number;
}

export interface CollectArgs {
  /** Measured deliveries to wait for (ticks × streams). */
  expected: number;
  timeoutMs: number;
}

export interface ResetArgs {
  /** Latencies to make room for. */
  capacity: number;
  /** Messages with seq ≤ this are the warm-up: counted (for loss) but not timed. */
  warmupTicks: number;
}

export interface CollectResult {
  /** Measured deliveries (after the warm-up). */
  received: number;
  warmupReceived: number;
  duplicates: number;
  outOfOrder: number;
  closedStreams: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  firstArrival: number;
  lastArrival: number;
  /** This process's CPU while the messages arrived, ms (to show the client was not the bottleneck). */
  cpuMs: number;
  wallMs: number;
}

interface Stream {
  carry: string;
  lastSeq: number;
  closed: boolean;
}

const HOST = "127.0.0.1";
const streams: Stream[] = [];

// Delivery bookkeeping, reset by "reset".
let latencies = new Float64Array(0);
let count = 0;
let warmupTicks = 0;
let warmupCount = 0;
let duplicates = 0;
let outOfOrder = 0;
let closedStreams = 0;
let firstArrival = 0;
let lastArrival = 0;
let cpuAtReset = process.cpuUsage();
let wallAtReset = 0;

function record(s: Stream, latency: number, seq: number, at: number): void {
  if (seq <= s.lastSeq) {
    if (seq === s.lastSeq) duplicates++;
    else outOfOrder++;
    return;
  }
  s.lastSeq = seq;
  if (seq <= warmupTicks) {
    warmupCount++;
    return;
  }
  if (count < latencies.length) latencies[count] = latency;
  count++;
  if (firstArrival === 0) firstArrival = at;
  lastArrival = at;
}

/** Scans a body chunk for stamps; keeps the tail that may hold a stamp cut by the chunk boundary. */
function onBody(s: Stream, chunk: string): void {
  const at = wallNow();
  const buf = s.carry + chunk;
  let pos = 0;
  let partial = -1;
  for (;;) {
    const i = buf.indexOf(STAMP_ATTR, pos);
    if (i < 0) break;
    const j = buf.indexOf('"', i + STAMP_ATTR.length);
    if (j < 0) {
      partial = i;
      break;
    }
    const value = buf.slice(i + STAMP_ATTR.length, j);
    const colon = value.indexOf(":");
    record(s, at - Number(value.slice(0, colon)), Number(value.slice(colon + 1)), at);
    pos = j + 1;
  }
  s.carry = partial >= 0 ? buf.slice(partial) : buf.slice(Math.max(pos, buf.length - (STAMP_ATTR.length - 1)));
}

/** Opens one event stream on a raw socket; resolves once the `200` response head is in. */
function openStream(
  port: number,
  path: string,
  cookie: string | undefined,
  timeoutMs: number,
  tls = false,
): Promise<Stream> {
  return new Promise<Stream>((resolve, reject) => {
    const sock: Socket = tls
      ? tlsConnect({ host: HOST, port, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] })
      : connect({ host: HOST, port });
    const s: Stream = { carry: "", lastSeq: 0, closed: false };
    let head = "";
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`stream open timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding("latin1");
    sock.setNoDelay(true);
    sock.on(tls ? "secureConnect" : "connect", () => {
      sock.write(getRequest(`${HOST}:${port}`, path, "text/event-stream", cookie));
    });
    sock.on("data", (chunk: string) => {
      if (settled) {
        onBody(s, chunk);
        return;
      }
      head += chunk;
      let rest: string | undefined;
      try {
        rest = takeStreamHead(head)?.rest;
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (rest === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve(s);
      if (rest) onBody(s, rest);
    });
    sock.on("error", (err) => fail(err));
    sock.on("close", () => {
      if (!settled) fail(new Error("socket closed before the response"));
      else if (!s.closed) {
        s.closed = true;
        closedStreams++;
      }
    });
  });
}

interface Page {
  cookie: string;
  tab: string;
  v: string;
  hash: string | undefined;
}

function parsePage(status: number | undefined, setCookie: string[] | undefined, body: string): Page {
  if (status !== 200) throw new Error(`page GET → ${status}`);
  const cookie = setCookie?.[0]?.split(";")[0];
  const boot = bootOf(body);
  if (!cookie || !boot) throw new Error("page without a session cookie or via-boot meta");
  return { cookie, tab: boot.tab, v: boot.v, hash: viewHashOf(body) };
}

/** A first page load without a cookie: a new session (the tab's context is built when its stream attaches). */
function loadPage(agent: Agent, port: number, timeoutMs: number, tls: boolean): Promise<Page> {
  return new Promise((resolve, reject) => {
    const opts = { host: HOST, port, path: "/", agent, timeout: timeoutMs };
    const onResponse = (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => {
        try {
          resolve(parsePage(res.statusCode, res.headers["set-cookie"], body));
        } catch (err) {
          reject(err);
        }
      });
      res.on("error", reject);
    };
    const req = tls ? httpsRequest(opts, onResponse) : request(opts, onResponse);
    req.on("timeout", () => req.destroy(new Error(`page GET timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** HTTP/2 connections of the "h2" transport, each carrying up to `streamsPerConnection` tabs. */
const h2Sessions: Array<{ session: ClientHttp2Session; tabs: number }> = [];

function h2Session(port: number, perConnection: number): ClientHttp2Session {
  let last = h2Sessions.at(-1);
  if (!last || last.tabs >= perConnection) {
    const session = h2connect(`https://${HOST}:${port}`, { rejectUnauthorized: false });
    session.on("error", () => {});
    last = { session, tabs: 0 };
    h2Sessions.push(last);
  }
  last.tabs++;
  return last.session;
}

function h2LoadPage(session: ClientHttp2Session, timeoutMs: number): Promise<Page> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":path": "/" }, { endStream: true });
    const timer = setTimeout(() => req.close(), timeoutMs);
    let status: number | undefined;
    let setCookie: string[] | undefined;
    let body = "";
    req.setEncoding("utf8");
    req.on("response", (h) => {
      status = Number(h[":status"]);
      setCookie = h["set-cookie"];
    });
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(parsePage(status, setCookie, body));
      } catch (err) {
        reject(err);
      }
    });
    req.on("error", reject);
    req.on("close", () => reject(new Error(`page GET closed (code ${req.rstCode})`)));
  });
}

/** One event stream as one HTTP/2 stream; resolves once its `200` response head is in. */
function h2OpenStream(session: ClientHttp2Session, path: string, cookie: string, timeoutMs: number): Promise<Stream> {
  return new Promise<Stream>((resolve, reject) => {
    const s: Stream = { carry: "", lastSeq: 0, closed: false };
    const req = session.request({ ":path": path, cookie, accept: "text/event-stream" }, { endStream: true });
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      req.close();
      reject(new Error(`stream open timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.setEncoding("latin1");
    req.on("response", (h) => {
      clearTimeout(timer);
      settled = true;
      if (h[":status"] !== 200) reject(new Error(`stream: ${h[":status"]}`));
      else resolve(s);
    });
    req.on("data", (chunk: string) => onBody(s, chunk));
    req.on("error", () => {});
    req.on("close", () => {
      clearTimeout(timer);
      if (!settled) reject(new Error(`stream closed before the response (code ${req.rstCode})`));
      else if (!s.closed) {
        s.closed = true;
        closedStreams++;
      }
    });
  });
}

async function openTab(args: ConnectArgs, agent: Agent): Promise<Stream> {
  const transport = args.transport ?? "http";
  if (args.kind === "raw") return openStream(args.port, "/sse", undefined, args.timeoutMs, transport === "https");
  // As the runtime opens it: tab, path, version and the view's hash (the page has no streamed list).
  const streamPath = (page: Page) => {
    const q = new URLSearchParams({ tab: page.tab, path: "/", v: page.v });
    if (page.hash) q.set("h", page.hash);
    return `/_via/sse?${q}`;
  };
  if (transport === "h2") {
    const session = h2Session(args.port, args.streamsPerConnection ?? 100);
    const page = await h2LoadPage(session, args.timeoutMs);
    return h2OpenStream(session, streamPath(page), page.cookie, args.timeoutMs);
  }
  const page = await loadPage(agent, args.port, args.timeoutMs, transport === "https");
  return openStream(args.port, streamPath(page), page.cookie, args.timeoutMs, transport === "https");
}

async function connectAll(args: ConnectArgs): Promise<ConnectResult> {
  const t0 = performance.now();
  // Page GETs reuse a few keep-alive connections; destroyed afterwards so the server's idle
  // keep-alive sockets do not count in its memory. (Over HTTP/2 they go on the tabs' connections.)
  const maxSockets = Math.min(args.batch, 64);
  const agent =
    args.transport === "https"
      ? new HttpsAgent({ keepAlive: true, maxSockets, rejectUnauthorized: false })
      : new Agent({ keepAlive: true, maxSockets });
  try {
    while (streams.length < args.total) {
      const n = Math.min(args.batch, args.total - streams.length);
      const batch = await Promise.all(Array.from({ length: n }, () => openTab(args, agent)));
      streams.push(...batch);
    }
  } finally {
    agent.destroy();
  }
  return { open: streams.filter((s) => !s.closed).length, ms: performance.now() - t0 };
}

function reset(args: ResetArgs): void {
  latencies = new Float64Array(args.capacity);
  count = 0;
  warmupTicks = args.warmupTicks;
  warmupCount = 0;
  duplicates = 0;
  outOfOrder = 0;
  closedStreams = 0;
  firstArrival = 0;
  lastArrival = 0;
  for (const s of streams) s.lastSeq = 0;
  cpuAtReset = process.cpuUsage();
  wallAtReset = performance.now();
}

async function collect(args: CollectArgs): Promise<CollectResult> {
  const deadline = performance.now() + args.timeoutMs;
  while (count < args.expected && performance.now() < deadline) await sleep(20);
  const cpu = process.cpuUsage(cpuAtReset);
  const n = Math.min(count, latencies.length);
  const sorted = latencies.slice(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    received: count,
    warmupReceived: warmupCount,
    duplicates,
    outOfOrder,
    closedStreams,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: n > 0 ? sorted[n - 1]! : Number.NaN,
    mean: n > 0 ? sum / n : Number.NaN,
    firstArrival,
    lastArrival,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs: performance.now() - wallAtReset,
  };
}

serveIpc(
  {
    connect: (args) => connectAll(args as ConnectArgs),
    reset: (args) => reset(args as ResetArgs),
    collect: (args) => collect(args as CollectArgs),
  },
  { pid: process.pid },
);
