// ChatDrill: the chat process on nats-server under drill traffic, the drill's own view of the CHAT stream
// and the Retry presser; it measures each recovery from a failure and runs the end checks.
//
// The chat-level NATS drills (scripts/drills/nats/) are shared by their CLIs (scripts/drills/nats-bounce.ts,
// scripts/drills/cluster.ts) and their short versions (test/drills/nats-bounce.test.ts, test/drills/cluster.test.ts).
//
// The chat CLI runs as a real process on real nats-server processes; drill Traffic (scripts/drills/traffic.ts)
// drives it through the chat's own protocol: writer tabs post numbered messages, observer tabs watch the room.
// Under that traffic NATS fails (a nats-server restart, or the CHAT stream's leader killed in a cluster), and
// around each failure the drill measures:
//   - when every observer tab receives again: the first message on each observer that the stream STORED
//     after the failure (its stored time, seen by the drill's own subscription to the stream, is after the
//     failure), so messages still in the pipes at the failure do not count as recovery;
//   - the first new acknowledgement (a writer's tab shows one of its messages stored after the failure);
//   - the messages the chat accepted while NATS was away: when every one is on every observer. The chat
//     takes them while NATS is down and the engine keeps publishing them (same msg id) for 15 s; one it
//     gave up on is shown "not sent" with a Retry button, and the drill presses Retry like a person would
//     (through the retry action) until it is stored;
//   - acknowledged messages lost (acked before the failure, missing on an observer afterwards) and any
//     message shown out of its writer's order, with the stream seqs involved.
// At the end the writers stop, every accepted message must be stored (shown "sent" in its writer's tab),
// every observer must show every acknowledged message from its list's oldest item on (the server keeps a
// list to the room's newest ~1,000) once and in each writer's order, and so must a fresh tab that pages
// the whole history in (minus what the stream's 1,000-per-room cap evicted).
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatTab } from "../../../harness/chat-client.ts";
import { type ChatProcess, startChatProcess } from "../../../harness/chat-process.ts";
import { sleep } from "../../../harness/cleanup.ts";
import { now } from "../clock.ts";
import {
  checkList,
  checkPassed,
  describeCheck,
  few,
  type ListCheck,
  labelOf,
  listStart,
  Traffic,
  type WriterStats,
} from "../traffic.ts";
import {
  byLabel,
  explainReorders,
  type FinalReport,
  labelsOf,
  natsLog,
  type Recovery,
  type Snapshot,
  sentBetween,
  snapshot,
} from "./recovery.ts";
import { RetryPresser } from "./retry-presser.ts";
import { POLL_MS, StreamClock } from "./stream-clock.ts";

/** The CHAT stream keeps this many messages per room (apps/chat/app.tsx, ensureChatStream). */
const ROOM_HISTORY = 1000;

export interface ChatDrillOptions {
  /** NATS URLs for the chat and the drill's own connection. */
  servers: string[];
  replicas?: number;
  writers: number;
  observers: number;
  /** Pause between one writer's sends (default 200 ms: 5 messages/s per writer). */
  intervalMs?: number;
  /** Longest wait for a recovery (each measurement); beyond it the drill fails. */
  recoveryLimitMs?: number;
  log?: (line: string) => void;
}

/** The chat process on NATS, its traffic, the drill's NATS connection and the Retry presser. */
export class ChatDrill {
  readonly recoveries: Recovery[] = [];
  readonly #reported = new Set<string>();
  private constructor(
    readonly opts: ChatDrillOptions,
    readonly chat: ChatProcess,
    readonly traffic: Traffic,
    readonly clock: StreamClock,
    readonly retries: RetryPresser,
  ) {}

  static async start(opts: ChatDrillOptions): Promise<ChatDrill> {
    const chat = await startChatProcess({
      nats: opts.servers.join(","),
      sendRate: 10,
      clientLimits: false,
      ...(opts.replicas ? { replicas: opts.replicas } : {}),
    });
    let traffic: Traffic | undefined;
    try {
      traffic = await Traffic.open({
        base: chat.url,
        writers: opts.writers,
        observers: opts.observers,
        ...(opts.intervalMs ? { intervalMs: opts.intervalMs } : {}),
      });
      const clock = await StreamClock.open(opts.servers);
      traffic.addSeqSource((label) => clock.seqOf(label));
      return new ChatDrill(opts, chat, traffic, clock, new RetryPresser(traffic));
    } catch (err) {
      await traffic?.close().catch(() => {});
      await chat.kill9();
      throw err;
    }
  }

  get log(): (line: string) => void {
    return this.opts.log ?? (() => {});
  }

  /** Starts the writers and waits until `n` messages are acknowledged and `minMs` have passed. */
  async warmUp(n: number, minMs: number): Promise<void> {
    this.traffic.send();
    await this.waitAcks(n, minMs);
  }

  /** Waits for `n` more acknowledgements and at least `minMs` (fails after the recovery limit). */
  async waitAcks(n: number, minMs: number): Promise<void> {
    const start = now();
    const target = this.traffic.ackedCount() + n;
    const limit = this.opts.recoveryLimitMs ?? 60_000;
    while (this.traffic.ackedCount() < target || now() - start < minMs) {
      if (now() - start > limit + minMs) {
        throw new Error(
          `only ${this.traffic.ackedCount() - target + n} of ${n} acks in ${Math.round(now() - start)} ms`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  snapshot(): Snapshot {
    return snapshot(this.traffic);
  }

  /**
   * Measures one recovery: `before` was taken just before the failure, `failedAt` is when the process was
   * gone. With `backAt` (the server is healthy again) the messages sent while down are those the chat took
   * until then; without, until the first new acknowledgement.
   */
  async measure(p: { before: Snapshot; failedAt: number; backAt?: number }): Promise<Recovery> {
    const { traffic, clock } = this;
    const deadline = now() + (this.opts.recoveryLimitMs ?? 60_000);
    const t = p.failedAt;
    const notes = new Set<string>();

    // The earliest arrival (or ack) of a message the stream stored after the failure.
    const firstStoredAfter = async (
      candidates: () => Array<{ seq: number | undefined; at: number }>,
    ): Promise<number | undefined> => {
      const checked = new Set<number>();
      while (now() < deadline) {
        const c = candidates()
          .filter((x): x is { seq: number; at: number } => x.seq !== undefined && x.at > t && !checked.has(x.seq))
          .sort((a, b) => a.at - b.at);
        for (const x of c) {
          const stored = await clock.storedAt(x.seq, deadline).catch(() => undefined);
          if (stored === undefined) {
            notes.add(`the drill's own subscription never saw seq ${x.seq}, which a tab shows`);
            return undefined;
          }
          checked.add(x.seq);
          if (stored !== null && stored > t) return x.at;
        }
        await sleep(POLL_MS);
      }
      return undefined;
    };

    const observerAgain = traffic.observers.map((_, i) =>
      firstStoredAfter(() => {
        const tab = traffic.observers[i]!.tab;
        return tab.messages.map((m) => ({ seq: m.seq, at: tab.arrivals.get(m.id) ?? 0 }));
      }),
    );
    const firstAck = firstStoredAfter(() => {
      const out: Array<{ seq: number | undefined; at: number }> = [];
      traffic.writers.forEach((w, k) => {
        const shown = labelsOf(traffic.writerTab(k));
        for (const [n, at] of w.acked) if (at > t) out.push({ seq: shown.get(`w${k}#${n}`)?.seq, at });
      });
      return out;
    });
    const [observersAt, firstAckAt] = await Promise.all([Promise.all(observerAgain), firstAck]);

    // Every message the chat took while NATS was away: on every observer.
    const sentWhileDown = sentBetween(traffic, t, p.backAt ?? firstAckAt ?? now());
    let missing = sentWhileDown;
    let shownAt: number | undefined;
    while (now() < deadline) {
      const lists = traffic.observers.map((o) => ({ shown: labelsOf(o.tab), arrivals: o.tab.arrivals }));
      missing = sentWhileDown.filter((l) => lists.some((o) => !o.shown.has(l)));
      if (missing.length === 0) {
        shownAt = 0;
        for (const o of lists) {
          for (const l of sentWhileDown) shownAt = Math.max(shownAt, o.arrivals.get(o.shown.get(l)!.id) ?? 0);
        }
        break;
      }
      await sleep(POLL_MS);
    }

    // Acknowledged before the failure: on every observer now (they had all the time above to arrive),
    // from each observer's oldest item on (the server trims a list to the room's newest ~1,000).
    let lostBefore: string[] = [];
    const lostDeadline = Math.min(deadline, now() + 5_000);
    for (;;) {
      const lists = traffic.observers.map((o) => {
        const shown = labelsOf(o.tab);
        const start = listStart(o.tab.messages, o.tab.hasOlder, (l) => traffic.seqOf(l));
        return (label: string) => {
          if (shown.has(label)) return true;
          const seq = start?.seqOf(label);
          return seq !== undefined && seq < start!.oldestSeq;
        };
      });
      lostBefore = [...p.before.acked].filter((l) => lists.some((expected) => !expected(l)));
      if (lostBefore.length === 0 || now() > lostDeadline) break;
      await sleep(POLL_MS);
    }

    const reordered: string[] = [];
    for (const o of traffic.observers) {
      const c = checkList(
        o.tab.messages.map((m) => m.text),
        traffic.writers,
      );
      const fresh = c.reordered.filter((l) => !this.#reported.has(l) && !this.retries.retried.has(l));
      for (const l of fresh) this.#reported.add(l);
      reordered.push(...explainReorders(o.tab.messages, fresh));
    }

    const r: Recovery = {
      failedAt: t,
      ...(p.backAt !== undefined ? { backAt: p.backAt } : {}),
      observersAt,
      ...(firstAckAt !== undefined ? { firstAckAt } : {}),
      sentWhileDown: sentWhileDown.length,
      ...(shownAt !== undefined ? { sentWhileDownShownAt: shownAt } : {}),
      sentWhileDownMissing: missing,
      retried: this.retries.pressesBetween(t, now()),
      lostBefore,
      reordered,
      chatLog: natsLog(this.chat.output(), t, now()),
      drillLog: natsLog(clock.output(), t, now()),
      notes: [...notes],
    };
    this.recoveries.push(r);
    return r;
  }

  /** Stops the writers and runs the end checks. */
  async finish(): Promise<FinalReport> {
    const { traffic } = this;
    await traffic.stopSending();
    const limit = this.opts.recoveryLimitMs ?? 60_000;
    // Every accepted message must end up stored (Retry keeps being pressed on those that failed).
    const accepted = (w: WriterStats) => {
      const lost = new Set(w.unanswered);
      const out: number[] = [];
      for (let n = 0; n < w.accepted + w.unanswered.length; n++) if (!lost.has(n)) out.push(n);
      return out;
    };
    const notStored = () =>
      traffic.writers.flatMap((w) =>
        accepted(w)
          .filter((n) => !w.acked.has(n))
          .map((n) => `w${w.writer}#${n}`),
      );
    const storeDeadline = now() + limit;
    while (notStored().length > 0 && now() < storeDeadline) await sleep(100);
    // A tab away for long (a stream cut over the server's per-tab byte cap in a burst, a long outage) can
    // come back with its list reset to the room's last page, and every list shows only the room's newest
    // ~1,000 with a "Load older" button: a person who misses a message scrolls up and presses it. So does
    // the drill, on such tabs only, before judging them (a trimmed list is judged from its oldest item
    // on, see ListStart in traffic.ts; pages of older items cannot fill a hole inside a list).
    const loadedOlder = { writers: 0, observers: 0 };
    if (notStored().length > 0) {
      for (let k = 0; k < traffic.writers.length; k++) {
        const tab = traffic.writerTab(k);
        if (!tab.hasOlder || !notStored().some((l) => l.startsWith(`w${k}#`))) continue;
        await tab.loadAll(30_000).catch(() => {});
        loadedOlder.writers++;
      }
    }
    await traffic.settle(Math.min(limit, 30_000));
    for (const [i, c] of traffic.checkObservers().entries()) {
      const tab = traffic.observers[i]!.tab;
      if (c.lost.length === 0 || !tab.hasOlder) continue;
      await tab.loadAll(30_000).catch(() => {});
      loadedOlder.observers++;
    }
    const reopened = (tabs: ChatTab[]) => tabs.filter((t) => t.connects > 1).length;
    const writerTabs = traffic.writers.map((_, k) => traffic.writerTab(k));
    const observerTabs = traffic.observers.map((o) => o.tab);
    // A message sent again with Retry is stored when Retry was pressed, after newer ones: by the person's
    // choice, so it is not counted as out of order (it is counted in `afterRetry`).
    const retried = this.retries.retried;
    let afterRetry = 0;
    const orderByChoice = (c: ListCheck): ListCheck => {
      const byRetry = c.reordered.filter((l) => retried.has(l));
      afterRetry = Math.max(afterRetry, byRetry.length);
      return { ...c, reordered: c.reordered.filter((l) => !retried.has(l)) };
    };
    // Each list is judged from its oldest item on: acknowledged messages older than that were trimmed
    // from it by the server (observers) or evicted by the stream's 1,000-per-room cap (the fresh tab
    // that paged the whole retained history in); `older` counts them.
    const observers = traffic.checkObservers().map(orderByChoice);

    // A fresh tab pages the whole history in: every acknowledged message the stream still keeps.
    const fresh = await ChatTab.open(traffic.opts.base, traffic.opts.room);
    let freshCheck: FinalReport["fresh"];
    try {
      await fresh.loadAll(60_000);
      const check = orderByChoice(traffic.check(fresh));
      freshCheck = { ...check, shown: fresh.messages.length, evicted: check.older };
    } finally {
      fresh.close();
    }

    const neverStored = notStored();
    const acked = traffic.ackedCount();
    const diagnosis: string[] = [];
    if (neverStored.length > 0) {
      // Stuck in the writer's tab: which state, and is it in the stream after all?
      const states = new Map<string, number>();
      traffic.writers.forEach((w, k) => {
        const shown = byLabel(traffic.writerTab(k).messages);
        for (const l of neverStored.filter((x) => x.startsWith(`w${w.writer}#`))) {
          const st = shown.get(l)?.state ?? "not shown";
          states.set(st, (states.get(st) ?? 0) + 1);
        }
      });
      const seqOf = new Map<string, number>();
      for (const m of this.clock.all()) {
        const l = labelOf(m.text);
        if (l) seqOf.set(`w${l.writer}#${l.n}`, m.seq);
      }
      const seqs = neverStored.map((l) => seqOf.get(l)).filter((x): x is number => x !== undefined);
      const inStream =
        `${seqs.length}` +
        (seqs.length > 0 ? ` (seqs ${Math.min(...seqs)}-${Math.max(...seqs)}: ${few(seqs.map(String), 12)})` : "");
      diagnosis.push(
        `  never stored, in the writers' tabs: ${[...states].map(([st, n]) => `${n} ${st}`).join(", ")}; ` +
          `stored in the CHAT stream after all (the drill's own subscription saw them): ${inStream}`,
      );
    }
    const pass = neverStored.length === 0 && acked > 0 && observers.every(checkPassed) && checkPassed(freshCheck);
    const lines = [
      `end: ${traffic.writers.reduce((s, w) => s + w.accepted, 0)} accepted, ${acked} acknowledged, ` +
        `accepted but never stored ${few(neverStored)}; Retry pressed ${this.retries.presses.length} times ` +
        `(on ${retried.size} messages; ${afterRetry} of them stored after newer ones, as Retry puts them)`,
      ...observers.map((c, i) => `  observer ${i + 1}: ${describeCheck(c)} → ${checkPassed(c) ? "ok" : "FAIL"}`),
      `  fresh tab (Load older to the start, ${freshCheck.shown} shown, ${freshCheck.evicted} acked evicted by the ` +
        `${ROOM_HISTORY}-per-room cap): ${describeCheck(freshCheck)} → ${checkPassed(freshCheck) ? "ok" : "FAIL"}`,
    ];
    lines.push(
      `  tab streams reopened during the drill: ${reopened(observerTabs)} of ${observerTabs.length} observers, ` +
        `${reopened(writerTabs)} of ${writerTabs.length} writers; Load older pressed on ${loadedOlder.observers} ` +
        `observer and ${loadedOlder.writers} writer tabs whose lists did not reach back far enough`,
      ...diagnosis,
    );
    for (const [i, c] of observers.entries()) {
      if (c.reordered.length > 0) {
        lines.push(
          `  observer ${i + 1} order: ${explainReorders(traffic.observers[i]!.tab.messages, c.reordered).join("; ")}`,
        );
      }
    }
    return {
      accepted: traffic.writers.reduce((s, w) => s + w.accepted, 0),
      acked,
      neverStored,
      rejected: traffic.writers.reduce((s, w) => s + w.rejected, 0),
      unanswered: traffic.writers.reduce((s, w) => s + w.unanswered.length, 0),
      observers,
      fresh: freshCheck,
      retried: this.retries.presses.length,
      afterRetry,
      pass,
      lines,
    };
  }

  /** Writes everything the chat process logged to a file in the temp dir (kept); returns its path. */
  saveChatLog(): string {
    const file = join(tmpdir(), `via-drill-chat-${process.pid}-${Date.now()}.log`);
    writeFileSync(file, this.chat.output());
    return file;
  }

  /** Ends the traffic, the presser, the drill's connection and the chat process. Never throws. */
  async close(): Promise<void> {
    await this.retries.stop().catch(() => {});
    await this.traffic.close().catch(() => {});
    await this.clock.close();
    await this.chat.stop(5_000).catch(() => {});
  }
}
