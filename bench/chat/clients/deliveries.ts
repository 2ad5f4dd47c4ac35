// What reaches a client process's tabs: every event of their streams is read here (message items,
// presence counts, resets, errors), each delivery counted once per tab and timed, and at the end of a
// phase checked against what was sent (lost, duplicated, misrouted).
import {
  hasMessageItems,
  LIST_TRIM_PREFIX,
  type MessageState,
  messageItems,
  presenceCount,
  viewHashOf,
} from "../../../harness/chat-markup.ts";
import { sleep } from "../../../harness/cleanup.ts";
import { isComment, lineValue } from "../../../harness/sse-parse.ts";
import { wallNow } from "../../common/ipc.ts";
import type { FinishArgs, FinishResult } from "../client-api.ts";
import { Histogram, parseMessageText } from "../shared.ts";
import type { Browser, Tab } from "./world.ts";
import { byIndex, counters, intern, onClosed, sockets, tabs, unexpected, world } from "./world.ts";

/** seq → the local tab that sent it. */
export const sentBy = new Map<number, Tab>();
/** seq → the (interned) id its sender first saw it under. */
export const sentIdOf = new Map<number, number>();
export const confirmed = new Set<number>();
/** Seqs whose sender saw them under a second, different id. */
export const senderDuplicates = new Set<number>();
/** seq → local recipient deliveries so far. */
export const deliveredCount = new Map<number, number>();
/** Closed loop: seq → what is still missing locally before the next message may go. */
export const waiting = new Map<number, { left: number; done: () => void }>();

/** The presence target of the current ramp, and when and how far the local tabs got to it. */
export const presence = { target: 0, firstAt: 0, allAt: 0, reached: 0, max: 0 };

/** Measurement of the current phase. */
export const phase = {
  measuredFrom: Number.POSITIVE_INFINITY,
  hist: new Histogram(),
  windowOpen: false,
  windowDeliveries: 0,
  /** Closed loop: reads (data events) on SSE streams inside the window: how much the server batched. */
  windowReads: 0,
  windowHist: new Histogram(),
  bytesAtWindowStart: 0,
  windowStartedAt: 0,
  requestHist: new Histogram(),
  confirmHist: new Histogram(),
  completeHist: new Histogram(),
};

export function bytesNow(): number {
  let sum = 0;
  for (const s of sockets) sum += s.bytesRead;
  return sum;
}

/** Position of an item that has none: Socket.IO (no positions in that world.protocol). */
export const NO_POSITIONS = -1;

/**
 * One chat message item that reached tab `t`: `id` its element id, `pos` its list position (0: none;
 * NO_POSITIONS for Socket.IO), `state` from its classes.
 */
export function onItem(t: Tab, seq: number, sentAt: number, id: string, pos: number, state: MessageState): void {
  const at = wallNow();
  const idx = intern(id);
  const newest = pos > t.maxPos;
  if (newest) t.maxPos = pos;
  if (sentBy.get(seq) === t) {
    // The sender's own message: "sending" from the action, then the stored copy or the ack (same id).
    if (state === "failed") {
      counters.failed++;
      return;
    }
    const first = sentIdOf.get(seq);
    if (first === undefined) sentIdOf.set(seq, idx);
    else if (first !== idx) {
      senderDuplicates.add(seq);
      return;
    }
    if (state === "sending") return;
    if (confirmed.has(seq)) {
      counters.upserts++;
      return;
    }
    confirmed.add(seq);
    phase.confirmHist.add(at - sentAt);
    progress(seq);
    return;
  }
  if (state !== "sent" || pos === 0) {
    unexpected(`tab ${t.index}: ${state} item m-${id} of #${seq}${pos === 0 ? " without a position" : ""}`);
    return;
  }
  if (pos !== NO_POSITIONS && !newest) {
    // Not past the newest position this tab holds: an upsert of an item it holds, or a new item out of order.
    if (holds(t, idx)) {
      counters.upserts++;
      return;
    }
    counters.outOfOrder++;
  }
  if (t.nReceived === t.received.length) {
    const bigger = new Uint32Array(t.received.length * 2);
    bigger.set(t.received);
    t.received = bigger;
    const biggerIds = new Uint32Array(t.receivedIds.length * 2);
    biggerIds.set(t.receivedIds);
    t.receivedIds = biggerIds;
  }
  t.received[t.nReceived] = seq;
  t.receivedIds[t.nReceived++] = idx;
  deliveredCount.set(seq, (deliveredCount.get(seq) ?? 0) + 1);
  if (seq >= phase.measuredFrom) phase.hist.add(at - sentAt);
  if (phase.windowOpen) {
    phase.windowDeliveries++;
    phase.windowHist.add(at - sentAt);
  }
  progress(seq);
}

/** Whether tab `t` already holds the item with (interned) id `idx`: rare, so a scan from the newest. */
function holds(t: Tab, idx: number): boolean {
  for (let i = t.nReceived - 1; i >= 0; i--) if (t.receivedIds[i] === idx) return true;
  return t.pageIds.includes(idx);
}

function progress(seq: number): void {
  const w = waiting.get(seq);
  if (w && --w.left <= 0) {
    waiting.delete(seq);
    w.done();
  }
}

function onPresence(t: Tab, count: number): void {
  t.presence = count;
  if (count > presence.max) presence.max = count;
  if (presence.target === 0 || count !== presence.target || t.presenceReached) return;
  t.presenceReached = true;
  const at = wallNow();
  if (presence.firstAt === 0) presence.firstAt = at;
  if (++presence.reached === tabs.length) presence.allAt = at;
}

/** One complete SSE event (without its terminating blank line). */
export function onEvent(t: Tab, ev: string): void {
  if (isComment(ev)) return;
  const selector = lineValue(ev, "data: selector ");
  if (selector === "#messages") {
    const mode = lineValue(ev, "data: mode ") ?? "outer";
    if (mode === "append") {
      for (const item of messageItems(ev)) {
        const parsed = parseMessageText(item.text);
        if (!parsed) {
          unexpected(`unparseable item text: ${item.text.slice(0, 80)}`);
          continue;
        }
        onItem(t, parsed.seq, parsed.sentAt, item.id, item.pos, item.state);
      }
    } else if (mode === "inner") counters.resyncs++;
    else if (mode === "prepend") counters.prepends++;
    else unexpected(`#messages patch in mode ${mode}`);
    return;
  }
  if (selector === "#presence") {
    const count = presenceCount(ev);
    if (count !== undefined) onPresence(t, count);
    else unexpected("#presence patch without a count");
    return;
  }
  if (selector?.startsWith(LIST_TRIM_PREFIX)) {
    counters.trims++;
    return;
  }
  if (selector === undefined) {
    if (ev.startsWith("event: via-bye") || ev.startsWith("event: via-reload")) {
      counters.byes++;
      return;
    }
    const hash = viewHashOf(ev);
    if (hash !== undefined) {
      counters.viewRenders++;
      t.viewHash = hash;
      // A view render carries the list element empty: the browser keeps its items.
      if (hasMessageItems(ev)) unexpected("a view render with message items");
      return;
    }
  }
  if (ev.includes("via-toast-error")) {
    counters.toasts++;
    const at = ev.indexOf("via-toast-error");
    if (!counters.toastSample) counters.toastSample = ev.slice(at, at + 300);
  } else if (hasMessageItems(ev)) unexpected(`message items outside #messages: ${ev.slice(0, 200)}`);
}

/** An event of a browser's shared stream: ours (the stream's id, a lane's start or end) or a tab's. */
export function onMuxEvent(br: Browser, ev: string): void {
  if (isComment(ev)) return;
  if (ev.startsWith("event: via-tab\n")) {
    const slot = Number(lineValue(ev, "data: slot "));
    br.lane = br.bySlot.get(slot);
    if (!br.lane) unexpected(`browser ${br.index}: via-tab for slot ${slot}, which none of its tabs has`);
    return;
  }
  if (ev.startsWith("event: via-tab-end\n")) {
    const slot = Number(lineValue(ev, "data: slot "));
    counters.laneEnds++;
    const t = br.bySlot.get(slot);
    if (!t) unexpected(`browser ${br.index}: via-tab-end for slot ${slot}, which none of its tabs has`);
    else onClosed(t);
    if (br.lane === t) br.lane = undefined;
    return;
  }
  if (ev.startsWith("event: via-mux\n")) {
    br.muxId = lineValue(ev, "data: id ") ?? "";
    br.onMuxId?.();
    return;
  }
  if (!br.lane) {
    unexpected(`browser ${br.index}: an event on its shared stream outside any lane: ${ev.slice(0, 120)}`);
    return;
  }
  onEvent(br.lane, ev);
}

export function startWindow(): void {
  phase.bytesAtWindowStart = bytesNow();
  phase.windowStartedAt = wallNow();
}

export function resetMeasurement(from: number): void {
  phase.measuredFrom = from;
  phase.hist = new Histogram();
  phase.windowHist = new Histogram();
  phase.windowDeliveries = 0;
  phase.windowReads = 0;
  phase.windowOpen = false;
  phase.requestHist = new Histogram();
  phase.confirmHist = new Histogram();
  phase.completeHist = new Histogram();
  phase.bytesAtWindowStart = bytesNow();
  phase.windowStartedAt = wallNow();
}

export async function finish(args: FinishArgs): Promise<FinishResult> {
  // What each local tab must have: every message of its room that it did not send itself.
  const roomOfSeq = new Map<number, number>();
  const byRoom = world.rooms.map((): Array<[number, number]> => []);
  let expectedDeliveries = 0;
  const mine: number[] = [];
  const expectedHere = new Map<number, number>();
  for (const [seq, room, sender] of args.messages) {
    roomOfSeq.set(seq, room);
    byRoom[room]!.push([seq, sender]);
    const senderLocal = byIndex.has(sender);
    const n = world.localRoomCount[room]! - (senderLocal ? 1 : 0);
    expectedHere.set(seq, n);
    expectedDeliveries += n;
    if (senderLocal) mine.push(seq);
  }
  const complete = () => {
    for (const [seq, n] of expectedHere) if ((deliveredCount.get(seq) ?? 0) < n) return false;
    for (const seq of mine) if (!confirmed.has(seq)) return false;
    return true;
  };
  const deadline = performance.now() + args.timeoutMs;
  while (!complete() && performance.now() < deadline) await sleep(20);
  const bytes = bytesNow() - phase.bytesAtWindowStart;
  const windowMs = wallNow() - phase.windowStartedAt;

  // Per tab: count each of its room's messages among what it received (an upsert of an id the tab
  // held was not recorded, so a seq seen twice came under two ids).
  let lostDeliveries = 0;
  let duplicates = 0;
  let misrouted = 0;
  const lostSeqs = new Set<number>();
  const seen = new Map<number, number>();
  for (const t of tabs) {
    seen.clear();
    for (let i = 0; i < t.nReceived; i++) {
      const seq = t.received[i]!;
      const room = roomOfSeq.get(seq);
      if (room === undefined) continue; // another phase's message
      if (room !== t.room) {
        misrouted++;
        continue;
      }
      seen.set(seq, (seen.get(seq) ?? 0) + 1);
    }
    for (const [seq, sender] of byRoom[t.room]!) {
      if (sender === t.index) continue;
      const c = seen.get(seq) ?? 0;
      if (c === 0) {
        lostDeliveries++;
        lostSeqs.add(seq);
      } else if (c > 1) duplicates += c - 1;
    }
  }
  for (const seq of mine) if (senderDuplicates.has(seq)) duplicates++;
  return {
    hist: phase.hist.toData(),
    bytes,
    windowMs,
    expectedDeliveries,
    lostDeliveries,
    duplicates,
    lostSeqs: [...lostSeqs].slice(0, 10_000),
    unconfirmed: mine.filter((seq) => !confirmed.has(seq)).slice(0, 10_000),
    misrouted,
  };
}
