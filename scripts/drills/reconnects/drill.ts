import { ChatTab, type ShownMessage } from "../../../test/support/chat-client.ts";
import { type ChatProcess, type ChatProcessOptions, startChatProcess } from "../../../test/support/chat-process.ts";
import type { EngineName } from "../../lib/cli.ts";
import { type ChatStorage, chatStorage } from "../chat-storage.ts";
import { checkList, type ListCheck, labelOf, Traffic } from "../traffic.ts";

export type ChatEngine = EngineName;

export interface ReconnectsOptions {
  engine?: ChatEngine;
  /** Client-side drops (and reconnects) of the dropper tab (default 100). */
  drops?: number;
  /** Writer tabs (default 5). */
  writers?: number;
  /** Pause between one writer's sends (default 300 ms). */
  intervalMs?: number;
  /** The dropper stays connected a random minUpMs..maxUpMs between drops (default 50-350 ms). */
  minUpMs?: number;
  maxUpMs?: number;
  /** ... and away a random 0..maxGapMs before it reconnects (default 300 ms). */
  maxGapMs?: number;
  room?: string;
  /** Hard cap on the whole drill (default 3 min). */
  timeLimitMs?: number;
  log?: (line: string) => void;
}

export interface ReconnectsResult {
  engine: ChatEngine;
  drops: number;
  /** Streams the dropper opened (1 + reconnects). */
  connects: number;
  /** Reconnects during whose gap the room got messages (the tab had something to catch up on). */
  missedWhileAway: number;
  /** Messages the room got while the dropper was away, summed over the gaps. */
  messagesWhileAway: number;
  /** Messages the room got since the dropper opened (the observer's list). */
  roomMessages: number;
  /** Messages the dropper shows. */
  shown: number;
  /** Observer messages (seq ≥ the dropper's first) missing on the dropper. */
  missing: string[];
  /** Dropper messages the observer does not have. */
  extra: string[];
  duplicated: string[];
  /** Dropper messages out of seq order. */
  reordered: string[];
  /** Same messages, same order as the observer. */
  sameAsObserver: boolean;
  /** Checks before a drop (after the previous reconnect) where the dropper's list differed from the observer's. */
  badCycles: string[];
  /** The dropper against the writers' acks. */
  acks: ListCheck;
  /** The observer against the writers' acks (the baseline must be clean too). */
  observer: ListCheck;
  /** Reconnect (stream open) → its full render applied, per reconnect: median and max (ms). */
  resyncMs: { median: number; max: number };
  totalMs: number;
  pass: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();
const rand = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

class DrillTimeoutError extends Error {
  override name = "DrillTimeoutError";
}

const key = (m: ShownMessage) => {
  const l = labelOf(m.text);
  return l ? `w${l.writer}#${l.n}` : m.id;
};

export async function runReconnectsDrill(opts: ReconnectsOptions = {}): Promise<ReconnectsResult> {
  const log = opts.log ?? (() => {});
  const engine = opts.engine ?? "embedded";
  const drops = opts.drops ?? 100;
  const room = opts.room ?? "Go";
  const minUp = opts.minUpMs ?? 50;
  const maxUp = opts.maxUpMs ?? 350;
  const maxGap = opts.maxGapMs ?? 300;
  const started = now();
  const deadline = started + (opts.timeLimitMs ?? 180_000);

  let storage: ChatStorage | undefined;
  let chat: ChatProcess | undefined;
  let traffic: Traffic | undefined;
  let dropper: ChatTab | undefined;
  try {
    storage = await chatStorage(engine, "via-drill-reconnects-");
    const spawnOpts: ChatProcessOptions = { sendRate: 10, rooms: [room], ...storage.where };
    chat = await startChatProcess(spawnOpts);
    traffic = await Traffic.open({
      base: chat.url,
      room,
      writers: opts.writers ?? 5,
      observers: 1,
      intervalMs: opts.intervalMs ?? 300,
    });
    const t = traffic;
    const observer = t.observers[0]!;
    dropper = await ChatTab.open(chat.url, room);
    const d = dropper;
    const openedAt = now();
    log(`${engine}: chat on ${chat.url}, ${t.writers.length} writers, 1 observer, 1 dropper; ${drops} drops`);
    t.send();

    // Observer arrivals (seq) while the dropper is away tell whether a gap missed anything.
    let missedWhileAway = 0;
    let messagesWhileAway = 0;
    const resync: number[] = [];
    const lastSeq = () => observer.tab.messages.reduce((max, m) => Math.max(max, m.seq ?? 0), 0);
    const stored = (ms: readonly ShownMessage[]) => ms.filter((m) => m.state === "sent" && m.seq !== undefined);
    /** The dropper's stored messages with seq in [from, upTo] against the observer's: equal, same order? */
    const compare = (from: number, upTo: number) => {
      const inRange = (m: ShownMessage) => m.seq! >= from && m.seq! <= upTo;
      const a = stored(d.messages).filter(inRange);
      const b = stored(observer.tab.messages).filter(inRange);
      return a.length === b.length && a.every((m, i) => m.id === b[i]!.id);
    };
    let firstSeq: number | undefined;
    const badCycles: string[] = [];
    for (let k = 1; k <= drops; k++) {
      if (now() > deadline) throw new DrillTimeoutError(`time limit reached after ${k - 1} drops`);
      await sleep(rand(minUp, maxUp));
      // Before each drop: the dropper shows what the observer shows, up to the observer's latest message
      // (given a moment to arrive), so every single reconnect is checked, not only the last one.
      const upTo = lastSeq();
      firstSeq ??= stored(d.messages)[0]?.seq;
      if (upTo > 0 && firstSeq !== undefined) {
        await d.waitUntil((ms) => ms.some((m) => (m.seq ?? 0) >= upTo), 2_000, `seq ${upTo}`).catch(() => undefined);
        if (!compare(firstSeq, upTo)) badCycles.push(`before drop ${k} (up to seq ${upTo})`);
      }
      const before = lastSeq();
      d.disconnect();
      await sleep(rand(0, maxGap));
      const away = lastSeq() - before;
      if (away > 0) {
        missedWhileAway++;
        messagesWhileAway += away;
      }
      // Reconnect like the runtime: same tab id, `last` = the last event id seen.
      const list = d.messages;
      const t0 = now();
      for (;;) {
        try {
          await d.connect();
          break;
        } catch (err) {
          if (now() > deadline) throw err;
          await sleep(100);
        }
      }
      // The reconnect resyncs: a full render replaces the list.
      await d.waitUntil(() => d.messages !== list, 10_000, "the resync render").catch(() => undefined);
      resync.push(now() - t0);
      if (k % 25 === 0) log(`  ${k}/${drops} drops; the dropper shows ${d.messages.length} messages`);
    }
    await t.stopSending();
    // Let the last messages arrive everywhere.
    const settleBy = Math.min(deadline, now() + 10_000);
    while (now() < settleBy && t.pendingCount() > 0) await sleep(20);
    const final = lastSeq();
    await d
      .waitUntil((ms) => ms.some((m) => (m.seq ?? 0) >= final), Math.max(1, settleBy - now()), `seq ${final}`)
      .catch(() => undefined);

    // Compare over the messages the room got since the dropper opened: those the observer (which never
    // dropped) received after that moment, plus what the dropper's page already showed.
    const dl = stored(d.messages);
    const ol = stored(observer.tab.messages);
    const since = ol.find((m) => (observer.tab.arrivals.get(m.id) ?? 0) > openedAt)?.seq ?? Number.POSITIVE_INFINITY;
    const from = Math.min(dl[0]?.seq ?? Number.POSITIVE_INFINITY, since);
    const want = ol.filter((m) => m.seq! >= from);
    const seen = new Set<string>();
    const duplicated: string[] = [];
    const reordered: string[] = [];
    let prev = 0;
    for (const m of dl) {
      if (seen.has(m.id)) duplicated.push(key(m));
      seen.add(m.id);
      if (m.seq! <= prev) reordered.push(key(m));
      prev = Math.max(prev, m.seq!);
    }
    const wantIds = new Set(want.map((m) => m.id));
    const missing = want.filter((m) => !seen.has(m.id)).map(key);
    const extra = dl.filter((m) => !wantIds.has(m.id)).map(key);
    const sameAsObserver =
      dl.length === want.length && dl.every((m, i) => m.id === want[i]!.id && m.seq === want[i]!.seq);
    const acks = checkList(
      d.messages.filter((m) => m.state === "sent").map((m) => m.text),
      t.writers,
    );
    const observerCheck = checkList(
      observer.tab.messages.filter((m) => m.state === "sent").map((m) => m.text),
      t.writers,
    );
    const sorted = [...resync].sort((a, b) => a - b);
    const pass =
      missing.length === 0 &&
      extra.length === 0 &&
      duplicated.length === 0 &&
      reordered.length === 0 &&
      sameAsObserver &&
      acks.lost.length === 0 &&
      acks.duplicated.length === 0 &&
      acks.reordered.length === 0 &&
      observerCheck.lost.length === 0 &&
      badCycles.length === 0 &&
      acks.acked > 0 &&
      d.connects === drops + 1;
    return {
      engine,
      drops,
      connects: d.connects,
      missedWhileAway,
      messagesWhileAway,
      roomMessages: want.length,
      shown: dl.length,
      missing,
      extra,
      duplicated,
      reordered,
      sameAsObserver,
      badCycles,
      acks,
      observer: observerCheck,
      resyncMs: { median: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN },
      totalMs: now() - started,
      pass,
    };
  } finally {
    dropper?.close();
    await traffic?.close().catch(() => {});
    await chat?.kill9().catch(() => {});
    await storage?.close();
  }
}

export function summary(r: ReconnectsResult): string {
  const few = (xs: string[]) =>
    xs.length === 0 ? "0" : `${xs.length} (${xs.slice(0, 5).join(", ")}${xs.length > 5 ? ", …" : ""})`;
  return (
    `${r.engine}: ${r.drops} drops (${r.connects} streams opened); ${r.missedWhileAway} gaps missed messages ` +
    `(${r.messagesWhileAway} in all); resync after a reconnect: median ${r.resyncMs.median.toFixed(0)} ms, ` +
    `max ${r.resyncMs.max.toFixed(0)} ms\n` +
    `  room got ${r.roomMessages} messages since the dropper opened; the dropper shows ${r.shown}: missing ` +
    `${few(r.missing)}, extra ${few(r.extra)}, duplicated ${few(r.duplicated)}, reordered ${few(r.reordered)}; ` +
    `same list as the observer: ${r.sameAsObserver ? "yes" : "NO"}; checked before every drop: ` +
    `${r.badCycles.length === 0 ? "all equal" : `${r.badCycles.length} differed (${r.badCycles.slice(0, 3).join("; ")})`}\n` +
    `  against the writers' acks: acked ${r.acks.acked}, lost ${r.acks.lost.length}, duplicated ` +
    `${r.acks.duplicated.length}, reordered ${r.acks.reordered.length} (observer: lost ${r.observer.lost.length}) ` +
    `→ ${r.pass ? "PASS" : "FAIL"}`
  );
}
