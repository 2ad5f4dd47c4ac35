// `npm run drill:crash`: kill -9 the CHAT SERVER (the real chat CLI, a child process) at random moments
// while 10 writer tabs send numbered messages through the chat's protocol, start it again on the same
// port and data, and check that every message a writer saw stored is in the room exactly once and in
// order: on a fresh tab after "Load older" to the start, on the stream read through the pub/sub API, and
// on the observer tabs that stayed open through every restart. Embedded engine (a data dir) and NATS JetStream (a real nats-server that stays up). See
// scripts/drills/crash/drill.ts. The engine-level drill is `npm run drill:engine-crash`.
// Exits non-zero if anything acknowledged is lost, duplicated or reordered (or the drill could not complete).
import { exitOnSignals } from "../../harness/cleanup.ts";
import { defineCommand, enginesOf, runMain } from "../../harness/cli.ts";
import { span, Table } from "../../harness/stats.ts";
import { engineFlag, reportPerEngine, runPerEngine, sendIntervalFlag } from "./command.ts";
import { type CrashDrillResult, runCrashDrill, summary } from "./crash/drill.ts";

const cli = defineCommand({
  script: "drill:crash",
  file: "scripts/drills/crash.ts",
  title: "drill:crash — kill -9 of the chat server under a storm of writers, then check every acked message",
  about: `Kills the chat server with SIGKILL under a storm of writer tabs, restarts it on the same port and data,
and checks every acknowledged message: present once, in each writer's order (on a fresh tab, in the
stream, and on the observer tabs, which reconnect after every restart); and every send the chat answered:
stored once, or shown "not sent" in its writer's tab, never silently missing. On NATS every kill comes
between Send's answer and the stream's ack (nats-server paused first; then resumed, or killed too).`,
  quick: "fewer kills",
  flags: {
    engine: engineFlag("both"),
    kills: { type: "int", help: "kill -9 count per engine", default: 6, quick: 3, min: 1, max: 30 },
    writers: { type: "int", help: "writer tabs, one browser session each", default: 10, min: 1, max: 50 },
    observers: { type: "int", help: "observer tabs", default: 3, min: 1, max: 50 },
    interval: sendIntervalFlag,
    "kill-anytime": { type: "boolean", help: "NATS: kill at a random moment instead of between answers and acks" },
  },
});
const { kills, writers, observers, interval } = cli.values;
const killAnytime = cli.values["kill-anytime"];
const engines = enginesOf(cli.values.engine);

exitOnSignals();

/** The least and the greatest of `xs`; null when there are none. */
const extent = (xs: number[]) => (xs.length === 0 ? null : { min: Math.min(...xs), max: Math.max(...xs) });
const showExtent = (e: { min: number; max: number } | null) => (e ? span([e.min, e.max]) : "-");

/** The figures of one engine's row in the table (and in the JSON). */
function figures(r: CrashDrillResult) {
  const all = [r.tab, r.stream, ...r.observers];
  return {
    engine: r.engine,
    kills: r.kills.length,
    acked: r.acked,
    lost: Math.max(...all.map((c) => c.lost.length)),
    duplicated: Math.max(...all.map((c) => c.duplicated.length)),
    reordered: Math.max(...all.map((c) => c.reordered.length)),
    unackedButStored: r.stream.unackedPresent,
    answeredNotYetStoredAtAKill: r.answeredUnstored,
    acceptedNeverStored: r.acceptedNotStored,
    acceptedMissingFromItsTab: r.acceptedMissing.length,
    shownNotSent: r.notSent,
    chatStartMs: extent(r.kills.map((k) => k.startMs)),
    restartToAllTabsReceivingMs: extent(r.kills.map((k) => k.allReceiveMs)),
    pass: r.pass,
  };
}

async function main(): Promise<number> {
  for (const line of cli.header()) console.log(line);
  console.log(
    `${engines.join(" + ")}: ${kills} kills, ${writers} writers (a send every ${interval} ms each, chat --send-rate 10), ` +
      `${observers} observers; kill after a random number of acks plus 0-250 ms (sooner if a send is in flight; ` +
      `on NATS${killAnytime ? " too" : ": with nats-server paused, so sends are answered and not stored"}), down 0-300 ms\n`,
  );
  const runs = await runPerEngine(engines, {
    needsNatsServer: true,
    intro: (engine) =>
      `${engine}: kill -9 of the chat process` +
      (engine !== "nats"
        ? ""
        : killAnytime
          ? " (nats-server stays up)"
          : " between answers and acks (nats-server paused, then resumed or killed as well)"),
    run: (engine) =>
      runCrashDrill({
        engine,
        kills,
        writers,
        observers,
        intervalMs: interval,
        betweenAnswerAndAck: !killAnytime,
        log: (line) => console.log(line),
      }),
    summary,
    details: (r) =>
      (
        [
          ["fresh tab", r.tab],
          ["stream", r.stream],
          ...r.observers.map((o, i) => [`observer ${i + 1}`, o] as const),
        ] as const
      ).flatMap(([what, c]) =>
        (["lost", "duplicated", "reordered"] as const)
          .filter((k) => c[k].length > 0)
          .map((k) => `  ${what} ${k}: ${c[k].slice(0, 20).join(", ")}`),
      ),
  });
  const rows = runs.results.map(figures);
  const table = new Table(
    [
      "engine",
      "kills",
      "acked",
      "lost",
      "duplicated",
      "reordered",
      "unacked but stored",
      "answered, not yet stored at a kill",
      "accepted, never stored",
      "accepted, missing from its tab",
      "shown not sent",
      "chat start (ms)",
      "restart → all tabs receiving (ms)",
      "result",
    ],
    rows.map((f) => [
      f.engine,
      String(f.kills),
      String(f.acked),
      String(f.lost),
      String(f.duplicated),
      String(f.reordered),
      String(f.unackedButStored),
      f.answeredNotYetStoredAtAKill > 0 ? String(f.answeredNotYetStoredAtAKill) : "-",
      String(f.acceptedNeverStored),
      String(f.acceptedMissingFromItsTab),
      String(f.shownNotSent),
      showExtent(f.chatStartMs),
      showExtent(f.restartToAllTabsReceivingMs),
      f.pass ? "pass" : "FAIL",
    ]),
  );
  return reportPerEngine(cli, runs, table, "every acknowledged message present once, in order", {
    engines: rows,
    results: runs.results,
  });
}

runMain(main);
