// `npm run bench:pubsub`: the embedded engine against a real nats-server (JetStream, file store), in one run,
// through the same PubSub interface. Rows: acked publish rate (awaiting each, and 100 in flight), fan-out
// from one publisher to 1,000 in-process subscribers (stream subject and core subject), and history
// latency ("last 50 of a room", and an older page) in a 100k-message stream over 100 rooms.
//
// Every measurement runs in a fresh child process (bench/pubsub/worker.ts) that opens one engine, so
// neither engine's heap or JIT state affects the other; repetitions alternate which engine goes first.
// The nats-server runs on 127.0.0.1 with a temp store (harness/nats-server.ts) and is killed at the
// end, as are all children, on any exit. Results go to docs/BENCHMARKS.md by hand.
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type NatsServer, natsServerBin, startNatsServer } from "../harness/nats-server.ts";
import type { FillResult, Job, RepResult, Sizes, WorkerMessage } from "./pubsub/worker.ts";

const HELP = `Usage: npm run bench:pubsub -- [options]

Embedded engine vs NATS JetStream (a real nats-server on 127.0.0.1), same run, same PubSub interface.

Options:
  --quick       smoke run: small sizes, one repetition
  --reps <n>    repetitions per row, the median is reported (default 3)
  --help        show this help
`;

const { values } = parseArgs({
  options: { quick: { type: "boolean" }, reps: { type: "string" }, help: { type: "boolean" } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const quick = values.quick === true;
const REPS = values.reps !== undefined ? Number(values.reps) : quick ? 1 : 3;
if (!Number.isInteger(REPS) || REPS < 1 || REPS > 9) {
  process.stderr.write(`--reps must be an integer in [1, 9], got ${JSON.stringify(values.reps)}\n`);
  process.exit(2);
}

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

// ---- hygiene: never leave a worker, the server or a temp dir behind ----

const workers = new Set<ChildProcess>();
let root: string | undefined;
let server: NatsServer | undefined;
process.on("exit", () => {
  for (const w of workers) w.kill("SIGKILL");
  if (root) rmSync(root, { recursive: true, force: true });
  // The support module SIGKILLs its nats-server processes and removes their dirs on exit too.
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));
const watchdog = setTimeout(() => {
  process.stderr.write(`bench:pubsub: still running after ${WATCHDOG_MS / 1000} s, giving up\n`);
  process.exit(1);
}, WATCHDOG_MS);

function runWorker<T>(job: Job): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(WORKER, [JSON.stringify(job)], {
      // The TypeScript loader tsx runs us with, plus a gc() the worker calls between rows.
      execArgv: [...process.execArgv, "--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "silent" },
    });
    workers.add(child);
    let answer: WorkerMessage | undefined;
    child.on("message", (m: WorkerMessage) => {
      answer = m;
    });
    child.on("exit", (code, signal) => {
      workers.delete(child);
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function withRange(xs: number[], unit: string): string {
  const m = fmt(median(xs), unit);
  if (xs.length < 2) return m;
  return `${m} (${fmt(Math.min(...xs), unit)}..${fmt(Math.max(...xs), unit)})`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

// ---- run ----

/** 1-minute load average: other work on the machine skews every number, so it is printed with them. */
function load(): string {
  return loadavg()[0]!.toFixed(2);
}

function commandLine(): string {
  const args = process.argv.slice(2).join(" ");
  if (process.env.npm_lifecycle_event === "bench:pubsub") return `npm run bench:pubsub${args ? ` -- ${args}` : ""}`;
  return `tsx bench/pubsub.ts${args ? ` ${args}` : ""}`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const cpu = cpus();
  console.log("bench:pubsub — embedded engine vs NATS JetStream (nats-server on 127.0.0.1)");
  console.log(`command: ${commandLine()}`);
  console.log(
    `node ${process.version} on ${process.platform}/${process.arch}; CPU: ${cpu[0]?.model.trim()} × ${cpu.length} cores`,
  );
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
  root = mkdtempSync(join(tmpdir(), "via-bench-pubsub-"));
  server = await startNatsServer();
  const version = await fetch(`${server.monitorUrl}/varz`)
    .then((r) => r.json() as Promise<{ version?: string }>)
    .then((v) => v.version ?? "?")
    .catch(() => "?");
  console.log(`nats-server ${version} (JetStream file store, temp dir); embedded data dir in ${root}\n`);

  const job = (engine: Engine, task: Job["task"]): Job => ({
    task,
    engine,
    dataDir: join(root!, "embedded"),
    natsUrl: server!.url,
    sizes: SIZES,
    seed: SEED,
  });

  for (const engine of ["embedded", "nats"] as const) {
    const f = await runWorker<FillResult>(job(engine, "fill"));
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
  const rows = ROWS.map((row) => {
    const e = results.embedded.map(row.pick);
    const n = results.nats.map(row.pick);
    const ratio = median(e) / median(n);
    const pass = row.higherIsBetter ? ratio >= 1 : ratio <= 1;
    if (pass) met++;
    return [
      row.label,
      row.unit,
      withRange(e, row.unit),
      withRange(n, row.unit),
      `${ratio.toFixed(2)}×`,
      row.higherIsBetter ? "≥ 1" : "≤ 1",
      pass ? "pass" : "FAIL",
    ];
  });
  console.log("");
  console.log(table(["row", "unit", "embedded", "NATS", "embedded/NATS", "target", "result"], rows));
  console.log("");
  console.log(
    `targets met: ${met} of ${ROWS.length} (the embedded engine at least matches NATS on every row); ` +
      `total time ${((Date.now() - started) / 1000).toFixed(0)} s; load average at end ${load()}`,
  );
  return 0;
}

main()
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  )
  .finally(async () => {
    clearTimeout(watchdog);
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    root = undefined;
  });
