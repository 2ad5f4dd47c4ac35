// `npm run drill:engine-crash`: kill -9 the process that holds the data at random moments while writers publish,
// restart it on the same storage, and check that every acknowledged message is stored exactly once and in
// each writer's order. Embedded engine: the engine runs in a child process that is killed. NATS: the
// nats-server is killed while the writers publish through the NATS engine. See scripts/drills/engine-crash/drill.ts.
// The chat-level drill (kill -9 of the chat server itself) is `npm run drill:crash`, scripts/drills/crash.ts.
// Exits non-zero if any count is not 0 (or the drill could not complete).
import { exitOnSignals } from "../../harness/cleanup.ts";
import { defineCommand, enginesOf, runMain } from "../../harness/cli.ts";
import { Table } from "../../harness/stats.ts";
import { engineFlag, reportPerEngine, runPerEngine } from "./command.ts";
import { runDrill, summary } from "./engine-crash/drill.ts";

const cli = defineCommand({
  script: "drill:engine-crash",
  file: "scripts/drills/engine-crash.ts",
  title: "drill:engine-crash — kill -9 of the engine under write load, then check every acknowledged message",
  about: `Kills the process that holds the data (the embedded engine's child process, or nats-server) with
SIGKILL while writers publish, restarts it on the same storage, and checks that every acknowledged
message is stored exactly once, at the seq of its ack, in each writer's order.`,
  quick: "shorter run: fewer writers, shorter uptime between kills",
  flags: {
    engine: engineFlag("both"),
    kills: { type: "int", help: "kill -9 count per engine", default: 8, quick: 5, min: 1, max: 100 },
    writers: {
      type: "int",
      help: "concurrent writers, one message in flight each",
      default: 8,
      quick: 4,
      min: 1,
      max: 256,
    },
  },
});
const { kills, writers } = cli.values;
const engines = enginesOf(cli.values.engine);
const maxUpMs = cli.quick ? 600 : 1_500;
// Per engine: restarts take ~0.5-1.5 s each here, so this is several times what a run needs.
const timeLimitMs = 60_000 + kills * 10_000;

exitOnSignals();

async function main(): Promise<number> {
  for (const line of cli.header()) console.log(line);
  console.log(
    `${engines.join(" + ")}: ${kills} kills, ${writers} writers (one message in flight each, msg id per message, ` +
      `retried with the same id until acked), kill after a random 0-${maxUpMs} ms of writing\n`,
  );
  const runs = await runPerEngine(engines, {
    intro: (engine) => `${engine}: kill -9 of ${engine === "embedded" ? "the engine's child process" : "nats-server"}`,
    run: (engine) => runDrill({ engine, kills, writers, maxUpMs, timeLimitMs, log: (line) => console.log(line) }),
    summary,
  });
  const counts = ["lost", "duplicated", "reordered", "wrongSeq", "unexpected"] as const;
  const table = new Table(
    [
      "engine",
      "kills",
      "writers",
      "acked",
      "stored",
      "lost",
      "duplicated",
      "reordered",
      "wrong-seq",
      "unexpected",
      "result",
    ],
    runs.results.map((r) => [
      r.engine,
      String(r.kills.length),
      String(r.writers),
      String(r.acked),
      String(r.stored),
      ...counts.map((k) => String(r[k])),
      r.pass ? "pass" : "FAIL",
    ]),
  );
  return reportPerEngine(cli, runs, table, "all counts 0");
}

runMain(main);
