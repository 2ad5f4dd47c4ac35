// `npm run drill:nats-bounce`: the chat on a single nats-server (JetStream on disk) under drill traffic
// (10 writer tabs, observer tabs); nats-server is stopped, kept down for a while and started again on the
// same port and store, several times. Per bounce it reports when every observer receives again, the first
// new ack, whether the messages sent during the outage show up, acked messages lost and messages out of
// order; at the end every observer and a fresh tab (whole history paged in) are checked. Exits non-zero on
// any failure. The machinery is in scripts/drills/nats/ (bounce.ts).
import { exitOnSignals } from "../../harness/cleanup.ts";
import { defineCommand, runMain } from "../../harness/cli.ts";
import { medianMax } from "../../harness/stats.ts";
import { natsTrafficFlags, natsTrafficOptions } from "./command.ts";
import { runNatsBounce } from "./nats/bounce.ts";
import { everyObserverAt, since } from "./nats/recovery.ts";
import { bounceTable, printOutcome } from "./nats/report.ts";

const cli = defineCommand({
  script: "drill:nats-bounce",
  file: "scripts/drills/nats-bounce.ts",
  title: "drill:nats-bounce — restart nats-server under chat traffic, then check every tab",
  about: `Restarts nats-server under chat traffic and checks that every chat tab gets every acknowledged message
once and in order, and that messages sent during the outage are stored once it is back.`,
  quick: "the short version",
  flags: {
    bounces: { type: "int", help: "nats-server restarts", default: 5, quick: 2, min: 1, max: 100 },
    outage: {
      type: "int",
      arg: "ms",
      help: `how long nats-server stays down each time. Messages sent meanwhile are published by the engine's retry
(15 s budget) once it is back; beyond that the chat shows them "not sent" and the drill presses Retry like a
person would.`,
      default: 2_000,
      min: 0,
      max: 600_000,
    },
    kill: { type: "boolean", help: "stop nats-server with SIGKILL instead of SIGTERM" },
    ...natsTrafficFlags("writing time between a recovery and the next bounce"),
  },
});
const opts = {
  bounces: cli.values.bounces,
  outageMs: cli.values.outage,
  kill: cli.values.kill,
  ...natsTrafficOptions(cli.values),
};
exitOnSignals();

async function main(): Promise<number> {
  for (const l of cli.header()) console.log(l);
  console.log(
    `${opts.bounces} bounces (${opts.kill ? "SIGKILL" : "SIGTERM"}, down ${opts.outageMs} ms), ${opts.writers} writers ` +
      `(one message every ${opts.intervalMs} ms each), ${opts.observers} observers, ${opts.upMs} ms of writing between bounces; ` +
      "chat --send-rate 10\n",
  );
  const out = await runNatsBounce({
    ...opts,
    recoveryLimitMs: Math.max(60_000, opts.outageMs + 45_000),
    log: (l) => console.log(l),
  });
  const { table, final } = printOutcome(out, bounceTable);
  const back = out.records.map((r) => since(r.backAt, everyObserverAt(r)));
  const ack = out.records.map((r) => since(r.backAt, r.firstAckAt));
  console.log(`back → every observer: ${medianMax(back)}; back → first ack: ${medianMax(ack)}\n`);
  console.log(String(final));
  cli.writeJson({
    tables: { bounces: table, final },
    pass: out.pass,
    backToEveryObserverMs: back,
    backToFirstAckMs: ack,
    bounces: out.records,
    final: out.final,
    error: out.error,
  });
  console.log(out.pass ? "\nPASS" : "\nFAIL");
  return out.pass ? 0 : 1;
}

runMain(main);
