// What the NATS drills measure: a recovery from one failure (Recovery) and the end checks (FinalReport), the
// helpers that read them off the tabs and the NATS logs, and the verdict and summary line of a recovery.
import type { ChatTab, ShownMessage } from "../../../harness/chat-client.ts";
import { now } from "../clock.ts";
import { few, type ListCheck, labelOf, type Traffic } from "../traffic.ts";

export interface Snapshot {
  at: number;
  /** Labels acknowledged so far. */
  acked: Set<string>;
}

export interface Recovery {
  /** When the failure happened: the process was gone. */
  failedAt: number;
  /** nats-server healthy again (bounce); undefined in the cluster (no restart before recovery). */
  backAt?: number;
  /** Per observer: when it first showed a message stored after the failure. */
  observersAt: Array<number | undefined>;
  /** The first acknowledgement of a message stored after the failure. */
  firstAckAt?: number;
  /** Messages the chat accepted between the failure and `backAt` (or the first new ack). */
  sentWhileDown: number;
  /** When the last of them was on every observer; undefined if some never got there. */
  sentWhileDownShownAt?: number;
  sentWhileDownMissing: string[];
  /** Retry presses during this recovery. */
  retried: number;
  /** Acknowledged before the failure, missing on some observer after the recovery. */
  lostBefore: string[];
  /** Messages newly shown out of their writer's order on some observer, described with their seqs. */
  reordered: string[];
  /** The chat's NATS log lines (disconnect, reconnect, feed restart/resume, publish failures) meanwhile. */
  chatLog: string[];
  /** The same from the drill's own engine (its subscription times the stored messages). */
  drillLog: string[];
  /** Why a measurement is missing, when the drill knows. */
  notes: string[];
}

export interface FinalReport {
  /** Messages the chat accepted (2xx), and of those acknowledged (shown stored in the writer's tab). */
  accepted: number;
  acked: number;
  /** Accepted, but never shown stored in the writer's tab (even after Retry). */
  neverStored: string[];
  /** Sends answered with an error status, and sends with no answer. */
  rejected: number;
  unanswered: number;
  observers: ListCheck[];
  fresh: ListCheck & { shown: number; evicted: number };
  /** Retry presses over the whole drill. */
  retried: number;
  /** Messages stored after newer ones of their writer because Retry sent them again (not counted as reordered). */
  afterRetry: number;
  pass: boolean;
  lines: string[];
}

export function snapshot(traffic: Traffic): Snapshot {
  const acked = new Set<string>();
  for (const w of traffic.writers) for (const n of w.acked.keys()) acked.add(`w${w.writer}#${n}`);
  return { at: now(), acked };
}

const labelled = new WeakMap<readonly ShownMessage[], { version: number; map: Map<string, ShownMessage> }>();

/** A tab's messages by label, computed once per change of the tab (the drill polls it every 25 ms). */
export function labelsOf(tab: ChatTab): Map<string, ShownMessage> {
  const hit = labelled.get(tab.messages);
  if (hit && hit.version === tab.version) return hit.map;
  const map = byLabel(tab.messages);
  labelled.set(tab.messages, { version: tab.version, map });
  return map;
}

export function byLabel(messages: readonly ShownMessage[]): Map<string, ShownMessage> {
  const out = new Map<string, ShownMessage>();
  for (const m of messages) {
    const l = labelOf(m.text);
    if (l) out.set(`w${l.writer}#${l.n}`, m);
  }
  return out;
}

/** Labels a writer's tab first showed (as "sending": the chat took them) in [from, to). */
export function sentBetween(traffic: Traffic, from: number, to: number): string[] {
  const out: string[] = [];
  traffic.writers.forEach((w, k) => {
    const tab = traffic.writerTab(k);
    for (const m of tab.messages) {
      const l = labelOf(m.text);
      const at = tab.arrivals.get(m.id) ?? 0;
      if (l?.writer === w.writer && at >= from && at < to) out.push(`w${l.writer}#${l.n}`);
    }
  });
  return out;
}

/** For each reordered label on a list: the earlier-shown message of the same writer with a higher number. */
export function explainReorders(messages: readonly ShownMessage[], labels: readonly string[]): string[] {
  const want = new Set(labels);
  const out: string[] = [];
  const seen: Array<{ writer: number; n: number; seq: number | undefined }> = [];
  for (const m of messages) {
    const l = labelOf(m.text);
    if (!l) continue;
    const key = `w${l.writer}#${l.n}`;
    if (want.has(key)) {
      const before = seen.find((s) => s.writer === l.writer && s.n > l.n);
      out.push(
        before
          ? `w${l.writer}#${before.n} (seq ${before.seq}) before w${l.writer}#${l.n} (seq ${m.seq})`
          : `${key} (seq ${m.seq})`,
      );
    }
    seen.push({ writer: l.writer, n: l.n, seq: m.seq });
  }
  return out;
}

const CHAT_LOG = new Set([
  "nats connected",
  "nats disconnected",
  "nats reconnected",
  "nats feed restart",
  "nats feed resumed",
  "chat publish failed",
  "nats async error",
  "nats stream recreated: new epoch",
  "nats feed skipped seqs",
  "nats feed consumer create failed",
  "nats feed direct read failed",
  "nats feed read directly",
  "nats stream leader elected",
  "nats feed delivery failed",
]);

/** The chat's NATS-related log lines with a time in [from, to], shortened. */
export function natsLog(output: string, from: number, to: number): string[] {
  const out: Array<{ msg: string; line: string; n: number; last: string }> = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      const t = Number(rec.time);
      if (typeof rec.msg !== "string" || !CHAT_LOG.has(rec.msg) || t < from - 50 || t > to) continue;
      const extra = [
        "stream",
        "server",
        "reason",
        "step",
        "attempt",
        "lastSeq",
        "fromSeq",
        "from",
        "to",
        "consumer",
        "ms",
      ]
        .filter((k) => rec[k] !== undefined)
        .map((k) => `${k}=${String(rec[k])}`);
      if (rec.err) extra.push(`err=${JSON.stringify((rec.err as { message?: string }).message ?? rec.err)}`);
      const at = `+${Math.round(t - from)} ms`;
      const prev = out.at(-1);
      // A run of one kind (every publish of an outage failing) is one line.
      if (prev?.msg === rec.msg && rec.msg === "chat publish failed") {
        prev.n++;
        prev.last = at;
        continue;
      }
      out.push({
        msg: rec.msg,
        line: `${at} ${rec.msg}${extra.length ? ` (${extra.join(", ")})` : ""}`,
        n: 1,
        last: at,
      });
    } catch {
      // not a log line
    }
  }
  return out.map((o) => (o.n > 1 ? `${o.line} ×${o.n}, the last at ${o.last}` : o.line));
}

/** Did a recovery meet the bar: every observer back, nothing lost or out of order, every outage message shown. */
export function recoveryPassed(r: Recovery): boolean {
  return (
    r.observersAt.every((x) => x !== undefined) &&
    r.firstAckAt !== undefined &&
    r.sentWhileDownMissing.length === 0 &&
    r.lostBefore.length === 0 &&
    r.reordered.length === 0
  );
}

/** When the last observer received again; undefined if one never did. */
export function everyObserverAt(r: Recovery): number | undefined {
  return r.observersAt.some((x) => x === undefined) ? undefined : Math.max(...(r.observersAt as number[]));
}

/** `at` minus `from`, undefined where either is. */
export function since(from: number | undefined, at: number | undefined): number | undefined {
  return at === undefined || from === undefined ? undefined : at - from;
}

/** A time in whole ms, "—" where there is none. */
export const ms = (v: number | undefined) => (v === undefined ? "—" : String(Math.round(v)));

/** A recovery's summary line, as the drills log it. */
export function recoveryLine(r: Recovery): string {
  const all = everyObserverAt(r);
  const from = r.backAt ?? r.failedAt;
  const word = r.backAt !== undefined ? "back" : "kill";
  return (
    `    every observer again ${ms(since(from, all))} ms after ${word}` +
    `${r.backAt !== undefined ? ` (${ms(since(r.failedAt, all))} ms after the stop)` : ""}` +
    `, first new ack ${ms(since(from, r.firstAckAt))} ms; ` +
    `${r.sentWhileDown} sent while down, all on every observer ` +
    `${r.sentWhileDownShownAt === undefined ? `NEVER (missing ${few(r.sentWhileDownMissing)})` : `${ms(r.sentWhileDownShownAt - from)} ms after ${word}`}` +
    `; Retry pressed ${r.retried}; acked lost ${few(r.lostBefore)}; reordered ${few(r.reordered, 3)}`
  );
}
