import { ChatTab, type ShownMessage } from "../../../harness/chat-client.ts";
import { sleep } from "../../../harness/cleanup.ts";
import type { EngineName } from "../../../harness/cli.ts";
import { median } from "../../../harness/stats.ts";
import { type DrillChat, startDrillChat } from "../chat-storage.ts";
import { DrillTimeoutError, now, randomBetween as rand } from "../clock.ts";
import { checkList, few, type ListCheck, labelOf, listHoles, listStart, Traffic } from "../traffic.ts";

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
  /** Messages the observer shows in the range both lists show (from the newer of their oldest items on). */
  roomMessages: number;
  /** Messages the dropper shows. */
  shown: number;
  /** Observer messages in that range missing on the dropper. */
  missing: string[];
  /** Dropper messages in that range the observer does not have. */
  extra: string[];
  duplicated: string[];
  /** Dropper messages out of seq order. */
  reordered: string[];
  /** Same messages, same order as the observer. */
  sameAsObserver: boolean;
  /**
   * Checks before a drop (after the previous reconnect) where the dropper's list differed from the
   * observer's, and reconnects after which it did not catch up within 10 s.
   */
  badCycles: string[];
  /** Where the dropper's final list skips messages of the room (see listHoles). */
  holes: string[];
  /** Times the dropper's list was reset to the last page (`inner`) instead of filled: must be 0. */
  resets: number;
  /** The dropper against the writers' acks, from its list's oldest item on. */
  acks: ListCheck;
  /** The observer against the writers' acks (the baseline must be clean too). */
  observer: ListCheck;
  /**
   * Per reconnect: opening the stream → the dropper's list holds what the observer held when the drop
   * ended (its newest position reached the observer's); median and max (ms).
   */
  catchUpMs: { median: number; max: number };
  totalMs: number;
  pass: boolean;
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

  let drillChat: DrillChat | undefined;
  let traffic: Traffic | undefined;
  let dropper: ChatTab | undefined;
  try {
    drillChat = await startDrillChat(engine, "via-drill-reconnects-", room);
    const chat = drillChat.process;
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
    log(`${engine}: chat on ${chat.url}, ${t.writers.length} writers, 1 observer, 1 dropper; ${drops} drops`);
    t.send();

    // Observer arrivals (seq) while the dropper is away tell whether a gap missed anything.
    let missedWhileAway = 0;
    let messagesWhileAway = 0;
    const catchUp: number[] = [];
    const lastSeq = () => observer.tab.position;
    const stored = (ms: readonly ShownMessage[]) => ms.filter((m) => m.state === "sent" && m.seq !== undefined);
    /** The oldest stream position a list shows (+∞ if none: an empty range). */
    const oldest = (ms: readonly ShownMessage[]) =>
      stored(ms).reduce((min, m) => Math.min(min, m.seq!), Number.POSITIVE_INFINITY);
    /**
     * The dropper's stored messages against the observer's, over the range both show (each list holds
     * only the room's newest ~1,000: the server trims them from the top, at moments of its own per tab)
     * up to `upTo`: the same messages in the same order?
     */
    const compare = (upTo: number) => {
      const from = Math.max(oldest(d.messages), oldest(observer.tab.messages));
      const inRange = (m: ShownMessage) => m.seq! >= from && m.seq! <= upTo;
      const a = stored(d.messages).filter(inRange);
      const b = stored(observer.tab.messages).filter(inRange);
      return a.length === b.length && a.every((m, i) => m.id === b[i]!.id);
    };
    // A reconnect resumes the list from the position the dropper reports; a gap this short must be
    // filled item by item, never by resetting the list to the last page (`inner`), which would hide
    // whatever the fill lost behind a list that merely starts later.
    let resets = 0;
    const countResets = () => {
      for (const e of d.client.stream?.events ?? []) {
        if (e.event === "datastar-patch-elements" && e.data.selector === "#messages" && e.data.mode === "inner")
          resets++;
      }
    };
    const badCycles: string[] = [];
    for (let k = 1; k <= drops; k++) {
      if (now() > deadline) throw new DrillTimeoutError(`time limit reached after ${k - 1} drops`);
      await sleep(rand(minUp, maxUp));
      // Before each drop: the dropper shows what the observer shows, up to the observer's latest message
      // (given a moment to arrive), so every single reconnect is checked, not only the last one.
      const upTo = lastSeq();
      if (upTo > 0 && d.position > 0) {
        await d.waitUntil((ms) => ms.some((m) => (m.seq ?? 0) >= upTo), 2_000, `seq ${upTo}`).catch(() => undefined);
        if (!compare(upTo)) badCycles.push(`before drop ${k} (up to seq ${upTo})`);
        const holes = listHoles(d.messages, t.roomSeqs());
        if (holes.length > 0) badCycles.push(`before drop ${k}: the list skips room messages at ${holes.join("; ")}`);
      }
      const before = lastSeq();
      countResets();
      d.disconnect();
      await sleep(rand(0, maxGap));
      const away = lastSeq() - before;
      if (away > 0) {
        missedWhileAway++;
        messagesWhileAway += away;
      }
      // Reconnect like the runtime: same tab id, the view's hash and the list's newest position. The
      // server re-sends the view only if it changed and fills the list from that position; the
      // dropper has caught up once it holds what the observer had when the drop ended.
      const target = lastSeq();
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
      try {
        await d.waitUntil(() => d.position >= target, 10_000, `seq ${target}`);
        catchUp.push(now() - t0);
      } catch {
        badCycles.push(`after reconnect ${k}: not caught up to seq ${target} within 10 s`);
      }
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
    countResets();

    // Compare over the range both lists show: from the newer of their oldest items (each is trimmed to
    // the room's newest ~1,000 at its own moments) to the end.
    const dl = stored(d.messages);
    const ol = stored(observer.tab.messages);
    const from = Math.max(oldest(d.messages), oldest(observer.tab.messages));
    const want = ol.filter((m) => m.seq! >= from);
    const got = dl.filter((m) => m.seq! >= from);
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
    // In the range both show, against the observer; over the whole list, against every position the
    // drill knows the room has (the list must be a contiguous run of the room, also where the observer
    // was already trimmed).
    const missing = want.filter((m) => !seen.has(m.id)).map(key);
    const holes = listHoles(d.messages, t.roomSeqs());
    const extra = got.filter((m) => !wantIds.has(m.id)).map(key);
    const sameAsObserver =
      got.length === want.length && got.every((m, i) => m.id === want[i]!.id && m.seq === want[i]!.seq);
    // The acks are checked on the list as the reconnects left it, for every acknowledged message from
    // the list's oldest item on (an older one was trimmed from the top by the server, by design, and is
    // not expected; one whose stream position no tab showed is always expected). Not after "Load older"
    // to the start: the pages it prepends come from the stream's history, not from the reconnects, and
    // the range the reconnects delivered is already checked whole.
    const seqOf = (label: string) => t.seqOf(label);
    const acks = checkList(
      d.messages.filter((m) => m.state === "sent").map((m) => m.text),
      t.writers,
      listStart(d.messages, d.hasOlder, seqOf),
    );
    const observerCheck = checkList(
      observer.tab.messages.filter((m) => m.state === "sent").map((m) => m.text),
      t.writers,
      listStart(observer.tab.messages, observer.tab.hasOlder, seqOf),
    );
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
      holes.length === 0 &&
      resets === 0 &&
      want.length > 0 &&
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
      holes,
      resets,
      catchUpMs: { median: median(catchUp), max: catchUp.length === 0 ? Number.NaN : Math.max(...catchUp) },
      totalMs: now() - started,
      pass,
    };
  } finally {
    dropper?.close();
    await traffic?.close().catch(() => {});
    await drillChat?.close();
  }
}

export function summary(r: ReconnectsResult): string {
  return (
    `${r.engine}: ${r.drops} drops (${r.connects} streams opened); ${r.missedWhileAway} gaps missed messages ` +
    `(${r.messagesWhileAway} in all); caught up after a reconnect (stream opened → the observer's position at ` +
    `the reconnect): median ${r.catchUpMs.median.toFixed(0)} ms, max ${r.catchUpMs.max.toFixed(0)} ms; ` +
    `list resets ${r.resets}\n` +
    `  the observer shows ${r.roomMessages} messages in the range both lists show; the dropper shows ${r.shown}: ` +
    `missing ${few(r.missing)}, extra ${few(r.extra)}, duplicated ${few(r.duplicated)}, reordered ` +
    `${few(r.reordered)}, holes ${few(r.holes)}; same list as the observer: ${r.sameAsObserver ? "yes" : "NO"}; ` +
    `checked before every ` +
    `drop and after every reconnect: ` +
    `${r.badCycles.length === 0 ? "all equal" : `${r.badCycles.length} failed (${r.badCycles.slice(0, 3).join("; ")})`}\n` +
    `  against the writers' acks (from the list's oldest item on; ${r.acks.older} older ones trimmed): acked ` +
    `${r.acks.acked}, lost ${r.acks.lost.length}, duplicated ${r.acks.duplicated.length}, reordered ` +
    `${r.acks.reordered.length} (observer: lost ${r.observer.lost.length}) → ${r.pass ? "PASS" : "FAIL"}`
  );
}
