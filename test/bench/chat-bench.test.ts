// `npm run bench:chat -- --quick` end to end: every system (raw node:http, Socket.IO, our chat on the
// embedded engine and on a real nats-server) runs every scenario at a small size, and no message is
// lost. The bench's own numbers are not judged here (that is docs/BENCHMARKS.md's job).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { natsServerMissing } from "../support/nats-server.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const natsMissing = natsServerMissing();
const SYSTEMS = natsMissing ? ["raw", "socketio", "embedded"] : ["raw", "socketio", "embedded", "nats"];

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

test("bench:chat --quick measures every system and loses no message", { timeout: 240_000 }, async () => {
  const { code, output } = await runBench(["--quick", "--systems", SYSTEMS.join(",")]);
  assert.equal(code, 0, `bench:chat --quick exited with ${code}:\n${output}`);
  assert.match(output, /^command: npm run bench:chat -- --quick/m);
  assert.match(output, /^node: +v\d+/m);
  assert.match(output, /^cpu: +.+ × \d+ cores$/m);
  for (const scenario of ["a", "b", "c"]) {
    for (const system of SYSTEMS) {
      assert.match(
        output,
        new RegExp(`^lost ${scenario}/${system}: 0 messages, 0 deliveries, 0 duplicates$`, "m"),
        `no loss line for ${scenario}/${system}:\n${output}`,
      );
    }
  }
  // Every scenario table has a column per system and the measured rows.
  const headers = output.split("\n").filter((l) => l.startsWith("| metric "));
  assert.equal(headers.length, 3, output);
  for (const h of headers) for (const system of SYSTEMS) assert.ok(h.includes(` ${system} `), h);
  for (const row of [
    "latency p99 (ms)",
    "deliveries/s at saturation",
    "bytes on the wire per delivery",
    "RSS per tab (KiB)",
  ]) {
    assert.match(
      output,
      new RegExp(`^\\| ${row.replace(/[()/]/g, "\\$&")} +\\|( +[\\d.,]+ +\\|){${SYSTEMS.length}}`, "m"),
      row,
    );
  }
  assert.match(output, /^targets \(our chat/m);
  assert.match(output, /\| (MET|MISSED) +\|/);
});
