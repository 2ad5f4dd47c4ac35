// `npm run bench:sse`: what one via server costs per connected tab, and how fast it fans a message
// out to every tab, next to a minimal raw node:http SSE broadcast server under the same load.
//
// Every server and the load generator run in their own child process (bench/sse/), so the memory
// we read is the server's alone, and server and clients get a core each. Phases, each on a fresh
// server process:
//   1. memory:  RSS after a forced GC before any tab, then with N and 5N idle tabs connected.
//   2. fan-out: N tabs connected; the server publishes one `append` patch to every tab `rate`
//               times a second for `seconds`; clients time each delivery (send stamp in the element).
//               Repeated `rounds` times, raw and via alternating; the table shows medians.
// With --h2 both phases also run via over TLS (a self-signed certificate made with the openssl CLI):
// HTTP/2 with `--h2-streams` tabs per connection, and HTTP/1.1 over TLS (a TLS connection per tab), for
// a second table next to plain HTTP/1.1 via.
// Results go to docs/BENCHMARKS.md by hand.

import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { intOption } from "../harness/cli.ts";
import { selfSignedCert } from "../harness/tls.ts";
import type { CollectResult, ConnectArgs, ConnectResult, ResetArgs, Transport } from "./sse/clients.ts";
import { Child, type FanoutArgs, type FanoutResult, type MemorySample } from "./sse/ipc.ts";

const HELP = `Usage: npm run bench:sse -- [options]

Measures a via server's RSS per idle tab and its SSE fan-out latency/throughput, against a minimal
raw node:http SSE broadcast server under the same load, in one run.

Options:
  --quick          smoke run: 200 tabs (memory at 200 and 1000), 1 round of 3 s of fan-out
  --tabs <n>       tabs for the fan-out and the first memory level; the second is 5× (default 1000)
  --seconds <s>    fan-out duration (default 10)
  --rate <n>       fan-out messages per second (default 20)
  --rounds <n>     fan-out rounds, raw and via alternating; the table shows the median round (default 3)
  --phase <p>      memory | fanout | all (default all); a single phase prints only its log lines
  --h2             also run via over TLS: HTTP/2 (--h2-streams tabs per connection) and HTTP/1.1 over
                   TLS (one connection per tab); a second table compares them with plain HTTP/1.1 via
  --h2-streams <n> tabs (event streams) per HTTP/2 connection with --h2 (default 100)
  --profile <dir>  write a V8 CPU profile of each server process to <dir> (--cpu-prof)
  --heap-snapshots <dir>  write a server heap snapshot at each memory level to <dir>
  --help           show this help
`;

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    tabs: { type: "string" },
    seconds: { type: "string" },
    rate: { type: "string" },
    rounds: { type: "string" },
    phase: { type: "string" },
    h2: { type: "boolean" },
    "h2-streams": { type: "string" },
    profile: { type: "string" },
    "heap-snapshots": { type: "string" },
    help: { type: "boolean" },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const quick = values.quick === true;
const PHASE = values.phase ?? "all";
if (!["memory", "fanout", "all"].includes(PHASE)) {
  process.stderr.write(`--phase must be memory, fanout or all, got ${JSON.stringify(PHASE)}\n`);
  process.exit(2);
}
// 5 × 3000 streams stays well inside a 20 000 file descriptor limit per process.
const TABS = intOption("tabs", values.tabs, quick ? 200 : 1000, 1, 3000);
const SECONDS = intOption("seconds", values.seconds, quick ? 3 : 10, 1, 60);
const RATE = intOption("rate", values.rate, 20, 1, 200);
const ROUNDS = intOption("rounds", values.rounds, quick ? 1 : 3, 1, 9);
const MEM_LEVELS = [TABS, TABS * 5];
const H2 = values.h2 === true;
const H2_STREAMS = intOption("h2-streams", values["h2-streams"], 100, 1, 1000);
const TICKS = SECONDS * RATE;
// One second of messages first, untimed: the first publishes run cold (JIT, socket buffers).
const WARMUP_TICKS = RATE;
const BATCH = 200;
const SETTLE_MS = 1500;
const TARGET_KIB_PER_TAB = 20;
const TARGET_P99_RATIO = 2;
// The whole run must end by itself, whatever happens: a hard cap well above a normal run.
const WATCHDOG_MS = 10 * 60_000;

const SCRIPTS = {
  via: new URL("./sse/via-server.tsx", import.meta.url),
  raw: new URL("./sse/raw-server.ts", import.meta.url),
  clients: new URL("./sse/clients.ts", import.meta.url),
};

type Kind = "via" | "raw";
/** A server and how the clients reach it: plain via and raw, and with --h2 via over TLS. */
type Variant = "via" | "raw" | "via-https" | "via-h2";
const VARIANTS: Record<Variant, { kind: Kind; transport: Transport }> = {
  via: { kind: "via", transport: "http" },
  raw: { kind: "raw", transport: "http" },
  "via-https": { kind: "via", transport: "https" },
  "via-h2": { kind: "via", transport: "h2" },
};

// The certificate of the TLS variants: made once, before any child starts.
const cert = H2 ? selfSignedCert() : undefined;
if (H2 && !cert) {
  process.stderr.write("--h2 needs the openssl CLI (apt-get install openssl) to make a test certificate\n");
  process.exit(2);
}

// ---- child process hygiene: never leave a server or the load generator behind ----

const children = new Set<Child>();
process.on("exit", () => {
  for (const c of children) c.killNow();
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));
const watchdog = setTimeout(() => {
  process.stderr.write(`bench:sse: still running after ${WATCHDOG_MS / 1000} s, giving up\n`);
  process.exit(1);
}, WATCHDOG_MS);

function spawn<Info>(name: string, script: URL, execArgv: string[] = [], args: string[] = []): Child<Info> {
  const child = new Child<Info>(name, script, { execArgv, args });
  children.add(child);
  return child;
}

async function stop(...list: Child[]): Promise<void> {
  await Promise.all(list.map((c) => c.kill()));
  for (const c of list) children.delete(c);
}

function log(line: string): void {
  process.stdout.write(`  · ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- phases ----

interface MemoryLevel {
  tabs: number;
  mem: MemorySample;
  connect: ConnectResult;
}

interface MemoryRun {
  base: MemorySample;
  levels: MemoryLevel[];
}

async function startPair(variant: Variant): Promise<{ server: Child<{ port: number }>; clients: Child; port: number }> {
  const { kind, transport } = VARIANTS[variant];
  const profile = values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
  const tls = transport === "http" || !cert ? [] : ["--tls-cert", cert.certFile, "--tls-key", cert.keyFile];
  const server = spawn<{ port: number }>(`${variant} server`, SCRIPTS[kind], ["--expose-gc", ...profile], tls);
  const clients = spawn("clients", SCRIPTS.clients);
  const [{ port }] = await Promise.all([server.ready, clients.ready]);
  return { server, clients, port };
}

async function connect(clients: Child, variant: Variant, port: number, total: number): Promise<ConnectResult> {
  const { kind, transport } = VARIANTS[variant];
  const res = await clients.call<ConnectResult>(
    "connect",
    {
      kind,
      transport,
      streamsPerConnection: H2_STREAMS,
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

async function memoryPhase(kind: Variant): Promise<MemoryRun> {
  const { server, clients, port } = await startPair(kind);
  try {
    const snapshot = async (name: string) => {
      const dir = values["heap-snapshots"];
      if (dir)
        log(`heap snapshot ${await server.call<string>("heapSnapshot", { dir, name: `${kind}-${name}` }, 120_000)}`);
    };
    const base = await server.call<MemorySample>("memory", { settleMs: SETTLE_MS });
    await snapshot("0");
    log(`${kind}: baseline ${memText(base)}`);
    const levels: MemoryLevel[] = [];
    for (const tabs of MEM_LEVELS) {
      const conn = await connect(clients, kind, port, tabs);
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

interface FanoutRun {
  server: FanoutResult;
  client: CollectResult;
  expected: number;
  lost: number;
  deliveriesPerSec: number;
}

async function fanoutPhase(kind: Variant): Promise<FanoutRun> {
  const { server, clients, port } = await startPair(kind);
  try {
    await connect(clients, kind, port, TABS);
    await sleep(500);
    await clients.call("reset", { capacity: TABS * TICKS, warmupTicks: WARMUP_TICKS } satisfies ResetArgs);
    const srv = await server.call<FanoutResult>(
      "fanout",
      { ratePerSec: RATE, ticks: TICKS, warmupTicks: WARMUP_TICKS } satisfies FanoutArgs,
      SECONDS * 1000 + 60_000,
    );
    if (srv.receivers !== TABS) throw new Error(`${kind}: server published to ${srv.receivers} tabs, not ${TABS}`);
    const expected = srv.ticks * TABS;
    const client = await clients.call<CollectResult>("collect", { expected, timeoutMs: 15_000 }, 30_000);
    const spanSec = (client.lastArrival - srv.firstSendAt) / 1000;
    const run: FanoutRun = {
      server: srv,
      client,
      expected,
      lost: Math.max(0, expected - client.received) + Math.max(0, srv.warmupTicks * TABS - client.warmupReceived),
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

// ---- formatting ----

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}
function ms(v: number): string {
  return v.toFixed(v < 10 ? 2 : 1);
}
function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : "n/a";
}
function verdict(ok: boolean): string {
  return ok ? "PASS" : "FAIL";
}
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function perTab(run: MemoryRun, i: number, field: keyof MemorySample = "rss"): number {
  const level = run.levels[i]!;
  return (level.mem[field] - run.base[field]) / level.tabs;
}

/** Growth per tab between the two levels: the steady per-tab cost, without one-off warm-up growth. */
function marginal(run: MemoryRun, field: keyof MemorySample = "rss"): number {
  const [a, b] = [run.levels[0]!, run.levels[1]!];
  return (b.mem[field] - a.mem[field]) / (b.tabs - a.tabs);
}

function memText(m: MemorySample): string {
  return (
    `RSS ${mib(m.rss)} MiB (heap used ${mib(m.heapUsed)}, heap total ${mib(m.heapTotal)}, ` +
    `of which young generation ${mib(m.newSpace)} and code ${mib(m.codeSpace)} MiB)`
  );
}

function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
}

/** Fan-out rounds of one server kind folded into medians (losses are summed: any loss counts). */
interface FanoutSummary {
  p50: number;
  p99: number;
  max: number;
  p99s: number[];
  deliveriesPerSec: number;
  received: number;
  expected: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  closedStreams: number;
  cpuPer1k: number;
  publishP50: number;
  publishMax: number;
  gcMsPerSec: number;
  gcMax: number;
  gcMajor: number;
  eventBytes: number;
  clientCpuPct: number;
}

function summarize(runs: FanoutRun[]): FanoutSummary {
  const m = (f: (r: FanoutRun) => number) => median(runs.map(f));
  const sum = (f: (r: FanoutRun) => number) => runs.reduce((acc, r) => acc + f(r), 0);
  return {
    p50: m((r) => r.client.p50),
    p99: m((r) => r.client.p99),
    max: m((r) => r.client.max),
    p99s: runs.map((r) => r.client.p99),
    deliveriesPerSec: m((r) => r.deliveriesPerSec),
    received: sum((r) => r.client.received),
    expected: sum((r) => r.expected),
    lost: sum((r) => r.lost),
    duplicates: sum((r) => r.client.duplicates),
    outOfOrder: sum((r) => r.client.outOfOrder),
    closedStreams: sum((r) => r.client.closedStreams),
    cpuPer1k: m((r) => (r.server.cpuMs / Math.max(1, r.client.received)) * 1000),
    publishP50: m((r) => r.server.publishP50Ms),
    publishMax: m((r) => r.server.publishMaxMs),
    gcMsPerSec: m((r) => r.server.gcTotalMs / SECONDS),
    gcMax: m((r) => r.server.gcMaxMs),
    gcMajor: sum((r) => r.server.gcMajorCount),
    eventBytes: runs[0]!.server.eventBytes,
    clientCpuPct: m((r) => (r.client.cpuMs / r.client.wallMs) * 100),
  };
}

// ---- main ----

const argv = process.argv.slice(2);
const cpuModel = cpus()[0]?.model.trim() ?? "unknown";
console.log("bench:sse — via SSE fan-out vs a raw node:http SSE broadcast");
console.log(`command: npm run bench:sse${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`);
console.log(`node:    ${process.version} (${process.platform}/${process.arch})`);
console.log(`cpu:     ${cpuModel}, ${cpus().length} cores`);
console.log(`date:    ${new Date().toISOString()}`);
console.log(`load:    ${loadText()} (1/5/15 min load average before the run; other processes skew latency)`);
console.log(
  `plan:    memory at ${MEM_LEVELS.join(" and ")} idle tabs; fan-out to ${TABS} tabs, ` +
    `${RATE} msg/s for ${SECONDS} s (${TICKS} timed messages after ${WARMUP_TICKS} untimed), ` +
    `${ROUNDS} round(s) per server; ramp ${BATCH} connections at a time` +
    (H2 ? `; also via over TLS: HTTP/2 (${H2_STREAMS} tabs per connection) and HTTP/1.1` : ""),
);
console.log("");

const started = performance.now();
const doMemory = PHASE !== "fanout";
const doFanout = PHASE !== "memory";
const memRaw = doMemory ? await memoryPhase("raw") : undefined;
const memVia = doMemory ? await memoryPhase("via") : undefined;
const memHttps = doMemory && H2 ? await memoryPhase("via-https") : undefined;
const memH2 = doMemory && H2 ? await memoryPhase("via-h2") : undefined;
const fanRuns: Record<Variant, FanoutRun[]> = { raw: [], via: [], "via-https": [], "via-h2": [] };
const fanVariants: Variant[] = H2 ? ["raw", "via", "via-https", "via-h2"] : ["raw", "via"];
for (let round = 0; doFanout && round < ROUNDS; round++) {
  // Alternate, so a burst of outside load hits every server alike rather than one.
  for (const kind of round % 2 === 0 ? fanVariants : [...fanVariants].reverse()) {
    fanRuns[kind].push(await fanoutPhase(kind));
  }
}

const rows: string[][] = [];
const row = (...cells: string[]) => rows.push(cells);
let memOk = true;
if (memVia && memRaw) {
  for (let i = 0; i < MEM_LEVELS.length; i++) {
    const via = perTab(memVia, i);
    const raw = perTab(memRaw, i);
    memOk &&= via <= TARGET_KIB_PER_TAB * 1024;
    row(
      `RSS per idle tab @${MEM_LEVELS[i]} (KiB)`,
      kib(via),
      kib(raw),
      ratio(via, raw),
      `≤ ${TARGET_KIB_PER_TAB}`,
      verdict(via <= TARGET_KIB_PER_TAB * 1024),
    );
  }
  // RSS minus V8's young generation: the young generation grows with the allocation rate (page
  // renders while ramping), not with the number of tabs, and is a one-off of up to ~32 MiB.
  const exYoung = (run: MemoryRun, i: number) =>
    (run.levels[i]!.mem.rss - run.levels[i]!.mem.newSpace - (run.base.rss - run.base.newSpace)) / run.levels[i]!.tabs;
  for (let i = 0; i < MEM_LEVELS.length; i++) {
    const via = exYoung(memVia, i);
    const raw = exYoung(memRaw, i);
    row(`  same, excluding V8 young generation @${MEM_LEVELS[i]} (KiB)`, kib(via), kib(raw), ratio(via, raw), "", "");
  }
  const mv = marginal(memVia);
  const mr = marginal(memRaw);
  row(`RSS per tab, marginal ${MEM_LEVELS[0]}→${MEM_LEVELS[1]} (KiB)`, kib(mv), kib(mr), ratio(mv, mr), "", "");
  const hv = marginal(memVia, "heapUsed");
  const hr = marginal(memRaw, "heapUsed");
  row(`JS heap per tab, marginal ${MEM_LEVELS[0]}→${MEM_LEVELS[1]} (KiB)`, kib(hv), kib(hr), ratio(hv, hr), "", "");
  row(
    "RSS baseline, no tab (MiB)",
    mib(memVia.base.rss),
    mib(memRaw.base.rss),
    ratio(memVia.base.rss, memRaw.base.rss),
    "",
    "",
  );
}
let p99Ratio = Number.NaN;
let lossOk = true;
if (doFanout) {
  const v = summarize(fanRuns.via);
  const r = summarize(fanRuns.raw);
  p99Ratio = v.p99 / r.p99;
  lossOk = v.lost === 0 && v.duplicates === 0 && v.outOfOrder === 0;
  const num = (label: string, a: number, b: number, fmt: (x: number) => string, target = "", result = "") =>
    row(label, fmt(a), fmt(b), ratio(a, b), target, result);
  num("fan-out latency p50 (ms)", v.p50, r.p50, ms);
  num(
    "fan-out latency p99 (ms)",
    v.p99,
    r.p99,
    ms,
    `≤ ${TARGET_P99_RATIO}× raw`,
    verdict(p99Ratio <= TARGET_P99_RATIO),
  );
  num("fan-out latency max (ms)", v.max, r.max, ms);
  if (ROUNDS > 1) row("p99 of each round (ms)", v.p99s.map(ms).join(", "), r.p99s.map(ms).join(", "), "", "", "");
  num("deliveries/s", v.deliveriesPerSec, r.deliveriesPerSec, (x) => x.toFixed(0));
  row("deliveries received / expected", `${v.received}/${v.expected}`, `${r.received}/${r.expected}`, "", "", "");
  row("lost deliveries", String(v.lost), String(r.lost), "", "0", verdict(lossOk));
  num("server CPU per 1000 deliveries (ms)", v.cpuPer1k, r.cpuPer1k, (x) => x.toFixed(1));
  num("publish to all tabs, JS part, p50 (ms)", v.publishP50, r.publishP50, ms);
  num("publish to all tabs, JS part, max (ms)", v.publishMax, r.publishMax, ms);
  num("server GC pause (ms per s)", v.gcMsPerSec, r.gcMsPerSec, (x) => x.toFixed(1));
  num("server longest GC pause (ms)", v.gcMax, r.gcMax, ms);
  row("server full GCs (all rounds)", String(v.gcMajor), String(r.gcMajor), "", "", "");
  row("bytes per event", String(v.eventBytes), String(r.eventBytes), "", "", "");
  row("client process CPU (% of one core)", v.clientCpuPct.toFixed(0), r.clientCpuPct.toFixed(0), "", "", "");
}

const header = ["metric", "via", "raw node:http", "via / raw", "target", "result"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
console.log("");
if (doFanout && ROUNDS > 1) console.log(`fan-out rows: the median of ${ROUNDS} rounds per server`);
console.log(line(header));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));
console.log("");

if (H2) {
  // via over its three transports: what TLS costs per tab, and what HTTP/2 costs or saves against it.
  const rows2: string[][] = [];
  const row2 = (label: string, cells: number[], fmt: (x: number) => string) =>
    rows2.push([label, ...cells.map(fmt), ratio(cells[2]!, cells[0]!), ratio(cells[2]!, cells[1]!)]);
  if (memVia && memHttps && memH2) {
    const runs = [memVia, memHttps, memH2];
    for (let i = 0; i < MEM_LEVELS.length; i++) {
      row2(
        `RSS per idle tab @${MEM_LEVELS[i]} (KiB)`,
        runs.map((r) => perTab(r, i)),
        kib,
      );
    }
    const exYoung = (run: MemoryRun, i: number) =>
      (run.levels[i]!.mem.rss - run.levels[i]!.mem.newSpace - (run.base.rss - run.base.newSpace)) / run.levels[i]!.tabs;
    for (let i = 0; i < MEM_LEVELS.length; i++) {
      row2(
        `  same, excluding V8 young generation @${MEM_LEVELS[i]} (KiB)`,
        runs.map((r) => exYoung(r, i)),
        kib,
      );
    }
    row2(
      `RSS per tab, marginal ${MEM_LEVELS[0]}→${MEM_LEVELS[1]} (KiB)`,
      runs.map((r) => marginal(r)),
      kib,
    );
    row2(
      `JS heap per tab, marginal ${MEM_LEVELS[0]}→${MEM_LEVELS[1]} (KiB)`,
      runs.map((r) => marginal(r, "heapUsed")),
      kib,
    );
    row2(
      "RSS baseline, no tab (MiB)",
      runs.map((r) => r.base.rss),
      mib,
    );
  }
  if (doFanout) {
    const sums = [summarize(fanRuns.via), summarize(fanRuns["via-https"]), summarize(fanRuns["via-h2"])];
    row2(
      "fan-out latency p50 (ms)",
      sums.map((x) => x.p50),
      ms,
    );
    row2(
      "fan-out latency p99 (ms)",
      sums.map((x) => x.p99),
      ms,
    );
    row2(
      "fan-out latency max (ms)",
      sums.map((x) => x.max),
      ms,
    );
    row2(
      "deliveries/s",
      sums.map((x) => x.deliveriesPerSec),
      (x) => x.toFixed(0),
    );
    row2(
      "lost deliveries",
      sums.map((x) => x.lost),
      String,
    );
    row2(
      "server CPU per 1000 deliveries (ms)",
      sums.map((x) => x.cpuPer1k),
      (x) => x.toFixed(1),
    );
    row2(
      "server GC pause (ms per s)",
      sums.map((x) => x.gcMsPerSec),
      (x) => x.toFixed(1),
    );
    row2(
      "client process CPU (% of one core)",
      sums.map((x) => x.clientCpuPct),
      (x) => x.toFixed(0),
    );
    for (const [name, x] of [
      ["via-https", sums[1]!],
      ["via-h2", sums[2]!],
    ] as const) {
      lossOk &&= x.lost === 0 && x.duplicates === 0 && x.outOfOrder === 0;
      if (x.lost || x.duplicates || x.outOfOrder || x.closedStreams)
        console.log(
          `${name}: lost ${x.lost}, duplicates ${x.duplicates}, out of order ${x.outOfOrder}, closed ${x.closedStreams}`,
        );
    }
  }
  const header2 = [
    "via by transport",
    "HTTP/1.1",
    "HTTP/1.1 + TLS",
    `HTTP/2 + TLS (${H2_STREAMS}/conn)`,
    "h2 / HTTP/1.1",
    "h2 / h1.1 + TLS",
  ];
  const widths2 = header2.map((h, i) => Math.max(h.length, ...rows2.map((r) => r[i]!.length)));
  const line2 = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths2[i]!)).join(" | ")} |`;
  console.log(line2(header2));
  console.log(`|${widths2.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows2) console.log(line2(r));
  console.log("");
}

if (doMemory) {
  console.log(`target RSS/tab ≤ ${TARGET_KIB_PER_TAB} KiB at ${MEM_LEVELS.join(" and ")} tabs: ${verdict(memOk)}`);
}
if (doFanout) {
  const v = summarize(fanRuns.via);
  console.log(
    `target p99 ≤ ${TARGET_P99_RATIO}× raw (${p99Ratio.toFixed(2)}×): ${verdict(p99Ratio <= TARGET_P99_RATIO)}`,
  );
  console.log(
    `target 0 lost deliveries (lost ${v.lost}, duplicates ${v.duplicates}, ` +
      `out of order ${v.outOfOrder}, streams closed ${v.closedStreams}): ${verdict(lossOk)}`,
  );
}
console.log(`load average after the run: ${loadText()}`);
console.log(`took ${((performance.now() - started) / 1000).toFixed(0)} s`);
clearTimeout(watchdog);
process.exit(0);
