// The NATS drills' tables (bounces, leader kills, the end checks) and printOutcome, what their commands
// print when a run ends.
import { Table } from "../../../harness/stats.ts";
import type { BounceRecord } from "./bounce.ts";
import type { KillRecord } from "./cluster.ts";
import { everyObserverAt, type FinalReport, ms, type Recovery, since } from "./recovery.ts";
import type { DrillOutcome } from "./under-failures.ts";

/** The heads of outageCells' columns; `from` names the moment its times are measured from. */
function outageHead(from: string): string[] {
  return ["sent while down", `${from} → all of them shown ms`, "Retry", "acked lost", "reordered"];
}

/** The cells both tables end a recovery's row with: what was sent while down and when it showed, Retry, losses. */
function outageCells(r: Recovery, from: number): string[] {
  return [
    String(r.sentWhileDown),
    r.sentWhileDownShownAt === undefined
      ? `MISSING ${r.sentWhileDownMissing.length}`
      : ms(r.sentWhileDownShownAt - from),
    String(r.retried),
    String(r.lostBefore.length),
    String(r.reordered.length),
  ];
}

export function bounceTable(records: readonly BounceRecord[]): Table {
  return new Table(
    [
      "bounce",
      "signal",
      "down ms",
      "back → every observer ms",
      "stop → every observer ms",
      "back → first ack ms",
      ...outageHead("back"),
    ],
    records.map((r, i) => {
      const all = everyObserverAt(r);
      const back = r.backAt ?? r.failedAt;
      return [
        String(i + 1),
        r.signal,
        ms(r.downMs),
        ms(since(back, all)),
        ms(since(r.failedAt, all)),
        ms(since(back, r.firstAckAt)),
        ...outageCells(r, back),
      ];
    }),
  );
}

export function clusterTable(records: readonly KillRecord[]): Table {
  return new Table(
    [
      "kill",
      "leader killed",
      "chat on",
      "new leader",
      "kill → elected ms",
      "kill → first ack ms",
      "kill → every observer ms",
      "elected → every observer ms",
      ...outageHead("kill"),
      "rejoin ms",
    ],
    records.map((r, i) => {
      const all = everyObserverAt(r);
      return [
        String(i + 1),
        r.leader,
        r.chatOn,
        r.newLeader,
        ms(r.electedMs),
        ms(since(r.failedAt, r.firstAckAt)),
        ms(since(r.failedAt, all)),
        ms(r.electedMs === undefined ? undefined : since(r.failedAt + r.electedMs, all)),
        ...outageCells(r, r.failedAt),
        ms(r.rejoinMs),
      ];
    }),
  );
}

/**
 * What the NATS drill commands print first when a run ends: why it stopped early, if it did, and the
 * table of its failures. Returns that table and the end-check table (printed last, after the timings).
 */
export function printOutcome<R>(
  out: DrillOutcome<R>,
  tableOf: (records: readonly R[]) => Table,
): { table: Table; final: Table | string } {
  if (out.error) console.log(`\ndrill did not complete: ${out.error}`);
  const table = tableOf(out.records);
  console.log(`\n${table}\n`);
  return { table, final: finalTable(out.final) };
}

/** The end-check table row shared by both drills. */
export function finalTable(f: FinalReport | undefined): Table | string {
  if (!f) return "end checks: not reached";
  const obs = f.observers;
  const sum = (k: "lost" | "duplicated" | "reordered") => obs.reduce((s, c) => s + c[k].length, 0);
  return new Table(
    [
      "accepted",
      "acked",
      "never stored",
      "Retry",
      "observers lost",
      "dup",
      "reord",
      "fresh tab shown",
      "lost",
      "dup",
      "reord",
      "result",
    ],
    [
      [
        String(f.accepted),
        String(f.acked),
        String(f.neverStored.length),
        String(f.retried),
        String(sum("lost")),
        String(sum("duplicated")),
        String(sum("reordered")),
        String(f.fresh.shown),
        String(f.fresh.lost.length),
        String(f.fresh.duplicated.length),
        String(f.fresh.reordered.length),
        f.pass ? "pass" : "FAIL",
      ],
    ],
  );
}
