// Time in the drills: one clock for every measurement (ms since the epoch with sub-millisecond
// resolution, so it compares with the arrival times the tabs record and the times the stream stores),
// random moments and pauses, and waiting for a condition within the drill's hard time limit.
import { sleep } from "../../harness/cleanup.ts";

export const now = (): number => performance.timeOrigin + performance.now();

/** A random integer in [min, max]. */
export const randomBetween = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** The drill reached its time limit: a failure of the drill, reported as such. */
export class DrillTimeoutError extends Error {
  override name = "DrillTimeoutError";
}

/** Resolves once `cond` holds; throws DrillTimeoutError "time limit reached waiting for <what>" past `deadline`. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  deadline: number,
  stepMs = 10,
): Promise<void> {
  while (!(await cond())) {
    if (now() > deadline) throw new DrillTimeoutError(`time limit reached waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** An error as a drill reports it: the stack where there is one. */
export function describeError(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
