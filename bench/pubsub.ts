// `npm run bench:pubsub`: the embedded engine against a real nats-server (JetStream, file store), in one run,
// through the same PubSub interface. Rows: acked publish rate (awaiting each, and 100 in flight), fan-out
// from one publisher to 1,000 in-process subscribers (stream subject and core subject), and history
// latency ("last 50 of a room", and an older page) in a 100k-message stream over 100 rooms.
//
// Every measurement runs in a fresh child process (bench/pubsub/worker.ts) that opens one engine, so
// neither engine's heap or JIT state affects the other; repetitions alternate which engine goes first.
// The nats-server runs on 127.0.0.1 with a temp store (harness/nats-server.ts) and is killed at the
// end, as are all children, on any exit. Results go to docs/BENCHMARKS.md by hand.
import { fork } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { exitOnSignals, killAtExit, removeDir, tempDir } from "../harness/cleanup.ts";
import { defineCommand, runMain } from "../harness/cli.ts";
import { type NatsServer, natsServerBin, startNatsServer } from "../harness/nats-server.ts";
import { markdownTable, median } from "../harness/stats.ts";
import { watchdog } from "./common/run.ts";
import type { FillResult, Job, RepResult, Sizes, WorkerMessage } from "./pubsub/worker.ts";

const cli = defineCommand({
  script: "bench:pubsub",
  file: "bench/pubsub.ts",
  title: "bench:pubsub — embedded engine vs NATS JetStream (nats-server on 127.0.0.1)",
  about: "Embedded engine vs NATS JetStream (a real nats-server on 127.0.0.1), same run, same PubSub interface.",
  quick: "smoke run: small sizes, one repetition",
  flags: {
    reps: { type: "int", help: "repetitions per row, the median is reported", default: 3, quick: 1, min: 1, max: 9 },
  },
});
const quick = cli.quick;
const REPS = cli.values.reps;

const SIZES: Sizes = quick
  ? {
      seqN: 500,
      seqWarm: 100,
      winN: 5_000,
      winWarm: 1_000,
      window: 100,
      subs: 1_000,
      fanN: 200,
      fanWarm: 50,
      coreN: 1_000,
      coreWarm: 200,
      histTotal: 20_000,
      rooms: 100,
      histCalls: 50,
    }
  : {
      seqN: 3_000,
      seqWarm: 300,
      winN: 30_000,
      winWarm: 3_000,
      window: 100,
      subs: 1_000,
      fanN: 5_000,
      fanWarm: 5_000,
      coreN: 20_000,
      coreWarm: 20_000,
      histTotal: 100_000,
      rooms: 100,
      histCalls: 200,
    };
const SEED = 20240501;
const WATCHDOG_MS = 6 * 60_000;
const WORKER = new URL("./pubsub/worker.ts", import.meta.url);

function runWorker<T>(job: Job): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(WORKER, [JSON.stringify(job)], {
      // The TypeScript loader tsx runs us with, plus a gc() the worker calls between rows.
      execArgv: [...process.execArgv, "--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "silent" },
    });
    killAtExit(child);
    let answer: WorkerMessage | undefined;
    child.on("message", (m: WorkerMessage) => {
      answer = m;
    });
    child.on("exit", (code, signal) => {
      if (answer?.ok) resolve(answer.result as T);
      else if (answer) reject(new Error(`${job.engine} ${job.task}: ${answer.error}`));
      else
        reject(new Error(`${job.engine} ${job.task}: worker exited (code ${code}, signal ${signal}) without a result`));
    });
  });
}

// ---- formatting ----

type Engine = "embedded" | "nats";

interface Row {
  label: string;
  unit: string;
  /** true: more is better (rates); false: less is better (latencies). */
  higherIsBetter: boolean;
  pick: (r: RepResult) => number;
}

const ROWS: Row[] = [
  { label: "acked publish, await each", unit: "msg/s", higherIsBetter: true, pick: (r) => r.pubSeq },
  {
    label: `acked publish, ${SIZES.window} in flight`,
    unit: "msg/s",
    higherIsBetter: true,
    pick: (r) => r.pubWindow,
  },
  {
    label: `fan-out 1→${SIZES.subs} subs, stream subject`,
    unit: "deliv/s",
    higherIsBetter: true,
    pick: (r) => r.fanStream,
  },
  {
    label: `fan-out 1→${SIZES.subs} subs, core subject`,
    unit: "deliv/s",
    higherIsBetter: true,
    pick: (r) => r.fanCore,
  },
  { label: "history last 50, p50", unit: "ms", higherIsBetter: false, pick: (r) => r.histLast.p50 },
  { label: "history last 50, p99", unit: "ms", higherIsBetter: false, pick: (r) => r.histLast.p99 },
  { label: "history older page (beforeSeq), p50", unit: "ms", higherIsBetter: false, pick: (r) => r.histOlder.p50 },
  { label: "history older page (beforeSeq), p99", unit: "ms", higherIsBetter: false, pick: (r) => r.histOlder.p99 },
];

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v);
  if (unit === "ms") return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)}k`;
  return v.toFixed(0);
}

function targetText(row: Row): string {
  return row.higherIsBetter ? "≥ 1" : "≤ 1";
}

function withRange(xs: number[], unit: string): string {
  const m = fmt(median(xs), unit);
  if (xs.length < 2) return m;
  return `${m} (${fmt(Math.min(...xs), unit)}..${fmt(Math.max(...xs), unit)})`;
}

// ---- run ----

/** 1-minute load average: other work on the machine skews every number, so it is printed with them. */
function load(): string {
  return loadavg()[0]!.toFixed(2);
}

/** The measurements, against `server` and an embedded data dir under `root`; prints the rows and the table. */
async function measure(server: NatsServer, root: string, started: number): Promise<number> {
  const version = await fetch(`${server.monitorUrl}/varz`)
    .then((r) => r.json() as Promise<{ version?: string }>)
    .then((v) => v.version ?? "?")
    .catch(() => "?");
  console.log(`nats-server ${version} (JetStream file store, temp dir); embedded data dir in ${root}\n`);

  const job = (engine: Engine, task: Job["task"]): Job => ({
    task,
    engine,
    dataDir: join(root, "embedded"),
    natsUrl: server.url,
    sizes: SIZES,
    seed: SEED,
  });

  const fills: Record<string, FillResult> = {};
  for (const engine of ["embedded", "nats"] as const) {
    const f = await runWorker<FillResult>(job(engine, "fill"));
    fills[engine] = f;
    const rate = f.filled
      ? ` in ${(f.ms / 1000).toFixed(1)} s (${fmt((SIZES.histTotal / f.ms) * 1000, "msg/s")} msg/s, 100 in flight)`
      : "";
    console.log(`  · ${engine}: history stream holds ${f.messages} messages${rate}`);
  }

  const results: Record<Engine, RepResult[]> = { embedded: [], nats: [] };
  for (let rep = 0; rep < REPS; rep++) {
    const order: Engine[] = rep % 2 === 0 ? ["embedded", "nats"] : ["nats", "embedded"];
    for (const engine of order) {
      const t0 = Date.now();
      const r = await runWorker<RepResult>(job(engine, "rep"));
      results[engine].push(r);
      console.log(
        `  · rep ${rep + 1}/${REPS} ${engine.padEnd(8)} (${((Date.now() - t0) / 1000).toFixed(1)} s): ` +
          ROWS.map((row) => fmt(row.pick(r), row.unit)).join(" / "),
      );
    }
  }

  let met = 0;
  const rowValues = ROWS.map((row) => {
    const embedded = results.embedded.map(row.pick);
    const nats = results.nats.map(row.pick);
    const ratio = median(embedded) / median(nats);
    const pass = row.higherIsBetter ? ratio >= 1 : ratio <= 1;
    if (pass) met++;
    return { row, embedded, nats, ratio, pass };
  });
  const header = ["row", "unit", "embedded", "NATS", "embedded/NATS", "target", "result"];
  const rows = rowValues.map(({ row, embedded, nats, ratio, pass }) => [
    row.label,
    row.unit,
    withRange(embedded, row.unit),
    withRange(nats, row.unit),
    `${ratio.toFixed(2)}×`,
    targetText(row),
    pass ? "pass" : "FAIL",
  ]);
  const tookSeconds = (Date.now() - started) / 1000;
  const loadAtEnd = load();
  console.log("");
  console.log(markdownTable(header, rows));
  console.log("");
  console.log(
    `targets met: ${met} of ${ROWS.length} (the embedded engine at least matches NATS on every row); ` +
      `total time ${tookSeconds.toFixed(0)} s; load average at end ${loadAtEnd}`,
  );
  cli.writeJson({
    sizes: SIZES,
    reps: REPS,
    natsServerVersion: version,
    fills,
    table: { header, rows },
    rows: rowValues.map(({ row, embedded, nats, ratio, pass }) => ({
      row: row.label,
      unit: row.unit,
      embedded: { median: median(embedded), min: Math.min(...embedded), max: Math.max(...embedded), reps: embedded },
      nats: { median: median(nats), min: Math.min(...nats), max: Math.max(...nats), reps: nats },
      ratio,
      target: targetText(row),
      pass,
    })),
    targetsMet: met,
    targets: ROWS.length,
    tookSeconds,
    loadAtEnd,
  });
  return 0;
}

async function main(): Promise<number> {
  const started = Date.now();
  for (const line of cli.header()) console.log(line);
  const s = SIZES;
  console.log(
    `sizes: ${s.seqN} msgs awaited one by one, ${s.winN} msgs ${s.window} in flight, fan-out ${s.fanN} (stream) / ${s.coreN} (core) msgs → ${s.subs} subs, ` +
      `history ${s.histTotal} msgs over ${s.rooms} rooms, ${s.histCalls} calls per history row; payload 100 B; ` +
      `${REPS} repetition(s), median reported${REPS > 1 ? " (min..max)" : ""}`,
  );
  if (!existsSync(natsServerBin())) {
    console.error(`nats-server not found at ${natsServerBin()} (install it or set NATS_SERVER_BIN)`);
    return 2;
  }
  exitOnSignals();
  const stopWatchdog = watchdog("bench:pubsub", WATCHDOG_MS);
  const root = tempDir("via-bench-pubsub-");
  let server: NatsServer | undefined;
  try {
    server = await startNatsServer();
    return await measure(server, root, started);
  } finally {
    stopWatchdog();
    await server?.stop();
    removeDir(root);
  }
}

runMain(main);
