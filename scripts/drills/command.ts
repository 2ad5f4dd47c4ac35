// What the drill commands share: flags of the same meaning (--engine, the writers' pace, the NATS drills'
// traffic), and for the drills that run once per engine the loop over the engines (a drill that cannot
// start or does not complete fails the command, and the others still run).
import { existsSync } from "node:fs";
import type { ChoiceFlag, EngineName, IntFlag } from "../../harness/cli.ts";
import { natsServerBin } from "../../harness/nats-server.ts";
import type { Table } from "../../harness/stats.ts";
import { describeError } from "./clock.ts";

type EngineChoice = "embedded" | "nats" | "both";

/** The --engine flag of a drill that runs on either engine or both, one after the other. */
export function engineFlag(fallback: EngineChoice): ChoiceFlag<EngineChoice> {
  return {
    type: "choice",
    arg: "e",
    choices: ["embedded", "nats", "both"],
    default: fallback,
    help: "the engine(s) the chat runs on, one drill each",
  };
}

/** --interval of the drills whose writers send 5 messages/s each by default. */
export const sendIntervalFlag: IntFlag = {
  type: "int",
  arg: "ms",
  help: "pause between one writer's sends; at 200, 5 messages/s each",
  default: 200,
  min: 100,
  max: 10_000,
};

/** The traffic flags of the NATS drills (the chat on nats-server, failures under it); `up` says when it writes. */
export function natsTrafficFlags(upHelp: string) {
  return {
    writers: { type: "int", help: "writer tabs", default: 10, min: 1, max: 100 },
    interval: {
      type: "int",
      arg: "ms",
      help: "pause between one writer's messages; at 200, 5 messages/s each and 50/s in the room with 10 writers (the room keeps its last 1,000)",
      default: 200,
      min: 20,
      max: 60_000,
    },
    observers: { type: "int", help: "observer tabs", default: 3, quick: 2, min: 1, max: 50 },
    up: { type: "int", arg: "ms", help: upHelp, default: 3_000, quick: 1_500, min: 0, max: 600_000 },
  } satisfies Record<string, IntFlag>;
}

/** The options of the NATS drills that natsTrafficFlags declares, from the parsed values. */
export function natsTrafficOptions(v: { writers: number; interval: number; observers: number; up: number }) {
  return { writers: v.writers, intervalMs: v.interval, observers: v.observers, upMs: v.up };
}

export interface EngineRuns<R> {
  /** The results of the drills that completed. */
  results: R[];
  /** Engines whose drill was not run or did not complete, and why. */
  incomplete: Array<{ engine: EngineName; reason: string }>;
  /** Every drill completed and passed. */
  pass: boolean;
}

/**
 * Runs the drill on each engine in turn, printing `intro` before and `summary` after each. NATS needs
 * the nats-server binary: without it that drill is reported as not run (a failure), not skipped quietly.
 */
export async function runPerEngine<R extends { pass: boolean }>(
  engines: readonly EngineName[],
  drill: {
    run: (engine: EngineName) => Promise<R>;
    summary: (r: R) => string;
    intro?: (engine: EngineName) => string;
    /** Checks the nats-server binary before the NATS drill (a drill that starts it itself can leave this out). */
    needsNatsServer?: boolean;
    /** More lines after the summary. */
    details?: (r: R) => string[];
  },
): Promise<EngineRuns<R>> {
  const out: EngineRuns<R> = { results: [], incomplete: [], pass: true };
  for (const engine of engines) {
    if (drill.needsNatsServer && engine === "nats" && !existsSync(natsServerBin())) {
      const reason = `no nats-server binary at ${natsServerBin()}`;
      console.log(`nats: SKIPPED, ${reason}\n`);
      out.incomplete.push({ engine, reason });
      out.pass = false;
      continue;
    }
    if (drill.intro) console.log(drill.intro(engine));
    try {
      const r = await drill.run(engine);
      out.results.push(r);
      console.log(`${drill.summary(r)}\n`);
      if (!r.pass) out.pass = false;
      for (const line of drill.details?.(r) ?? []) console.log(line);
    } catch (err) {
      const reason = describeError(err);
      out.incomplete.push({ engine, reason });
      out.pass = false;
      console.log(`${engine}: drill did not complete: ${reason}\n`);
    }
  }
  return out;
}

/**
 * The end of a per-engine drill command: its table, its results as JSON (`engines` and anything in
 * `more`), the verdict and the exit status.
 */
export function reportPerEngine<R>(
  cli: { writeJson(results: unknown): void },
  runs: EngineRuns<R>,
  table: Table,
  verdict: string,
  more: Record<string, unknown> = {},
): number {
  console.log(String(table));
  cli.writeJson({
    tables: { engines: table },
    pass: runs.pass,
    engines: runs.results,
    incomplete: runs.incomplete,
    ...more,
  });
  console.log(runs.pass ? `\n${verdict}: PASS` : "\nFAIL");
  return runs.pass ? 0 : 1;
}
