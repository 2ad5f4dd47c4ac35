// What one run (a scenario on one system) measured, and the figures the tables and targets derive
// from it, each defined once.
import { type Counters, emptyCounters } from "./client-api.ts";
import type { Scenario, Variant } from "./scenario.ts";
import type { Histogram, System } from "./shared.ts";
import type { HeapFigures } from "./systems.ts";

export interface PhaseStats {
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

export interface SaturationStats extends PhaseStats {
  deliveriesPerSec: number;
  /** Recipient deliveries per read on the SSE streams: > 1 when the server wrote several messages at once. */
  deliveriesPerRead: number;
  windowHist: Histogram;
  windowMs: number;
  stalls: number;
}

export interface RunResult {
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

/** A send the server took: 2xx, or Socket.IO's 0 (no status). */
export const accepted = (status: number) => status === 0 || (status >= 200 && status < 300);

// ---- figures derived from a run ----

export const rssPerTab = (r: RunResult) => (r.rssAfter - r.rssBefore) / r.scenario.tabs;
export const gcRssPerTab = (r: RunResult) => (r.gcAfter.rss - r.gcBefore.rss) / r.scenario.tabs;
export const bytesPerDelivery = (r: RunResult) =>
  r.timed ? r.timed.bytes / Math.max(1, r.timed.deliveries) : undefined;
export const cpuPer1k = (r: RunResult) => (r.timed ? (r.timed.serverCpuMs / r.timed.expected) * 1000 : undefined);
export const pagesGrowth = (r: RunResult) => (r.rssAfterTraffic ?? Number.NaN) - r.rssBefore;
export const pagesGcGrowth = (r: RunResult) => (r.gcAfterTraffic ? r.gcAfterTraffic.rss - r.gcBefore.rss : undefined);

/** growth: forced-GC RSS and heap used after the messages vs before, as fractions of before. */
export function growthOf(r: RunResult): { rss: number; heap: number } {
  const a = r.gcAfterTraffic;
  if (!a) return { rss: Number.NaN, heap: Number.NaN };
  return { rss: a.rss / r.gcAfter.rss - 1, heap: a.heapUsed / r.gcAfter.heapUsed - 1 };
}

/** The ramp's time: every tab attached and showing presence N (NaN if some never did). */
export function rampTime(r: RunResult): number {
  return Math.max(r.attachedMs ?? Number.NaN, r.presenceAllMs ?? Number.NaN);
}

export function msgsPerSec(r: RunResult): number | undefined {
  if (!r.saturation) return undefined;
  return r.saturation.deliveriesPerSec / (r.scenario.tabs / r.scenario.rooms - 1);
}

/** Over both phases: sends refused, messages and deliveries lost, duplicate deliveries. */
const bothPhases = (r: RunResult, f: (p: PhaseStats) => number) =>
  (r.timed ? f(r.timed) : 0) + (r.saturation ? f(r.saturation) : 0);
export const refused = (r: RunResult) => bothPhases(r, (p) => p.rejected);
export const lostMessages = (r: RunResult) => bothPhases(r, (p) => p.lostMessages);
export const lostDeliveries = (r: RunResult) => bothPhases(r, (p) => p.lostDeliveries);
export const dupes = (r: RunResult) => bothPhases(r, (p) => p.duplicates);
export const misrouted = (r: RunResult) => bothPhases(r, (p) => p.misrouted);

/** The counters of every client process, added up (the first sample of each kind kept). */
export function mergeCounters(list: Counters[]): Counters {
  const into = emptyCounters();
  for (const c of list) {
    for (const k of Object.keys(into) as Array<keyof Counters>) {
      if (k === "statuses") {
        for (const [s, v] of Object.entries(c.statuses)) into.statuses[s] = (into.statuses[s] ?? 0) + v;
      } else if (typeof into[k] === "number") (into[k] as number) += c[k] as number;
      else if (!into[k]) (into[k] as string) = c[k] as string;
    }
  }
  return into;
}
