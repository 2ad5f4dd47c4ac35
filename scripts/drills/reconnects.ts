// `npm run drill:reconnects`: during chat traffic one tab's stream is dropped from the client side 100
// times (random moments, random short gaps) and reopened like the browser runtime does (same tab id, the
// view's hash and the list's newest position). Before every drop and at the end it must show every message
// the room got, each once and in order: the same list as an observer that never dropped (over the range
// both show: the server keeps each list to the room's newest ~1,000), and every message a writer saw
// acknowledged from its list's oldest item on.
// See scripts/drills/reconnects/drill.ts. Exits non-zero on a failed check.
import { exitOnSignals } from "../../harness/cleanup.ts";
import { defineCommand, enginesOf, runMain } from "../../harness/cli.ts";
import { Table } from "../../harness/stats.ts";
import { engineFlag, reportPerEngine, runPerEngine } from "./command.ts";
import { runReconnectsDrill, summary } from "./reconnects/drill.ts";

const cli = defineCommand({
  script: "drill:reconnects",
  file: "scripts/drills/reconnects.ts",
  title: "drill:reconnects — one tab dropped and reconnected again and again during traffic",
  about: `Drops one tab's stream from the client side again and again during chat traffic and reconnects it like
the browser runtime; before every drop and at the end it must show every message once and in order,
the same list as an observer that never dropped.`,
  quick: "fewer drops",
  flags: {
    engine: engineFlag("embedded"),
    drops: {
      type: "int",
      help: "client-side drops and reconnects of the dropping tab",
      default: 100,
      quick: 30,
      min: 1,
      max: 10_000,
    },
    writers: { type: "int", help: "writer tabs", default: 5, min: 1, max: 50 },
    interval: { type: "int", arg: "ms", help: "pause between one writer's sends", default: 300, min: 100, max: 10_000 },
    "max-up": {
      type: "int",
      arg: "ms",
      help: "the tab stays connected 50 ms to this long between drops",
      default: 350,
      min: 50,
      max: 60_000,
    },
    "max-gap": {
      type: "int",
      arg: "ms",
      help: "and away 0 ms to this long before reconnecting",
      default: 300,
      min: 0,
      max: 60_000,
    },
  },
});
const { drops, writers, interval } = cli.values;
const maxUp = cli.values["max-up"];
const maxGap = cli.values["max-gap"];
const engines = enginesOf(cli.values.engine);

exitOnSignals();

async function main(): Promise<number> {
  for (const line of cli.header()) console.log(line);
  console.log(
    `${engines.join(" + ")}: ${drops} drops (up 50-${maxUp} ms, away 0-${maxGap} ms), ${writers} writers ` +
      `(a send every ${interval} ms each), 1 observer that never drops\n`,
  );
  const runs = await runPerEngine(engines, {
    needsNatsServer: true,
    run: (engine) =>
      runReconnectsDrill({
        engine,
        drops,
        writers,
        intervalMs: interval,
        maxUpMs: maxUp,
        maxGapMs: maxGap,
        log: (line) => console.log(line),
      }),
    summary,
  });
  const table = new Table(
    [
      "engine",
      "drops",
      "gaps that missed messages",
      "room messages",
      "shown",
      "missing",
      "extra",
      "duplicated",
      "reordered",
      "same as observer",
      "acked",
      "lost acked",
      "caught up median / max (ms)",
      "result",
    ],
    runs.results.map((r) => [
      r.engine,
      String(r.drops),
      `${r.missedWhileAway} (${r.messagesWhileAway} msgs)`,
      String(r.roomMessages),
      String(r.shown),
      String(r.missing.length),
      String(r.extra.length),
      String(r.duplicated.length),
      String(r.reordered.length),
      r.sameAsObserver ? "yes" : "NO",
      String(r.acks.acked),
      String(r.acks.lost.length),
      `${r.catchUpMs.median.toFixed(0)} / ${r.catchUpMs.max.toFixed(0)}`,
      r.pass ? "pass" : "FAIL",
    ]),
  );
  return reportPerEngine(cli, runs, table, "every message, once, in order after every reconnect");
}

runMain(main);
