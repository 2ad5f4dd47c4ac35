// bench:sse's two phases, each on a fresh server process and load generator: memory (RSS after
// forced GCs before any tab, then with N and 5N idle tabs) and fan-out (N tabs, one `append` patch to
// every tab `rate` times a second, each delivery timed by the clients).
import { sleep } from "../../harness/cleanup.ts";
import { kib, mib, ms } from "../common/format.ts";
import { Child } from "../common/ipc.ts";
import { log } from "../common/run.ts";
import type { CollectResult, ConnectArgs, ConnectResult, ResetArgs, Transport } from "./clients.ts";
import type { FanoutArgs, FanoutResult, MemorySample } from "./fanout.ts";

export interface SseSettings {
  /** Tabs of the fan-out and of the first memory level. */
  tabs: number;
  /** Idle tabs at each memory level. */
  memLevels: number[];
  seconds: number;
  rate: number;
  rounds: number;
  /** Measured fan-out messages (seconds × rate), after warmupTicks untimed ones. */
  ticks: number;
  warmupTicks: number;
  h2: boolean;
  h2Streams: number;
  /** The TLS variants' certificate (--h2). */
  cert: { certFile: string; keyFile: string } | undefined;
  profileDir: string | undefined;
  snapshotDir: string | undefined;
}

/** Connections opened at once while the tabs ramp up. */
export const BATCH = 200;
const SETTLE_MS = 1500;

const SCRIPTS = {
  via: new URL("./via-server.tsx", import.meta.url),
  raw: new URL("./raw-server.ts", import.meta.url),
  clients: new URL("./clients.ts", import.meta.url),
};

type Kind = "via" | "raw";
/** A server and how the clients reach it: plain via and raw, and with --h2 via over TLS. */
export type Variant = "via" | "raw" | "via-https" | "via-h2";
const VARIANTS: Record<Variant, { kind: Kind; transport: Transport }> = {
  via: { kind: "via", transport: "http" },
  raw: { kind: "raw", transport: "http" },
  "via-https": { kind: "via", transport: "https" },
  "via-h2": { kind: "via", transport: "h2" },
};

export interface MemoryLevel {
  tabs: number;
  mem: MemorySample;
  connect: ConnectResult;
}

export interface MemoryRun {
  base: MemorySample;
  levels: MemoryLevel[];
}

export interface FanoutRun {
  server: FanoutResult;
  client: CollectResult;
  expected: number;
  lost: number;
  deliveriesPerSec: number;
}

async function startPair(
  s: SseSettings,
  variant: Variant,
): Promise<{ server: Child<{ port: number }>; clients: Child; port: number }> {
  const { kind, transport } = VARIANTS[variant];
  const profile = s.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${s.profileDir}`] : [];
  const tls = transport === "http" || !s.cert ? [] : ["--tls-cert", s.cert.certFile, "--tls-key", s.cert.keyFile];
  const server = new Child<{ port: number }>(`${variant} server`, SCRIPTS[kind], {
    execArgv: ["--expose-gc", ...profile],
    args: tls,
  });
  const clients = new Child("clients", SCRIPTS.clients);
  const [{ port }] = await Promise.all([server.ready, clients.ready]);
  return { server, clients, port };
}

async function stop(...list: Child[]): Promise<void> {
  await Promise.all(list.map((c) => c.kill()));
}

async function connect(
  s: SseSettings,
  clients: Child,
  variant: Variant,
  port: number,
  total: number,
): Promise<ConnectResult> {
  const { kind, transport } = VARIANTS[variant];
  const res = await clients.call<ConnectResult>(
    "connect",
    {
      kind,
      transport,
      streamsPerConnection: s.h2Streams,
      port,
      total,
      batch: BATCH,
      timeoutMs: 15_000,
    } satisfies ConnectArgs,
    120_000,
  );
  if (res.open !== total) throw new Error(`${variant}: only ${res.open} of ${total} streams are open`);
  return res;
}

export function memText(m: MemorySample): string {
  return (
    `RSS ${mib(m.rss)} MiB (heap used ${mib(m.heapUsed)}, heap total ${mib(m.heapTotal)}, ` +
    `of which young generation ${mib(m.newSpace)} and code ${mib(m.codeSpace)} MiB)`
  );
}

export async function memoryPhase(s: SseSettings, kind: Variant): Promise<MemoryRun> {
  const { server, clients, port } = await startPair(s, kind);
  try {
    const snapshot = async (name: string) => {
      const dir = s.snapshotDir;
      if (dir)
        log(`heap snapshot ${await server.call<string>("heapSnapshot", { dir, name: `${kind}-${name}` }, 120_000)}`);
    };
    const base = await server.call<MemorySample>("memory", { settleMs: SETTLE_MS });
    await snapshot("0");
    log(`${kind}: baseline ${memText(base)}`);
    const levels: MemoryLevel[] = [];
    for (const tabs of s.memLevels) {
      const conn = await connect(s, clients, kind, port, tabs);
      const mem = await server.call<MemorySample>("memory", { settleMs: SETTLE_MS });
      const status = await server.call<Record<string, number>>("status");
      log(
        `${kind}: ${tabs} tabs open (ramp ${(conn.ms / 1000).toFixed(1)} s; server ${JSON.stringify(status)}): ` +
          `${memText(mem)} → RSS ${kib((mem.rss - base.rss) / tabs)} KiB/tab ` +
          `(heap used ${kib((mem.heapUsed - base.heapUsed) / tabs)} KiB/tab)`,
      );
      levels.push({ tabs, mem, connect: conn });
      await snapshot(String(tabs));
    }
    return { base, levels };
  } finally {
    await stop(server, clients);
  }
}

export async function fanoutPhase(s: SseSettings, kind: Variant): Promise<FanoutRun> {
  const { server, clients, port } = await startPair(s, kind);
  try {
    await connect(s, clients, kind, port, s.tabs);
    await sleep(500);
    await clients.call("reset", { capacity: s.tabs * s.ticks, warmupTicks: s.warmupTicks } satisfies ResetArgs);
    const srv = await server.call<FanoutResult>(
      "fanout",
      { ratePerSec: s.rate, ticks: s.ticks, warmupTicks: s.warmupTicks } satisfies FanoutArgs,
      s.seconds * 1000 + 60_000,
    );
    if (srv.receivers !== s.tabs) throw new Error(`${kind}: server published to ${srv.receivers} tabs, not ${s.tabs}`);
    const expected = srv.ticks * s.tabs;
    const client = await clients.call<CollectResult>("collect", { expected, timeoutMs: 15_000 }, 30_000);
    const spanSec = (client.lastArrival - srv.firstSendAt) / 1000;
    const run: FanoutRun = {
      server: srv,
      client,
      expected,
      lost: Math.max(0, expected - client.received) + Math.max(0, srv.warmupTicks * s.tabs - client.warmupReceived),
      deliveriesPerSec: spanSec > 0 ? client.received / spanSec : 0,
    };
    log(
      `${kind}: ${client.received}/${expected} deliveries, p50 ${ms(client.p50)} ms, p99 ${ms(client.p99)} ms, ` +
        `max ${ms(client.max)} ms, server CPU ${Math.round(srv.cpuMs)} ms, ` +
        `GC ${srv.gcCount}× ${Math.round(srv.gcTotalMs)} ms (max ${ms(srv.gcMaxMs)} ms; ` +
        `full GCs ${srv.gcMajorCount}× ${Math.round(srv.gcMajorMs)} ms)`,
    );
    return run;
  } finally {
    await stop(server, clients);
  }
}
