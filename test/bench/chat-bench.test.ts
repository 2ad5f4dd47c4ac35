// `npm run bench:chat -- --quick` end to end: every system (raw node:http, Socket.IO, our chat on the
// embedded engine and on a real nats-server) runs every scenario at a small size (a, b, c, the join
// ramp, page loads without a stream, traffic growth, browsers × tabs on shared streams and on streams
// of their own), no message is lost or duplicated, and the tables and the targets come out; all read
// from the results it writes with --json, which give back every table it printed (`npm run figures`).
// The bench's own numbers are not judged here (that is docs/BENCHMARKS.md's job).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { removeDir, tempDir } from "../../harness/cleanup.ts";
import { figuresOf } from "../../harness/figures.ts";
import { natsServerMissing } from "../../harness/nats-server.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const natsMissing = natsServerMissing();
const SYSTEMS = natsMissing ? ["raw", "socketio", "embedded"] : ["raw", "socketio", "embedded", "nats"];
/** Ramp and page loads need a page GET: Socket.IO sits them out. */
const PAGE_SYSTEMS = SYSTEMS.filter((s) => s !== "socketio");
/** Browsers × tabs: our chat only, each system once on shared streams and once on streams of their own. */
const TAB_RUNS = SYSTEMS.filter((s) => s === "embedded" || s === "nats").flatMap((s) => [`${s} shared`, `${s} own`]);
const SCENARIOS: Array<[string, string[]]> = [
  ["a", SYSTEMS],
  ["b", SYSTEMS],
  ["c", SYSTEMS],
  ["ramp", PAGE_SYSTEMS],
  ["pages", PAGE_SYSTEMS],
  ["growth", SYSTEMS],
  ["tabs", TAB_RUNS],
];

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ["--import", "tsx", "bench/chat.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (d: Buffer) => {
      output += d.toString();
    };
    proc.stdout.on("data", collect);
    proc.stderr.on("data", collect);
    proc.on("exit", (code) => resolve({ code, output }));
  });
}

/** The Markdown tables in a tool's output: runs of lines that start with "|". */
function printedTables(output: string): string[] {
  const tables: string[] = [];
  let rows: string[] = [];
  for (const line of [...output.split("\n"), ""]) {
    if (line.startsWith("|")) rows.push(line);
    else if (rows.length > 0) {
      tables.push(rows.join("\n"));
      rows = [];
    }
  }
  return tables;
}

/** What bench:chat writes with --json (the parts this test reads). */
interface BenchJson {
  command: string;
  machine: { node: string; cpu: string; cores: number };
  results: {
    exitCode: number;
    tables: Array<{
      scenario: string;
      table: {
        header: string[];
        values: Array<{ label: string; values: Record<string, number | null>; ratios?: Record<string, number | null> }>;
      };
    }>;
    targets: Array<{ target: string; scenario: string; system: string; result: string }>;
    losses: Array<{ scenario: string; run: string; messages: number; deliveries: number; duplicates: number }>;
    results: Array<{ scenario: string; system: string; variant?: string }>;
  };
}

test("bench:chat --quick measures every scenario and system and loses no message", { timeout: 480_000 }, async () => {
  const dir = tempDir("via-bench-chat-test-");
  try {
    const file = join(dir, "out.json");
    const { code, output } = await runBench(["--quick", "--systems", SYSTEMS.join(","), "--json", file]);
    assert.equal(code, 0, `bench:chat --quick exited with ${code}:\n${output}`);
    const doc = JSON.parse(readFileSync(file, "utf8")) as BenchJson;
    // The docs take their tables from results files: every table the run printed comes back from its JSON.
    const figures = figuresOf(doc);
    const printed = printedTables(output);
    assert.ok(printed.length >= SCENARIOS.length + 1, `the scenario tables and the targets were printed:\n${output}`);
    for (const table of printed) assert.ok(figures.includes(table), `npm run figures gives back:\n${table}`);
    const { results: run } = doc;
    assert.match(doc.command, /(bench:chat --|bench\/chat\.ts) --quick/);
    assert.match(doc.machine.node, /^v\d+/);
    assert.ok(doc.machine.cpu && doc.machine.cores > 0, JSON.stringify(doc.machine));
    assert.equal(run.exitCode, 0);

    // Every run of every scenario, and no loss in any.
    for (const [scenario, systems] of SCENARIOS) {
      for (const system of systems) {
        const loss = run.losses.find((l) => l.scenario === scenario && l.run === system);
        assert.deepEqual(
          loss && [loss.messages, loss.deliveries, loss.duplicates],
          [0, 0, 0],
          `loss of ${scenario}/${system}: ${JSON.stringify(loss)}`,
        );
      }
    }
    assert.equal(
      run.results.length,
      SCENARIOS.reduce((a, [, systems]) => a + systems.length, 0),
    );
    assert.deepEqual(
      run.results.filter((r) => r.scenario === "tabs").map((r) => `${r.system} ${r.variant}`),
      TAB_RUNS,
    );

    // Every scenario table has a column per system that ran it, and the measured rows.
    assert.deepEqual(
      run.tables.map((t) => t.scenario),
      SCENARIOS.map(([s]) => s),
    );
    run.tables.forEach((t, i) => {
      for (const system of SCENARIOS[i]![1]) assert.ok(t.table.header.includes(system), t.table.header.join(" | "));
    });
    /** A row measured (a number) on at least `columns` runs, in some scenario's table. */
    const row = (label: string, columns: number) => {
      const measured = run.tables.flatMap((t) =>
        t.table.values
          .filter((v) => v.label === label)
          .map((v) => Object.values(v.values).filter((x) => typeof x === "number").length),
      );
      assert.ok(
        measured.some((n) => n >= columns),
        `${label}: measured on ${measured.join(", ") || "no"} runs`,
      );
    };
    for (const label of [
      "latency p99 (ms)",
      "deliveries/s at saturation",
      "bytes on the wire per delivery",
      "server CPU per 1,000 deliveries, open loop (ms)",
      "RSS per tab (KiB)",
    ]) {
      row(label, SYSTEMS.length);
    }
    for (const label of [
      "all tabs attached (s)",
      "presence N shown on every tab (s)",
      "RSS growth after the page loads and the messages (MiB)",
    ]) {
      row(label, PAGE_SYSTEMS.length);
    }
    row("RSS growth (%)", SYSTEMS.length);
    row("JS heap growth (%)", SYSTEMS.length);
    row("server TCP connections held, all tabs attached", TAB_RUNS.length);
    // The ratios the tables print are in the JSON too: our chat against each baseline.
    const p99 = run.tables.find((t) => t.scenario === "a")?.table.values.find((v) => v.label === "latency p99 (ms)");
    for (const ours of SYSTEMS.filter((s) => s === "embedded" || s === "nats")) {
      for (const base of ["raw", "socketio"]) {
        assert.equal(typeof p99?.ratios?.[`${ours} / ${base}`], "number", JSON.stringify(p99));
      }
    }

    // The targets: each judged (or n/a), at least one judged, and one at least per scenario.
    for (const t of run.targets) assert.ok(["MET", "MISSED", "n/a"].includes(t.result), JSON.stringify(t));
    assert.ok(
      run.targets.some((t) => t.result !== "n/a"),
      "no target was judged",
    );
    const targeted = new Set(run.targets.map((t) => t.scenario));
    for (const [s] of SCENARIOS) assert.ok(targeted.has(s), `no target row for scenario ${s}`);
  } finally {
    removeDir(dir);
  }
});
