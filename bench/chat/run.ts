// One run of bench:chat: a scenario on one system. `withBench` starts a fresh server (and nats-server)
// and the client processes, hands the scenario's body a `Bench` to work with, and always stops them
// all. The phases the scenarios are made of are here: opening the tabs (or the browsers), reading the
// server's memory, the open loop and the closed loop, and the loss check after each.
import { loadavg } from "node:os";
import { join } from "node:path";
import { sleep } from "../../harness/cleanup.ts";
import { kib, mib, ms, pct } from "../common/format.ts";
import { type Child, wallNow } from "../common/ipc.ts";
import { log } from "../common/run.ts";
import {
  type BrowsersArgs,
  type BrowsersResult,
  type ClosedLoopArgs,
  type ConnectArgs,
  type ConnectResult,
  type Counters,
  emptyCounters,
  type FinishArgs,
  type FinishResult,
  type OpenLoopArgs,
  type SendResult,
} from "./client-api.ts";
import { CpuMeter, readRss } from "./probes.ts";
import { accepted, mergeCounters, type PhaseStats, type RunResult, type SaturationStats } from "./results.ts";
import {
  inflightOf,
  recipientsOf,
  roomNames,
  runLabel,
  type Scenario,
  type Settings,
  type Variant,
  workersOf,
} from "./scenario.ts";
import { Histogram, protocolOf, type System } from "./shared.ts";
import { control, gcAndMeasure, type HeapFigures, type RunningSystem, spawnChild, startSystem } from "./systems.ts";

/** Lead time: client processes get the start time this far ahead, so they start together. */
const LEAD_MS = 200;
/** Tabs each client process opens at once. */
export const CONNECT_CONCURRENCY = 50;
const STALL_MS = 10_000;

/** What a run works with: the server (and nats-server), the client processes, meters. */
export interface Bench {
  settings: Settings;
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

export interface Meters {
  server: CpuMeter;
  nats: CpuMeter | undefined;
  clients: CpuMeter;
}

/** Starts the system and the client processes, runs `body`, and always stops them all. */
export async function withBench(
  settings: Settings,
  scn: Scenario,
  system: System,
  variant: Variant | undefined,
  body: (b: Bench) => Promise<RunResult>,
): Promise<RunResult> {
  const { profileDir, snapshotDir } = settings;
  const rooms = roomNames(scn.rooms);
  const label = `${scn.id}/${runLabel(system, variant)}`;
  const fileStem = `${scn.id}-${system}${variant ? `-${variant}` : ""}`;
  const started = performance.now();
  const workers = Array.from({ length: workersOf(settings, scn) }, (_, i) => spawnChild(`clients ${i + 1}`, "clients"));
  let srv: RunningSystem | undefined;
  let profiling = false;
  try {
    const [server] = await Promise.all([startSystem(system, rooms), ...workers.map((w) => w.ready)]);
    srv = server;
    const s = server;
    const natsPid = s.natsPid;
    const workerPids = workers.map((w) => w.pid!);
    const bench: Bench = {
      settings,
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
        if (!snapshotDir) return;
        const file = join(snapshotDir, `${fileStem}-${what}.heapsnapshot`);
        await control(s.pid, { cmd: "heap-snapshot", file }, 300_000);
        log(`${label}: heap snapshot ${file}`);
      },
      startProfile: async () => {
        if (!profileDir || profiling) return;
        profiling = true;
        await control(s.pid, { cmd: "profile-start" });
      },
    };
    const result = await body(bench);
    if (variant) result.variant = variant;
    if (profiling) {
      const file = join(profileDir!, `${fileStem}.cpuprofile`);
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
    await Promise.all([...workers.map((w) => w.kill()), srv?.stop()]);
  }
}

/** Opens the scenario's tabs: tab i is in room i mod R and lives in client process i mod W. */
export async function openTabs(b: Bench, presenceTarget = 0): Promise<{ ms: number; endAt: number; startAt: number }> {
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
export async function openBrowsers(b: Bench): Promise<{ ms: number; streamSockets: number; openSockets: number }> {
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

export interface MemoryReading {
  rss: number;
  natsRss: number;
  gc: HeapFigures;
}

/** Server RSS (and nats-server's) after the settle delay, then after forced GCs. */
export async function memory(b: Bench): Promise<MemoryReading> {
  await sleep(b.settings.settleMs);
  const rss = readRss(b.srv.pid);
  const natsRss = b.srv.natsPid ? readRss(b.srv.natsPid) : Number.NaN;
  const gc = await gcAndMeasure(b.srv.pid, b.settings.gcPauseMs);
  return { rss, natsRss, gc };
}

/** The start of a run's result: the load average when it started and the server's memory before the first tab. */
export function baseResult(b: Bench, loadAtStart: number, before: MemoryReading): RunResult {
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

/** A scenario's start: the load average, then the server's memory (and heap snapshot) before the first tab. */
export async function begin(b: Bench): Promise<{ loadAtStart: number; before: MemoryReading }> {
  const loadAtStart = loadavg()[0]!;
  const before = await memory(b);
  await b.snapshot(0);
  return { loadAtStart, before };
}

/** Once every tab is open (after `rampMs`): the server's memory (and heap snapshot), and the run's result so far. */
export async function tabsOpened(
  b: Bench,
  start: { loadAtStart: number; before: MemoryReading },
  rampMs: number,
): Promise<{ result: RunResult; after: MemoryReading }> {
  const after = await memory(b);
  await b.snapshot(b.scn.tabs);
  const result = baseResult(b, start.loadAtStart, start.before);
  Object.assign(result, { rampMs, rssAfter: after.rss, natsRssAfter: after.natsRss, gcAfter: after.gc });
  return { result, after };
}

/** Once the messages are done: the server's memory at once and after forced GCs (and its heap snapshot). */
export async function trafficDone(b: Bench, result: RunResult): Promise<void> {
  result.rssAfterTraffic = readRss(b.srv.pid);
  result.gcAfterTraffic = await gcAndMeasure(b.srv.pid, b.settings.gcPauseMs);
  await b.snapshot("after-messages");
}

export function logTabs(b: Bench, r: RunResult): void {
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

async function checkPhase(
  b: Bench,
  sends: SendResult[],
): Promise<{ fin: FinishResult[]; messages: Array<[number, number, number]>; sent: number; rejected: number }> {
  const timeoutMs = b.settings.finishTimeoutMs;
  const records = sends.flatMap((s) => s.records);
  const messages = records.filter((r) => accepted(r[3])).map(([seq, room, sender]) => [seq, room, sender]) as Array<
    [number, number, number]
  >;
  const fin = await Promise.all(
    b.workers.map((w) =>
      w.call<FinishResult>("finish", { messages, timeoutMs } satisfies FinishArgs, timeoutMs + 60_000),
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

/** Closed loop on every client process; `maxMessages` in all (split over the processes) or the window only. */
export async function closedLoop(b: Bench, maxMessages?: number): Promise<SaturationStats> {
  const { workers, settings } = b;
  const m = b.meters();
  const durationCap = maxMessages === undefined ? settings.phaseMs : 30 * 60_000;
  const closed: Omit<ClosedLoopArgs, "workerIndex"> = {
    startAt: wallNow() + LEAD_MS,
    durationMs: durationCap,
    inflight: inflightOf(settings, b.scn),
    seqBase: 1_000_000,
    workers: workers.length,
    stallMs: STALL_MS,
  };
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
  const satCheck = await checkPhase(b, satSends);
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
    `${b.scn.id}/${b.system}: closed loop, ${closed.inflight}×${workers.length} in flight: ${stats.sent} msgs, ` +
      `${Math.round(stats.deliveriesPerSec)} deliveries/s (p50 ${ms(windowHist.percentile(50))} p99 ` +
      `${ms(windowHist.percentile(99))} ms), lost ${stats.lostMessages} msgs, stalls ${stats.stalls}, ` +
      `server CPU ${pct(stats.serverCpuPct)}, busiest client ${pct(stats.clientCpuPct)}`,
  );
  return stats;
}

/**
 * Open loop: message k (seq k + 1) at startAt + k / rate, from tab k mod N. Traffic: `count` after a
 * warm-up (measured from the first after it); pages: a fixed count of big messages, all measured.
 */
export async function openLoop(
  b: Bench,
  plan: { count: number; warmup: number; totalTabs: number; size?: OpenLoopArgs["size"]; callTimeoutMs: number },
): Promise<{ stats: PhaseStats; sends: SendResult[]; sent: number; rejected: number }> {
  const { scn, workers } = b;
  const open: OpenLoopArgs = {
    startAt: wallNow() + LEAD_MS,
    intervalMs: 1000 / scn.rate,
    firstSeq: 1,
    count: plan.count,
    totalTabs: plan.totalTabs,
    measuredFrom: 1 + plan.warmup,
    ...(plan.size ? { size: plan.size } : {}),
  };
  const m = b.meters();
  const sends = await Promise.all(workers.map((w) => w.call<SendResult>("openLoop", open, plan.callTimeoutMs)));
  const check = await checkPhase(b, sends);
  return { stats: phaseStats(check.fin, check.sent, check.rejected, b.read(m)), sends, ...check };
}

/** The open-loop phase of a traffic scenario: the scenario's rate for --seconds, after the warm-up. */
export async function openLoopPhase(b: Bench): Promise<PhaseStats> {
  const { scn, settings } = b;
  const warmup = Math.round((scn.rate * settings.warmupMs) / 1000);
  const count = warmup + Math.round((scn.rate * settings.phaseMs) / 1000);
  const { stats: t, sends } = await openLoop(b, {
    count,
    warmup,
    totalTabs: scn.tabs,
    callTimeoutMs: settings.phaseMs + 120_000,
  });
  log(
    `${b.label}: open loop ${scn.rate} msg/s: ${t.deliveries}/${t.expected - recipientsOf(scn, warmup)} ` +
      `measured deliveries, p50 ${ms(t.hist.percentile(50))} p99 ${ms(t.hist.percentile(99))} ` +
      `max ${ms(t.hist.max)} ms, ${Math.round(t.bytes / Math.max(1, t.deliveries))} B/delivery, ` +
      `lost ${t.lostMessages} msgs (${t.lostDeliveries} deliveries), server CPU ${pct(t.serverCpuPct)}`,
  );
  log(`${b.label}: open loop: ${sendTimes(sends)}`);
  return t;
}

export function mergeHist(sends: SendResult[], key: "requestHist" | "confirmHist" | "completeHist"): Histogram {
  const h = new Histogram();
  for (const s of sends) h.merge(s[key]);
  return h;
}

/** p50/p99 of the send request, the sender's confirmation and (closed loop) local completion. */
export function sendTimes(sends: SendResult[]): string {
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
