// `npm run bench:chat -- --quick` end to end: every system (raw node:http, Socket.IO, our chat on the
// embedded engine and on a real nats-server) runs every scenario at a small size (a, b, c, the join
// ramp, page loads without a stream, traffic growth, browsers × tabs on shared streams and on streams
// of their own), no message is lost or duplicated, and the tables, the targets and the JSON file
// (--json) come out. The bench's own numbers are not judged here (that is docs/BENCHMARKS.md's job).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
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
    proc.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    proc.on("exit", (code) => resolve({ code, output }));
  });
}

const escapeRe = (s: string) => s.replace(/[()/]/g, "\\$&");

test("bench:chat --quick measures every scenario and system and loses no message", { timeout: 480_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "via-bench-chat-test-"));
  try {
    const json = join(dir, "out.json");
    const { code, output } = await runBench(["--quick", "--systems", SYSTEMS.join(","), "--json", json]);
    assert.equal(code, 0, `bench:chat --quick exited with ${code}:\n${output}`);
    assert.match(output, /^command: npm run bench:chat -- --quick/m);
    assert.match(output, /^node: +v\d+/m);
    assert.match(output, /^cpu: +.+ × \d+ cores$/m);
    for (const [scenario, systems] of SCENARIOS) {
      for (const system of systems) {
        assert.match(
          output,
          new RegExp(`^lost ${scenario}/${system}: 0 messages, 0 deliveries, 0 duplicates$`, "m"),
          `no loss line for ${scenario}/${system}:\n${output}`,
        );
      }
    }
    // Every scenario table has a column per system that ran it, and the measured rows.
    const headers = output.split("\n").filter((l) => l.startsWith("| metric "));
    assert.equal(headers.length, SCENARIOS.length, output);
    SCENARIOS.forEach(([, systems], i) => {
      for (const system of systems) assert.ok(headers[i]!.includes(` ${system} `), headers[i]);
    });
    const row = (label: string, columns: number) =>
      assert.match(output, new RegExp(`^\\| ${escapeRe(label)} +\\|( +[-\\d.,]+ +\\|){${columns}}`, "m"), label);
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
    row("  RSS growth (%)", SYSTEMS.length);
    row("  JS heap growth (%)", SYSTEMS.length);
    row("server TCP connections held, all tabs attached", TAB_RUNS.length);
    assert.match(output, /^targets \(our chat/m);
    assert.match(output, /\| (MET|MISSED) +\|/);

    // The same, as JSON.
    const doc = JSON.parse(readFileSync(json, "utf8")) as {
      exitCode: number;
      tables: Array<{ scenario: string; table: { header: string[]; rows: string[][] } }>;
      targets: Array<{ target: string; scenario: string; system: string; result: string }>;
      results: Array<{ scenario: string; system: string; variant?: string }>;
    };
    assert.equal(doc.exitCode, 0);
    assert.deepEqual(
      doc.tables.map((t) => t.scenario),
      SCENARIOS.map(([s]) => s),
    );
    assert.equal(
      doc.results.length,
      SCENARIOS.reduce((a, [, systems]) => a + systems.length, 0),
    );
    assert.deepEqual(
      doc.results.filter((r) => r.scenario === "tabs").map((r) => `${r.system} ${r.variant}`),
      TAB_RUNS,
    );
    for (const t of doc.targets) assert.ok(["MET", "MISSED", "n/a"].includes(t.result), JSON.stringify(t));
    const targeted = new Set(doc.targets.map((t) => t.scenario));
    for (const [s] of SCENARIOS) assert.ok(targeted.has(s), `no target row for scenario ${s}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
