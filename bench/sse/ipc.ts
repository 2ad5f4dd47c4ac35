// Shared bits of bench:sse: the request/reply protocol over the IPC channel between the orchestrator
// (bench/sse.ts) and its child processes, the wall clock both sides stamp with, and the payload.

import { type ChildProcess, fork } from "node:child_process";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

/** Wall-clock ms with sub-ms resolution; comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

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

interface Request {
  id: number;
  cmd: string;
  args?: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

interface Ready {
  ready: true;
  info: unknown;
}

type Handler = (args: unknown) => unknown;

/** Child side: answer the orchestrator's requests, announce readiness, and die with the parent. */
export function serveIpc(handlers: Record<string, Handler>, info: unknown): void {
  const send = (m: Reply | Ready) => process.send?.(m);
  process.on("message", (m: Request) => {
    const handler = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${m.cmd}`);
        return handler(m.args);
      })
      .then(
        (result) => send({ id: m.id, ok: true, result }),
        (err: unknown) => send({ id: m.id, ok: false, error: err instanceof Error ? err.stack : String(err) }),
      );
  });
  // The orchestrator went away (crashed, killed): nothing left to do here. On SIGTERM exit normally,
  // so --cpu-prof and friends (via NODE_OPTIONS) get to write their files.
  process.on("disconnect", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  send({ ready: true, info });
}

/** Orchestrator side: one child process running a bench/sse/ script, with typed request/reply calls. */
export class Child<Info = unknown> {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  readonly ready: Promise<Info>;

  constructor(
    readonly name: string,
    script: URL,
    opts: { execArgv?: string[]; args?: string[]; readyTimeoutMs?: number } = {},
  ) {
    this.proc = fork(script, opts.args ?? [], {
      // Inherit the TypeScript loader tsx runs us with, plus whatever the caller adds (--expose-gc).
      execArgv: [...process.execArgv, ...(opts.execArgv ?? [])],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "silent" },
    });
    this.ready = new Promise<Info>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name}: not ready after ${opts.readyTimeoutMs ?? 30_000} ms`)),
        opts.readyTimeoutMs ?? 30_000,
      );
      this.proc.on("message", (m: Reply | Ready) => {
        if ("ready" in m) {
          clearTimeout(timer);
          resolve(m.info as Info);
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(`${name}: ${m.error}`));
      });
      this.proc.on("exit", (code, signal) => {
        this.exited = true;
        clearTimeout(timer);
        const err = new Error(`${name} exited (code ${code}, signal ${signal})`);
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
    });
    // A rejection nobody awaited yet (the child died before anyone asked) must not crash us.
    this.ready.catch(() => {});
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  call<T>(cmd: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} already exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Ends the child (SIGTERM, then SIGKILL after 3 s) and waits for it to go. */
  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const hard = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      this.proc.once("exit", () => {
        clearTimeout(hard);
        resolve();
      });
      this.proc.kill("SIGTERM");
    });
  }

  /** Synchronous best effort, for process exit handlers. */
  killNow(): void {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}

/** Server-side memory after forced GCs and a settle delay (the server runs with --expose-gc). */
export async function settledMemory(settleMs: number): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the server with --expose-gc");
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, settleMs / 3));
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
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
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
  await new Promise((r) => setTimeout(r, 50));
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
