// underFailures: the run both NATS drills share: the chat and its traffic, failures one after another (each
// caused and measured by the drill), then the end checks; with its options, its outcome and the log of a recovery.
import { describeError } from "../clock.ts";
import { ChatDrill } from "./chat-drill.ts";
import { type FinalReport, type Recovery, recoveryLine, recoveryPassed } from "./recovery.ts";

/** What a drill run ends with: a record per failure, the end checks if it got there, why it stopped early. */
export interface DrillOutcome<R> {
  records: R[];
  final?: FinalReport;
  error?: string;
  pass: boolean;
}

/** What both NATS drills take: the traffic, its pace, and how long a recovery may take. */
export interface UnderFailuresOptions {
  writers: number;
  observers: number;
  /** Pause between one writer's sends (default 200 ms). */
  intervalMs?: number;
  /** Writing time between a recovery and the next failure (ms). */
  upMs: number;
  recoveryLimitMs?: number;
  log?: (line: string) => void;
}

/** A recovery's line, then what the chat and the drill's engine logged meanwhile, and the drill's notes. */
export function logRecovery(log: (line: string) => void, r: Recovery): void {
  log(recoveryLine(r));
  for (const l of r.chatLog) log(`      chat: ${l}`);
  for (const l of r.drillLog) log(`      drill's engine: ${l}`);
  for (const l of r.notes) log(`      note: ${l}`);
}

/**
 * The chat and its traffic on `servers`, `failures` failures (each caused and measured by `fail`, with
 * writing time after it), then the end checks. Stops the chat and then `stopServers` in any case.
 */
export async function underFailures<R extends Recovery>(
  o: UnderFailuresOptions,
  run: {
    servers: string[];
    replicas?: number;
    stopServers: () => Promise<void>;
    failures: number;
    /** The line that says where everything runs. */
    where: (drill: ChatDrill) => string;
    /** Failure `k` (from 1) and its recovery. */
    fail: (drill: ChatDrill, k: number) => Promise<R>;
    /** Why the drill cannot go on after this record, if it cannot (the record is kept). */
    stopAfter?: (record: R) => string | undefined;
  },
): Promise<DrillOutcome<R>> {
  const log = o.log ?? (() => {});
  const records: R[] = [];
  let drill: ChatDrill | undefined;
  try {
    drill = await ChatDrill.start({
      servers: run.servers,
      ...(run.replicas ? { replicas: run.replicas } : {}),
      writers: o.writers,
      observers: o.observers,
      ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}),
      ...(o.recoveryLimitMs ? { recoveryLimitMs: o.recoveryLimitMs } : {}),
      log,
    });
    log(run.where(drill));
    await drill.warmUp(o.writers * 3, o.upMs);
    for (let k = 1; k <= run.failures; k++) {
      const record = await run.fail(drill, k);
      records.push(record);
      const stop = run.stopAfter?.(record);
      if (stop) throw new Error(stop);
      if (k < run.failures) await drill.waitAcks(o.writers, o.upMs);
    }
    await drill.waitAcks(o.writers, Math.min(o.upMs, 1_000));
    const final = await drill.finish();
    for (const l of final.lines) log(l);
    const pass = final.pass && records.length === run.failures && records.every(recoveryPassed);
    if (!pass) log(`the chat process's log: ${drill.saveChatLog()}`);
    return { records, final, pass };
  } catch (err) {
    if (drill) log(`the chat process's log: ${drill.saveChatLog()}`);
    return { records, error: describeError(err), pass: false };
  } finally {
    await drill?.close();
    await run.stopServers();
  }
}
