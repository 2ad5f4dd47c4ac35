// The chat-level NATS drills, shared by their CLIs (scripts/drills/nats-bounce.ts, scripts/drills/cluster.ts)
// and their short versions (test/drills/nats-bounce.test.ts, test/drills/cluster.test.ts).
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
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { CHAT_STREAM, CHAT_SUBJECTS } from "../../apps/chat/rooms.ts";
import { ChatTab, type ShownMessage } from "../../harness/chat-client.ts";
import { type ChatProcess, startChatProcess } from "../../harness/chat-process.ts";
import { sleep } from "../../harness/cleanup.ts";
import { startNatsCluster, startNatsServer } from "../../harness/nats-server.ts";
import { Table } from "../../harness/stats.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import { unescapeHtml } from "../../src/server/html.ts";
import { describeError, now } from "./clock.ts";
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
} from "./traffic.ts";

/** The CHAT stream keeps this many messages per room (apps/chat/app.tsx, ensureChatStream). */
const ROOM_HISTORY = 1000;
/** The chat's NATS connection name (the engine's default), to find its node in /connz. */
const CHAT_CONNECTION_NAME = "via-ts";
const POLL_MS = 25;

// ---------------------------------------------------------------------------------------------- output

const ms = (v: number | undefined) => (v === undefined ? "—" : String(Math.round(v)));

// ------------------------------------------------------------------------------ the stream, from outside

/**
 * The drill's own view of the CHAT stream, through its own NATS engine (a subscription from seq 1, which
 * recovers from failures like the chat's): when each message was stored (the server's clock) and its text.
 * Kept for every message as it is stored, so the room's 1,000-message cap evicting it later does not matter.
 */
class StreamClock {
  readonly #stored = new Map<number, { time: number; text: string }>();
  /** Stream position of each drill message, by label ("w3#17"). */
  readonly #labels = new Map<string, number>();
  #maxSeq = 0;
  readonly #off: () => void;
  private constructor(readonly ps: PubSub) {
    const dec = new TextDecoder();
    this.#off = ps.subscribe(
      CHAT_SUBJECTS,
      (d) => {
        if (d.seq === undefined || d.time === undefined) return;
        let text = "";
        try {
          text = String((JSON.parse(dec.decode(d.data)) as { text?: unknown }).text);
        } catch {
          // not a chat message
        }
        this.#stored.set(d.seq, { time: d.time, text });
        const label = labelOf(text);
        if (label) this.#labels.set(`w${label.writer}#${label.n}`, d.seq);
        this.#maxSeq = Math.max(this.#maxSeq, d.seq);
      },
      { fromSeq: 1 },
    );
  }

  static async open(servers: string[]): Promise<StreamClock> {
    const lines: string[] = [];
    const logger = pino({ level: "info", base: undefined }, { write: (line: string) => lines.push(line) });
    const clock = new StreamClock(await connectNats({ servers, name: "via-drill", logger }));
    clock.#log = lines;
    return clock;
  }

  #log: string[] = [];
  /** What the drill's engine logged (JSON lines). */
  output(): string {
    return this.#log.join("");
  }

  /**
   * When the CHAT stream got a leader other than `old`: the first of JetStream's leader-elected advisory
   * for CHAT and the CHAT stream's info (polled every 50 ms, 500 ms per request) naming another leader,
   * both through `servers`. Stream info answers up to a second after the advisory (it needs the new leader
   * to be ready), so the advisory is the election's moment. Resolves with the leader's name and that moment.
   */
  static async newLeader(servers: string[], old: string, deadline: number): Promise<{ name: string; at: number }> {
    const nc = await connect({ servers, name: "via-drill-election", timeout: 2_000 });
    let found: { name: string; at: number } | undefined;
    const sub = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${CHAT_STREAM}`, {
      callback: (err, msg) => {
        if (err || found) return;
        try {
          const leader = (msg.json() as { leader?: string }).leader;
          if (leader && leader !== old) found = { name: leader, at: now() };
        } catch {
          // not an advisory
        }
      },
    });
    try {
      const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 500 });
      for (;;) {
        if (found) return found;
        try {
          const leader = (await jsm.streams.info(CHAT_STREAM)).cluster?.leader;
          if (found) return found;
          if (leader && leader !== old) return { name: leader, at: now() };
        } catch {
          // no leader yet
        }
        if (now() > deadline) throw new Error(`no new ${CHAT_STREAM} leader`);
        await sleep(50);
      }
    } finally {
      sub.unsubscribe();
      await nc.close().catch(() => {});
    }
  }

  /** The stream position of a drill message (by label), if the drill's subscription has seen it stored. */
  seqOf(label: string): number | undefined {
    return this.#labels.get(label);
  }

  /** Every stored chat message seen so far: its text and seq, oldest first (for diagnostics). */
  all(): Array<{ seq: number; text: string }> {
    return [...this.#stored.entries()].sort((a, b) => a[0] - b[0]).map(([seq, m]) => ({ seq, text: m.text }));
  }

  /**
   * When message `seq` was stored (ms since the epoch); waits for the drill's feed to see it, until `deadline`.
   * Null if the feed went past it without seeing it (the room's cap evicted it before the feed got there).
   */
  async storedAt(seq: number, deadline: number): Promise<number | null> {
    for (;;) {
      const m = this.#stored.get(seq);
      if (m) return m.time;
      if (this.#maxSeq > seq) return null;
      if (now() > deadline) throw new Error(`seq ${seq} of ${CHAT_STREAM} not seen by the drill`);
      await sleep(POLL_MS);
    }
  }

  async close(): Promise<void> {
    this.#off();
    await this.ps.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------- Retry button

const RETRY_BUTTON = /<button[^>]*class="retry[^"]*"[^>]*>/g;

/** The retry action's id, read from a Retry button in what the tab's server sent (it is the same for every message). */
function retryActionOf(tab: ChatTab): string | undefined {
  const sources = [...(tab.client.stream?.events ?? [])].reverse().map((e) => e.data.elements ?? "");
  sources.push(tab.client.html);
  for (const html of sources) {
    for (const tag of html.matchAll(RETRY_BUTTON)) {
      const spec = /data-on-click="([^"]*)"/.exec(tag[0])?.[1];
      if (!spec) continue;
      const text = unescapeHtml(spec);
      return text.startsWith("{") ? (JSON.parse(text) as { action: string }).action : text;
    }
  }
  return undefined;
}

/** Presses Retry on every "not sent" message in the writers' tabs, as a person would. */
class RetryPresser {
  /** Every press: which message, when, the action's HTTP status. */
  readonly presses: Array<{ label: string; at: number; status: number }> = [];
  /** Labels Retry was pressed on. */
  readonly retried = new Set<string>();
  readonly #last = new Map<string, number>();
  #running = true;
  readonly #loop: Promise<void>;

  constructor(readonly traffic: Traffic) {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      for (let k = 0; k < this.traffic.writers.length && this.#running; k++) {
        const tab = this.traffic.writerTab(k);
        for (const m of tab.messages) {
          if (m.state !== "failed") continue;
          // One press per message per 2 s: the press itself turns it back to "sending".
          if (now() - (this.#last.get(m.id) ?? 0) < 2_000) continue;
          const action = retryActionOf(tab);
          if (!action) continue;
          this.#last.set(m.id, now());
          const label = labelOf(m.text);
          const key = label ? `w${label.writer}#${label.n}` : m.id;
          // Noted before the press: the message can reach the observers before the action's response.
          this.retried.add(key);
          const res = await tab.client
            .action(action, { ...tab.client.signals, retry: m.id })
            .catch(() => ({ status: 0 }));
          this.presses.push({ label: key, at: now(), status: res.status });
        }
      }
      await sleep(250);
    }
  }

  pressesBetween(from: number, to = Number.POSITIVE_INFINITY): number {
    return this.presses.filter((p) => p.at >= from && p.at < to).length;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

// ------------------------------------------------------------------------------------------ measuring

interface Snapshot {
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

function snapshot(traffic: Traffic): Snapshot {
  const acked = new Set<string>();
  for (const w of traffic.writers) for (const n of w.acked.keys()) acked.add(`w${w.writer}#${n}`);
  return { at: now(), acked };
}

const labelled = new WeakMap<readonly ShownMessage[], { version: number; map: Map<string, ShownMessage> }>();

/** A tab's messages by label, computed once per change of the tab (the drill polls it every 25 ms). */
function labelsOf(tab: ChatTab): Map<string, ShownMessage> {
  const hit = labelled.get(tab.messages);
  if (hit && hit.version === tab.version) return hit.map;
  const map = byLabel(tab.messages);
  labelled.set(tab.messages, { version: tab.version, map });
  return map;
}

function byLabel(messages: readonly ShownMessage[]): Map<string, ShownMessage> {
  const out = new Map<string, ShownMessage>();
  for (const m of messages) {
    const l = labelOf(m.text);
    if (l) out.set(`w${l.writer}#${l.n}`, m);
  }
  return out;
}

/** Labels a writer's tab first showed (as "sending": the chat took them) in [from, to). */
function sentBetween(traffic: Traffic, from: number, to: number): string[] {
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
function explainReorders(messages: readonly ShownMessage[], labels: readonly string[]): string[] {
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
function natsLog(output: string, from: number, to: number): string[] {
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

function recoveryLine(r: Recovery): string {
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

// ------------------------------------------------------------------------------------ nats-bounce drill

export interface BounceOptions extends UnderFailuresOptions {
  bounces: number;
  /** How long nats-server stays down (ms). */
  outageMs: number;
  /** SIGKILL instead of SIGTERM. */
  kill: boolean;
}

export interface BounceRecord extends Recovery {
  pid: number;
  signal: string;
  downMs: number;
  /** From spawning nats-server again to it accepting connections. */
  startMs: number;
}

export interface DrillOutcome<R> {
  records: R[];
  final?: FinalReport;
  error?: string;
  pass: boolean;
}

/** When a TCP connect to the port on 127.0.0.1 first succeeds (tried every 5 ms), or undefined at the deadline. */
async function untilListening(port: number, deadline: number): Promise<number | undefined> {
  while (now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: "127.0.0.1", port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return now();
    await sleep(5);
  }
  return undefined;
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
function logRecovery(log: (line: string) => void, r: Recovery): void {
  log(recoveryLine(r));
  for (const l of r.chatLog) log(`      chat: ${l}`);
  for (const l of r.drillLog) log(`      drill's engine: ${l}`);
  for (const l of r.notes) log(`      note: ${l}`);
}

/**
 * The chat and its traffic on `servers`, `failures` failures (each caused and measured by `fail`, with
 * writing time after it), then the end checks. Stops the chat and then `stopServers` in any case.
 */
async function underFailures<R extends Recovery>(
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

/** A single nats-server with JetStream on disk, restarted under chat traffic. */
export async function runNatsBounce(o: BounceOptions): Promise<DrillOutcome<BounceRecord>> {
  const log = o.log ?? (() => {});
  const server = await startNatsServer();
  const signal = o.kill ? "SIGKILL" : "SIGTERM";
  return underFailures(o, {
    servers: [server.url],
    stopServers: () => server.stop(),
    failures: o.bounces,
    where: (drill) =>
      `nats-server pid ${server.pid} on ${server.url}, store ${server.storeDir}; chat on ${drill.chat.url}`,
    async fail(drill, b) {
      const before = drill.snapshot();
      const pid = server.pid;
      if (o.kill) await server.kill9();
      else await server.terminate();
      const failedAt = now();
      await sleep(o.outageMs);
      const t0 = now();
      // "Back" is when the new process accepts connections on the old port (clients reconnect then);
      // its /healthz answers 200 a little later.
      const listening = untilListening(server.port, t0 + 30_000);
      await server.start();
      const healthyAt = now();
      const backAt = (await listening) ?? healthyAt;
      log(
        `bounce ${b}/${o.bounces}: ${signal} pid ${pid}, down ${Math.round(t0 - failedAt)} ms, listening again ` +
          `${Math.round(backAt - t0)} ms after the start, /healthz 200 after ${Math.round(healthyAt - t0)} ms (pid ${server.pid})`,
      );
      const r = await drill.measure({ before, failedAt, backAt });
      logRecovery(log, r);
      return { ...r, pid, signal, downMs: t0 - failedAt, startMs: backAt - t0 };
    },
  });
}

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

// ---------------------------------------------------------------------------------------- cluster drill

export interface ClusterOptions extends UnderFailuresOptions {
  kills: number;
}

export interface KillRecord extends Recovery {
  /** Node killed (the CHAT leader), and the node(s) the chat was connected to before the kill. */
  leader: string;
  chatOn: string;
  /** The CHAT leader after the failover, and the chat's node then. */
  newLeader: string;
  /** From the kill until the drill saw the new leader in stream info (polled every 100 ms). */
  electedMs?: number;
  chatOnAfter: string;
  /** From restarting the killed node to every replica current again. */
  rejoinMs?: number;
}

/** A 3-node JetStream cluster, CHAT with 3 replicas; its leader SIGKILLed under chat traffic. */
export async function runCluster(o: ClusterOptions): Promise<DrillOutcome<KillRecord>> {
  const log = o.log ?? (() => {});
  const cluster = await startNatsCluster(3);
  const names = (idx: number[]) => (idx.length === 0 ? "none" : idx.map((i) => cluster.nodes[i]!.name).join("+"));
  return underFailures(o, {
    servers: cluster.urls,
    replicas: 3,
    stopServers: () => cluster.stop(),
    failures: o.kills,
    where: (drill) =>
      `cluster ${cluster.nodes.map((n) => `${n.name} ${n.url} pid ${n.pid}`).join(", ")}; chat on ${drill.chat.url}`,
    async fail(drill, k) {
      const leader = await cluster.waitStreamCurrent(CHAT_STREAM);
      const chatOn = await cluster.nodesWithClient(CHAT_CONNECTION_NAME);
      const before = drill.snapshot();
      const pid = cluster.nodes[leader]!.pid;
      await cluster.killNode(leader);
      const failedAt = now();
      log(
        `kill ${k}/${o.kills}: SIGKILL of the CHAT leader ${cluster.nodes[leader]!.name} (pid ${pid}); ` +
          `the chat's connection was on ${names(chatOn)}${chatOn.includes(leader) ? " (it must reconnect)" : ""}`,
      );
      // The election, watched from the drill's side (the leader advisory and stream info, through the
      // surviving nodes).
      const survivors = cluster.urls.filter((_, i) => i !== leader);
      const elected = StreamClock.newLeader(
        survivors,
        cluster.nodes[leader]!.name,
        failedAt + (o.recoveryLimitMs ?? 60_000),
      ).catch(() => ({ name: "?", at: undefined }));
      const r = await drill.measure({ before, failedAt });
      const { name: newLeader, at: electedAt } = await elected;
      const chatOnAfter = names(await cluster.nodesWithClient(CHAT_CONNECTION_NAME));
      logRecovery(log, r);
      const t0 = now();
      let rejoinMs: number | undefined;
      try {
        await cluster.restartNode(leader);
        await cluster.waitStreamCurrent(CHAT_STREAM, o.recoveryLimitMs ?? 60_000);
        rejoinMs = now() - t0;
        log(
          `    new leader ${newLeader} seen ${ms(since(failedAt, electedAt))} ms after the kill, ` +
            `chat now on ${chatOnAfter}; ${cluster.nodes[leader]!.name} restarted and current in ${ms(rejoinMs)} ms`,
        );
      } catch (err) {
        log(`    ${cluster.nodes[leader]!.name} did not rejoin: ${(err as Error).message}`);
      }
      return {
        ...r,
        ...(electedAt !== undefined ? { electedMs: electedAt - failedAt } : {}),
        leader: cluster.nodes[leader]!.name,
        chatOn: names(chatOn),
        newLeader,
        chatOnAfter,
        ...(rejoinMs !== undefined ? { rejoinMs } : {}),
      };
    },
    stopAfter: (r) => (r.rejoinMs === undefined ? `${r.leader} did not rejoin` : undefined),
  });
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
