// What the drill tests share: a drill run with its progress lines kept for the failure message, and the
// checks every drill's lists must pass (no acknowledged message lost, none twice, none out of order).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EngineName } from "../../harness/cli.ts";
import { natsServerMissing } from "../../harness/nats-server.ts";
import type { FinalReport, Recovery } from "../../scripts/drills/nats/recovery.ts";
import type { ListCheck } from "../../scripts/drills/traffic.ts";

/** A drill's test on the embedded engine and on NATS; the NATS one is skipped (loudly) without nats-server. */
export function testOnEachEngine(
  titles: Record<EngineName, string>,
  timeout: number,
  drill: (engine: EngineName) => Promise<void>,
): void {
  test(titles.embedded, { timeout }, () => drill("embedded"));
  const missing = natsServerMissing();
  test(titles.nats, { timeout, skip: missing }, () => drill("nats"));
}

/**
 * Runs a drill, keeping what it logs; `report` is that log and the drill's own account of its result
 * (`describe`), for the assertion messages.
 */
export async function withReport<R>(
  run: (log: (line: string) => void) => Promise<R>,
  describe: (r: R) => string,
): Promise<{ r: R; report: string }> {
  const lines: string[] = [];
  const r = await run((line) => lines.push(line));
  return { r, report: `${lines.join("\n")}\n${describe(r)}` };
}

/** Every list shows every acknowledged message once, in each writer's order. */
export function assertIntact(checks: readonly ListCheck[], report: string): void {
  assert.deepEqual(
    {
      lost: checks.flatMap((c) => c.lost),
      duplicated: checks.flatMap((c) => c.duplicated),
      reordered: checks.flatMap((c) => c.reordered),
    },
    { lost: [], duplicated: [], reordered: [] },
    report,
  );
}

/**
 * The end checks of a NATS drill: every accepted message stored, every observer and the fresh tab intact,
 * and enough acknowledged messages for that to mean something.
 */
export function assertFinalIntact(final: FinalReport | undefined, report: string): void {
  assert.ok(final, `the drill did not reach its end checks\n${report}`);
  assert.deepEqual(final.neverStored, [], report);
  assertIntact([...final.observers, final.fresh], report);
  assert.ok(final.acked >= 100, `too few acknowledged messages to mean anything\n${report}`);
}

/**
 * One failure of a NATS drill, recovered from: every observer received again, and every message sent
 * meanwhile arrived, none acknowledged before it was lost, none came out of order.
 */
export function assertRecovered(r: Recovery, report: string): void {
  assert.ok(
    r.observersAt.every((t) => t !== undefined),
    `an observer never received again\n${report}`,
  );
  assert.deepEqual(
    { sentWhileDownMissing: r.sentWhileDownMissing, lostBefore: r.lostBefore, reordered: r.reordered },
    { sentWhileDownMissing: [], lostBefore: [], reordered: [] },
    report,
  );
}
