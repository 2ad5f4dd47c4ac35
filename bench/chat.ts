// `npm run bench:chat`: load on the chat through its real protocol, with protocol-level clients (no
// browsers), next to a raw node:http SSE chat (the ceiling for Node) and a Socket.IO 4 chat under the
// same clients pattern, in one run. Our chat runs twice: on the embedded engine and on a nats-server.
//
// Per scenario and system: a fresh server process, client processes (bench/chat/clients.ts) that open
// the tabs, then what the scenario measures: (a, b) an open-loop phase at a fixed message rate
// (latency, bytes on the wire) and a closed-loop phase (deliveries/s at saturation), with a loss
// check after each; (c) memory with idle tabs; (ramp) tabs joining one room until its presence shows
// them all; (pages) memory after page loads that never open their stream; (growth) memory before and
// after a fixed number of messages; (tabs) browsers with several tabs each on one shared stream per
// browser, against the same tabs on a stream of their own each: server connections, memory per tab,
// a message reaching every tab. Definitions: the HELP text below and docs/BENCHMARKS.md ("Chat under
// load").

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { intOption } from "../harness/cli.ts";
import { natsServerBin } from "../harness/nats-server.ts";
import type {
  BrowsersArgs,
  BrowsersResult,
  ClosedLoopArgs,
  ConnectArgs,
  ConnectResult,
  Counters,
  FinishArgs,
  FinishResult,
  OpenLoopArgs,
  PageLoadArgs,
  PageLoadResult,
  PresenceArgs,
  PresenceResult,
  SendResult,
} from "./chat/clients.ts";
import {
  BIG_MESSAGE_BYTES,
  BIG_MESSAGE_CHARS,
  Histogram,
  MESSAGE_CHARS,
  protocolOf,
  readCpuMs,
  readRss,
  readWriteSyscalls,
  SYSTEM_LABEL,
  SYSTEMS,
  type System,
  wallNow,
} from "./chat/shared.ts";
import {
  control,
  gcAndMeasure,
  type HeapFigures,
  type RunningSystem,
  spawnChild,
  startSystem,
  stopChild,
} from "./chat/systems.ts";
import type { Child } from "./sse/ipc.ts";

const HELP = `Usage: npm run bench:chat -- [options]

Load on the chat app through its real protocol (page GET, event stream, "say" action), with
protocol-level clients in separate processes, next to a raw node:http SSE chat and a Socket.IO 4
chat under the same pattern, and our chat on the embedded engine and on a real nats-server.

Scenarios (each on a fresh server process per system):
  a       1,000 tabs in one room, one message every 50 ms (senders rotate over the tabs)
  b       5,000 tabs over 50 rooms, 200 messages/s in total spread over the rooms
  c       10,000 idle tabs over the same 50 rooms (memory only)
  ramp    10,000 tabs join ONE room (--ramp-tabs), each a new browser session: page GET, then its
          stream; until every tab shows the room's presence count at N (raw, embedded, nats)
  pages   500 page loads (--pages), each a new session, that never open their stream, then 200
          messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB (--page-messages; ${BIG_MESSAGE_CHARS.toLocaleString("en")} characters, the chat's limit) sent by one
          attached tab into the same room, at 10/s (the chat's per-session limit) (raw, embedded, nats)
  growth  1,000 tabs in one room (--growth-tabs), then 1,000 messages (--growth-messages) in a
          closed loop; server memory after forced GCs before and after the messages
  tabs    1,000 browsers (--browsers) × 5 tabs (--tabs-per-browser) in one room, each browser one
          session: its pages, then ONE shared stream (GET /_via/mux) with its tabs attached to it
          (POST /_via/attach), as the runtime's shared worker does ("shared"); and, on a fresh
          server in the same run, the same tabs on a stream of their own each ("own", the
          baseline); then messages at 20,000 deliveries/s (at most 20 msg/s: 4 msg/s at 5,000 tabs)
          open loop, as in a (embedded, nats)

Per scenario and system:
  latency       send stamp (in the text) → arrival of the message's stored copy in a recipient
                tab's stream (an append into #messages of an item with a position), over every
                recipient except the sender; open-loop phase at the scenario's rate, after 1 s of
                warm-up messages (sent and checked, not timed)
  deliveries/s  closed-loop phase ("saturation"): each client process keeps M messages in flight
                (--inflight; default 16,000 deliveries in flight in all, M = 16,000 / clients /
                tabs per room, within 8-128); a message is complete when every tab of that process
                in its room has it and its sender saw it stored (chat) or echoed (raw, Socket.IO);
                then that slot sends the next message, from the next tab in turn. Recipient
                deliveries that arrive inside the window ÷ the window (--seconds)
  bytes/deliv.  bytes read by every client socket (event streams with HTTP framing and keepalives,
                send responses, WebSocket frames) from the first measured send of the open loop
                until every message had arrived, ÷ the measured recipient deliveries
  CPU/1,000     server CPU time (/proc/<pid>/stat) over the open loop, until its last message
                arrived, ÷ its recipient deliveries × 1,000
  RSS/tab       (server VmRSS from /proc/<pid>/status with N tabs open − before the first tab) ÷ N,
                each read after a settle delay (2 s); also shown after forced full GCs
  ramp          from the first page GET until every tab's stream is open ("attached") and until
                every tab has been sent the room's presence count N ("presence N on every tab";
                the chat sends a room's presence changes once per interval, 100 ms or 1 ms per 10
                tabs if more, at most 2 s, and raw does the same); 50 tabs open at once per client
                process
  pages         server VmRSS growth (settled) from before the page loads (the sending tab open)
                to after the messages; also after forced full GCs at both ends
  growth        server VmRSS and V8 heap used after forced full GCs, with the tabs open, before and
                after the messages: growth in % of before
  connections   tabs: the server's TCP connections on its port in ESTABLISHED state
                (/proc/net/tcp), with every tab attached and the connections of the page loads
                and attach requests closed; and what the chat's /metrics says (via_streams_open:
                tabs with an open stream, a shared stream's lanes included; via_shared_streams,
                via_shared_stream_tabs, via_sessions)
  syscalls      tabs: the server's write system calls (syscw in /proc/<pid>/io) over the open
                loop, until its last message arrived, per 1,000 recipient deliveries
  loop delay    tabs: the server's event-loop delay p99 and max over the open loop (its /metrics,
                nodejs_eventloop_lag_*, whose histogram a scrape just before the loop resets)
  lost          a recipient that never got a message of its room, or a sender that never saw its
                message stored (or echoed); duplicate: one message text reaching a tab twice under
                different ids (a re-sent item with an id the tab holds is an upsert, not a new
                delivery); any loss or duplicate exits non-zero

Options:
  --quick              smoke run: 100-400 tabs, 1 s phases, 1 client process, small new scenarios
                       (ramp 200 tabs, 50 page loads + 20 messages, growth 100 tabs × 100 messages,
                       tabs 50 browsers × 5 tabs)
  --scenario <list>    comma-separated, of a,b,c,ramp,pages,growth,tabs, or all (default all)
  --systems <list>     comma-separated, of raw,socketio,embedded,nats (default all four; ramp and
                       pages leave socketio out: they need a page GET; tabs runs on embedded and
                       nats only: the shared stream is our protocol's)
  --seconds <s>        length of the open-loop and of the closed-loop phase (default 10; quick 1)
  --inflight <n>       closed loop: messages in flight per client process (default: 16,000
                       deliveries in flight in all, i.e. 16,000 / clients / tabs per room, 8-128)
  --clients <n>        client processes (default 2, quick 1; at least 2 for 10,000 tabs)
  --ramp-tabs <n>      tabs of the ramp scenario (default 10,000; quick 200)
  --pages <n>          page loads without a stream in the pages scenario (default 500; quick 50)
  --page-messages <n>  ~6 KB messages in the pages scenario (default 200; quick 20)
  --growth-tabs <n>    tabs of the growth scenario (default 1,000; quick 100)
  --growth-messages <n>  messages of the growth scenario (default 1,000; quick 100)
  --browsers <n>       browsers (sessions) of the tabs scenario (default 1,000; quick 50)
  --tabs-per-browser <n>  tabs each browser opens in the tabs scenario, 1-64 (default 5)
  --json <file>        also write every table, target and result to <file> as JSON
  --profile <dir>      write a V8 CPU profile of every server process to <dir>: of the traffic
                       phases (a, b, growth) or of the ramp (c, ramp) or of the whole run (pages),
                       as <scenario>-<system>.cpuprofile
  --heap-snapshots <dir>  write a heap snapshot of every server before the first tab (pages: with
                       its one tab), with all tabs open and (a, b, pages, growth) after the
                       messages, each after forced GCs, to <dir>, as
                       <scenario>-<system>-<tabs | after-messages>.heapsnapshot
  --help               show this help
`;

let values: ReturnType<typeof parse>["values"];
function parse() {
  return parseArgs({
    options: {
      quick: { type: "boolean" },
      scenario: { type: "string" },
      systems: { type: "string" },
      seconds: { type: "string" },
      inflight: { type: "string" },
      clients: { type: "string" },
      "ramp-tabs": { type: "string" },
      pages: { type: "string" },
      "page-messages": { type: "string" },
      "growth-tabs": { type: "string" },
      "growth-messages": { type: "string" },
      browsers: { type: "string" },
      "tabs-per-browser": { type: "string" },
      json: { type: "string" },
      profile: { type: "string" },
      "heap-snapshots": { type: "string" },
      help: { type: "boolean" },
    },
  });
}
try {
  ({ values } = parse());
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const QUICK = values.quick === true;

type ScenarioId = "a" | "b" | "c" | "ramp" | "pages" | "growth" | "tabs";
const SCENARIO_IDS: ScenarioId[] = ["a", "b", "c", "ramp", "pages", "growth", "tabs"];
type Kind = "traffic" | "idle" | "ramp" | "pages" | "growth" | "tabs";
/** The tabs scenario runs twice per system: tabs on one shared stream per browser, and on streams of their own. */
type Variant = "shared" | "own";

interface Scenario {
  id: ScenarioId;
  kind: Kind;
  tabs: number;
  rooms: number;
  /** Messages per second in the open-loop phase (traffic); pages: the send rate. */
  rate: number;
  /** pages: page loads without a stream. */
  pages?: number;
  /** pages, growth: messages sent. */
  messages?: number;
  /** tabs: browsers (sessions), and tabs each (tabs = browsers × tabsPerBrowser). */
  browsers?: number;
  tabsPerBrowser?: number;
}

const WORKERS = intOption("clients", values.clients, QUICK ? 1 : 2, 1, 8);
// Each client process holds at most this many tabs: a socket per tab against a 20,000 fd limit.
const MAX_TABS_PER_WORKER = 8000;
const RAMP_TABS = intOption("ramp-tabs", values["ramp-tabs"], QUICK ? 200 : 10_000, 2, MAX_TABS_PER_WORKER * 8);
const PAGES = intOption("pages", values.pages, QUICK ? 50 : 500, 1, 100_000);
const PAGE_MESSAGES = intOption("page-messages", values["page-messages"], QUICK ? 20 : 200, 1, 10_000);
const GROWTH_TABS = intOption("growth-tabs", values["growth-tabs"], QUICK ? 100 : 1000, 2, MAX_TABS_PER_WORKER * 8);
const GROWTH_MESSAGES = intOption("growth-messages", values["growth-messages"], QUICK ? 100 : 1000, 1, 1_000_000);
const BROWSERS = intOption("browsers", values.browsers, QUICK ? 50 : 1000, 1, 20_000);
/** At most the lanes one shared stream carries (src/server/mux.ts: MAX_LANES). */
const TABS_PER_BROWSER = intOption("tabs-per-browser", values["tabs-per-browser"], 5, 1, 64);
/** The tabs scenario's message rate: 20,000 deliveries/s (scenario a's), at most 20 msg/s. */
const TABS_RATE = Math.min(20, Math.max(1, Math.round(20_000 / (BROWSERS * TABS_PER_BROWSER))));
/** The pages scenario's sender: the chat's per-session limit at --send-rate 10 (bursts of 50). */
const PAGE_SEND_RATE = 10;

const SCENARIOS: Scenario[] = [
  ...(QUICK
    ? [
        { id: "a", kind: "traffic", tabs: 100, rooms: 1, rate: 20 } as const,
        { id: "b", kind: "traffic", tabs: 200, rooms: 10, rate: 40 } as const,
        { id: "c", kind: "idle", tabs: 400, rooms: 10, rate: 0 } as const,
      ]
    : [
        { id: "a", kind: "traffic", tabs: 1000, rooms: 1, rate: 20 } as const,
        { id: "b", kind: "traffic", tabs: 5000, rooms: 50, rate: 200 } as const,
        { id: "c", kind: "idle", tabs: 10000, rooms: 50, rate: 0 } as const,
      ]),
  { id: "ramp", kind: "ramp", tabs: RAMP_TABS, rooms: 1, rate: 0 },
  { id: "pages", kind: "pages", tabs: 1, rooms: 1, rate: PAGE_SEND_RATE, pages: PAGES, messages: PAGE_MESSAGES },
  { id: "growth", kind: "growth", tabs: GROWTH_TABS, rooms: 1, rate: 0, messages: GROWTH_MESSAGES },
  {
    id: "tabs",
    kind: "tabs",
    tabs: BROWSERS * TABS_PER_BROWSER,
    rooms: 1,
    rate: TABS_RATE,
    browsers: BROWSERS,
    tabsPerBrowser: TABS_PER_BROWSER,
  },
];

const scenarioArg = (values.scenario ?? "all").split(",").map((s) => s.trim());
for (const s of scenarioArg) {
  if (s !== "all" && !SCENARIO_IDS.includes(s as ScenarioId)) {
    process.stderr.write(`--scenario takes a list of ${SCENARIO_IDS.join(", ")} (or all); got ${JSON.stringify(s)}\n`);
    process.exit(2);
  }
}
const scenarios = SCENARIOS.filter((s) => scenarioArg.includes("all") || scenarioArg.includes(s.id));
const systems = (values.systems ?? SYSTEMS.join(",")).split(",").map((s) => s.trim()) as System[];
for (const s of systems) {
  if (!SYSTEMS.includes(s)) {
    process.stderr.write(`--systems takes a list of ${SYSTEMS.join(", ")}; got ${JSON.stringify(s)}\n`);
    process.exit(2);
  }
}
/**
 * The systems a scenario runs on: ramp and pages load pages, which Socket.IO has none of; tabs needs
 * the shared stream, which only our chat has.
 */
function systemsOf(scn: Scenario): System[] {
  if (scn.kind === "tabs") return systems.filter((s) => s === "embedded" || s === "nats");
  return scn.kind === "ramp" || scn.kind === "pages" ? systems.filter((s) => s !== "socketio") : systems;
}
/** The runs of a scenario on one system: tabs runs on a shared stream and on streams of their own. */
function variantsOf(scn: Scenario): Array<Variant | undefined> {
  return scn.kind === "tabs" ? ["shared", "own"] : [undefined];
}
/** Length of the open-loop and of the closed-loop phase. */
const PHASE_MS = values.seconds === undefined && QUICK ? 1000 : intOption("seconds", values.seconds, 10, 1, 120) * 1000;
const INFLIGHT_ARG = values.inflight === undefined ? undefined : intOption("inflight", values.inflight, 8, 1, 512);
/** In-flight deliveries the closed loop aims at, over all client processes (unless --inflight is given). */
const INFLIGHT_DELIVERIES = 16_000;

/** Closed loop: messages in flight per client process. */
function inflightOf(scn: Scenario): number {
  if (INFLIGHT_ARG !== undefined) return INFLIGHT_ARG;
  const perRoom = scn.tabs / scn.rooms;
  return Math.min(128, Math.max(8, Math.ceil(INFLIGHT_DELIVERIES / WORKERS / perRoom)));
}
/** Client processes a scenario uses: pages has one tab. */
function workersOf(scn: Scenario): number {
  return scn.kind === "pages" ? 1 : WORKERS;
}
for (const s of scenarios) {
  if (Math.ceil(s.tabs / workersOf(s)) > MAX_TABS_PER_WORKER) {
    process.stderr.write(
      `scenario ${s.id}: ${s.tabs} tabs need at least ${Math.ceil(s.tabs / MAX_TABS_PER_WORKER)} client processes (--clients)\n`,
    );
    process.exit(2);
  }
}
const JSON_FILE = values.json ? resolve(values.json) : undefined;
if (JSON_FILE) mkdirSync(dirname(JSON_FILE), { recursive: true });
const PROFILE_DIR = values.profile ? resolve(values.profile) : undefined;
if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
const SNAPSHOT_DIR = values["heap-snapshots"] ? resolve(values["heap-snapshots"]) : undefined;
if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
if (scenarios.some((s) => systemsOf(s).includes("nats")) && !existsSync(natsServerBin())) {
  process.stderr.write(
    `nats-server not found at ${natsServerBin()} (apt-get install nats-server, or set NATS_SERVER_BIN); ` +
      "leave nats out of --systems to run without it\n",
  );
  process.exit(2);
}
const SETTLE_MS = QUICK ? 250 : 2000;
/** Pause between the forced GCs of an after-GC memory reading. */
const GC_PAUSE_MS = QUICK ? 20 : 200;
/** Warm-up before the open loop's measured messages (sent and loss-checked, not timed). */
const WARMUP_MS = QUICK ? 250 : 1000;
/** Lead time: client processes get the start time this far ahead, so they start together. */
const LEAD_MS = 200;
/** Tabs each client process opens at once. */
const CONNECT_CONCURRENCY = 50;
/** Page loads the pages scenario makes at once. */
const PAGE_CONCURRENCY = 16;
const FINISH_TIMEOUT_MS = QUICK ? 5_000 : 15_000;
/** How long every tab may take to show the room's presence count N once all are attached. */
const PRESENCE_TIMEOUT_MS = 30_000;
const STALL_MS = 10_000;
const WATCHDOG_MS = (QUICK ? 5 : 45) * 60_000;

const TARGET = {
  /** Scenario a: p99 ≤ this × raw's. */
  p99VsRaw: { embedded: 1.5, nats: 2 } as Record<"embedded" | "nats", number>,
  deliveriesVsRaw: 0.6,
  deliveriesVsSocketIo: 1.5,
  idleTabKiB: 20,
  bytesPerDelivery: 2048,
  /** The ramp: this many tabs in at most rampSeconds (ours), rawRampSeconds (raw). */
  rampTabs: 10_000,
  rampSeconds: 20,
  rawRampSeconds: 4,
  pagesGrowthMiB: 20,
  growthPct: 10,
  /** tabs: server connections at most this many % above the browser count. */
  tabsConnectionsSlackPct: 5,
};

// ---- process hygiene: children are ended on exit (systems.ts, chat-process.ts, nats-server.ts) ----

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));
const watchdog = setTimeout(() => {
  process.stderr.write(`bench:chat: still running after ${WATCHDOG_MS / 60_000} min, giving up\n`);
  process.exit(1);
}, WATCHDOG_MS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function log(line: string): void {
  process.stdout.write(`  · ${line}\n`);
}

function roomNames(n: number): string[] {
  return n === 1 ? ["Lobby"] : Array.from({ length: n }, (_, i) => `room-${String(i + 1).padStart(2, "0")}`);
}

// ---- results ----

interface PhaseStats {
  hist: Histogram;
  deliveries: number;
  expected: number;
  bytes: number;
  lostDeliveries: number;
  lostMessages: number;
  duplicates: number;
  misrouted: number;
  sent: number;
  rejected: number;
  serverCpuPct: number;
  /** Server CPU (user + system) over the phase, until its last message was delivered. */
  serverCpuMs: number;
  natsCpuPct: number;
  clientCpuPct: number;
}

interface SaturationStats extends PhaseStats {
  deliveriesPerSec: number;
  /** Recipient deliveries per read on the SSE streams: > 1 when the server wrote several messages at once. */
  deliveriesPerRead: number;
  windowHist: Histogram;
  windowMs: number;
  stalls: number;
}

interface RunResult {
  system: System;
  scenario: Scenario;
  /** tabs: on one shared stream per browser, or on a stream of their own per tab. */
  variant?: Variant;
  /** 1-minute load average when the run started: other processes on the machine skew latency. */
  loadAtStart: number;
  rssBefore: number;
  rssAfter: number;
  natsRssBefore: number;
  natsRssAfter: number;
  /** Server memory after forced full GCs, before the first tab and with every tab open. */
  gcBefore: HeapFigures;
  gcAfter: HeapFigures;
  rampMs: number;
  /** ramp: when every stream was open, when a tab and every tab showed presence N (from the first page GET). */
  attachedMs?: number;
  presenceFirstMs?: number;
  presenceAllMs?: number;
  /** ramp: tabs that showed presence N, and the highest count any tab showed. */
  presenceReached?: number;
  presenceMax?: number;
  /** Server CPU time while the tabs opened (until presence N on every tab), its share of a core, and the busiest client process's. */
  rampCpuMs?: number;
  rampServerCpuPct?: number;
  rampClientCpuPct?: number;
  /** Server VmRSS once the traffic is over (a, b, growth; pages: after its messages). */
  rssAfterTraffic?: number;
  /** The same after forced GCs: what the messages of the run left live in the server. */
  gcAfterTraffic?: HeapFigures;
  /** pages: page loads made, how long they took, their bytes; server VmRSS after them. */
  pagesLoaded?: number;
  pagesMs?: number;
  pageBytes?: number;
  rssAfterPages?: number;
  /** pages: send → the sender saw its message stored, p50 and p99 (ms). */
  confirmP50?: number;
  confirmP99?: number;
  timed?: PhaseStats;
  saturation?: SaturationStats;
  /** tabs: the server's TCP connections on its port (ESTABLISHED) with every tab attached. */
  serverConnections?: number;
  /** tabs: event-stream sockets, and all sockets, the client processes held open then. */
  clientStreamSockets?: number;
  clientOpenSockets?: number;
  /**
   * tabs: the chat's /metrics then (via_streams_open, via_shared_streams, via_shared_stream_tabs,
   * via_tabs, via_sessions; NaN for one it does not serve).
   */
  streamsOpen?: number;
  sharedStreams?: number;
  sharedTabs?: number;
  liveTabs?: number;
  sessions?: number;
  /** tabs: the server's event-loop delay over the open loop, p99 and max (ms; /metrics, NaN if not served). */
  loopDelayP99?: number;
  loopDelayMax?: number;
  /** tabs: the server's write system calls over the open loop (until its last message arrived). */
  writeSyscalls?: number;
  counters: Counters;
}

function emptyCounters(): Counters {
  return {
    closed: 0,
    resyncs: 0,
    toasts: 0,
    toastSample: "",
    byes: 0,
    unexpected: 0,
    unexpectedSample: "",
    failed: 0,
    statuses: {},
    sendErrors: 0,
    sendErrorSample: "",
    staleRetries: 0,
    upserts: 0,
    outOfOrder: 0,
    viewRenders: 0,
    trims: 0,
    prepends: 0,
    laneEnds: 0,
  };
}

function mergeCounters(list: Counters[]): Counters {
  const out = emptyCounters();
  for (const c of list) {
    for (const k of Object.keys(out) as Array<keyof Counters>) {
      if (k === "statuses") {
        for (const [s, v] of Object.entries(c.statuses)) out.statuses[s] = (out.statuses[s] ?? 0) + v;
      } else if (typeof out[k] === "number") (out[k] as number) += c[k] as number;
      else if (!out[k]) (out[k] as string) = c[k] as string;
    }
  }
  return out;
}

/** CPU % of one core used by these processes between two readings. */
class CpuMeter {
  private readonly start: number[];
  private readonly t0 = performance.now();
  constructor(private readonly pids: number[]) {
    this.start = pids.map(readCpuMs);
  }
  /** CPU ms the first process used since the start. */
  firstMs(): number {
    return readCpuMs(this.pids[0]!) - this.start[0]!;
  }
  /** The busiest process's share (a process is single-threaded JS, plus its helper threads). */
  maxPct(): number {
    const ms = performance.now() - this.t0;
    return Math.max(...this.pids.map((pid, i) => ((readCpuMs(pid) - this.start[i]!) / ms) * 100));
  }
}

const accepted = (status: number) => status === 0 || (status >= 200 && status < 300);

async function checkPhase(
  workers: Child[],
  sends: SendResult[],
): Promise<{ fin: FinishResult[]; messages: Array<[number, number, number]>; sent: number; rejected: number }> {
  const records = sends.flatMap((s) => s.records);
  const messages = records.filter((r) => accepted(r[3])).map(([seq, room, sender]) => [seq, room, sender]) as Array<
    [number, number, number]
  >;
  const fin = await Promise.all(
    workers.map((w) =>
      w.call<FinishResult>(
        "finish",
        { messages, timeoutMs: FINISH_TIMEOUT_MS } satisfies FinishArgs,
        FINISH_TIMEOUT_MS + 60_000,
      ),
    ),
  );
  return { fin, messages, sent: records.length, rejected: records.length - messages.length };
}

function phaseStats(
  fin: FinishResult[],
  sent: number,
  rejected: number,
  cpu: { server: number; serverMs: number; nats: number; clients: number },
): PhaseStats {
  const hist = new Histogram();
  for (const f of fin) hist.merge(f.hist);
  const lost = new Set<number>();
  for (const f of fin) for (const s of [...f.lostSeqs, ...f.unconfirmed]) lost.add(s);
  return {
    hist,
    deliveries: hist.n,
    expected: fin.reduce((a, f) => a + f.expectedDeliveries, 0),
    bytes: fin.reduce((a, f) => a + f.bytes, 0),
    lostDeliveries: fin.reduce((a, f) => a + f.lostDeliveries, 0),
    lostMessages: lost.size,
    duplicates: fin.reduce((a, f) => a + f.duplicates, 0),
    misrouted: fin.reduce((a, f) => a + f.misrouted, 0),
    sent,
    rejected,
    serverCpuPct: cpu.server,
    serverCpuMs: cpu.serverMs,
    natsCpuPct: cpu.nats,
    clientCpuPct: cpu.clients,
  };
}

// ---- one run: one scenario on one system ----

/** What a run works with: the server (and nats-server), the client processes, meters. */
interface Bench {
  scn: Scenario;
  system: System;
  variant: Variant | undefined;
  /** `<scenario>/<system>`, and the variant if any: what the log lines and tables name the run by. */
  label: string;
  srv: RunningSystem;
  workers: Child[];
  rooms: string[];
  started: number;
  meters(): Meters;
  read(m: Meters): { server: number; serverMs: number; nats: number; clients: number };
  /** A heap snapshot named by tab count (or a label) when --heap-snapshots is given. */
  snapshot(label: number | string): Promise<void>;
  startProfile(): Promise<void>;
}

interface Meters {
  server: CpuMeter;
  nats: CpuMeter | undefined;
  clients: CpuMeter;
}

/** Starts the system and the client processes, runs `body`, and always stops them all. */
async function withBench(
  scn: Scenario,
  system: System,
  variant: Variant | undefined,
  body: (b: Bench) => Promise<RunResult>,
): Promise<RunResult> {
  const rooms = roomNames(scn.rooms);
  const label = `${scn.id}/${runLabel(system, variant)}`;
  const fileStem = `${scn.id}-${system}${variant ? `-${variant}` : ""}`;
  const started = performance.now();
  const workers = Array.from({ length: workersOf(scn) }, (_, i) => spawnChild(`clients ${i + 1}`, "clients"));
  let srv: RunningSystem | undefined;
  let profiling = false;
  try {
    const [server] = await Promise.all([startSystem(system, rooms), ...workers.map((w) => w.ready)]);
    srv = server;
    const s = server;
    const natsPid = s.natsPid;
    const workerPids = workers.map((w) => w.pid!);
    const bench: Bench = {
      scn,
      system,
      variant,
      label,
      srv: s,
      workers,
      rooms,
      started,
      meters: () => ({
        server: new CpuMeter([s.pid]),
        nats: natsPid ? new CpuMeter([natsPid]) : undefined,
        clients: new CpuMeter(workerPids),
      }),
      read: (m) => ({
        server: m.server.maxPct(),
        serverMs: m.server.firstMs(),
        nats: m.nats?.maxPct() ?? Number.NaN,
        clients: m.clients.maxPct(),
      }),
      snapshot: async (what) => {
        if (!SNAPSHOT_DIR) return;
        const file = join(SNAPSHOT_DIR, `${fileStem}-${what}.heapsnapshot`);
        await control(s.pid, { cmd: "heap-snapshot", file }, 300_000);
        log(`${label}: heap snapshot ${file}`);
      },
      startProfile: async () => {
        if (!PROFILE_DIR || profiling) return;
        profiling = true;
        await control(s.pid, { cmd: "profile-start" });
      },
    };
    const result = await body(bench);
    if (variant) result.variant = variant;
    if (profiling) {
      const file = join(PROFILE_DIR!, `${fileStem}.cpuprofile`);
      await control(s.pid, { cmd: "profile-stop", file });
      log(`${label}: CPU profile in ${file}`);
    }
    result.counters = mergeCounters(await Promise.all(workers.map((w) => w.call<Counters>("counters"))));
    log(`${label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } catch (err) {
    const diagnostics = srv?.diagnostics();
    if (diagnostics) process.stderr.write(`bench:chat: ${label}: ${diagnostics}\n`);
    throw err;
  } finally {
    await Promise.all(workers.map((w) => w.call("stop", undefined, 10_000).catch(() => {})));
    await Promise.all([...workers.map((w) => stopChild(w)), srv?.stop()]);
  }
}

/** Opens the scenario's tabs: tab i is in room i mod R and lives in client process i mod W. */
async function openTabs(b: Bench, presenceTarget = 0): Promise<{ ms: number; endAt: number; startAt: number }> {
  const { scn, workers } = b;
  const startAt = wallNow();
  const t0 = performance.now();
  const connects = await Promise.all(
    workers.map((w, wi) => {
      const tabs: Array<[number, number]> = [];
      for (let i = wi; i < scn.tabs; i += workers.length) tabs.push([i, i % scn.rooms]);
      return w.call<ConnectResult>(
        "connect",
        {
          protocol: protocolOf(b.system),
          port: b.srv.port,
          rooms: b.rooms,
          tabs,
          concurrency: CONNECT_CONCURRENCY,
          timeoutMs: 60_000,
          presenceTarget,
        } satisfies ConnectArgs,
        20 * 60_000,
      );
    }),
  );
  const ms = performance.now() - t0;
  const open = connects.reduce((a, c) => a + c.open, 0);
  if (open !== scn.tabs) throw new Error(`${b.system}: only ${open} of ${scn.tabs} tabs are open`);
  return { ms, endAt: Math.max(...connects.map((c) => c.endAt)), startAt };
}

/**
 * tabs: opens the scenario's browsers: browser i is in room i mod R and lives in client process i mod W;
 * its tabs are i, B + i, 2B + i, … (so the open loop's senders, tab k mod N, rotate over the browsers).
 */
async function openBrowsers(b: Bench): Promise<{ ms: number; streamSockets: number; openSockets: number }> {
  const { scn, workers } = b;
  const nb = scn.browsers!;
  const per = scn.tabsPerBrowser!;
  const t0 = performance.now();
  const connects = await Promise.all(
    workers.map((w, wi) => {
      const list: BrowsersArgs["browsers"] = [];
      for (let i = wi; i < nb; i += workers.length) {
        list.push([i, i % scn.rooms, Array.from({ length: per }, (_, j) => j * nb + i)]);
      }
      return w.call<BrowsersResult>(
        "connectBrowsers",
        {
          port: b.srv.port,
          rooms: b.rooms,
          browsers: list,
          shared: b.variant === "shared",
          // About as many tabs in the making at once as the other scenarios' 50.
          concurrency: Math.max(1, Math.round(CONNECT_CONCURRENCY / per)),
          timeoutMs: 60_000,
        } satisfies BrowsersArgs,
        20 * 60_000,
      );
    }),
  );
  const ms = performance.now() - t0;
  const open = connects.reduce((a, c) => a + c.open, 0);
  if (open !== scn.tabs) throw new Error(`${b.label}: only ${open} of ${scn.tabs} tabs are open`);
  return {
    ms,
    streamSockets: connects.reduce((a, c) => a + c.streamSockets, 0),
    openSockets: connects.reduce((a, c) => a + c.openSockets, 0),
  };
}

/**
 * The server's end of each TCP connection on `port`: sockets in ESTABLISHED state whose local port it
 * is, from /proc/net/tcp and tcp6 (the whole network namespace; no other process uses this port).
 */
function serverConnections(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      // "sl local_address rem_address st …": the state is field 4, 01 = ESTABLISHED.
      const f = line.trim().split(/\s+/);
      if (f[3] === "01" && f[1]?.endsWith(hex)) n++;
    }
  }
  return n;
}

/** The chat's Prometheus metrics (GET /metrics on its port, one connection, closed after): name → value. */
function scrapeMetrics(port: number): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path: "/metrics", agent: false, headers: { Connection: "close" }, timeout: 10_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => {
          const out = new Map<string, number>();
          if (res.statusCode === 200) {
            for (const m of body.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
          }
          resolve(out);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(new Map()));
    req.end();
  });
}

/** Server RSS (and nats-server's) after the settle delay, then after forced GCs. */
async function memory(b: Bench): Promise<{ rss: number; natsRss: number; gc: HeapFigures }> {
  await sleep(SETTLE_MS);
  const rss = readRss(b.srv.pid);
  const natsRss = b.srv.natsPid ? readRss(b.srv.natsPid) : Number.NaN;
  const gc = await gcAndMeasure(b.srv.pid, GC_PAUSE_MS);
  return { rss, natsRss, gc };
}

function baseResult(b: Bench, loadAtStart: number, before: Awaited<ReturnType<typeof memory>>): RunResult {
  return {
    system: b.system,
    scenario: b.scn,
    loadAtStart,
    rssBefore: before.rss,
    rssAfter: Number.NaN,
    natsRssBefore: before.natsRss,
    natsRssAfter: Number.NaN,
    gcBefore: before.gc,
    gcAfter: before.gc,
    rampMs: Number.NaN,
    counters: emptyCounters(),
  };
}

function logTabs(b: Bench, r: RunResult): void {
  const { scn, label } = b;
  log(
    `${label}: ${scn.tabs} tabs open in ${(r.rampMs / 1000).toFixed(1)} s; server RSS ` +
      `${mib(r.rssBefore)} → ${mib(r.rssAfter)} MiB = ${kib((r.rssAfter - r.rssBefore) / scn.tabs)} KiB/tab`,
  );
  const perTab = (f: keyof HeapFigures) => kib((r.gcAfter[f] - r.gcBefore[f]) / scn.tabs);
  log(
    `${label}: after forced GCs: RSS ${mib(r.gcBefore.rss)} → ${mib(r.gcAfter.rss)} MiB ` +
      `(${perTab("rss")} KiB/tab), V8 heap used ${perTab("heapUsed")}, heap total ${perTab("heapTotal")}, ` +
      `external ${perTab("external")} KiB/tab`,
  );
}

/** Closed loop on every client process; `maxMessages` in all (split over the processes) or the window only. */
async function closedLoop(b: Bench, maxMessages?: number): Promise<SaturationStats> {
  const { workers } = b;
  const m = b.meters();
  const closed: Omit<ClosedLoopArgs, "workerIndex"> = {
    startAt: wallNow() + LEAD_MS,
    durationMs: maxMessages === undefined ? PHASE_MS : 30 * 60_000,
    inflight: inflightOf(b.scn),
    seqBase: 1_000_000,
    workers: workers.length,
    stallMs: STALL_MS,
  };
  const durationCap = maxMessages === undefined ? PHASE_MS : 30 * 60_000;
  const satSends = await Promise.all(
    workers.map((w, wi) =>
      w.call<SendResult>(
        "closedLoop",
        {
          ...closed,
          workerIndex: wi,
          ...(maxMessages === undefined
            ? {}
            : { maxMessages: Math.floor(maxMessages / workers.length) + (wi < maxMessages % workers.length ? 1 : 0) }),
        } satisfies ClosedLoopArgs,
        durationCap + STALL_MS + 120_000,
      ),
    ),
  );
  const cpu = b.read(m);
  const satCheck = await checkPhase(workers, satSends);
  const windowHist = new Histogram();
  for (const s of satSends) windowHist.merge(s.windowHist);
  const windowMs = Math.max(...satSends.map((s) => s.windowMs));
  const windowDeliveries = satSends.reduce((a, s) => a + s.windowDeliveries, 0);
  const stats: SaturationStats = {
    ...phaseStats(satCheck.fin, satCheck.sent, satCheck.rejected, cpu),
    deliveriesPerSec: (windowDeliveries / windowMs) * 1000,
    deliveriesPerRead:
      protocolOf(b.system) === "socketio"
        ? Number.NaN
        : windowDeliveries /
          Math.max(
            1,
            satSends.reduce((a, s) => a + s.windowReads, 0),
          ),
    windowHist,
    windowMs,
    stalls: satSends.reduce((a, s) => a + s.stalls, 0),
  };
  log(`${b.scn.id}/${b.system}: closed loop: ${sendTimes(satSends)}`);
  log(
    `${b.scn.id}/${b.system}: closed loop, ${inflightOf(b.scn)}×${workers.length} in flight: ${stats.sent} msgs, ` +
      `${Math.round(stats.deliveriesPerSec)} deliveries/s (p50 ${ms(windowHist.percentile(50))} p99 ` +
      `${ms(windowHist.percentile(99))} ms), lost ${stats.lostMessages} msgs, stalls ${stats.stalls}, ` +
      `server CPU ${pct(stats.serverCpuPct)}, busiest client ${pct(stats.clientCpuPct)}`,
  );
  return stats;
}

/** Open loop: message k (seq k + 1) at startAt + k / rate, from tab k mod N, after a warm-up. */
async function openLoopPhase(b: Bench): Promise<PhaseStats> {
  const { scn, workers } = b;
  const warmup = Math.round((scn.rate * WARMUP_MS) / 1000);
  const count = warmup + Math.round((scn.rate * PHASE_MS) / 1000);
  const open: OpenLoopArgs = {
    startAt: wallNow() + LEAD_MS,
    intervalMs: 1000 / scn.rate,
    firstSeq: 1,
    count,
    totalTabs: scn.tabs,
    measuredFrom: 1 + warmup,
  };
  const m = b.meters();
  const sends = await Promise.all(workers.map((w) => w.call<SendResult>("openLoop", open, PHASE_MS + 120_000)));
  const timedCheck = await checkPhase(workers, sends);
  const t = phaseStats(timedCheck.fin, timedCheck.sent, timedCheck.rejected, b.read(m));
  log(
    `${b.label}: open loop ${scn.rate} msg/s: ${t.deliveries}/${t.expected - recipientsOf(scn, warmup)} ` +
      `measured deliveries, p50 ${ms(t.hist.percentile(50))} p99 ${ms(t.hist.percentile(99))} ` +
      `max ${ms(t.hist.max)} ms, ${Math.round(t.bytes / Math.max(1, t.deliveries))} B/delivery, ` +
      `lost ${t.lostMessages} msgs (${t.lostDeliveries} deliveries), server CPU ${pct(t.serverCpuPct)}`,
  );
  log(`${b.label}: open loop: ${sendTimes(sends)}`);
  return t;
}

/** a, b (traffic) and c (idle): the tabs, then (a, b) the open loop and the closed loop. */
async function runTraffic(b: Bench): Promise<RunResult> {
  const { scn, srv } = b;
  const loadAtStart = loadavg()[0]!;
  const before = await memory(b);
  await b.snapshot(0);
  // --profile: the ramp in an idle scenario, else the traffic phases.
  if (scn.kind === "idle") await b.startProfile();
  const ramp = await openTabs(b);
  const after = await memory(b);
  await b.snapshot(scn.tabs);
  const result = baseResult(b, loadAtStart, before);
  Object.assign(result, { rampMs: ramp.ms, rssAfter: after.rss, natsRssAfter: after.natsRss, gcAfter: after.gc });
  logTabs(b, result);
  if (scn.kind === "idle") return result;

  await b.startProfile();
  result.timed = await openLoopPhase(b);
  result.saturation = await closedLoop(b);
  result.rssAfterTraffic = readRss(srv.pid);
  result.gcAfterTraffic = await gcAndMeasure(srv.pid, GC_PAUSE_MS);
  await b.snapshot("after-messages");
  return result;
}

/** ramp: N new sessions join one room; until all are attached and every tab shows presence N. */
async function runRamp(b: Bench): Promise<RunResult> {
  const { scn, system, workers } = b;
  const loadAtStart = loadavg()[0]!;
  const before = await memory(b);
  await b.snapshot(0);
  await b.startProfile();
  const m = b.meters();
  const ramp = await openTabs(b, scn.tabs);
  const pres = await Promise.all(
    workers.map((w) =>
      w.call<PresenceResult>(
        "presence",
        { timeoutMs: PRESENCE_TIMEOUT_MS } satisfies PresenceArgs,
        PRESENCE_TIMEOUT_MS + 30_000,
      ),
    ),
  );
  const rampCpuMs = m.server.firstMs();
  const rampClientCpuPct = m.clients.maxPct();
  const rampServerCpuPct = m.server.maxPct();
  const reached = pres.reduce((a, p) => a + p.reached, 0);
  const firsts = pres.map((p) => p.firstAt).filter((t) => t > 0);
  const all = pres.every((p) => p.allAt > 0) ? Math.max(...pres.map((p) => p.allAt)) : Number.NaN;
  const after = await memory(b);
  await b.snapshot(scn.tabs);
  const result = baseResult(b, loadAtStart, before);
  Object.assign(result, {
    rampMs: ramp.ms,
    rssAfter: after.rss,
    natsRssAfter: after.natsRss,
    gcAfter: after.gc,
    attachedMs: ramp.endAt - ramp.startAt,
    presenceFirstMs: firsts.length > 0 ? Math.min(...firsts) - ramp.startAt : Number.NaN,
    presenceAllMs: all - ramp.startAt,
    presenceReached: reached,
    presenceMax: Math.max(...pres.map((p) => p.maxSeen)),
    rampCpuMs,
    rampServerCpuPct,
    rampClientCpuPct,
  } satisfies Partial<RunResult>);
  log(
    `${scn.id}/${system}: ${scn.tabs} tabs attached in ${sec(result.attachedMs!)} s; presence ${scn.tabs} on a tab at ` +
      `${sec(result.presenceFirstMs!)} s, on every tab at ${sec(result.presenceAllMs!)} s ` +
      `(${reached}/${scn.tabs} tabs showed it; highest count seen ${result.presenceMax}); server CPU ` +
      `${(rampCpuMs / 1000).toFixed(1)} s`,
  );
  logTabs(b, result);
  return result;
}

/** pages: page loads that never open their stream, then big messages from one attached tab. */
async function runPages(b: Bench): Promise<RunResult> {
  const { scn, system, srv, workers } = b;
  const w = workers[0]!;
  const loadAtStart = loadavg()[0]!;
  await b.startProfile();
  // The sender: one attached tab, opened before the first reading.
  const ramp = await openTabs(b);
  const before = await memory(b);
  await b.snapshot(scn.tabs);
  const pages = await w.call<PageLoadResult>(
    "pageLoads",
    {
      protocol: protocolOf(system),
      port: srv.port,
      room: b.rooms[0]!,
      count: scn.pages!,
      concurrency: PAGE_CONCURRENCY,
      timeoutMs: 60_000,
    } satisfies PageLoadArgs,
    20 * 60_000,
  );
  await sleep(SETTLE_MS);
  const rssAfterPages = readRss(srv.pid);
  log(
    `${scn.id}/${system}: ${pages.loaded} page loads without a stream in ${sec(pages.ms)} s ` +
      `(${kib(pages.bytes / Math.max(1, pages.loaded))} KiB each); server RSS ${mib(before.rss)} → ${mib(rssAfterPages)} MiB`,
  );
  const m = b.meters();
  const open: OpenLoopArgs = {
    startAt: wallNow() + LEAD_MS,
    intervalMs: 1000 / scn.rate,
    firstSeq: 1,
    count: scn.messages!,
    totalTabs: 1,
    measuredFrom: 1,
    size: "big",
  };
  const sends = [await w.call<SendResult>("openLoop", open, (scn.messages! / scn.rate) * 1000 + 120_000)];
  const check = await checkPhase(workers, sends);
  const result = baseResult(b, loadAtStart, before);
  result.timed = phaseStats(check.fin, check.sent, check.rejected, b.read(m));
  const after = await memory(b);
  await b.snapshot("after-messages");
  Object.assign(result, {
    rampMs: ramp.ms,
    pagesLoaded: pages.loaded,
    pagesMs: pages.ms,
    pageBytes: pages.bytes,
    rssAfterPages,
    rssAfterTraffic: after.rss,
    gcAfterTraffic: after.gc,
    rssAfter: after.rss,
    natsRssAfter: after.natsRss,
  } satisfies Partial<RunResult>);
  log(
    `${scn.id}/${system}: ${check.sent} messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB sent (${check.rejected} refused), ` +
      `${result.timed.lostMessages} unconfirmed; server RSS ${mib(before.rss)} → ${mib(after.rss)} MiB ` +
      `(${after.rss >= before.rss ? "+" : ""}${mib(after.rss - before.rss)}); after forced GCs ${mib(before.gc.rss)} → ${mib(after.gc.rss)} MiB, ` +
      `heap used ${mib(before.gc.heapUsed)} → ${mib(after.gc.heapUsed)} MiB`,
  );
  log(`${scn.id}/${system}: ${sendTimes(sends)}`);
  const confirm = mergeHist(sends, "confirmHist");
  result.confirmP50 = confirm.percentile(50);
  result.confirmP99 = confirm.percentile(99);
  return result;
}

/** growth: tabs in one room, then a fixed number of messages; memory after forced GCs before and after. */
async function runGrowth(b: Bench): Promise<RunResult> {
  const { scn, system } = b;
  const loadAtStart = loadavg()[0]!;
  const before = await memory(b);
  await b.snapshot(0);
  const ramp = await openTabs(b);
  const open = await memory(b);
  await b.snapshot(scn.tabs);
  const result = baseResult(b, loadAtStart, before);
  Object.assign(result, { rampMs: ramp.ms, rssAfter: open.rss, natsRssAfter: open.natsRss, gcAfter: open.gc });
  logTabs(b, result);
  await b.startProfile();
  result.saturation = await closedLoop(b, scn.messages!);
  const after = await memory(b);
  result.rssAfterTraffic = after.rss;
  result.gcAfterTraffic = after.gc;
  await b.snapshot("after-messages");
  const g = growthOf(result);
  log(
    `${scn.id}/${system}: ${result.saturation.sent} messages; after forced GCs RSS ${mib(open.gc.rss)} → ` +
      `${mib(after.gc.rss)} MiB (${signedPct(g.rss)}), heap used ${mib(open.gc.heapUsed)} → ` +
      `${mib(after.gc.heapUsed)} MiB (${signedPct(g.heap)})`,
  );
  return result;
}

/**
 * tabs: B browsers × T tabs, on one shared stream per browser or on a stream of their own per tab
 * (b.variant); server connections and memory with every tab attached, then the open loop (a message
 * reaching every tab of the room).
 */
async function runTabs(b: Bench): Promise<RunResult> {
  const { scn, srv } = b;
  const loadAtStart = loadavg()[0]!;
  const before = await memory(b);
  await b.snapshot(0);
  const opened = await openBrowsers(b);
  // memory() settles first: the page loads' and attach requests' connections are closed by then.
  const after = await memory(b);
  const connections = serverConnections(srv.port);
  const metrics = await scrapeMetrics(srv.port);
  await b.snapshot(scn.tabs);
  const result = baseResult(b, loadAtStart, before);
  const metric = (name: string) => metrics.get(name) ?? Number.NaN;
  Object.assign(result, {
    rampMs: opened.ms,
    rssAfter: after.rss,
    natsRssAfter: after.natsRss,
    gcAfter: after.gc,
    serverConnections: connections,
    clientStreamSockets: opened.streamSockets,
    clientOpenSockets: opened.openSockets,
    streamsOpen: metric("via_streams_open"),
    sharedStreams: metric("via_shared_streams"),
    sharedTabs: metric("via_shared_stream_tabs"),
    liveTabs: metric("via_tabs"),
    sessions: metric("via_sessions"),
  } satisfies Partial<RunResult>);
  log(
    `${b.label}: ${num(scn.browsers!)} browsers × ${scn.tabsPerBrowser} tabs attached in ${sec(opened.ms)} s: ` +
      `${num(connections)} server connections, ${num(opened.streamSockets)} stream sockets at the clients ` +
      `(${num(opened.openSockets)} sockets open); /metrics: ${num(result.streamsOpen!)} tabs streaming, ` +
      `${num(result.sharedStreams!)} shared streams carrying ${num(result.sharedTabs!)} tabs, ` +
      `${num(result.liveTabs!)} tabs, ${num(result.sessions!)} sessions`,
  );
  logTabs(b, result);
  await b.startProfile();
  // prom-client resets its event-loop delay histogram at each scrape: the next one covers the open loop.
  await scrapeMetrics(srv.port);
  const syscalls = readWriteSyscalls(srv.pid);
  result.timed = await openLoopPhase(b);
  result.writeSyscalls = readWriteSyscalls(srv.pid) - syscalls;
  const loop = await scrapeMetrics(srv.port);
  result.loopDelayP99 = (loop.get("nodejs_eventloop_lag_p99_seconds") ?? Number.NaN) * 1000;
  result.loopDelayMax = (loop.get("nodejs_eventloop_lag_max_seconds") ?? Number.NaN) * 1000;
  log(
    `${b.label}: server event-loop delay over the open loop: p99 ${ms(result.loopDelayP99)}, max ${ms(result.loopDelayMax)} ms`,
  );
  result.rssAfterTraffic = readRss(srv.pid);
  result.gcAfterTraffic = await gcAndMeasure(srv.pid, GC_PAUSE_MS);
  await b.snapshot("after-messages");
  return result;
}

function runOne(scn: Scenario, system: System, variant: Variant | undefined): Promise<RunResult> {
  const body = {
    traffic: runTraffic,
    idle: runTraffic,
    ramp: runRamp,
    pages: runPages,
    growth: runGrowth,
    tabs: runTabs,
  }[scn.kind];
  return withBench(scn, system, variant, body);
}

/** A run's name in tables and log lines: the system, and the variant if the scenario has them. */
function runLabel(system: System, variant: Variant | undefined): string {
  return variant ? `${system} ${variant}` : system;
}
const labelOf = (r: RunResult) => runLabel(r.system, r.variant);

function mergeHist(sends: SendResult[], key: "requestHist" | "confirmHist" | "completeHist"): Histogram {
  const h = new Histogram();
  for (const s of sends) h.merge(s[key]);
  return h;
}

/** p50/p99 of the send request, the sender's confirmation and (closed loop) local completion. */
function sendTimes(sends: SendResult[]): string {
  const part = (label: string, h: Histogram) =>
    h.n > 0 ? `${label} p50 ${ms(h.percentile(50))} / p99 ${ms(h.percentile(99))} ms` : "";
  return [
    part("send request", mergeHist(sends, "requestHist")),
    part("sender's confirmation", mergeHist(sends, "confirmHist")),
    part("complete", mergeHist(sends, "completeHist")),
  ]
    .filter(Boolean)
    .join(", ");
}

/** Recipient deliveries `n` messages make in scenario `scn` (each room has tabs/rooms tabs; the sender is not one). */
function recipientsOf(scn: Scenario, n: number): number {
  return n * (scn.tabs / scn.rooms - 1);
}

/** growth: forced-GC RSS and heap used after the messages vs before, as fractions of before. */
function growthOf(r: RunResult): { rss: number; heap: number } {
  const a = r.gcAfterTraffic;
  if (!a) return { rss: Number.NaN, heap: Number.NaN };
  return { rss: a.rss / r.gcAfter.rss - 1, heap: a.heapUsed / r.gcAfter.heapUsed - 1 };
}

// ---- formatting ----

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}
function ms(v: number): string {
  return Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : "n/a";
}
function sec(v: number): string {
  return Number.isFinite(v) ? (v / 1000).toFixed(v < 10_000 ? 2 : 1) : "n/a";
}
function pct(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)} %` : "n/a";
}
function signedPct(fraction: number): string {
  return Number.isFinite(fraction) ? `${fraction >= 0 ? "+" : ""}${(fraction * 100).toFixed(1)} %` : "n/a";
}
function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits }) : "n/a";
}
function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${(a / b).toFixed(2)}×`
    : "n/a";
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (c ?? "").padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

interface Metric {
  label: string;
  value: (r: RunResult) => number | undefined;
  format: (v: number) => string;
  /** Show ratios against raw and Socket.IO. */
  ratios?: boolean;
  /** Shown for which kinds of scenario. */
  kinds: Kind[];
}

/** An open loop (a, b; tabs has no closed loop, so its saturation rows stay empty and are left out). */
const TRAFFIC: Kind[] = ["traffic", "tabs"];
const TABS_MEMORY: Kind[] = ["traffic", "idle", "ramp", "tabs"];
const ALL_KINDS: Kind[] = ["traffic", "idle", "ramp", "pages", "growth", "tabs"];
const MESSAGE_KINDS: Kind[] = ["traffic", "idle", "pages", "growth", "tabs"];

const rssPerTab = (r: RunResult) => (r.rssAfter - r.rssBefore) / r.scenario.tabs;
const bytesPerDelivery = (r: RunResult) => (r.timed ? r.timed.bytes / Math.max(1, r.timed.deliveries) : undefined);
const cpuPer1k = (r: RunResult) => (r.timed ? (r.timed.serverCpuMs / r.timed.expected) * 1000 : undefined);
const pagesGrowth = (r: RunResult) => (r.rssAfterTraffic ?? Number.NaN) - r.rssBefore;
const pagesGcGrowth = (r: RunResult) => (r.gcAfterTraffic ? r.gcAfterTraffic.rss - r.gcBefore.rss : undefined);

const METRICS: Metric[] = [
  // tabs
  {
    label: "server TCP connections held, all tabs attached",
    value: (r) => r.serverConnections,
    format: (v) => num(v),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  per browser",
    value: (r) => (r.serverConnections !== undefined ? r.serverConnections / r.scenario.browsers! : undefined),
    format: (v) => v.toFixed(2),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  event-stream sockets held by the clients",
    value: (r) => r.clientStreamSockets,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "tabs with an open stream (/metrics via_streams_open)",
    value: (r) => r.streamsOpen,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "  shared streams (/metrics via_shared_streams)",
    value: (r) => r.sharedStreams,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "  tabs on a shared stream (/metrics via_shared_stream_tabs)",
    value: (r) => r.sharedTabs,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  { label: "  sessions (/metrics via_sessions)", value: (r) => r.sessions, format: (v) => num(v), kinds: ["tabs"] },
  {
    label: "all tabs attached (s)",
    value: (r) => (r.scenario.kind === "tabs" ? r.rampMs : undefined),
    format: sec,
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "shared-stream lanes ended (via-tab-end)",
    value: (r) => (r.variant === "shared" ? r.counters.laneEnds : undefined),
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  // ramp
  { label: "all tabs attached (s)", value: (r) => r.attachedMs, format: sec, ratios: true, kinds: ["ramp"] },
  {
    label: "presence N shown on a tab (s)",
    value: (r) => r.presenceFirstMs,
    format: sec,
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "presence N shown on every tab (s)",
    value: (r) => r.presenceAllMs,
    format: sec,
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  tabs joined per second (to presence N on every tab)",
    value: (r) => (r.presenceAllMs ? (r.scenario.tabs / r.presenceAllMs) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  tabs that showed presence N",
    value: (r) => r.presenceReached,
    format: (v) => num(v),
    kinds: ["ramp"],
  },
  {
    label: "  server CPU per joined tab (ms)",
    value: (r) => (r.rampCpuMs !== undefined ? r.rampCpuMs / r.scenario.tabs : undefined),
    format: (v) => v.toFixed(2),
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  server CPU during the ramp",
    value: (r) => r.rampServerCpuPct,
    format: pct,
    kinds: ["ramp"],
  },
  {
    label: "  busiest client process CPU during the ramp",
    value: (r) => r.rampClientCpuPct,
    format: pct,
    kinds: ["ramp"],
  },
  {
    label: "  whole-view renders sent on attach (stale page hash)",
    value: (r) => (r.scenario.kind === "ramp" ? r.counters.viewRenders : undefined),
    format: (v) => num(v),
    kinds: ["ramp"],
  },
  // pages
  {
    label: "page loads without a stream",
    value: (r) => r.pagesLoaded,
    format: (v) => num(v),
    kinds: ["pages"],
  },
  {
    label: "  page loads per second",
    value: (r) => (r.pagesLoaded && r.pagesMs ? (r.pagesLoaded / r.pagesMs) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  page size (KiB)",
    value: (r) => (r.pageBytes && r.pagesLoaded ? r.pageBytes / r.pagesLoaded : undefined),
    format: kib,
    kinds: ["pages"],
  },
  {
    label: "server RSS before the page loads (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? r.rssBefore : undefined),
    format: mib,
    kinds: ["pages"],
  },
  {
    label: "RSS growth after the page loads (MiB)",
    value: (r) => (r.rssAfterPages !== undefined ? r.rssAfterPages - r.rssBefore : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "RSS growth after the page loads and the messages (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? pagesGrowth(r) : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  the same after forced GCs (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? pagesGcGrowth(r) : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  JS heap growth after forced GCs (MiB)",
    value: (r) =>
      r.scenario.kind === "pages" && r.gcAfterTraffic ? r.gcAfterTraffic.heapUsed - r.gcBefore.heapUsed : undefined,
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "messages sent by the attached tab",
    value: (r) => (r.scenario.kind === "pages" ? r.timed?.sent : undefined),
    format: (v) => num(v),
    kinds: ["pages"],
  },
  {
    label: "  sender's confirmation p50 / p99 (ms)",
    value: (r) => (r.scenario.kind === "pages" ? r.confirmP99 : undefined),
    format: ms,
    kinds: ["pages"],
  },
  // growth
  {
    label: "messages (closed loop)",
    value: (r) => (r.scenario.kind === "growth" ? r.saturation?.sent : undefined),
    format: (v) => num(v),
    kinds: ["growth"],
  },
  {
    label: "  deliveries/s",
    value: (r) => (r.scenario.kind === "growth" ? r.saturation?.deliveriesPerSec : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["growth"],
  },
  {
    label: "RSS after forced GCs, tabs open, before the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.gcAfter.rss : undefined),
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  after the messages (MiB)",
    value: (r) => r.gcAfterTraffic?.rss,
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  RSS growth (%)",
    value: (r) => growthOf(r).rss * 100,
    format: (v) => v.toFixed(1),
    kinds: ["growth"],
  },
  {
    label: "JS heap used after forced GCs, before the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.gcAfter.heapUsed : undefined),
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  after the messages (MiB)",
    value: (r) => r.gcAfterTraffic?.heapUsed,
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  JS heap growth (%)",
    value: (r) => growthOf(r).heap * 100,
    format: (v) => v.toFixed(1),
    kinds: ["growth"],
  },
  {
    label: "RSS without forced GCs, before / after the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.rssAfter : undefined),
    format: mib,
    kinds: ["growth"],
  },
  // a, b
  { label: "latency p50 (ms)", value: (r) => r.timed?.hist.percentile(50), format: ms, ratios: true, kinds: TRAFFIC },
  { label: "latency p99 (ms)", value: (r) => r.timed?.hist.percentile(99), format: ms, ratios: true, kinds: TRAFFIC },
  { label: "latency max (ms)", value: (r) => r.timed?.hist.max, format: ms, ratios: true, kinds: TRAFFIC },
  {
    label: "measured deliveries (open loop)",
    value: (r) => r.timed?.deliveries,
    format: (v) => num(v),
    kinds: TRAFFIC,
  },
  {
    label: "bytes on the wire per delivery",
    value: bytesPerDelivery,
    format: (v) => num(v),
    ratios: true,
    kinds: TRAFFIC,
  },
  { label: "server CPU, open loop", value: (r) => r.timed?.serverCpuPct, format: pct, kinds: TRAFFIC },
  {
    label: "  server write system calls per 1,000 deliveries, open loop",
    value: (r) => (r.writeSyscalls !== undefined && r.timed ? (r.writeSyscalls / r.timed.expected) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  server event-loop delay p99 / max, open loop (ms)",
    value: (r) => r.loopDelayP99,
    format: ms,
    kinds: ["tabs"],
  },
  {
    label: "server CPU per 1,000 deliveries, open loop (ms)",
    value: cpuPer1k,
    format: (v) => v.toFixed(1),
    ratios: true,
    kinds: TRAFFIC,
  },
  {
    label: "deliveries/s at saturation",
    value: (r) => r.saturation?.deliveriesPerSec,
    format: (v) => num(v),
    ratios: true,
    kinds: TRAFFIC,
  },
  { label: "  messages/s at saturation", value: (r) => msgsPerSec(r), format: (v) => num(v, 1), kinds: TRAFFIC },
  {
    label: "  latency p50 / p99 at saturation (ms)",
    value: (r) => r.saturation?.windowHist.percentile(50),
    format: ms,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  server CPU at saturation",
    value: (r) => r.saturation?.serverCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  server CPU per 1,000 deliveries (ms)",
    value: (r) => (r.saturation ? (r.saturation.serverCpuMs / r.saturation.expected) * 1000 : undefined),
    format: (v) => v.toFixed(1),
    ratios: true,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  deliveries per stream read (server batching)",
    value: (r) => r.saturation?.deliveriesPerRead,
    format: (v) => (Number.isFinite(v) ? v.toFixed(2) : "n/a"),
    kinds: ["traffic", "growth"],
  },
  {
    label: "  busiest client process CPU",
    value: (r) => r.saturation?.clientCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  nats-server CPU at saturation",
    value: (r) => r.saturation?.natsCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  // tabs' memory
  { label: "RSS per tab (KiB)", value: rssPerTab, format: kib, ratios: true, kinds: [...TABS_MEMORY, "growth"] },
  {
    label: "  RSS per tab after forced GCs (KiB)",
    value: (r) => (r.gcAfter.rss - r.gcBefore.rss) / r.scenario.tabs,
    format: kib,
    ratios: true,
    kinds: [...TABS_MEMORY, "growth"],
  },
  {
    label: "  JS heap per tab after forced GCs (KiB)",
    value: (r) => (r.gcAfter.heapUsed - r.gcBefore.heapUsed) / r.scenario.tabs,
    format: kib,
    ratios: true,
    kinds: [...TABS_MEMORY, "growth"],
  },
  {
    label: "server RSS before the first tab (MiB)",
    value: (r) => r.rssBefore,
    format: mib,
    kinds: [...TABS_MEMORY, "growth"],
  },
  { label: "server RSS after the traffic (MiB)", value: (r) => r.rssAfterTraffic, format: mib, kinds: TRAFFIC },
  {
    label: "  JS heap growth over the traffic, after forced GCs (MiB)",
    value: (r) => (r.gcAfterTraffic ? r.gcAfterTraffic.heapUsed - r.gcAfter.heapUsed : undefined),
    format: mib,
    ratios: true,
    kinds: TRAFFIC,
  },
  {
    label: "nats-server RSS per tab (KiB, not in the target)",
    value: (r) => (r.system === "nats" ? (r.natsRssAfter - r.natsRssBefore) / r.scenario.tabs : undefined),
    format: kib,
    kinds: TABS_MEMORY,
  },
  {
    label: "load average at the start (1 min)",
    value: (r) => r.loadAtStart,
    format: (v) => v.toFixed(2),
    kinds: ALL_KINDS,
  },
  {
    label: "ramp: all tabs open (s)",
    value: (r) => (r.scenario.kind === "tabs" ? undefined : r.rampMs / 1000),
    format: (v) => v.toFixed(1),
    kinds: ["traffic", "idle", "growth"],
  },
  { label: "sends refused (non-2xx)", value: (r) => refused(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "lost messages", value: (r) => lostMessages(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "lost deliveries", value: (r) => lostDeliveries(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "duplicate deliveries", value: (r) => dupes(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  {
    label: "streams closed during the run",
    value: (r) => r.counters.closed,
    format: (v) => num(v),
    kinds: ALL_KINDS,
  },
];

function msgsPerSec(r: RunResult): number | undefined {
  if (!r.saturation) return undefined;
  return r.saturation.deliveriesPerSec / (r.scenario.tabs / r.scenario.rooms - 1);
}
function refused(r: RunResult): number {
  return (r.timed?.rejected ?? 0) + (r.saturation?.rejected ?? 0);
}
function lostMessages(r: RunResult): number {
  return (r.timed?.lostMessages ?? 0) + (r.saturation?.lostMessages ?? 0);
}
function lostDeliveries(r: RunResult): number {
  return (r.timed?.lostDeliveries ?? 0) + (r.saturation?.lostDeliveries ?? 0);
}
function dupes(r: RunResult): number {
  return (r.timed?.duplicates ?? 0) + (r.saturation?.duplicates ?? 0);
}

function scenarioTitle(s: Scenario): string {
  switch (s.kind) {
    case "idle":
      return `scenario ${s.id}: ${num(s.tabs)} idle tabs over ${s.rooms} room(s) (memory only)`;
    case "ramp":
      return (
        `scenario ramp: ${num(s.tabs)} tabs join one room, each a new session (page GET, then its stream), ` +
        `${CONNECT_CONCURRENCY} at a time × ${workersOf(s)} client processes, until every tab shows presence ${num(s.tabs)}`
      );
    case "pages":
      return (
        `scenario pages: ${num(s.pages!)} page loads (new sessions) that never open their stream, then ` +
        `${num(s.messages!)} messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB at ${s.rate}/s from one attached tab, one room`
      );
    case "growth":
      return (
        `scenario growth: ${num(s.tabs)} tabs in one room, then ${num(s.messages!)} messages in a closed loop ` +
        `(${inflightOf(s)} in flight × ${workersOf(s)} client processes); memory after forced GCs before and after`
      );
    case "tabs":
      return (
        `scenario tabs: ${num(s.browsers!)} browsers × ${s.tabsPerBrowser} tabs = ${num(s.tabs)} tabs in ${s.rooms} room(s), ` +
        `each browser one session; "shared": one /_via/mux stream per browser with its tabs attached, "own": a ` +
        `stream per tab (a fresh server each); then ${s.rate} msg/s open loop for ${PHASE_MS / 1000} s ` +
        `(+${WARMUP_MS / 1000} s warm-up)`
      );
    default:
      return (
        `scenario ${s.id}: ${num(s.tabs)} tabs over ${s.rooms} room(s), ${s.rate} msg/s open loop for ${PHASE_MS / 1000} s ` +
        `(+${WARMUP_MS / 1000} s warm-up); closed loop ${inflightOf(s)} in flight × ${workersOf(s)} client processes for ${PHASE_MS / 1000} s`
      );
  }
}

interface TableData {
  header: string[];
  rows: string[][];
  /** The numbers behind the rows: label → system → value (null: none). */
  values: Array<{ label: string; values: Record<string, number | null> }>;
}

function scenarioTable(scn: Scenario, results: RunResult[]): TableData {
  const by = (s: System) => results.find((r) => r.system === s);
  const ours = (["embedded", "nats"] as const).filter((s) => by(s));
  const bases = (["raw", "socketio"] as const).filter((s) => by(s));
  // tabs: each system's shared stream against its own streams.
  const pairs = ours.filter(
    (s) =>
      results.some((r) => r.system === s && r.variant === "shared") &&
      results.some((r) => r.system === s && r.variant === "own"),
  );
  const variantOf = (s: System, v: Variant) => results.find((r) => r.system === s && r.variant === v)!;
  const header = [
    "metric",
    ...results.map(labelOf),
    ...ours.flatMap((s) => bases.map((base) => `${s} / ${base}`)),
    ...pairs.map((s) => `${s} shared / own`),
  ];
  const rows: string[][] = [];
  const values: TableData["values"] = [];
  for (const m of METRICS) {
    if (!m.kinds.includes(scn.kind)) continue;
    const vals = results.map((r) => m.value(r));
    if (vals.every((v) => v === undefined)) continue;
    let cells = vals.map((v) => (v === undefined ? "" : m.format(v)));
    if (m.label.startsWith("  latency p50 / p99")) {
      cells = results.map((r) =>
        r.saturation
          ? `${ms(r.saturation.windowHist.percentile(50))} / ${ms(r.saturation.windowHist.percentile(99))}`
          : "",
      );
    } else if (m.label.startsWith("  sender's confirmation")) {
      cells = results.map((r) =>
        r.timed ? `${ms(r.confirmP50 ?? Number.NaN)} / ${ms(r.confirmP99 ?? Number.NaN)}` : "",
      );
    } else if (m.label.startsWith("  server event-loop delay")) {
      cells = results.map((r) => `${ms(r.loopDelayP99 ?? Number.NaN)} / ${ms(r.loopDelayMax ?? Number.NaN)}`);
    } else if (m.label.startsWith("RSS without forced GCs")) {
      cells = results.map((r) => `${mib(r.rssAfter)} / ${mib(r.rssAfterTraffic ?? Number.NaN)}`);
    }
    const ratioCells = ours.flatMap((s) =>
      bases.map((base) => (m.ratios ? ratio(m.value(by(s)!), m.value(by(base)!)) : "")),
    );
    const pairCells = pairs.map((s) =>
      m.ratios ? ratio(m.value(variantOf(s, "shared")), m.value(variantOf(s, "own"))) : "",
    );
    rows.push([m.label, ...cells, ...ratioCells, ...pairCells]);
    values.push({
      label: m.label.trim(),
      values: Object.fromEntries(
        results.map((r, i) => [labelOf(r), vals[i] === undefined || !Number.isFinite(vals[i]) ? null : vals[i]!]),
      ),
    });
  }
  return { header, rows, values };
}

interface TargetRow {
  target: string;
  scenario: string;
  system: System;
  measured: string;
  met: boolean | undefined;
}

function targets(all: RunResult[]): TargetRow[] {
  const rows: TargetRow[] = [];
  const find = (scn: Scenario, s: System, v?: Variant) =>
    all.find((r) => r.scenario === scn && r.system === s && r.variant === v);
  for (const scn of scenarios) {
    const raw = find(scn, "raw");
    const sio = find(scn, "socketio");
    if (scn.kind === "ramp" && raw) {
      const t = rampTime(raw);
      rows.push({
        target: `ramp: ${num(TARGET.rampTabs)} tabs attached and showing presence N in < ${TARGET.rawRampSeconds} s (raw baseline)`,
        scenario: scn.id,
        system: "raw",
        measured: rampMeasured(scn, t),
        met: scn.tabs === TARGET.rampTabs && Number.isFinite(t) ? t < TARGET.rawRampSeconds * 1000 : undefined,
      });
    }
    for (const s of ["embedded", "nats"] as const) {
      if (scn.kind === "tabs") {
        tabsTargets(scn, s, find(scn, s, "shared"), find(scn, s, "own"), rows);
        continue;
      }
      const r = find(scn, s);
      if (!r) continue;
      const row = (target: string, measured: string, met: boolean | undefined) =>
        rows.push({ target, scenario: scn.id, system: s, measured, met });
      if (scn.kind === "traffic") {
        if (scn.id === "a") {
          const cpu = cpuPer1k(r)!;
          const rawCpu = raw && cpuPer1k(raw);
          const sioCpu = sio && cpuPer1k(sio);
          row(
            "server CPU per 1,000 deliveries, open loop ≤ raw's",
            rawCpu
              ? `${cpu.toFixed(1)} ms = ${ratio(cpu, rawCpu)} raw (${rawCpu.toFixed(1)} ms)`
              : `${cpu.toFixed(1)} ms (no raw run)`,
            rawCpu ? cpu <= rawCpu : undefined,
          );
          row(
            "server CPU per 1,000 deliveries, open loop < Socket.IO's",
            sioCpu
              ? `${cpu.toFixed(1)} ms = ${ratio(cpu, sioCpu)} Socket.IO (${sioCpu.toFixed(1)} ms)`
              : `${cpu.toFixed(1)} ms (no Socket.IO run)`,
            sioCpu ? cpu < sioCpu : undefined,
          );
          const p99 = r.timed!.hist.percentile(99);
          const rawP99 = raw?.timed?.hist.percentile(99);
          const k = TARGET.p99VsRaw[s];
          row(
            `latency p99 ≤ ${k}× raw`,
            rawP99 ? `${ms(p99)} ms = ${ratio(p99, rawP99)} raw (${ms(rawP99)} ms)` : `${ms(p99)} ms (no raw run)`,
            rawP99 ? p99 <= k * rawP99 : undefined,
          );
        }
        const d = r.saturation!.deliveriesPerSec;
        const rawD = raw?.saturation?.deliveriesPerSec;
        row(
          `deliveries/s at saturation ≥ ${TARGET.deliveriesVsRaw * 100} % of raw`,
          rawD ? `${num(d)}/s = ${ratio(d, rawD)} raw (${num(rawD)}/s)` : `${num(d)}/s (no raw run)`,
          rawD ? d >= TARGET.deliveriesVsRaw * rawD : undefined,
        );
        const sioD = sio?.saturation?.deliveriesPerSec;
        row(
          `deliveries/s at saturation ≥ ${TARGET.deliveriesVsSocketIo}× Socket.IO`,
          sioD ? `${num(d)}/s = ${ratio(d, sioD)} Socket.IO (${num(sioD)}/s)` : `${num(d)}/s (no Socket.IO run)`,
          sioD ? d >= TARGET.deliveriesVsSocketIo * sioD : undefined,
        );
        const b = bytesPerDelivery(r)!;
        row(
          `≤ ${TARGET.bytesPerDelivery / 1024} KiB on the wire per delivered ${MESSAGE_CHARS}-byte message`,
          `${num(b)} B`,
          b <= TARGET.bytesPerDelivery,
        );
      } else if (scn.kind === "idle" || scn.kind === "ramp") {
        if (scn.kind === "ramp") {
          const t = rampTime(r);
          row(
            `ramp: ${num(TARGET.rampTabs)} tabs attached and showing presence N in ≤ ${TARGET.rampSeconds} s`,
            rampMeasured(scn, t, raw && rampTime(raw)),
            // Presence never at N on every tab: missed at any size; otherwise judged at the target's size only.
            !Number.isFinite(t) ? false : scn.tabs === TARGET.rampTabs ? t <= TARGET.rampSeconds * 1000 : undefined,
          );
        }
        const k = rssPerTab(r);
        const gc = (r.gcAfter.rss - r.gcBefore.rss) / scn.tabs;
        row(
          `≤ ${TARGET.idleTabKiB} KiB server RSS per idle tab`,
          `${kib(k)} KiB at ${num(scn.tabs)} tabs (after forced GCs ${kib(gc)} KiB)`,
          k <= TARGET.idleTabKiB * 1024,
        );
      } else if (scn.kind === "pages") {
        const g = pagesGrowth(r);
        const gc = pagesGcGrowth(r) ?? Number.NaN;
        row(
          `≤ ${TARGET.pagesGrowthMiB} MiB server RSS growth: ${num(scn.pages!)} page loads without a stream + ` +
            `${num(scn.messages!)} messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB`,
          `${mib(g)} MiB (after forced GCs ${mib(gc)} MiB)${raw ? `; raw ${mib(pagesGrowth(raw))} MiB` : ""}`,
          Number.isFinite(g) ? g <= TARGET.pagesGrowthMiB * 1024 * 1024 : undefined,
        );
      } else if (scn.kind === "growth") {
        const g = growthOf(r);
        const rg = raw ? growthOf(raw) : undefined;
        row(
          `server RSS after forced GCs within ${TARGET.growthPct} % after ${num(scn.messages!)} messages (${num(scn.tabs)} tabs)`,
          `${signedPct(g.rss)} (${mib(r.gcAfter.rss)} → ${mib(r.gcAfterTraffic!.rss)} MiB)${rg ? `; raw ${signedPct(rg.rss)}` : ""}`,
          Number.isFinite(g.rss) ? g.rss <= TARGET.growthPct / 100 : undefined,
        );
        row(
          `JS heap used after forced GCs within ${TARGET.growthPct} % after ${num(scn.messages!)} messages (${num(scn.tabs)} tabs)`,
          `${signedPct(g.heap)} (${mib(r.gcAfter.heapUsed)} → ${mib(r.gcAfterTraffic!.heapUsed)} MiB)${rg ? `; raw ${signedPct(rg.heap)}` : ""}`,
          Number.isFinite(g.heap) ? g.heap <= TARGET.growthPct / 100 : undefined,
        );
      }
    }
  }
  return rows;
}

/**
 * tabs: server connections ≈ browsers (one shared stream each), memory per tab on a shared stream, and
 * every message reaching every tab; each measured against the same tabs on streams of their own.
 */
function tabsTargets(
  scn: Scenario,
  system: System,
  shared: RunResult | undefined,
  own: RunResult | undefined,
  rows: TargetRow[],
): void {
  if (!shared) return;
  const row = (target: string, measured: string, met: boolean | undefined) =>
    rows.push({ target, scenario: scn.id, system, measured, met });
  const nb = scn.browsers!;
  const conns = shared.serverConnections ?? Number.NaN;
  const ownConns = own?.serverConnections;
  row(
    `server TCP connections ≈ browsers (≤ browsers + ${TARGET.tabsConnectionsSlackPct} %), every tab on its browser's shared stream`,
    `${num(conns)} connections for ${num(nb)} browsers × ${scn.tabsPerBrowser} tabs` +
      (Number.isFinite(shared.sharedStreams ?? Number.NaN)
        ? `, /metrics: ${num(shared.sharedStreams!)} shared streams carrying ${num(shared.sharedTabs!)} tabs`
        : "") +
      (ownConns !== undefined ? ` (own streams: ${num(ownConns)} connections)` : ""),
    Number.isFinite(conns)
      ? conns >= nb && conns <= nb * (1 + TARGET.tabsConnectionsSlackPct / 100) && shared.clientStreamSockets === nb
      : undefined,
  );
  const perTab = (r: RunResult) => (r.rssAfter - r.rssBefore) / scn.tabs;
  const gcPerTab = (r: RunResult) => (r.gcAfter.rss - r.gcBefore.rss) / scn.tabs;
  const k = perTab(shared);
  row(
    `≤ ${TARGET.idleTabKiB} KiB server RSS per tab on a shared stream`,
    `${kib(k)} KiB at ${num(scn.tabs)} tabs (after forced GCs ${kib(gcPerTab(shared))} KiB)` +
      (own ? `; own streams ${kib(perTab(own))} KiB (${kib(gcPerTab(own))} KiB)` : ""),
    Number.isFinite(k) ? k <= TARGET.idleTabKiB * 1024 : undefined,
  );
  const t = shared.timed;
  if (t) {
    const p = (r: RunResult) =>
      `p50 / p99 ${ms(r.timed!.hist.percentile(50))} / ${ms(r.timed!.hist.percentile(99))} ms`;
    row(
      "every message reaches every tab of the room on the shared streams (nothing lost or duplicated)",
      `${num(t.deliveries)} measured deliveries, ${p(shared)}, lost ${num(t.lostDeliveries)}, duplicates ` +
        `${num(t.duplicates)}${own?.timed ? `; own streams ${p(own)}` : ""}`,
      t.lostDeliveries === 0 && t.lostMessages === 0 && t.duplicates === 0 && t.deliveries > 0,
    );
  }
}

/** The ramp's time: every tab attached and showing presence N (NaN if some never did). */
function rampTime(r: RunResult): number {
  return Math.max(r.attachedMs ?? Number.NaN, r.presenceAllMs ?? Number.NaN);
}

function rampMeasured(scn: Scenario, t: number, rawT?: number): string {
  if (!Number.isFinite(t)) return `presence ${num(scn.tabs)} never showed on every tab`;
  const vsRaw = rawT && Number.isFinite(rawT) ? ` = ${ratio(t, rawT)} raw (${sec(rawT)} s)` : "";
  if (scn.tabs === TARGET.rampTabs) return `${sec(t)} s${vsRaw}`;
  return (
    `${sec(t)} s for ${num(scn.tabs)} tabs${vsRaw}; target is for ${num(TARGET.rampTabs)} ` +
    `(≈ ${sec((t * TARGET.rampTabs) / scn.tabs)} s at this rate)`
  );
}

// ---- main ----

const argv = process.argv.slice(2);
const cpuModel = cpus()[0]?.model.trim() ?? "unknown";
const loadText = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
const command = `npm run bench:chat${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`;
const loadBefore = loadText();
const plan =
  `scenarios ${scenarios.map((s) => s.id).join(", ")} × systems ${systems.join(", ")}; ` +
  `${WORKERS} client processes; ${MESSAGE_CHARS}-byte messages; settle ${SETTLE_MS} ms before each RSS reading`;
console.log("bench:chat — the chat under load, next to raw node:http SSE and Socket.IO 4");
console.log(`command: ${command}`);
console.log(`node:    ${process.version} (${process.platform}/${process.arch})`);
console.log(`cpu:     ${cpuModel} × ${cpus().length} cores`);
console.log(`date:    ${new Date().toISOString()}`);
console.log(`load:    ${loadBefore} (1/5/15 min load average before the run)`);
console.log(`plan:    ${plan}`);
console.log(`systems: ${systems.map((s) => `${s} = ${SYSTEM_LABEL[s]}`).join("; ")}`);
// The definitions, as in --help.
console.log(HELP.slice(HELP.indexOf("Per scenario and system:"), HELP.indexOf("Options:")).trimEnd());
console.log("");

const started = performance.now();
const results: RunResult[] = [];
const failures: Array<{ scenario: string; system: System; variant?: Variant; error: string }> = [];
for (const scn of scenarios) {
  console.log(scenarioTitle(scn));
  for (const system of systemsOf(scn)) {
    for (const variant of variantsOf(scn)) {
      try {
        results.push(await runOne(scn, system, variant));
      } catch (err) {
        failures.push({
          scenario: scn.id,
          system,
          ...(variant ? { variant } : {}),
          error: String((err as Error).stack ?? err),
        });
        process.stderr.write(
          `bench:chat: ${scn.id}/${runLabel(system, variant)} failed: ${(err as Error).stack ?? err}\n`,
        );
      }
    }
  }
  console.log("");
}

const tables: Array<{ scenario: string; title: string; table: TableData; notes: string[] }> = [];
for (const scn of scenarios) {
  const rs = results.filter((r) => r.scenario === scn);
  if (rs.length === 0) continue;
  const data = scenarioTable(scn, rs);
  const notes: string[] = [];
  console.log(scenarioTitle(scn));
  console.log(table(data.header, data.rows));
  for (const r of rs) {
    const c = r.counters;
    const n: string[] = [];
    const statuses = Object.entries(c.statuses).filter(([k]) => !accepted(Number(k)));
    if (statuses.length > 0) n.push(`refused sends by status: ${statuses.map(([k, v]) => `${k}×${v}`).join(", ")}`);
    if (c.toasts > 0) n.push(`${c.toasts} error toasts (${c.toastSample})`);
    if (c.resyncs > 0) n.push(`${c.resyncs} #messages resets (inner)`);
    if (c.byes > 0) n.push(`${c.byes} via-bye/via-reload`);
    if (c.failed > 0) n.push(`${c.failed} messages marked "not sent"`);
    if (c.unexpected > 0) n.push(`${c.unexpected} unexpected items/patches (first: ${c.unexpectedSample})`);
    if (c.outOfOrder > 0) n.push(`${c.outOfOrder} stored copies out of position order`);
    if (c.upserts > 0) n.push(`${c.upserts} upserts of an item the tab held`);
    if (c.viewRenders > 0) n.push(`${c.viewRenders} whole-view renders`);
    if (c.trims > 0 || c.prepends > 0) n.push(`${c.trims} list trims, ${c.prepends} prepends`);
    if (c.staleRetries > 0)
      n.push(`${c.staleRetries} requests repeated after a reset on a stale keep-alive connection`);
    if (c.sendErrors > 0) n.push(`${c.sendErrors} send errors (${c.sendErrorSample})`);
    if (r.saturation && r.saturation.stalls > 0) n.push(`${r.saturation.stalls} closed-loop stalls`);
    const mis = (r.timed?.misrouted ?? 0) + (r.saturation?.misrouted ?? 0);
    if (mis > 0) n.push(`${mis} deliveries to a tab of another room`);
    if (c.laneEnds > 0) n.push(`${c.laneEnds} shared-stream lanes ended (via-tab-end)`);
    if (n.length > 0) {
      notes.push(`${labelOf(r)}: ${n.join("; ")}`);
      console.log(`  ${labelOf(r)}: ${n.join("; ")}`);
    }
  }
  console.log("");
  tables.push({ scenario: scn.id, title: scenarioTitle(scn), table: data, notes });
}

const targetRows = targets(results);
const resultText = (t: TargetRow) => (t.met === undefined ? "n/a" : t.met ? "MET" : "MISSED");
if (targetRows.length > 0) {
  console.log("targets (our chat, and raw's ramp; a missed target does not fail the run):");
  console.log(
    table(
      ["target", "scenario", "system", "measured", "result"],
      targetRows.map((t) => [t.target, t.scenario, t.system, t.measured, resultText(t)]),
    ),
  );
  console.log("");
}

const lossy = results.filter((r) => lostMessages(r) > 0 || lostDeliveries(r) > 0 || dupes(r) > 0);
for (const r of results) {
  console.log(
    `lost ${r.scenario.id}/${labelOf(r)}: ${lostMessages(r)} messages, ${lostDeliveries(r)} deliveries, ` +
      `${dupes(r)} duplicates`,
  );
}
// A ramp whose presence never reached N on every tab measured nothing: a failure, like a broken run.
const stuck = results.filter((r) => r.scenario.kind === "ramp" && !Number.isFinite(rampTime(r)));
for (const r of stuck) {
  console.log(
    `ramp/${r.system}: presence ${r.scenario.tabs} showed on ${r.presenceReached}/${r.scenario.tabs} tabs within ` +
      `${PRESENCE_TIMEOUT_MS / 1000} s (highest count seen ${r.presenceMax})`,
  );
}
const loadAfter = loadText();
const tookS = Math.round((performance.now() - started) / 1000);
console.log(`load average after the run: ${loadAfter}`);
console.log(`took ${tookS} s`);
clearTimeout(watchdog);

let exitCode = 0;
let verdict = "ok";
if (lossy.length > 0) {
  verdict = `FAIL: messages were lost or duplicated in ${lossy.map((r) => `${r.scenario.id}/${labelOf(r)}`).join(", ")}`;
  exitCode = 1;
} else if (failures.length > 0 || stuck.length > 0) {
  verdict = "FAIL: a run broke (see the errors above)";
  exitCode = 1;
}

if (JSON_FILE) {
  const histogram = (h: Histogram) => ({
    n: h.n,
    p50: h.percentile(50),
    p99: h.percentile(99),
    max: h.max,
    mean: h.n > 0 ? h.sum / h.n : null,
  });
  const replacer = (_key: string, v: unknown) => (v instanceof Histogram ? histogram(v) : v);
  const doc = {
    bench: "bench:chat",
    command,
    node: `${process.version} (${process.platform}/${process.arch})`,
    cpu: { model: cpuModel, cores: cpus().length },
    date: new Date().toISOString(),
    loadBefore,
    loadAfter,
    plan,
    tookSeconds: tookS,
    exitCode,
    verdict,
    targetsDefinition: TARGET,
    tables,
    targets: targetRows.map((t) => ({ ...t, result: resultText(t) })),
    results: results.map((r) => ({ ...r, scenario: r.scenario.id, scenarioSpec: r.scenario })),
    failures,
  };
  writeFileSync(JSON_FILE, `${JSON.stringify(doc, replacer, 2)}\n`);
  console.log(`json:    ${JSON_FILE}`);
}
if (exitCode !== 0) console.log(verdict);
process.exit(exitCode);
