// `npm run bench:chat`: load on the chat through its real protocol, with protocol-level clients (no
// browsers), next to a raw node:http SSE chat (the ceiling for Node) and a Socket.IO 4 chat under the
// same clients pattern, in one run. Our chat runs twice: on the embedded engine and on a nats-server.
//
// Per scenario and system: a fresh server process, client processes (bench/chat/clients.ts) that open
// the tabs, then (a, b) an open-loop phase at a fixed message rate (latency, bytes on the wire) and a
// closed-loop phase (deliveries/s at saturation), and a loss check after each. Definitions: the HELP
// text below and docs/BENCHMARKS.md ("Chat under load").

import { existsSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { intOption } from "../scripts/lib/cli.ts";
import { natsServerBin } from "../test/support/nats-server.ts";
import type {
  ClosedLoopArgs,
  ConnectArgs,
  ConnectResult,
  Counters,
  FinishArgs,
  FinishResult,
  OpenLoopArgs,
  SendResult,
} from "./chat/clients.ts";
import {
  Histogram,
  MESSAGE_CHARS,
  protocolOf,
  readCpuMs,
  readRss,
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

Load on the chat example through its real protocol (page GET, event stream, "say" action), with
protocol-level clients in separate processes, next to a raw node:http SSE chat and a Socket.IO 4
chat under the same pattern, and our chat on the embedded engine and on a real nats-server.

Scenarios (each on a fresh server process per system):
  a   1,000 tabs in one room, one message every 50 ms (senders rotate over the tabs)
  b   5,000 tabs over 50 rooms, 200 messages/s in total spread over the rooms
  c   10,000 idle tabs over the same 50 rooms (memory only)

Per scenario and system:
  latency       send stamp (in the text) → arrival of the <li> in a recipient tab's stream, over
                every recipient except the sender; open-loop phase at the scenario's rate, after
                1 s of warm-up messages (sent and checked, not timed)
  deliveries/s  closed-loop phase ("saturation"): each client process keeps M messages in flight
                (--inflight; default 16,000 deliveries in flight in all, M = 16,000 / clients /
                tabs per room, within 8-128); a message is complete when every tab of that process
                in its room has it and its sender saw it stored (chat) or echoed (raw, Socket.IO);
                then that slot sends the next message, from the next tab in turn. Recipient
                deliveries that arrive inside the window ÷ the window (--seconds)
  bytes/deliv.  bytes read by every client socket (event streams with HTTP framing and keepalives,
                send responses, WebSocket frames) from the first measured send of the open loop
                until every message had arrived, ÷ the measured recipient deliveries
  RSS/tab       (server VmRSS from /proc/<pid>/status with N tabs open − before the first tab) ÷ N,
                each read after a settle delay (2 s); also shown after forced full GCs
  lost          a recipient that never got a message of its room, or a sender that never saw its
                message stored (or echoed); any loss or duplicate exits non-zero

Options:
  --quick              smoke run: 100-400 tabs, 1 s phases, 1 client process, under a minute
  --scenario <s>       a | b | c | all (default all)
  --systems <list>     comma-separated, of raw,socketio,embedded,nats (default all four)
  --seconds <s>        length of the open-loop and of the closed-loop phase (default 10; quick 1)
  --inflight <n>       closed loop: messages in flight per client process (default: 16,000
                       deliveries in flight in all, i.e. 16,000 / clients / tabs per room, 8-128)
  --clients <n>        client processes (default 2, quick 1; at least 2 for 10,000 tabs)
  --profile <dir>      write a V8 CPU profile of every server process to <dir>: of the traffic
                       phases (a, b) or of the ramp (c), as <scenario>-<system>.cpuprofile
  --heap-snapshots <dir>  write a heap snapshot of every server before the first tab and with all
                       tabs open (both after forced GCs) to <dir>, as <scenario>-<system>-<tabs>.heapsnapshot
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

interface Scenario {
  id: "a" | "b" | "c";
  tabs: number;
  rooms: number;
  /** Messages per second in the open-loop phase; 0: idle (memory only). */
  rate: number;
}

const SCENARIOS: Scenario[] = QUICK
  ? [
      { id: "a", tabs: 100, rooms: 1, rate: 20 },
      { id: "b", tabs: 200, rooms: 10, rate: 40 },
      { id: "c", tabs: 400, rooms: 10, rate: 0 },
    ]
  : [
      { id: "a", tabs: 1000, rooms: 1, rate: 20 },
      { id: "b", tabs: 5000, rooms: 50, rate: 200 },
      { id: "c", tabs: 10000, rooms: 50, rate: 0 },
    ];

const scenarioArg = values.scenario ?? "all";
if (!["a", "b", "c", "all"].includes(scenarioArg)) {
  process.stderr.write(`--scenario must be a, b, c or all, got ${JSON.stringify(scenarioArg)}\n`);
  process.exit(2);
}
const scenarios = SCENARIOS.filter((s) => scenarioArg === "all" || s.id === scenarioArg);
const systems = (values.systems ?? SYSTEMS.join(",")).split(",").map((s) => s.trim()) as System[];
for (const s of systems) {
  if (!SYSTEMS.includes(s)) {
    process.stderr.write(`--systems takes a list of ${SYSTEMS.join(", ")}; got ${JSON.stringify(s)}\n`);
    process.exit(2);
  }
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
const WORKERS = intOption("clients", values.clients, QUICK ? 1 : 2, 1, 8);
// Each client process holds at most this many tabs: a socket per tab against a 20,000 fd limit.
const MAX_TABS_PER_WORKER = 8000;
for (const s of scenarios) {
  if (Math.ceil(s.tabs / WORKERS) > MAX_TABS_PER_WORKER) {
    process.stderr.write(
      `scenario ${s.id}: ${s.tabs} tabs need at least ${Math.ceil(s.tabs / MAX_TABS_PER_WORKER)} client processes\n`,
    );
    process.exit(2);
  }
}
const PROFILE_DIR = values.profile ? resolve(values.profile) : undefined;
if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
const SNAPSHOT_DIR = values["heap-snapshots"] ? resolve(values["heap-snapshots"]) : undefined;
if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
if (systems.includes("nats") && !existsSync(natsServerBin())) {
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
const FINISH_TIMEOUT_MS = QUICK ? 5_000 : 15_000;
const STALL_MS = 10_000;
const WATCHDOG_MS = (QUICK ? 3 : 30) * 60_000;

const TARGET = {
  p99VsRaw: 2,
  deliveriesVsRaw: 0.5,
  deliveriesVsSocketIo: 1.5,
  idleTabKiB: 20,
  bytesPerDelivery: 2048,
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

// ---- one run: one scenario on one system ----

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
  stalls: number;
}

interface RunResult {
  system: System;
  scenario: Scenario;
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
  /** Server VmRSS once both traffic phases are over (a, b). */
  rssAfterTraffic?: number;
  /** The same after forced GCs: what the messages of the run left live in the server. */
  gcAfterTraffic?: HeapFigures;
  timed?: PhaseStats;
  saturation?: SaturationStats;
  counters: Counters;
}

function mergeCounters(list: Counters[]): Counters {
  const out: Counters = {
    closed: 0,
    resyncs: 0,
    toasts: 0,
    toastSample: "",
    byes: 0,
    unexpected: 0,
    failed: 0,
    statuses: {},
    sendErrors: 0,
    sendErrorSample: "",
    staleRetries: 0,
  };
  for (const c of list) {
    out.closed += c.closed;
    out.resyncs += c.resyncs;
    out.toasts += c.toasts;
    out.toastSample ||= c.toastSample;
    out.byes += c.byes;
    out.unexpected += c.unexpected;
    out.failed += c.failed;
    out.sendErrors += c.sendErrors;
    out.sendErrorSample ||= c.sendErrorSample;
    out.staleRetries += c.staleRetries;
    for (const [k, v] of Object.entries(c.statuses)) out.statuses[k] = (out.statuses[k] ?? 0) + v;
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

async function runOne(scn: Scenario, system: System): Promise<RunResult> {
  const rooms = roomNames(scn.rooms);
  const started = performance.now();
  const loadAtStart = loadavg()[0]!;
  const workers = Array.from({ length: WORKERS }, (_, i) => spawnChild(`clients ${i + 1}`, "clients"));
  let srv: RunningSystem | undefined;
  try {
    const [server] = await Promise.all([startSystem(system, rooms), ...workers.map((w) => w.ready)]);
    srv = server;
    const natsPid = srv.natsPid;
    const workerPids = workers.map((w) => w.pid!);
    await sleep(SETTLE_MS);
    const rssBefore = readRss(srv.pid);
    const natsRssBefore = natsPid ? readRss(natsPid) : Number.NaN;

    const gcBefore = await gcAndMeasure(srv.pid, GC_PAUSE_MS);
    const snapshot = async (tabs: number) => {
      if (!SNAPSHOT_DIR) return;
      const file = join(SNAPSHOT_DIR, `${scn.id}-${system}-${tabs}.heapsnapshot`);
      await control(srv!.pid, { cmd: "heap-snapshot", file }, 300_000);
      log(`${scn.id}/${system}: heap snapshot ${file}`);
    };
    await snapshot(0);
    // --profile: the ramp in an idle scenario, else the traffic phases.
    const startProfile = async () => {
      if (PROFILE_DIR) await control(srv!.pid, { cmd: "profile-start" });
    };
    if (scn.rate === 0) await startProfile();

    // Tabs: tab i is in room i mod R and lives in client process i mod W.
    const t0 = performance.now();
    const connects = await Promise.all(
      workers.map((w, wi) => {
        const tabs: Array<[number, number]> = [];
        for (let i = wi; i < scn.tabs; i += WORKERS) tabs.push([i, i % scn.rooms]);
        return w.call<ConnectResult>(
          "connect",
          {
            protocol: protocolOf(system),
            port: srv!.port,
            rooms,
            tabs,
            concurrency: CONNECT_CONCURRENCY,
            timeoutMs: 60_000,
          } satisfies ConnectArgs,
          20 * 60_000,
        );
      }),
    );
    const rampMs = performance.now() - t0;
    const open = connects.reduce((a, c) => a + c.open, 0);
    if (open !== scn.tabs) throw new Error(`${system}: only ${open} of ${scn.tabs} tabs are open`);
    await sleep(SETTLE_MS);
    const rssAfter = readRss(srv.pid);
    const natsRssAfter = natsPid ? readRss(natsPid) : Number.NaN;
    const gcAfter = await gcAndMeasure(srv.pid, GC_PAUSE_MS);
    await snapshot(scn.tabs);

    log(
      `${scn.id}/${system}: ${scn.tabs} tabs open in ${(rampMs / 1000).toFixed(1)} s; server RSS ` +
        `${mib(rssBefore)} → ${mib(rssAfter)} MiB = ${kib((rssAfter - rssBefore) / scn.tabs)} KiB/tab`,
    );
    const perTab = (f: keyof HeapFigures) => kib((gcAfter[f] - gcBefore[f]) / scn.tabs);
    log(
      `${scn.id}/${system}: after forced GCs: RSS ${mib(gcBefore.rss)} → ${mib(gcAfter.rss)} MiB ` +
        `(${perTab("rss")} KiB/tab), V8 heap used ${perTab("heapUsed")}, heap total ${perTab("heapTotal")}, ` +
        `external ${perTab("external")} KiB/tab`,
    );
    const result: RunResult = {
      system,
      scenario: scn,
      loadAtStart,
      rssBefore,
      rssAfter,
      natsRssBefore,
      natsRssAfter,
      gcBefore,
      gcAfter,
      rampMs,
      counters: mergeCounters([]),
    };

    const meters = () => ({
      server: new CpuMeter([srv!.pid]),
      nats: natsPid ? new CpuMeter([natsPid]) : undefined,
      clients: new CpuMeter(workerPids),
    });
    const readMeters = (m: ReturnType<typeof meters>) => ({
      server: m.server.maxPct(),
      serverMs: m.server.firstMs(),
      nats: m.nats?.maxPct() ?? Number.NaN,
      clients: m.clients.maxPct(),
    });

    if (scn.rate > 0) {
      await startProfile();
      // Open loop: message k (seq k + 1) at startAt + k / rate, from tab k mod N, after a warm-up.
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
      let m = meters();
      const sends = await Promise.all(workers.map((w) => w.call<SendResult>("openLoop", open, PHASE_MS + 120_000)));
      const timedCheck = await checkPhase(workers, sends);
      result.timed = phaseStats(timedCheck.fin, timedCheck.sent, timedCheck.rejected, readMeters(m));
      const t = result.timed;
      log(
        `${scn.id}/${system}: open loop ${scn.rate} msg/s: ${t.deliveries}/${t.expected - recipientsOf(scn, warmup)} ` +
          `measured deliveries, p50 ${ms(t.hist.percentile(50))} p99 ${ms(t.hist.percentile(99))} ` +
          `max ${ms(t.hist.max)} ms, ${Math.round(t.bytes / Math.max(1, t.deliveries))} B/delivery, ` +
          `lost ${t.lostMessages} msgs (${t.lostDeliveries} deliveries), server CPU ${pct(t.serverCpuPct)}`,
      );

      log(`${scn.id}/${system}: open loop: ${sendTimes(sends)}`);

      // Closed loop (saturation).
      m = meters();
      const closed: Omit<ClosedLoopArgs, "workerIndex"> = {
        startAt: wallNow() + LEAD_MS,
        durationMs: PHASE_MS,
        inflight: inflightOf(scn),
        seqBase: 1 + count,
        workers: WORKERS,
        stallMs: STALL_MS,
      };
      const satSends = await Promise.all(
        workers.map((w, wi) =>
          w.call<SendResult>(
            "closedLoop",
            { ...closed, workerIndex: wi } satisfies ClosedLoopArgs,
            PHASE_MS + STALL_MS + 120_000,
          ),
        ),
      );
      const cpu = readMeters(m);
      const satCheck = await checkPhase(workers, satSends);
      const windowHist = new Histogram();
      for (const s of satSends) windowHist.merge(s.windowHist);
      const windowMs = Math.max(...satSends.map((s) => s.windowMs));
      const windowDeliveries = satSends.reduce((a, s) => a + s.windowDeliveries, 0);
      result.saturation = {
        ...phaseStats(satCheck.fin, satCheck.sent, satCheck.rejected, cpu),
        deliveriesPerSec: (windowDeliveries / windowMs) * 1000,
        deliveriesPerRead:
          protocolOf(system) === "socketio"
            ? Number.NaN
            : windowDeliveries /
              Math.max(
                1,
                satSends.reduce((a, s) => a + s.windowReads, 0),
              ),
        windowHist,
        stalls: satSends.reduce((a, s) => a + s.stalls, 0),
      };
      const s = result.saturation;
      log(`${scn.id}/${system}: closed loop: ${sendTimes(satSends)}`);
      log(
        `${scn.id}/${system}: closed loop, ${inflightOf(scn)}×${WORKERS} in flight: ${s.sent} msgs, ` +
          `${Math.round(s.deliveriesPerSec)} deliveries/s (p50 ${ms(windowHist.percentile(50))} p99 ` +
          `${ms(windowHist.percentile(99))} ms), lost ${s.lostMessages} msgs, stalls ${s.stalls}, ` +
          `server CPU ${pct(s.serverCpuPct)}, busiest client ${pct(s.clientCpuPct)}`,
      );
    }
    if (scn.rate > 0) {
      result.rssAfterTraffic = readRss(srv.pid);
      result.gcAfterTraffic = await gcAndMeasure(srv.pid, GC_PAUSE_MS);
    }
    if (PROFILE_DIR) {
      const file = join(PROFILE_DIR, `${scn.id}-${system}.cpuprofile`);
      await control(srv.pid, { cmd: "profile-stop", file });
      log(`${scn.id}/${system}: CPU profile in ${file}`);
    }
    result.counters = mergeCounters(await Promise.all(workers.map((w) => w.call<Counters>("counters"))));
    log(`${scn.id}/${system}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } catch (err) {
    const diagnostics = srv?.diagnostics();
    if (diagnostics) process.stderr.write(`bench:chat: ${scn.id}/${system}: ${diagnostics}\n`);
    throw err;
  } finally {
    await Promise.all(workers.map((w) => w.call("stop", undefined, 10_000).catch(() => {})));
    await Promise.all([...workers.map((w) => stopChild(w)), srv?.stop()]);
  }
}

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
function pct(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)} %` : "n/a";
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
  idle?: boolean;
}

const rssPerTab = (r: RunResult) => (r.rssAfter - r.rssBefore) / r.scenario.tabs;
const bytesPerDelivery = (r: RunResult) => (r.timed ? r.timed.bytes / Math.max(1, r.timed.deliveries) : undefined);

const METRICS: Metric[] = [
  { label: "latency p50 (ms)", value: (r) => r.timed?.hist.percentile(50), format: ms, ratios: true },
  { label: "latency p99 (ms)", value: (r) => r.timed?.hist.percentile(99), format: ms, ratios: true },
  { label: "latency max (ms)", value: (r) => r.timed?.hist.max, format: ms, ratios: true },
  {
    label: "measured deliveries (open loop)",
    value: (r) => r.timed?.deliveries,
    format: (v) => num(v),
  },
  { label: "bytes on the wire per delivery", value: bytesPerDelivery, format: (v) => num(v), ratios: true },
  { label: "server CPU, open loop", value: (r) => r.timed?.serverCpuPct, format: pct },
  {
    label: "server CPU per 1,000 deliveries, open loop (ms)",
    value: (r) => (r.timed ? (r.timed.serverCpuMs / r.timed.expected) * 1000 : undefined),
    format: (v) => v.toFixed(1),
    ratios: true,
  },
  {
    label: "deliveries/s at saturation",
    value: (r) => r.saturation?.deliveriesPerSec,
    format: (v) => num(v),
    ratios: true,
  },
  { label: "  messages/s at saturation", value: (r) => msgsPerSec(r), format: (v) => num(v, 1) },
  {
    label: "  latency p50 / p99 at saturation (ms)",
    value: (r) => r.saturation?.windowHist.percentile(50),
    format: ms,
  },
  { label: "  server CPU at saturation", value: (r) => r.saturation?.serverCpuPct, format: pct },
  {
    label: "  server CPU per 1,000 deliveries (ms)",
    value: (r) => (r.saturation ? (r.saturation.serverCpuMs / r.saturation.expected) * 1000 : undefined),
    format: (v) => v.toFixed(1),
    ratios: true,
  },
  {
    label: "  deliveries per stream read (server batching)",
    value: (r) => r.saturation?.deliveriesPerRead,
    format: (v) => (Number.isFinite(v) ? v.toFixed(2) : "n/a"),
  },
  { label: "  busiest client process CPU", value: (r) => r.saturation?.clientCpuPct, format: pct },
  { label: "  nats-server CPU at saturation", value: (r) => r.saturation?.natsCpuPct, format: pct },
  { label: "RSS per tab (KiB)", value: rssPerTab, format: kib, ratios: true, idle: true },
  {
    label: "  RSS per tab after forced GCs (KiB)",
    value: (r) => (r.gcAfter.rss - r.gcBefore.rss) / r.scenario.tabs,
    format: kib,
    ratios: true,
    idle: true,
  },
  {
    label: "  JS heap per tab after forced GCs (KiB)",
    value: (r) => (r.gcAfter.heapUsed - r.gcBefore.heapUsed) / r.scenario.tabs,
    format: kib,
    ratios: true,
    idle: true,
  },
  { label: "server RSS before the first tab (MiB)", value: (r) => r.rssBefore, format: mib, idle: true },
  { label: "server RSS after the traffic (MiB)", value: (r) => r.rssAfterTraffic, format: mib },
  {
    label: "  JS heap growth over the traffic, after forced GCs (MiB)",
    value: (r) => (r.gcAfterTraffic ? r.gcAfterTraffic.heapUsed - r.gcAfter.heapUsed : undefined),
    format: mib,
    ratios: true,
  },
  {
    label: "nats-server RSS per tab (KiB, not in the target)",
    value: (r) => (r.system === "nats" ? (r.natsRssAfter - r.natsRssBefore) / r.scenario.tabs : undefined),
    format: kib,
    idle: true,
  },
  { label: "load average at the start (1 min)", value: (r) => r.loadAtStart, format: (v) => v.toFixed(2), idle: true },
  { label: "ramp: all tabs open (s)", value: (r) => r.rampMs / 1000, format: (v) => v.toFixed(1), idle: true },
  { label: "sends refused (non-2xx)", value: (r) => refused(r), format: (v) => num(v), idle: false },
  { label: "lost messages", value: (r) => lostMessages(r), format: (v) => num(v), idle: true },
  { label: "lost deliveries", value: (r) => lostDeliveries(r), format: (v) => num(v), idle: true },
  { label: "duplicate deliveries", value: (r) => dupes(r), format: (v) => num(v), idle: true },
  { label: "streams closed during the run", value: (r) => r.counters.closed, format: (v) => num(v), idle: true },
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
  if (s.rate === 0) return `scenario ${s.id}: ${num(s.tabs)} idle tabs over ${s.rooms} room(s) (memory only)`;
  return (
    `scenario ${s.id}: ${num(s.tabs)} tabs over ${s.rooms} room(s), ${s.rate} msg/s open loop for ${PHASE_MS / 1000} s ` +
    `(+${WARMUP_MS / 1000} s warm-up); closed loop ${inflightOf(s)} in flight × ${WORKERS} client processes for ${PHASE_MS / 1000} s`
  );
}

function scenarioTable(scn: Scenario, results: RunResult[]): string {
  const by = (s: System) => results.find((r) => r.system === s);
  const ours = (["embedded", "nats"] as const).filter((s) => by(s));
  const header = ["metric", ...results.map((r) => r.system), ...ours.flatMap((s) => [`${s} / raw`, `${s} / socketio`])];
  const rows: string[][] = [];
  for (const m of METRICS) {
    if (scn.rate === 0 && !m.idle) continue;
    const vals = results.map((r) => m.value(r));
    if (vals.every((v) => v === undefined)) continue;
    let cells = vals.map((v) => (v === undefined ? "" : m.format(v)));
    if (m.label.startsWith("  latency p50 / p99")) {
      cells = results.map((r) =>
        r.saturation
          ? `${ms(r.saturation.windowHist.percentile(50))} / ${ms(r.saturation.windowHist.percentile(99))}`
          : "",
      );
    }
    const ratioCells = ours.flatMap((s) =>
      m.ratios
        ? [
            ratio(m.value(by(s)!), by("raw") && m.value(by("raw")!)),
            ratio(m.value(by(s)!), by("socketio") && m.value(by("socketio")!)),
          ]
        : ["", ""],
    );
    rows.push([m.label, ...cells, ...ratioCells]);
  }
  return table(header, rows);
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
  const find = (scn: Scenario, s: System) => all.find((r) => r.scenario === scn && r.system === s);
  for (const scn of scenarios) {
    for (const s of ["embedded", "nats"] as const) {
      const r = find(scn, s);
      if (!r) continue;
      const raw = find(scn, "raw");
      const sio = find(scn, "socketio");
      if (scn.rate > 0) {
        const p99 = r.timed!.hist.percentile(99);
        const rawP99 = raw?.timed?.hist.percentile(99);
        rows.push({
          target: `latency p99 ≤ ${TARGET.p99VsRaw}× raw`,
          scenario: scn.id,
          system: s,
          measured: rawP99
            ? `${ms(p99)} ms = ${ratio(p99, rawP99)} raw (${ms(rawP99)} ms)`
            : `${ms(p99)} ms (no raw run)`,
          met: rawP99 ? p99 <= TARGET.p99VsRaw * rawP99 : undefined,
        });
        const d = r.saturation!.deliveriesPerSec;
        const rawD = raw?.saturation?.deliveriesPerSec;
        rows.push({
          target: `deliveries/s ≥ ${TARGET.deliveriesVsRaw * 100} % of raw`,
          scenario: scn.id,
          system: s,
          measured: rawD ? `${num(d)}/s = ${ratio(d, rawD)} raw (${num(rawD)}/s)` : `${num(d)}/s (no raw run)`,
          met: rawD ? d >= TARGET.deliveriesVsRaw * rawD : undefined,
        });
        const sioD = sio?.saturation?.deliveriesPerSec;
        rows.push({
          target: `deliveries/s ≥ ${TARGET.deliveriesVsSocketIo}× Socket.IO`,
          scenario: scn.id,
          system: s,
          measured: sioD
            ? `${num(d)}/s = ${ratio(d, sioD)} Socket.IO (${num(sioD)}/s)`
            : `${num(d)}/s (no Socket.IO run)`,
          met: sioD ? d >= TARGET.deliveriesVsSocketIo * sioD : undefined,
        });
        const b = bytesPerDelivery(r)!;
        rows.push({
          target: `≤ ${TARGET.bytesPerDelivery / 1024} KiB on the wire per delivered ${MESSAGE_CHARS}-byte message`,
          scenario: scn.id,
          system: s,
          measured: `${num(b)} B`,
          met: b <= TARGET.bytesPerDelivery,
        });
      } else {
        const k = rssPerTab(r);
        rows.push({
          target: `≤ ${TARGET.idleTabKiB} KiB server RSS per idle tab`,
          scenario: scn.id,
          system: s,
          measured: `${kib(k)} KiB`,
          met: k <= TARGET.idleTabKiB * 1024,
        });
      }
    }
  }
  return rows;
}

// ---- main ----

const argv = process.argv.slice(2);
const cpuModel = cpus()[0]?.model.trim() ?? "unknown";
const loadText = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
console.log("bench:chat — the chat under load, next to raw node:http SSE and Socket.IO 4");
console.log(`command: npm run bench:chat${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`);
console.log(`node:    ${process.version} (${process.platform}/${process.arch})`);
console.log(`cpu:     ${cpuModel} × ${cpus().length} cores`);
console.log(`date:    ${new Date().toISOString()}`);
console.log(`load:    ${loadText()} (1/5/15 min load average before the run)`);
console.log(
  `plan:    scenarios ${scenarios.map((s) => s.id).join(", ")} × systems ${systems.join(", ")}; ` +
    `${WORKERS} client processes; ${MESSAGE_CHARS}-byte messages; settle ${SETTLE_MS} ms before each RSS reading`,
);
console.log(`systems: ${systems.map((s) => `${s} = ${SYSTEM_LABEL[s]}`).join("; ")}`);
// The definitions, as in --help.
console.log(HELP.slice(HELP.indexOf("Per scenario and system:"), HELP.indexOf("Options:")).trimEnd());
console.log("");

const started = performance.now();
const results: RunResult[] = [];
let broken = false;
for (const scn of scenarios) {
  console.log(scenarioTitle(scn));
  for (const system of systems) {
    try {
      results.push(await runOne(scn, system));
    } catch (err) {
      broken = true;
      process.stderr.write(`bench:chat: ${scn.id}/${system} failed: ${(err as Error).stack ?? err}\n`);
    }
  }
  console.log("");
}

for (const scn of scenarios) {
  const rs = results.filter((r) => r.scenario === scn);
  if (rs.length === 0) continue;
  console.log(scenarioTitle(scn));
  console.log(scenarioTable(scn, rs));
  for (const r of rs) {
    const c = r.counters;
    const notes: string[] = [];
    const statuses = Object.entries(c.statuses).filter(([k]) => !accepted(Number(k)));
    if (statuses.length > 0) notes.push(`refused sends by status: ${statuses.map(([k, v]) => `${k}×${v}`).join(", ")}`);
    if (c.toasts > 0) notes.push(`${c.toasts} error toasts (${c.toastSample})`);
    if (c.resyncs > 0) notes.push(`${c.resyncs} resyncs`);
    if (c.byes > 0) notes.push(`${c.byes} via-bye/via-reload`);
    if (c.failed > 0) notes.push(`${c.failed} messages marked "not sent"`);
    if (c.unexpected > 0) notes.push(`${c.unexpected} unexpected patches`);
    if (c.staleRetries > 0)
      notes.push(`${c.staleRetries} sends repeated after a reset on a stale keep-alive connection`);
    if (c.sendErrors > 0) notes.push(`${c.sendErrors} send errors (${c.sendErrorSample})`);
    if (r.saturation && r.saturation.stalls > 0) notes.push(`${r.saturation.stalls} closed-loop stalls`);
    const mis = (r.timed?.misrouted ?? 0) + (r.saturation?.misrouted ?? 0);
    if (mis > 0) notes.push(`${mis} deliveries to a tab of another room`);
    if (notes.length > 0) console.log(`  ${r.system}: ${notes.join("; ")}`);
  }
  console.log("");
}

const targetRows = targets(results);
if (targetRows.length > 0) {
  console.log("targets (our chat; a missed target does not fail the run):");
  console.log(
    table(
      ["target", "scenario", "system", "measured", "result"],
      targetRows.map((t) => [
        t.target,
        t.scenario,
        t.system,
        t.measured,
        t.met === undefined ? "n/a" : t.met ? "MET" : "MISSED",
      ]),
    ),
  );
  console.log("");
}

const lossy = results.filter((r) => lostMessages(r) > 0 || lostDeliveries(r) > 0 || dupes(r) > 0);
for (const r of results) {
  console.log(
    `lost ${r.scenario.id}/${r.system}: ${lostMessages(r)} messages, ${lostDeliveries(r)} deliveries, ` +
      `${dupes(r)} duplicates`,
  );
}
console.log(`load average after the run: ${loadText()}`);
console.log(`took ${((performance.now() - started) / 1000).toFixed(0)} s`);
clearTimeout(watchdog);
if (lossy.length > 0) {
  console.log(
    `FAIL: messages were lost or duplicated in ${lossy.map((r) => `${r.scenario.id}/${r.system}`).join(", ")}`,
  );
  process.exit(1);
}
if (broken) {
  console.log("FAIL: a run broke (see the errors above)");
  process.exit(1);
}
process.exit(0);
