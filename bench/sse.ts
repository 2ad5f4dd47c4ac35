// `npm run bench:sse`: what one via server costs per connected tab, and how fast it fans a message
// out to every tab, next to a minimal raw node:http SSE broadcast server under the same load.
//
// Every server and the load generator run in their own child process (bench/sse/), so the memory
// we read is the server's alone, and server and clients get a core each. Phases, each on a fresh
// server process (bench/sse/phases.ts):
//   1. memory:  RSS after a forced GC before any tab, then with N and 5N idle tabs connected.
//   2. fan-out: N tabs connected; the server publishes one `append` patch to every tab `rate`
//               times a second for `seconds`; clients time each delivery (send stamp in the element).
//               Repeated `rounds` times, raw and via alternating; the table shows medians.
// With --h2 both phases also run via over TLS (a self-signed certificate made with the openssl CLI):
// HTTP/2 with `--h2-streams` tabs per connection, and HTTP/1.1 over TLS (a TLS connection per tab), for
// a second table next to plain HTTP/1.1 via. Results go to docs/BENCHMARKS.md by hand.

import { cpus } from "node:os";
import { exitOnSignals } from "../harness/cleanup.ts";
import { defineCommand, runMain } from "../harness/cli.ts";
import { markdownTable } from "../harness/stats.ts";
import { selfSignedCert } from "../harness/tls.ts";
import { loadText, watchdog } from "./common/run.ts";
import {
  BATCH,
  type FanoutRun,
  fanoutPhase,
  type MemoryRun,
  memoryPhase,
  type SseSettings,
  type Variant,
} from "./sse/phases.ts";
import { comparisonTable, summarize, TARGET_KIB_PER_TAB, TARGET_P99_RATIO, transportTable } from "./sse/report.ts";

const cli = defineCommand({
  script: "bench:sse",
  file: "bench/sse.ts",
  title: "bench:sse — via SSE fan-out vs a raw node:http SSE broadcast",
  about: `Measures a via server's RSS per idle tab and its SSE fan-out latency/throughput, against a minimal
raw node:http SSE broadcast server under the same load, in one run.`,
  quick: "smoke run: 200 tabs (memory at 200 and 1000), 1 round of 3 s of fan-out",
  flags: {
    // 5 × 3000 streams stays well inside a 20 000 file descriptor limit per process.
    tabs: {
      type: "int",
      help: "tabs for the fan-out and the first memory level; the second is 5×",
      default: 1000,
      quick: 200,
      min: 1,
      max: 3000,
    },
    seconds: { type: "int", arg: "s", help: "fan-out duration", default: 10, quick: 3, min: 1, max: 60 },
    rate: { type: "int", help: "fan-out messages per second", default: 20, min: 1, max: 200 },
    rounds: {
      type: "int",
      help: "fan-out rounds, raw and via alternating; the table shows the median round",
      default: 3,
      quick: 1,
      min: 1,
      max: 9,
    },
    phase: {
      type: "choice",
      arg: "p",
      choices: ["memory", "fanout", "all"],
      default: "all",
      help: "the phases to run",
    },
    h2: {
      type: "boolean",
      help:
        "also run via over TLS: HTTP/2 (--h2-streams tabs per connection) and HTTP/1.1 over TLS (one connection " +
        "per tab); a second table compares them with plain HTTP/1.1 via",
    },
    "h2-streams": {
      type: "int",
      help: "tabs (event streams) per HTTP/2 connection with --h2",
      default: 100,
      min: 1,
      max: 1000,
    },
    profile: {
      type: "string",
      arg: "dir",
      help: "write a V8 CPU profile of each server process to <dir> (--cpu-prof)",
    },
    "heap-snapshots": {
      type: "string",
      arg: "dir",
      help: "write a server heap snapshot at each memory level to <dir>",
    },
  },
});

// The whole run must end by itself, whatever happens: a hard cap well above a normal run.
const WATCHDOG_MS = 10 * 60_000;

async function main(): Promise<number> {
  const v = cli.values;
  const rate = v.rate;
  const settings: SseSettings = {
    tabs: v.tabs,
    memLevels: [v.tabs, v.tabs * 5],
    seconds: v.seconds,
    rate,
    rounds: v.rounds,
    ticks: v.seconds * rate,
    // One second of messages first, untimed: the first publishes run cold (JIT, socket buffers).
    warmupTicks: rate,
    h2: v.h2,
    h2Streams: v["h2-streams"],
    // The certificate of the TLS variants: made once, before any child starts.
    cert: (v.h2 && selfSignedCert()) || undefined,
    profileDir: v.profile,
    snapshotDir: v["heap-snapshots"],
  };
  if (settings.h2 && !settings.cert) {
    process.stderr.write("--h2 needs the openssl CLI (apt-get install openssl) to make a test certificate\n");
    return 2;
  }
  exitOnSignals();
  const stopWatchdog = watchdog("bench:sse", WATCHDOG_MS);
  const { tabs, memLevels, rounds, h2 } = settings;
  const [title, command] = cli.header();
  const cpuModel = cpus()[0]?.model.trim() ?? "unknown";
  const loadBefore = loadText();
  console.log(title);
  console.log(command);
  console.log(`node:    ${process.version} (${process.platform}/${process.arch})`);
  console.log(`cpu:     ${cpuModel}, ${cpus().length} cores`);
  console.log(`date:    ${new Date().toISOString()}`);
  console.log(`load:    ${loadBefore} (1/5/15 min load average before the run; other processes skew latency)`);
  console.log(
    `plan:    memory at ${memLevels.join(" and ")} idle tabs; fan-out to ${tabs} tabs, ` +
      `${rate} msg/s for ${settings.seconds} s (${settings.ticks} timed messages after ${settings.warmupTicks} untimed), ` +
      `${rounds} round(s) per server; ramp ${BATCH} connections at a time` +
      (h2 ? `; also via over TLS: HTTP/2 (${settings.h2Streams} tabs per connection) and HTTP/1.1` : ""),
  );
  console.log("");

  const started = performance.now();
  const doMemory = v.phase !== "fanout";
  const doFanout = v.phase !== "memory";
  const memVariants: Variant[] = doMemory ? (h2 ? ["raw", "via", "via-https", "via-h2"] : ["raw", "via"]) : [];
  const memory: Partial<Record<Variant, MemoryRun>> = {};
  for (const kind of memVariants) memory[kind] = await memoryPhase(settings, kind);
  const fanRuns: Record<Variant, FanoutRun[]> = { raw: [], via: [], "via-https": [], "via-h2": [] };
  const fanVariants: Variant[] = h2 ? ["raw", "via", "via-https", "via-h2"] : ["raw", "via"];
  for (let round = 0; doFanout && round < rounds; round++) {
    // Alternate, so a burst of outside load hits every server alike rather than one.
    for (const kind of round % 2 === 0 ? fanVariants : [...fanVariants].reverse()) {
      fanRuns[kind].push(await fanoutPhase(settings, kind));
    }
  }
  const summaries = doFanout
    ? Object.fromEntries(fanVariants.map((k) => [k, summarize(fanRuns[k], settings.seconds)]))
    : {};
  const sum = (k: Variant) => summaries[k]!;

  const versus = comparisonTable(
    settings,
    memory.via && memory.raw ? { via: memory.via, raw: memory.raw } : undefined,
    doFanout ? { via: sum("via"), raw: sum("raw") } : undefined,
  );
  let lossOk = versus.lossOk;
  console.log("");
  if (doFanout && rounds > 1) console.log(`fan-out rows: the median of ${rounds} rounds per server`);
  console.log(markdownTable(versus.header, versus.rows));
  console.log("");

  let transports: ReturnType<typeof transportTable> | undefined;
  if (h2) {
    // via over its three transports: what TLS costs per tab, and what HTTP/2 costs or saves against it.
    const mem = memory.via && memory["via-https"] && memory["via-h2"];
    transports = transportTable(
      settings,
      mem ? [memory.via!, memory["via-https"]!, memory["via-h2"]!] : undefined,
      doFanout ? [sum("via"), sum("via-https"), sum("via-h2")] : undefined,
    );
    if (doFanout) {
      for (const name of ["via-https", "via-h2"] as const) {
        const x = sum(name);
        lossOk &&= x.lost === 0 && x.duplicates === 0 && x.outOfOrder === 0;
        if (x.lost || x.duplicates || x.outOfOrder || x.closedStreams)
          console.log(
            `${name}: lost ${x.lost}, duplicates ${x.duplicates}, out of order ${x.outOfOrder}, closed ${x.closedStreams}`,
          );
      }
    }
    console.log(markdownTable(transports.header, transports.rows));
    console.log("");
  }

  const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");
  if (doMemory) {
    console.log(
      `target RSS/tab ≤ ${TARGET_KIB_PER_TAB} KiB at ${memLevels.join(" and ")} tabs: ${verdict(versus.memOk)}`,
    );
  }
  if (doFanout) {
    const via = sum("via");
    console.log(
      `target p99 ≤ ${TARGET_P99_RATIO}× raw (${versus.p99Ratio.toFixed(2)}×): ${verdict(versus.p99Ratio <= TARGET_P99_RATIO)}`,
    );
    console.log(
      `target 0 lost deliveries (lost ${via.lost}, duplicates ${via.duplicates}, ` +
        `out of order ${via.outOfOrder}, streams closed ${via.closedStreams}): ${verdict(lossOk)}`,
    );
  }
  const loadAfter = loadText();
  const tookSeconds = Math.round((performance.now() - started) / 1000);
  console.log(`load average after the run: ${loadAfter}`);
  console.log(`took ${tookSeconds} s`);
  stopWatchdog();
  cli.writeJson({
    plan: { ...settings, cert: undefined, batch: BATCH },
    loadBefore,
    loadAfter,
    tookSeconds,
    memory,
    fanout: { runs: doFanout ? fanRuns : {}, summaries },
    table: { header: versus.header, rows: versus.rows, values: versus.data },
    ...(transports
      ? { transportTable: { header: transports.header, rows: transports.rows, values: transports.data } }
      : {}),
    targets: {
      rssPerTabKiB: doMemory ? { target: TARGET_KIB_PER_TAB, met: versus.memOk } : undefined,
      p99VsRaw: doFanout
        ? { target: TARGET_P99_RATIO, measured: versus.p99Ratio, met: versus.p99Ratio <= TARGET_P99_RATIO }
        : undefined,
      noLoss: doFanout ? { met: lossOk } : undefined,
    },
  });
  return 0;
}

runMain(main);
