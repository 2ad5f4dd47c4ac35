// What bench:sse's servers share: the payload every fan-out message carries and the stamp the
// clients time it by, the fan-out schedule with its CPU, publish-time and GC figures, the memory
// readings, and the orchestrator's commands around them (serveFanout).

import { constants, PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";
import { sleep } from "../../harness/cleanup.ts";
import { serveIpc, wallNow } from "../common/ipc.ts";

/** The ~100-byte text every fan-out message carries (plain ASCII: nothing to escape). */
export const PAYLOAD_TEXT =
  "The quick brown fox jumps over the lazy dog while the server fans this line out to every tab now.";

/** What the clients search for: `<li data-t="<send wall ms>:<seq>">`. */
export const STAMP_ATTR = 'data-t="';

export function stamp(seq: number): string {
  return `${wallNow().toFixed(3)}:${seq}`;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Physical size of V8's young generation (new_space): it grows with the allocation rate, not with tabs. */
  newSpace: number;
  /** Physical size of V8's code space (JIT output). */
  codeSpace: number;
}

export interface FanoutArgs {
  ratePerSec: number;
  /** Measured messages. */
  ticks: number;
  /** Messages sent first on the same schedule and not timed (JIT, socket buffers): seq 1..warmupTicks. */
  warmupTicks: number;
}

export interface FanoutResult {
  /** Measured messages (after the warm-up). */
  ticks: number;
  warmupTicks: number;
  receivers: number;
  /** Wall-clock send time of the first measured message. */
  firstSendAt: number;
  lastSendAt: number;
  /** Server CPU (user + system) spent while fanning out the measured messages, ms. */
  cpuMs: number;
  /**
   * Time to publish one message to every tab: the loop plus the microtasks it queued (via encodes and
   * writes each tab's queue in one). node:http's corked socket writes (writev) run after it. ms.
   */
  publishP50Ms: number;
  publishMaxMs: number;
  /** GC pauses in the server while fanning out the measured messages. */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  /** Of those, the mark-sweep-compact ones (full GCs), which make the long pauses. */
  gcMajorCount: number;
  gcMajorMs: number;
  /** Bytes written for one message to one tab (the encoded SSE event). */
  eventBytes: number;
}

/** Server-side memory after forced GCs and a settle delay (the server runs with --expose-gc). */
export async function settledMemory(settleMs: number): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the server with --expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(settleMs / 3);
  }
  gc();
  const m = process.memoryUsage();
  const space = (name: string) => getHeapSpaceStatistics().find((s) => s.space_name === name)?.physical_space_size ?? 0;
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    newSpace: space("new_space"),
    codeSpace: space("code_space"),
  };
}

/**
 * Runs `publish(seq)` for seq = 1..warmupTicks+ticks at `ratePerSec` on a drift-free schedule (message
 * k is due at start + k/rate, however long the earlier ones took) and measures the server's CPU and
 * publish time over the measured (post-warm-up) messages.
 */
export async function runTicks(
  args: FanoutArgs,
  publish: (seq: number) => void,
): Promise<Omit<FanoutResult, "receivers" | "eventBytes">> {
  const interval = 1000 / args.ratePerSec;
  const total = args.warmupTicks + args.ticks;
  const start = performance.now();
  let cpu0 = process.cpuUsage();
  let firstSendAt = 0;
  let lastSendAt = 0;
  const publishMs: number[] = [];
  const gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.totalMs += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
      // Node puts the GC kind in `detail` (not in the DOM typings of PerformanceEntry).
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gc.majorCount++;
        gc.majorMs += e.duration;
      }
    }
  });
  for (let seq = 1; seq <= total; seq++) {
    const due = start + (seq - 1) * interval;
    const wait = due - performance.now();
    await sleep(Math.max(0, wait));
    const measured = seq > args.warmupTicks;
    if (seq === args.warmupTicks + 1) {
      cpu0 = process.cpuUsage();
      gcObserver.observe({ entryTypes: ["gc"] });
      firstSendAt = wallNow();
    }
    const t0 = performance.now();
    lastSendAt = wallNow();
    publish(seq);
    // The microtasks publish queued (via flushes each tab's queue in one) run before this continues.
    await null;
    if (measured) publishMs.push(performance.now() - t0);
  }
  // Let the last message's writes (socket writes after the microtasks) happen before reading the CPU.
  await sleep(50);
  const cpu = process.cpuUsage(cpu0);
  gcObserver.disconnect();
  publishMs.sort((a, b) => a - b);
  return {
    ticks: args.ticks,
    warmupTicks: args.warmupTicks,
    firstSendAt,
    lastSendAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
    publishP50Ms: publishMs[Math.floor(publishMs.length / 2)] ?? 0,
    publishMaxMs: publishMs.at(-1) ?? 0,
    gcCount: gc.count,
    gcTotalMs: gc.totalMs,
    gcMaxMs: gc.maxMs,
    gcMajorCount: gc.majorCount,
    gcMajorMs: gc.majorMs,
  };
}

/** Writes a heap snapshot (for digging into per-tab memory with DevTools); returns its path. */
export function heapSnapshot(args: unknown): string {
  const { dir, name } = args as { dir: string; name: string };
  return writeHeapSnapshot(`${dir}/${name}.heapsnapshot`);
}

/** What one bench:sse server under test supplies; the IPC commands around it are the same for every server. */
export interface FanoutServer {
  /** Its listening port (the orchestrator's clients connect to it). */
  port: number;
  /** Counts of what it holds (streams, tabs), for the log. */
  status(): Record<string, number>;
  /** Tabs a published message reaches now. */
  receivers(): number;
  /** Sends fan-out message `seq` to every tab. */
  publish(seq: number): void;
  /** Bytes one delivery costs on the wire (the encoded event one tab gets). */
  eventBytes(): number;
}

/** Answers the orchestrator's commands (memory, heap snapshot, status, fan-out) for `server`. */
export function serveFanout(server: FanoutServer): void {
  serveIpc(
    {
      memory: (args) => settledMemory((args as { settleMs: number }).settleMs),
      heapSnapshot,
      status: () => server.status(),
      fanout: async (args): Promise<FanoutResult> => {
        const run = await runTicks(args as FanoutArgs, (seq) => server.publish(seq));
        return { ...run, receivers: server.receivers(), eventBytes: server.eventBytes() };
      },
    },
    { port: server.port },
  );
}
