// `npm run drill:engine-crash`: kill -9 the process that holds the data at random moments while writers publish,
// restart it on the same storage, and check that every acknowledged message is stored exactly once and in
// each writer's order. Embedded engine: the engine runs in a child process that is killed. NATS: the
// nats-server is killed while the writers publish through the NATS engine. See scripts/drills/engine-crash/drill.ts.
// The chat-level drill (kill -9 of the chat server itself) is `npm run drill:crash`, scripts/drills/crash.ts.
// Exits non-zero if any count is not 0 (or the drill could not complete).
import { engineOption, exitOnSignals, header, intOption, parseFlags } from "../../harness/cli.ts";
import { type DrillEngine, type DrillResult, runDrill, summary } from "./engine-crash/drill.ts";

const HELP = `Usage: npm run drill:engine-crash -- [options]

Options:
  --engine <e>    embedded | nats | both (default both)
  --kills <n>     kill -9 count per engine (default 8; --quick 5)
  --writers <n>   concurrent writers, one message in flight each (default 8; --quick 4)
  --quick         shorter run: fewer writers, shorter uptime between kills
  --help          show this help
`;

const values = parseFlags(HELP, {
  engine: { type: "string" },
  kills: { type: "string" },
  writers: { type: "string" },
  quick: { type: "boolean" },
});

const quick = values.quick === true;
const KILLS = intOption("kills", values.kills, quick ? 5 : 8, 1, 100);
const WRITERS = intOption("writers", values.writers, quick ? 4 : 8, 1, 256);
const ENGINES: DrillEngine[] = engineOption(values.engine, "both");
const MAX_UP_MS = quick ? 600 : 1_500;
// Per engine: restarts take ~0.5-1.5 s each here, so this is several times what a run needs.
const TIME_LIMIT_MS = 60_000 + KILLS * 10_000;

// Children and temp dirs are killed/removed by exit handlers in drill.ts and harness/nats-server.ts.
exitOnSignals();

async function main(): Promise<number> {
  for (const line of header(
    "drill:engine-crash — kill -9 of the engine under write load, then check every acknowledged message",
    "drill:engine-crash",
    "scripts/drills/engine-crash.ts",
  ))
    console.log(line);
  console.log(
    `${ENGINES.join(" + ")}: ${KILLS} kills, ${WRITERS} writers (one message in flight each, msg id per message, ` +
      `retried with the same id until acked), kill after a random 0-${MAX_UP_MS} ms of writing\n`,
  );
  const results: DrillResult[] = [];
  let failed = false;
  for (const engine of ENGINES) {
    const what = engine === "embedded" ? "the engine's child process" : "nats-server";
    console.log(`${engine}: kill -9 of ${what}`);
    try {
      const r = await runDrill({
        engine,
        kills: KILLS,
        writers: WRITERS,
        maxUpMs: MAX_UP_MS,
        timeLimitMs: TIME_LIMIT_MS,
        log: (line) => console.log(line),
      });
      results.push(r);
      console.log(`${summary(r)}\n`);
      if (!r.pass) failed = true;
    } catch (err) {
      failed = true;
      console.log(
        `${engine}: drill did not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
  }
  console.log(
    "| engine | kills | writers | acked | stored | lost | duplicated | reordered | wrong-seq | unexpected | result |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.engine} | ${r.kills.length} | ${r.writers} | ${r.acked} | ${r.stored} | ${r.lost} | ${r.duplicated} | ` +
        `${r.reordered} | ${r.wrongSeq} | ${r.unexpected} | ${r.pass ? "pass" : "FAIL"} |`,
    );
  }
  console.log(failed ? "\nFAIL" : "\nall counts 0: PASS");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
