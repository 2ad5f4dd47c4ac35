// `npm run drill:nats-bounce`: the chat on a single nats-server (JetStream on disk) under drill traffic
// (10 writer tabs, observer tabs); nats-server is stopped, kept down for a while and started again on the
// same port and store, several times. Per bounce it reports when every observer receives again, the first
// new ack, whether the messages sent during the outage show up, acked messages lost and messages out of
// order; at the end every observer and a fresh tab (whole history paged in) are checked. Exits non-zero on
// any failure. The machinery is in scripts/drills/nats-drill.ts.
import { exitOnSignals, header, intOption, parseFlags } from "../../harness/cli.ts";
import { bounceTable, finalTable, runNatsBounce, stats } from "./nats-drill.ts";

const HELP = `Usage: npm run drill:nats-bounce -- [options]

Restarts nats-server under chat traffic and checks that every chat tab gets every acknowledged message
once and in order, and that messages sent during the outage are stored once it is back.

Options:
  --bounces <n>     nats-server restarts (default 5; --quick 2)
  --outage <ms>     how long nats-server stays down each time (default 2000). Messages sent meanwhile
                    are published by the engine's retry (15 s budget) once it is back; beyond that the
                    chat shows them "not sent" and the drill presses Retry like a person would.
  --kill            stop nats-server with SIGKILL instead of SIGTERM
  --writers <n>     writer tabs (default 10)
  --interval <ms>   pause between one writer's messages (default 200: 5 messages/s each, 50/s in the
                    room with 10 writers; the room keeps its last 1,000)
  --observers <n>   observer tabs (default 3; --quick 2)
  --up <ms>         writing time between a recovery and the next bounce (default 3000; --quick 1500)
  --quick           the short version
  --help            show this help
`;

const values = parseFlags(HELP, {
  bounces: { type: "string" },
  outage: { type: "string" },
  kill: { type: "boolean" },
  writers: { type: "string" },
  interval: { type: "string" },
  observers: { type: "string" },
  up: { type: "string" },
  quick: { type: "boolean" },
});
const quick = values.quick === true;
const opts = {
  bounces: intOption("bounces", values.bounces, quick ? 2 : 5, 1, 100),
  outageMs: intOption("outage", values.outage, 2_000, 0, 600_000),
  kill: values.kill === true,
  writers: intOption("writers", values.writers, 10, 1, 100),
  intervalMs: intOption("interval", values.interval, 200, 20, 60_000),
  observers: intOption("observers", values.observers, quick ? 2 : 3, 1, 50),
  upMs: intOption("up", values.up, quick ? 1_500 : 3_000, 0, 600_000),
};
exitOnSignals();

async function main(): Promise<number> {
  for (const l of header(
    "drill:nats-bounce — restart nats-server under chat traffic, then check every tab",
    "drill:nats-bounce",
    "scripts/drills/nats-bounce.ts",
  )) {
    console.log(l);
  }
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
  if (out.error) console.log(`\ndrill did not complete: ${out.error}`);
  console.log(`\n${bounceTable(out.records)}\n`);
  const back = out.records.map((r) =>
    r.observersAt.some((x) => x === undefined) ? undefined : Math.max(...(r.observersAt as number[])) - r.backAt!,
  );
  const ack = out.records.map((r) => (r.firstAckAt === undefined ? undefined : r.firstAckAt - r.backAt!));
  console.log(`back → every observer: ${stats(back)}; back → first ack: ${stats(ack)}\n`);
  console.log(finalTable(out.final));
  console.log(out.pass ? "\nPASS" : "\nFAIL");
  return out.pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
