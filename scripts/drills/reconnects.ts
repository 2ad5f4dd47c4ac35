// `npm run drill:reconnects`: during chat traffic one tab's stream is dropped from the client side 100
// times (random moments, random short gaps) and reopened like the browser runtime does (same tab id, the
// view's hash and the list's newest position). Before every drop and at the end it must show every message
// the room got, each once and in order: the same list as an observer that never dropped (over the range
// both show: the server keeps each list to the room's newest ~1,000), and every message a writer saw
// acknowledged from its list's oldest item on.
// See scripts/drills/reconnects/drill.ts. Exits non-zero on a failed check.
import { existsSync } from "node:fs";
import { engineOption, exitOnSignals, header, intOption, parseFlags } from "../../harness/cli.ts";
import { natsServerBin } from "../../harness/nats-server.ts";
import { type ChatEngine, type ReconnectsResult, runReconnectsDrill, summary } from "./reconnects/drill.ts";

const HELP = `Usage: npm run drill:reconnects -- [options]

Options:
  --engine <e>     embedded | nats | both (default embedded)
  --drops <n>      client-side drops and reconnects of the dropping tab (default 100; --quick 30)
  --writers <n>    writer tabs (default 5)
  --interval <ms>  pause between one writer's sends (default 300)
  --max-up <ms>    the tab stays connected 50 ms to this long between drops (default 350)
  --max-gap <ms>   and away 0 ms to this long before reconnecting (default 300)
  --quick          fewer drops
  --help           show this help
`;

const values = parseFlags(HELP, {
  engine: { type: "string" },
  drops: { type: "string" },
  writers: { type: "string" },
  interval: { type: "string" },
  "max-up": { type: "string" },
  "max-gap": { type: "string" },
  quick: { type: "boolean" },
});
const quick = values.quick === true;
const DROPS = intOption("drops", values.drops, quick ? 30 : 100, 1, 10_000);
const WRITERS = intOption("writers", values.writers, 5, 1, 50);
const INTERVAL = intOption("interval", values.interval, 300, 100, 10_000);
const MAX_UP = intOption("max-up", values["max-up"], 350, 50, 60_000);
const MAX_GAP = intOption("max-gap", values["max-gap"], 300, 0, 60_000);
const ENGINES: ChatEngine[] = engineOption(values.engine, "embedded");

exitOnSignals();

async function main(): Promise<number> {
  for (const line of header(
    "drill:reconnects — one tab dropped and reconnected again and again during traffic",
    "drill:reconnects",
    "scripts/drills/reconnects.ts",
  ))
    console.log(line);
  console.log(
    `${ENGINES.join(" + ")}: ${DROPS} drops (up 50-${MAX_UP} ms, away 0-${MAX_GAP} ms), ${WRITERS} writers ` +
      `(a send every ${INTERVAL} ms each), 1 observer that never drops\n`,
  );
  const results: ReconnectsResult[] = [];
  let failed = false;
  for (const engine of ENGINES) {
    if (engine === "nats" && !existsSync(natsServerBin())) {
      console.log(`nats: SKIPPED, no nats-server binary at ${natsServerBin()}\n`);
      failed = true;
      continue;
    }
    try {
      const r = await runReconnectsDrill({
        engine,
        drops: DROPS,
        writers: WRITERS,
        intervalMs: INTERVAL,
        maxUpMs: MAX_UP,
        maxGapMs: MAX_GAP,
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
    "| engine | drops | gaps that missed messages | room messages | shown | missing | extra | duplicated | reordered | " +
      "same as observer | acked | lost acked | caught up median / max (ms) | result |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.engine} | ${r.drops} | ${r.missedWhileAway} (${r.messagesWhileAway} msgs) | ${r.roomMessages} | ${r.shown} | ` +
        `${r.missing.length} | ${r.extra.length} | ${r.duplicated.length} | ${r.reordered.length} | ` +
        `${r.sameAsObserver ? "yes" : "NO"} | ${r.acks.acked} | ${r.acks.lost.length} | ` +
        `${r.catchUpMs.median.toFixed(0)} / ${r.catchUpMs.max.toFixed(0)} | ${r.pass ? "pass" : "FAIL"} |`,
    );
  }
  console.log(failed ? "\nFAIL" : "\nevery message, once, in order after every reconnect: PASS");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
