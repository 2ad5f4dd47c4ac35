// Waiting for a condition: tests poll for what they expect instead of sleeping and hoping.

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once `check` holds, or fails with "timed out after N ms waiting until <what>" (`what` may
 * be a function, to describe the state at the time of failure). Checks every `everyMs`.
 */
export async function until(
  what: string | (() => string),
  check: () => unknown,
  timeoutMs = 5_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${typeof what === "string" ? what : what()}`);
    }
    await pause(everyMs);
  }
}
