// `npm run drill:crash`: kill -9 the CHAT SERVER (the real chat CLI, a child process) at random moments
// while 10 writer tabs send numbered messages through the chat's protocol, start it again on the same
// port and data, and check that every message a writer saw stored is in the room exactly once and in
// order: on a fresh tab after "Load older" to the start, on the stream read through the pub/sub API, and
// on the observer tabs that stayed open through every restart. Embedded engine (a data dir) and NATS JetStream (a real nats-server that stays up). See
// scripts/drills/crash/drill.ts. The engine-level drill is `npm run drill:engine-crash`.
// Exits non-zero if anything acknowledged is lost, duplicated or reordered (or the drill could not complete).
import { existsSync } from "node:fs";
import { engineOption, exitOnSignals, header, intOption, parseFlags } from "../../harness/cli.ts";
import { natsServerBin } from "../../harness/nats-server.ts";
import { type ChatEngine, type CrashDrillResult, runCrashDrill, summary } from "./crash/drill.ts";

const HELP = `Usage: npm run drill:crash -- [options]

Kills the chat server with SIGKILL under a storm of writer tabs, restarts it on the same port and data,
and checks every acknowledged message: present once, in each writer's order (on a fresh tab, in the
stream, and on the observer tabs, which reconnect after every restart); and every send the chat answered:
stored once, or shown "not sent" in its writer's tab, never silently missing. On NATS every kill comes
between Send's answer and the stream's ack (nats-server paused first; then resumed, or killed too).

Options:
  --engine <e>     embedded | nats | both (default both)
  --kills <n>      kill -9 count per engine (default 6; --quick 3)
  --writers <n>    writer tabs, one browser session each (default 10)
  --observers <n>  observer tabs (default 3)
  --interval <ms>  pause between one writer's sends (default 200: 5 messages/s each)
  --kill-anytime   NATS: kill at a random moment instead of between answers and acks
  --quick          fewer kills
  --help           show this help
`;

const values = parseFlags(HELP, {
  engine: { type: "string" },
  kills: { type: "string" },
  writers: { type: "string" },
  observers: { type: "string" },
  interval: { type: "string" },
  "kill-anytime": { type: "boolean" },
  quick: { type: "boolean" },
});

const quick = values.quick === true;
const KILLS = intOption("kills", values.kills, quick ? 3 : 6, 1, 30);
const WRITERS = intOption("writers", values.writers, 10, 1, 50);
const OBSERVERS = intOption("observers", values.observers, 3, 1, 50);
const INTERVAL = intOption("interval", values.interval, 200, 100, 10_000);
const ENGINES: ChatEngine[] = engineOption(values.engine, "both");

// Children and temp dirs are killed/removed by the exit handlers of the drill and the test supports.
exitOnSignals();

async function main(): Promise<number> {
  for (const line of header(
    "drill:crash — kill -9 of the chat server under a storm of writers, then check every acked message",
    "drill:crash",
    "scripts/drills/crash.ts",
  ))
    console.log(line);
  console.log(
    `${ENGINES.join(" + ")}: ${KILLS} kills, ${WRITERS} writers (a send every ${INTERVAL} ms each, chat --send-rate 10), ` +
      `${OBSERVERS} observers; kill after a random number of acks plus 0-250 ms (sooner if a send is in flight; ` +
      `on NATS${values["kill-anytime"] ? " too" : ": with nats-server paused, so sends are answered and not stored"}), down 0-300 ms\n`,
  );
  const results: CrashDrillResult[] = [];
  let failed = false;
  for (const engine of ENGINES) {
    if (engine === "nats" && !existsSync(natsServerBin())) {
      console.log(`nats: SKIPPED, no nats-server binary at ${natsServerBin()}\n`);
      failed = true;
      continue;
    }
    console.log(
      `${engine}: kill -9 of the chat process` +
        (engine !== "nats"
          ? ""
          : values["kill-anytime"]
            ? " (nats-server stays up)"
            : " between answers and acks (nats-server paused, then resumed or killed as well)"),
    );
    try {
      const r = await runCrashDrill({
        engine,
        kills: KILLS,
        writers: WRITERS,
        observers: OBSERVERS,
        intervalMs: INTERVAL,
        betweenAnswerAndAck: values["kill-anytime"] !== true,
        log: (line) => console.log(line),
      });
      results.push(r);
      console.log(`${summary(r)}\n`);
      if (!r.pass) failed = true;
      for (const [what, c] of [
        ["fresh tab", r.tab],
        ["stream", r.stream],
        ...r.observers.map((o, i) => [`observer ${i + 1}`, o] as const),
      ] as const) {
        if (c.lost.length > 0) console.log(`  ${what} lost: ${c.lost.slice(0, 20).join(", ")}`);
        if (c.duplicated.length > 0) console.log(`  ${what} duplicated: ${c.duplicated.slice(0, 20).join(", ")}`);
        if (c.reordered.length > 0) console.log(`  ${what} reordered: ${c.reordered.slice(0, 20).join(", ")}`);
      }
    } catch (err) {
      failed = true;
      console.log(
        `${engine}: drill did not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
  }
  const range = (xs: number[]) =>
    xs.length === 0 ? "-" : `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))}`;
  console.log(
    "| engine | kills | acked | lost | duplicated | reordered | unacked but stored | answered, not yet stored at a kill | " +
      "accepted, never stored | accepted, missing from its tab | shown not sent | chat start (ms) | " +
      "restart → all tabs receiving (ms) | result |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const all = [r.tab, r.stream, ...r.observers];
    const lost = Math.max(...all.map((c) => c.lost.length));
    const dup = Math.max(...all.map((c) => c.duplicated.length));
    const reo = Math.max(...all.map((c) => c.reordered.length));
    console.log(
      `| ${r.engine} | ${r.kills.length} | ${r.acked} | ${lost} | ${dup} | ${reo} | ${r.stream.unackedPresent} | ` +
        `${r.answeredUnstored > 0 ? r.answeredUnstored : "-"} | ${r.acceptedNotStored} | ${r.acceptedMissing.length} | ` +
        `${r.notSent} | ${range(r.kills.map((k) => k.startMs))} | ${range(r.kills.map((k) => k.allReceiveMs))} | ` +
        `${r.pass ? "pass" : "FAIL"} |`,
    );
  }
  console.log(failed ? "\nFAIL" : "\nevery acknowledged message present once, in order: PASS");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
