// `npm run drill:stalled-reader`: one tab stops reading its event stream (TCP backpressure up to the
// server) while 200 observer tabs and 10 writers use the same room. Checks that the other tabs' delivery
// latency does not suffer (median p99 over alternating rounds with and without the stalled tab, target
// within 10 %), that the server never holds more than the queue cap for the stalled tab (`app.stats()`),
// and that the stalled tab recovers (every message, once, in order) when it reads again.
// See scripts/drills/stalled-reader/drill.ts. Exits non-zero on a failed check.
import { exitOnSignals, header, intOption, parseFlags } from "../../harness/cli.ts";
import { runStalledReaderDrill, type StalledReaderResult } from "./stalled-reader/drill.ts";

const HELP = `Usage: npm run drill:stalled-reader -- [options]

Options:
  --observers <n>   observer tabs whose latency is measured (default 200; --quick 50)
  --writers <n>     writer tabs (default 10)
  --interval <ms>   pause between one writer's sends (default 200: 5 messages/s each)
  --message-chars <n>
                    message length in characters (default 1000); each press of Load older is answered
                    with 50 of them: shorter pages may never fill the stalled tab's queue to the cap
  --rounds <n>      rounds, alternating without / with the stalled tab, odd so both kinds sit at the
                    same mean time (default 7; --quick 5)
  --round-ms <ms>   measured window per round (default 5000; --quick 3000)
  --cap <bytes>     the server's per-tab queue cap (default 1048576, the framework's default)
  --tolerance <%>   allowed p99 increase with the stalled tab (default 10)
  --noise-limit <%> judge the latency only if no other process used more than this much CPU (% of one
                    core) in any window (default 25); above it the comparison is reported, not judged
  --quick           fewer observers, shorter rounds
  --help            show this help
`;

const values = parseFlags(HELP, {
  observers: { type: "string" },
  writers: { type: "string" },
  interval: { type: "string" },
  "message-chars": { type: "string" },
  rounds: { type: "string" },
  "round-ms": { type: "string" },
  cap: { type: "string" },
  tolerance: { type: "string" },
  "noise-limit": { type: "string" },
  quick: { type: "boolean" },
});
const quick = values.quick === true;
const OBSERVERS = intOption("observers", values.observers, quick ? 50 : 200, 1, 5000);
const WRITERS = intOption("writers", values.writers, 10, 1, 100);
const INTERVAL = intOption("interval", values.interval, 200, 100, 10_000);
const MESSAGE_CHARS = intOption("message-chars", values["message-chars"], 1000, 20, 2000);
const ROUNDS = intOption("rounds", values.rounds, quick ? 5 : 7, 2, 51);
const ROUND_MS = intOption("round-ms", values["round-ms"], quick ? 3_000 : 5_000, 1_000, 120_000);
const CAP = intOption("cap", values.cap, 1024 * 1024, 64 * 1024, 64 * 1024 * 1024);
const TOLERANCE = intOption("tolerance", values.tolerance, 10, 0, 1000);
const NOISE_LIMIT = intOption("noise-limit", values["noise-limit"], 25, 0, 1000);

exitOnSignals();

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

async function main(): Promise<number> {
  for (const line of header(
    "drill:stalled-reader — one tab stops reading; the others must not notice, the server must stay bounded",
    "drill:stalled-reader",
    "scripts/drills/stalled-reader.ts",
  ))
    console.log(line);
  console.log(
    `${OBSERVERS} observers + ${WRITERS} writers (a send of ${MESSAGE_CHARS} characters every ${INTERVAL} ms each) ` +
      `in one room; ${ROUNDS} rounds of ` +
      `${ROUND_MS} ms, alternating without / with the stalled tab; queue cap ${CAP} bytes\n`,
  );
  let r: StalledReaderResult;
  try {
    r = await runStalledReaderDrill({
      observers: OBSERVERS,
      writers: WRITERS,
      intervalMs: INTERVAL,
      messageChars: MESSAGE_CHARS,
      rounds: ROUNDS,
      roundMs: ROUND_MS,
      queueCapBytes: CAP,
      log: (line) => console.log(line),
    });
  } catch (err) {
    console.log(`drill did not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    console.log("\nFAIL");
    return 1;
  }
  console.log(
    "\n| round | extra tab | samples | p50 (ms) | p99 (ms) | max (ms) | CPU server / tabs / others (%) | most held for one tab | cut at cap | extra tab shows every message |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const x of r.rounds) {
    console.log(
      `| ${x.index} | ${x.stalled ? "stalled" : "reading"} | ${x.samples} | ${ms(x.p50)} | ${ms(x.p99)} | ${ms(x.max)} | ` +
        `${x.serverCpu.toFixed(0)} / ${x.drillCpu.toFixed(0)} / ${x.otherCpu.toFixed(0)} | ` +
        `${kib(x.maxTabBytes)} | ${x.stalled ? (x.cut ? "yes" : "NO") : "-"} | ` +
        `${x.recovery?.ok ? `yes (${x.recovery.compared} msgs${x.stalled ? `, ${x.recovery.resumed ?? "not resumed"}, ${Math.round(x.recovery.ms)} ms` : `, ${x.recovery.delivered ?? 0} received`})` : "NO"} |`,
    );
  }
  const latencyOk = r.ratio <= 1 + TOLERANCE / 100;
  // Other processes' CPU (benchmarks of other agents, CI neighbours) moves p99 by far more than 10 %:
  // with a busy neighbour in any window the comparison is reported, not judged.
  const busiest = Math.max(...r.rounds.map((x) => x.otherCpu));
  const judged = busiest <= NOISE_LIMIT;
  const cutOk = r.rounds.every((x) => !x.stalled || x.cut === true);
  const refOk =
    r.reference.lost.length === 0 && r.reference.duplicated.length === 0 && r.reference.reordered.length === 0;
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
  const cpuWithout = med(r.rounds.filter((x) => !x.stalled).map((x) => x.serverCpu));
  const cpuWith = med(r.rounds.filter((x) => x.stalled).map((x) => x.serverCpu));
  console.log(
    `\nmedian p99 without the stalled tab ${ms(r.p99Without)} ms, with it ${ms(r.p99With)} ms: ` +
      `${((r.ratio - 1) * 100).toFixed(1)} % (target ≤ ${TOLERANCE} %) → ` +
      `${latencyOk ? "ok" : judged ? "OVER" : "NOT JUDGED"}` +
      `${judged ? "" : ` (other processes used up to ${busiest.toFixed(0)} % of a core in a window, over --noise-limit ${NOISE_LIMIT} %: noise, not a verdict)`}; ` +
      `paired with the rounds around each: ${((r.pairedRatio - 1) * 100).toFixed(1)} %`,
  );
  console.log(
    `server CPU per window (median): without ${cpuWithout.toFixed(0)} %, with ${cpuWith.toFixed(0)} % of a core`,
  );
  console.log(
    `most the server held for one tab: ${kib(r.maxTabBytes)} of the ${kib(r.capBytes)} cap (largest single event sent: ` +
      `${kib(r.largestEvent)}) → ${r.memoryOk ? "ok" : "OVER"}; ` +
      `server RSS ${(r.serverRss.min / 2 ** 20).toFixed(0)}-${(r.serverRss.max / 2 ** 20).toFixed(0)} MiB`,
  );
  console.log(
    `stalled tab cut at the cap in every round: ${cutOk ? "yes" : "NO"}; the extra tab showed every message afterwards ` +
      `(stalled: after a reconnect): ${r.recoveryOk ? "yes" : "NO"}; observers kept every message: ` +
      `${r.observersIntact ? "yes" : "NO"}; reference tab vs acks: acked ${r.reference.acked}, lost ` +
      `${r.reference.lost.length}, duplicated ${r.reference.duplicated.length}, reordered ${r.reference.reordered.length}`,
  );
  const pass = (latencyOk || !judged) && r.memoryOk && cutOk && r.recoveryOk && r.observersIntact && refOk;
  console.log(pass ? "\nPASS" : "\nFAIL");
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
