import { decodeChatMessage } from "../../../apps/chat/messages.ts";
import { CHAT_STREAM, roomSubject } from "../../../apps/chat/rooms.ts";
import { ChatTab, type MessageState } from "../../../harness/chat-client.ts";
import { sleep } from "../../../harness/cleanup.ts";
import type { EngineName } from "../../../harness/cli.ts";
import { span } from "../../../harness/stats.ts";
import { openPubSub } from "../../../src/pubsub/index.ts";
import type { StreamMessage } from "../../../src/pubsub/types.ts";
import { type DrillChat, startDrillChat } from "../chat-storage.ts";
import { now, randomBetween as rand, waitUntil } from "../clock.ts";
import { checkList, checkPassed, type ListCheck, labelOf, Traffic, type WriterStats } from "../traffic.ts";

export type ChatEngine = EngineName;

export interface CrashDrillOptions {
  engine: ChatEngine;
  /** kill -9 count during the storm. */
  kills: number;
  /** Writer tabs, one browser session each (default 10). */
  writers?: number;
  /** Observer tabs (default 3). */
  observers?: number;
  /** Pause between one writer's sends (default 200 ms; the chat runs with --send-rate 10). */
  intervalMs?: number;
  /** After a restart: wait for every observer to receive again and this many new acks (default 20). */
  minAcksBetweenKills?: number;
  /** Random downtime 0..maxDownMs between the kill and the restart (default 300 ms). */
  maxDownMs?: number;
  /** Writing goes on this long after the last restart (default 1.5 s). */
  tailMs?: number;
  /** Hard cap on the whole drill; beyond it the drill fails (default 60 s + 20 s per kill). */
  timeLimitMs?: number;
  room?: string;
  /**
   * NATS only (default true): every kill lands between Send's answer and the stream's ack. nats-server is
   * paused (SIGSTOP) first, so sends are answered 204 but not stored; the chat is killed with them in
   * flight; then nats-server resumes (odd kills: the publishes the dead chat wrote are stored, their acks
   * lost) or is killed and restarted too (even kills: they are lost). Either way the writers' tabs must end
   * with each of them stored once, or shown "not sent".
   */
  betweenAnswerAndAck?: boolean;
  log?: (line: string) => void;
}

export interface KillRecord {
  /** ms since the storm began. */
  atMs: number;
  pid: number;
  /** Acks since the previous start. */
  acksBefore: number;
  /** Sends accepted (2xx) but not yet acknowledged when the kill landed: in flight. */
  inFlight: number;
  downMs: number;
  /** Spawn of the new chat process until it logged its URL. */
  startMs: number;
  /** From that moment until the first observer received a message again. */
  firstReceiveMs: number;
  /** ... until every observer received a message again. */
  allReceiveMs: number;
  /** ... until the first writer saw a new message of its own stored. */
  firstAckMs: number;
  /** NATS, between answer and ack: sends answered while nats-server was paused (labels), and its fate. */
  answeredUnstored?: string[];
  nats?: "resumed" | "killed";
}

export interface CrashDrillResult {
  engine: ChatEngine;
  writers: number;
  kills: KillRecord[];
  /** Messages acknowledged to their writers. */
  acked: number;
  /** Sends answered 2xx. */
  accepted: number;
  /** Sends refused (410 while the tab re-attached, 429...), retried with the same number. */
  rejected: number;
  /** Sends without an answer (the server was dying or down). */
  unanswered: number;
  /** The user-visible check: a fresh tab after "Load older" down to the start of the room. */
  tab: ListCheck;
  /** The stream itself, read through the pub/sub API after the chat stopped. */
  stream: ListCheck;
  /** Each observer tab, connected throughout (reconnecting after every restart), from its list's oldest item on. */
  observers: ListCheck[];
  /** Messages of the drill stored in the room. */
  stored: number;
  /** The fresh tab lists exactly what the stream holds, in the same order. */
  tabMatchesStream: boolean;
  /** Accepted (2xx) sends never stored (and not shown "not sent" either). Must be 0. */
  acceptedNotStored: number;
  /** Accepted (2xx) sends their writer's tab shows neither stored nor "not sent" at the end: silently missing. Must be 0. */
  acceptedMissing: string[];
  /** Accepted sends their writer's tab shows "not sent" (with Retry) at the end. */
  notSent: number;
  /** Sends answered while nats-server was paused, just before a kill (NATS, between answer and ack). */
  answeredUnstored: number;
  /** The room reached its 1,000-message history cap: older messages were evicted and the check is void. */
  historyCapped: boolean;
  stormMs: number;
  totalMs: number;
  pass: boolean;
}

/** The chat keeps 1,000 messages per room; the drill stays well below, so the whole history is checkable. */
const ROOM_CAP = 1000;
const ROOM_BUDGET = 800;

/** Every message stored under the room's subject, oldest first, through history() pages. */
export async function readRoom(
  engine: ChatEngine,
  where: { dataDir?: string; natsUrl?: string },
  room: string,
): Promise<{ msgs: StreamMessage[]; texts: string[]; subjectCount: number }> {
  const ps = await openPubSub(engine === "nats" ? { natsUrl: where.natsUrl! } : { dataDir: where.dataDir! });
  try {
    const subject = roomSubject(room);
    const msgs: StreamMessage[] = [];
    for (let after = 0; ; ) {
      const page = await ps.history(subject, { afterSeq: after, limit: 1000 });
      if (page.length === 0) break;
      msgs.push(...page);
      after = page.at(-1)!.seq;
    }
    const info = await ps.info(CHAT_STREAM);
    const dec = new TextDecoder();
    const texts = msgs.map((m) => decodeChatMessage(JSON.parse(dec.decode(m.data))).text);
    return { msgs, texts, subjectCount: info.subjects[subject] ?? 0 };
  } finally {
    await ps.close();
  }
}

/** Labels of every send answered 2xx so far ("w3#17"). */
function acceptedLabels(writers: readonly WriterStats[]): Set<string> {
  const out = new Set<string>();
  for (const w of writers) for (const n of acceptedNumbers(w)) out.add(`w${w.writer}#${n}`);
  return out;
}

/** Numbers a writer had answered 2xx: every number it used, minus those that got no answer. */
export function acceptedNumbers(w: WriterStats): number[] {
  const unanswered = new Set(w.unanswered);
  const out: number[] = [];
  for (let n = 0, seen = 0; seen < w.accepted; n++) {
    if (unanswered.has(n)) continue;
    out.push(n);
    seen++;
  }
  return out;
}

function labels(texts: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of texts) {
    const l = labelOf(t);
    if (l) out.push(`w${l.writer}#${l.n}`);
  }
  return out;
}

export async function runCrashDrill(opts: CrashDrillOptions): Promise<CrashDrillResult> {
  const log = opts.log ?? (() => {});
  const writers = opts.writers ?? 10;
  const room = opts.room ?? "Go";
  const minAcks = opts.minAcksBetweenKills ?? 20;
  const maxDown = opts.maxDownMs ?? 300;
  const tail = opts.tailMs ?? 1_500;
  const started = now();
  const deadline = started + (opts.timeLimitMs ?? 60_000 + opts.kills * 20_000);
  // Kill moments are chosen by acks since the last start (random in [minAcks, perCycle]) plus up to
  // 250 ms, so the room stays under its history cap whatever the machine's speed.
  const perCycle = Math.max(minAcks, Math.floor(ROOM_BUDGET / (opts.kills + 1)));

  let drillChat: DrillChat | undefined;
  let traffic: Traffic | undefined;
  let fresh: ChatTab | undefined;

  try {
    drillChat = await startDrillChat(opts.engine, "via-drill-chat-crash-", room);
    const chat = drillChat;
    const { storage } = chat;
    const base = chat.process.url;
    traffic = await Traffic.open({
      base,
      room,
      writers,
      observers: opts.observers ?? 3,
      intervalMs: opts.intervalMs ?? 200,
    });
    const t = traffic;
    log(
      `${opts.engine}: chat on ${base} (pid ${chat.process.pid}), ${writers} writers, ${t.observers.length} observers`,
    );
    const stormStart = now();
    t.send();

    const kills: KillRecord[] = [];
    const nats = opts.betweenAnswerAndAck !== false ? storage.nats : undefined;
    for (let k = 1; k <= opts.kills; k++) {
      const since = t.ackedCount();
      const target = rand(minAcks, perCycle);
      await waitUntil(`${target} acks after a start`, () => t.ackedCount() >= since + target, deadline);
      let answeredUnstored: string[] | undefined;
      if (nats) {
        // Between the answer and the ack, for sure: with nats-server paused the chat answers Send (it does
        // not wait for the stream) but nothing is stored. Kill it once a few such sends are answered.
        const before = acceptedLabels(t.writers);
        await nats.pause();
        const until = now() + 1_000;
        while (now() < until && acceptedLabels(t.writers).size < before.size + 3) await sleep(2);
        answeredUnstored = [...acceptedLabels(t.writers)].filter((l) => !before.has(l));
      } else {
        // Within a random 0-250 ms, at the first moment a send is in flight (answered, not yet shown as
        // stored) if there is one: the window in which a kill can lose a message the user was told is on
        // its way.
        const until = now() + rand(0, 250);
        while (now() < until && t.pendingCount() === 0) await sleep(1);
      }
      const atMs = now() - stormStart;
      const inFlight = t.pendingCount();
      const acksBefore = t.ackedCount() - since;
      const pid = chat.process.pid;
      await chat.process.kill9();
      let natsFate: KillRecord["nats"];
      if (nats) {
        // What the dead chat wrote to the paused server is in its socket: stored once the server reads it
        // (its acks go nowhere), or lost with the server's kill.
        if (k % 2 === 1) {
          nats.resume();
          natsFate = "resumed";
        } else {
          await nats.kill9();
          await nats.start();
          natsFate = "killed";
        }
      }
      const downMs = rand(0, maxDown);
      await sleep(downMs);
      const spawnAt = now();
      await chat.restart();
      const readyAt = now();
      // Receiving again: a message that first shows on a tab after the restart.
      const receivedSince = (tab: ChatTab) => {
        for (const at of tab.arrivals.values()) if (at > readyAt) return at;
        return undefined;
      };
      const ackSince = () => {
        let first: number | undefined;
        for (const w of t.writers)
          for (const at of w.acked.values()) if (at > readyAt && (first ?? at) >= at) first = at;
        return first;
      };
      let firstReceive: number | undefined;
      let allReceive: number | undefined;
      let firstAck: number | undefined;
      await waitUntil(
        "every observer to receive again",
        () => {
          const times = t.observers.map((o) => receivedSince(o.tab));
          const got = times.filter((x): x is number => x !== undefined);
          if (got.length > 0) firstReceive ??= Math.min(...got);
          if (got.length === times.length) allReceive = Math.max(...got);
          firstAck ??= ackSince();
          return allReceive !== undefined && firstAck !== undefined;
        },
        deadline,
      );
      const rec: KillRecord = {
        atMs,
        pid,
        acksBefore,
        inFlight,
        downMs,
        startMs: readyAt - spawnAt,
        firstReceiveMs: firstReceive! - readyAt,
        allReceiveMs: allReceive! - readyAt,
        firstAckMs: firstAck! - readyAt,
        ...(answeredUnstored ? { answeredUnstored } : {}),
        ...(natsFate ? { nats: natsFate } : {}),
      };
      kills.push(rec);
      log(
        `  kill ${k}/${opts.kills} at ${(atMs / 1000).toFixed(1)} s: pid ${pid}, ${inFlight} sends in flight` +
          `${answeredUnstored ? ` (${answeredUnstored.length} answered while nats-server was paused; then it was ${natsFate})` : ""}, ` +
          `${acksBefore} acks since the last start; down ${downMs} ms, started in ${Math.round(rec.startMs)} ms, ` +
          `tabs receiving ${Math.round(rec.firstReceiveMs)}-${Math.round(rec.allReceiveMs)} ms later`,
      );
    }
    const since = t.ackedCount();
    await sleep(tail);
    await waitUntil("acks after the last start", () => t.ackedCount() >= since + minAcks, deadline);
    await t.stopSending();
    // The last sends are acked within moments (nothing is killed any more).
    const settleBy = Math.min(deadline, now() + 10_000);
    while (t.pendingCount() > 0 && now() < settleBy) await sleep(20);
    const stormMs = now() - stormStart;
    // The observers lived through every restart: each reconnect re-bootstrapped the tab and resumed its
    // list from the position it reported, so each must show every acknowledged message from its list's
    // oldest item on, once and in order.
    await t.settle(Math.max(1_000, Math.min(10_000, deadline - now())));
    const observers = t.checkObservers();

    // What each writer's own tab says about every send it had answered: stored, "not sent", or nothing
    // (still "sending", or gone): the last is a message the user typed and lost without being told.
    const shownState = new Map<string, MessageState>();
    t.writers.forEach((w, k) => {
      for (const m of t.writerTab(k).messages) {
        const l = labelOf(m.text);
        if (l?.writer === w.writer) shownState.set(`w${l.writer}#${l.n}`, m.state);
      }
    });
    const accepted = acceptedLabels(t.writers);
    const everStored = new Set<string>();
    for (const w of t.writers) for (const n of w.acked.keys()) everStored.add(`w${w.writer}#${n}`);
    // Shown stored at some point (a list reset to the last page after a restart no longer holds older
    // items, which is what "Load older" is for), or "not sent" now.
    const acceptedMissing = [...accepted].filter((l) => !everStored.has(l) && shownState.get(l) !== "failed");
    const notSent = [...accepted].filter((l) => shownState.get(l) === "failed").length;

    // What a user sees: a new tab, "Load older" down to the start of the room.
    fresh = await ChatTab.open(base, room);
    await fresh.loadAll(Math.max(5_000, deadline - now()));
    const tabTexts = fresh.messages.filter((m) => m.state === "sent").map((m) => m.text);
    fresh.close();
    fresh = undefined;
    await t.close();
    traffic = undefined;
    const exit = await chat.process.stop();
    if (exit !== 0) log(`  note: the chat exited with ${exit} on SIGTERM`);

    // The stream itself, through the pub/sub API.
    const back = await readRoom(opts.engine, { dataDir: storage.where.dataDir, natsUrl: storage.where.nats }, room);
    const tab = checkList(tabTexts, t.writers);
    const stream = checkList(back.texts, t.writers);
    const storedLabels = new Set(labels(back.texts));
    let acceptedNotStored = 0;
    for (const l of accepted) if (!storedLabels.has(l) && shownState.get(l) !== "failed") acceptedNotStored++;
    const tabMatchesStream = JSON.stringify(labels(tabTexts)) === JSON.stringify(labels(back.texts));
    const historyCapped = back.subjectCount >= ROOM_CAP;
    const sum = (f: (w: WriterStats) => number) => t.writers.reduce((s, w) => s + f(w), 0);
    const pass =
      checkPassed(tab) &&
      checkPassed(stream) &&
      observers.every(checkPassed) &&
      tabMatchesStream &&
      !historyCapped &&
      acceptedMissing.length === 0 &&
      acceptedNotStored === 0 &&
      kills.length === opts.kills &&
      stream.acked > 0;
    return {
      engine: opts.engine,
      writers,
      kills,
      acked: stream.acked,
      accepted: sum((w) => w.accepted),
      rejected: sum((w) => w.rejected),
      unanswered: sum((w) => w.unanswered.length),
      tab,
      stream,
      observers,
      stored: storedLabels.size,
      tabMatchesStream,
      acceptedNotStored,
      acceptedMissing,
      notSent,
      answeredUnstored: kills.reduce((n, r) => n + (r.answeredUnstored?.length ?? 0), 0),
      historyCapped,
      stormMs,
      totalMs: now() - started,
      pass,
    };
  } finally {
    fresh?.close();
    await traffic?.close().catch(() => {});
    await drillChat?.close();
  }
}

export function summary(r: CrashDrillResult): string {
  const sum = (k: "lost" | "duplicated" | "reordered") => r.observers.reduce((n, c) => n + c[k].length, 0);
  const ms = (xs: number[]) => span(xs, "ms");
  return (
    `${r.engine}: ${r.kills.length} kills, ${r.writers} writers, storm ${(r.stormMs / 1000).toFixed(1)} s; ` +
    `sends accepted ${r.accepted}, refused and retried ${r.rejected}, unanswered ${r.unanswered}\n` +
    `  acked ${r.acked}, stored ${r.stored}; in flight at the kills ${r.kills.reduce((s, k) => s + k.inFlight, 0)}` +
    `${r.answeredUnstored > 0 ? ` (answered while nats-server was paused: ${r.answeredUnstored})` : ""}: ` +
    `stored unacked ${r.stream.unackedPresent}, accepted but never stored ${r.acceptedNotStored}, ` +
    `shown "not sent" ${r.notSent}, accepted but missing from the writer's tab ${r.acceptedMissing.length}` +
    `${r.acceptedMissing.length > 0 ? ` (${r.acceptedMissing.slice(0, 10).join(", ")})` : ""}\n` +
    `  chat start ${ms(r.kills.map((k) => k.startMs))}; after it, tabs receiving again in ` +
    `${ms(r.kills.map((k) => k.allReceiveMs))} (all observers), first own ack ${ms(r.kills.map((k) => k.firstAckMs))}\n` +
    `  fresh tab after Load older: lost ${r.tab.lost.length}, duplicated ${r.tab.duplicated.length}, ` +
    `reordered ${r.tab.reordered.length}; observers: lost ${sum("lost")}, duplicated ${sum("duplicated")}, reordered ` +
    `${sum("reordered")}; stream: lost ${r.stream.lost.length}, duplicated ${r.stream.duplicated.length}, ` +
    `reordered ${r.stream.reordered.length}; tab = stream: ${r.tabMatchesStream ? "yes" : "NO"}` +
    `${r.historyCapped ? "; ROOM HISTORY CAP REACHED (check void)" : ""} → ${r.pass ? "PASS" : "FAIL"}`
  );
}
