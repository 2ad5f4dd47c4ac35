// Chat traffic for the reliability drills: writer tabs post numbered messages ("w<k>#<n>") through the
// chat's real protocol while observer tabs watch the room, every tab reconnecting the way the browser
// runtime does when its stream drops (same tab id; a new page when the server asks for a reload).
// A message is *acknowledged* once its writer's own tab shows it as stored ("sent"): that is the
// promise the UI makes to the person who typed it, so it is what the drills hold the system to.
// A tab's list shows the room's newest messages only (the server trims it to 1,000 by removing the
// oldest; "Load older" brings them back), so a trimmed list is checked against the acknowledged messages
// from its oldest item on: an acknowledged message whose stream position is older than that is not
// expected on it, one whose position no tab ever showed is always expected (see `ListStart`).
import { ChatTab, type ShownMessage } from "../../harness/chat-client.ts";
import { sleep } from "../../harness/cleanup.ts";
import { Browser } from "../../harness/sse-client.ts";
import { now } from "./clock.ts";

export interface TrafficOptions {
  /** The chat's URL; a restarted server must come back on the same one. */
  base: string;
  /** Room for every tab (default "Go"). */
  room?: string;
  /** Writer tabs, one browser session each (default 10). */
  writers?: number;
  /** Observer tabs, one browser session each (default 3). */
  observers?: number;
  /** Pause between one writer's sends (default 200 ms: 5 messages/s per writer). */
  intervalMs?: number;
}

const LABEL = /^w(\d+)#(\d+)(?:\s|$)/;
// Pads each message to about 100 bytes, the size the benchmarks use.
const PAD = " lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore";

export function labelOf(text: string): { writer: number; n: number } | undefined {
  const m = LABEL.exec(text);
  return m ? { writer: Number(m[1]), n: Number(m[2]) } : undefined;
}

/** A tab kept connected: reconnects after a drop, reloads when the server has no page for it. */
class LiveTab {
  tab!: ChatTab;
  private stopped = false;
  private loop: Promise<void> | undefined;
  constructor(
    readonly browser: Browser,
    readonly room: string,
    readonly onChange: (tab: LiveTab) => void,
  ) {}

  async open(): Promise<void> {
    this.tab = await ChatTab.open(this.browser.base, this.room, this.browser);
    this.tab.onChange = () => this.onChange(this);
    this.onChange(this);
    this.loop = this.keepConnected();
  }

  /** Like the runtime: a dropped stream is reopened (100 ms apart while the server is away). */
  private async keepConnected(): Promise<void> {
    while (!this.stopped) {
      await sleep(100);
      if (this.stopped || this.tab.connected) continue;
      try {
        if (this.tab.reloadAsked) {
          const fresh = await ChatTab.open(this.browser.base, this.room, this.browser);
          this.tab.close();
          this.tab = fresh;
          this.tab.onChange = () => this.onChange(this);
          this.onChange(this);
        } else {
          await this.tab.connect();
        }
      } catch {
        // The server is still away; try again.
      }
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.tab?.close();
  }
}

export interface WriterStats {
  writer: number;
  /** Sends the server answered with 2xx. */
  accepted: number;
  /** Sends answered with an error status (retried with the same number). */
  rejected: number;
  /** Sends that got no answer (the server died): never retried, they may or may not be stored. */
  unanswered: number[];
  /** Numbers this writer's tab showed as stored, with when it first did. */
  acked: Map<number, number>;
}

/**
 * The server trims a chat list back to the room's newest 1,000 items (apps/chat/app.tsx, MAX_SHOWN) once
 * it holds 1,100: a list that was trimmed holds at least this many.
 */
export const TRIMMED_LIST_MIN = 1000;

/**
 * Where a list starts. A list shows a contiguous run of the room's newest messages, and only messages at
 * or after its oldest item belong on it when that start is explained: the server trimmed the list (it
 * then holds at least TRIMMED_LIST_MIN items) or the list shows the start of the room (older messages
 * were evicted by the stream's cap). An acknowledged message older than that is not checked against
 * it; one whose position is not known is checked (a message no tab and no stream reader ever placed
 * cannot be excused).
 */
export interface ListStart {
  /** The oldest stream position the list shows. */
  oldestSeq: number;
  /** The stream position of a label ("w3#17"), if known. */
  seqOf: (label: string) => number | undefined;
}

/**
 * The start of a list for checkList: its oldest stored item, if that start is explained (see ListStart);
 * undefined otherwise (a short list that does not show the room's start: every ack is checked).
 * `hasOlder`: the list shows "Load older".
 */
export function listStart(
  messages: readonly ShownMessage[],
  hasOlder: boolean,
  seqOf: (label: string) => number | undefined,
): ListStart | undefined {
  let oldestSeq: number | undefined;
  let stored = 0;
  for (const m of messages) {
    if (m.seq === undefined) continue;
    stored++;
    if (oldestSeq === undefined || m.seq < oldestSeq) oldestSeq = m.seq;
  }
  if (oldestSeq === undefined || (hasOlder && stored < TRIMMED_LIST_MIN)) return undefined;
  return { oldestSeq, seqOf };
}

/**
 * Where a list skips messages of the room: consecutive items with room messages (by stream position)
 * between them. A list must be a contiguous run of the room, whatever its oldest item: a gap filled
 * from the wrong position, or a reset that should have happened and did not, shows here even where no
 * other list overlaps it. `roomSeqs`: the positions of the room's messages, as far as the drill knows.
 */
export function listHoles(messages: readonly ShownMessage[], roomSeqs: Iterable<number>): string[] {
  const room = Float64Array.from(new Set(roomSeqs)).sort();
  /** Room positions < x. */
  const below = (x: number) => {
    let lo = 0;
    let hi = room.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (room[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const out: string[] = [];
  let prev: number | undefined;
  for (const m of messages) {
    if (m.seq === undefined) continue;
    if (prev !== undefined && m.seq > prev) {
      const between = below(m.seq) - below(prev + 1);
      if (between > 0) out.push(`seq ${prev} → ${m.seq} (${between} room messages between)`);
    }
    prev = m.seq;
  }
  return out;
}

export interface ListCheck {
  /** Acknowledged messages checked. */
  acked: number;
  /** Acknowledged messages older than the list's oldest item (see ListStart): not expected on it, not checked. */
  older: number;
  /** Acknowledged messages missing from the list. */
  lost: string[];
  /** Labels shown more than once. */
  duplicated: string[];
  /** Labels out of their writer's order. */
  reordered: string[];
  /** Messages present that were never acknowledged (in flight at a crash: allowed, reported). */
  unackedPresent: number;
}

/**
 * Checks a room's message texts, oldest first, against what the writers saw acknowledged: every
 * acknowledged message (from `start` on, if given) must be there.
 */
export function checkList(texts: readonly string[], writers: readonly WriterStats[], start?: ListStart): ListCheck {
  const seen = new Set<string>();
  const duplicated: string[] = [];
  const reordered: string[] = [];
  const lastN = new Map<number, number>();
  let unackedPresent = 0;
  for (const text of texts) {
    const label = labelOf(text);
    if (!label) continue;
    const key = `w${label.writer}#${label.n}`;
    if (seen.has(key)) {
      duplicated.push(key);
      continue;
    }
    seen.add(key);
    if ((lastN.get(label.writer) ?? -1) > label.n) reordered.push(key);
    lastN.set(label.writer, Math.max(label.n, lastN.get(label.writer) ?? -1));
    if (!writers[label.writer]?.acked.has(label.n)) unackedPresent++;
  }
  const lost: string[] = [];
  let acked = 0;
  let older = 0;
  for (const w of writers) {
    for (const n of w.acked.keys()) {
      const key = `w${w.writer}#${n}`;
      if (!seen.has(key)) {
        const seq = start?.seqOf(key);
        if (seq !== undefined && seq < start!.oldestSeq) {
          older++;
          continue;
        }
        lost.push(key);
      }
      acked++;
    }
  }
  return { acked, older, lost, duplicated, reordered, unackedPresent };
}

export function checkPassed(c: ListCheck): boolean {
  return c.lost.length === 0 && c.duplicated.length === 0 && c.reordered.length === 0;
}

/** "3 (w1#4, w2#7, w0#9)": how many labels, and the first `n` of them. */
export function few(xs: readonly string[], n = 5): string {
  return xs.length === 0 ? "0" : `${xs.length} (${xs.slice(0, n).join(", ")}${xs.length > n ? ", …" : ""})`;
}

export function describeCheck(c: ListCheck): string {
  return (
    `acked ${c.acked}, lost ${few(c.lost)}, duplicated ${few(c.duplicated)}, reordered ${few(c.reordered)}, ` +
    `unacked but present ${c.unackedPresent}${c.older > 0 ? `; ${c.older} acked older than the list's oldest item` : ""}`
  );
}

export class Traffic {
  readonly writers: WriterStats[] = [];
  readonly observers: LiveTab[] = [];
  private readonly writerTabs: LiveTab[] = [];
  private sending = false;
  private loops: Promise<void>[] = [];
  /** Latest arrival of any message on any observer (ms). */
  lastObserverArrival = 0;
  private arrivalWatch: Array<{ after: number; resolve: (t: number) => void }> = [];
  /** The stream position of every message any tab showed with one, by label ("w3#17"). */
  private readonly seqs = new Map<string, number>();
  /** Where else positions are known (a drill's own reader of the stream). */
  private readonly seqSources: Array<(label: string) => number | undefined> = [];

  private constructor(readonly opts: Required<TrafficOptions>) {}

  /** Opens every tab (they stay connected until close()); call send() to start writing. */
  static async open(options: TrafficOptions): Promise<Traffic> {
    const opts: Required<TrafficOptions> = {
      room: "Go",
      writers: 10,
      observers: 3,
      intervalMs: 200,
      ...options,
    };
    const t = new Traffic(opts);
    for (let k = 0; k < opts.writers; k++) {
      const stats: WriterStats = { writer: k, accepted: 0, rejected: 0, unanswered: [], acked: new Map() };
      t.writers.push(stats);
      // Only what the last event changed: a full scan of every list on every event made the drill itself
      // the bottleneck in a burst (13 tabs × 1,000 items per event), timing arrivals late by up to seconds.
      const live = new LiveTab(new Browser(opts.base), opts.room, (lt) => {
        t.noteSeqs(lt.tab.lastChanged);
        t.noteAcks(stats, lt.tab.lastChanged);
      });
      await live.open();
      t.writerTabs.push(live);
    }
    for (let i = 0; i < opts.observers; i++) {
      const live = new LiveTab(new Browser(opts.base), opts.room, (lt) => {
        t.noteSeqs(lt.tab.lastChanged);
        t.noteArrivals(lt.tab);
      });
      await live.open();
      t.observers.push(live);
    }
    return t;
  }

  private noteSeqs(messages: readonly ShownMessage[]): void {
    for (const m of messages) {
      if (m.seq === undefined) continue;
      const label = labelOf(m.text);
      if (label) this.seqs.set(`w${label.writer}#${label.n}`, m.seq);
    }
  }

  /** The stream position of a message (by label, "w3#17") as some tab showed it, if any did. */
  seqOf(label: string): number | undefined {
    const seq = this.seqs.get(label);
    if (seq !== undefined) return seq;
    for (const source of this.seqSources) {
      const found = source(label);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Adds a source of stream positions by label for seqOf (e.g. the drill's own subscription to the stream). */
  addSeqSource(source: (label: string) => number | undefined): void {
    this.seqSources.push(source);
  }

  /** The positions of every drill message some tab showed with one. */
  roomSeqs(): IterableIterator<number> {
    return this.seqs.values();
  }

  /** A tab's list checked against the acknowledgements, from its oldest item on (see ListStart). */
  check(tab: ChatTab): ListCheck {
    return checkList(
      texts(tab.messages),
      this.writers,
      listStart(tab.messages, tab.hasOlder, (l) => this.seqOf(l)),
    );
  }

  private noteAcks(w: WriterStats, messages: readonly ShownMessage[]): void {
    const at = now();
    for (const m of messages) {
      if (m.state !== "sent") continue;
      const label = labelOf(m.text);
      if (label?.writer === w.writer && !w.acked.has(label.n)) w.acked.set(label.n, at);
    }
  }

  private noteArrivals(tab: ChatTab): void {
    let latest = 0;
    for (const m of tab.lastChanged) latest = Math.max(latest, tab.arrivals.get(m.id) ?? 0);
    if (latest <= this.lastObserverArrival) return;
    this.lastObserverArrival = latest;
    this.arrivalWatch = this.arrivalWatch.filter((w) => {
      if (latest <= w.after) return true;
      w.resolve(latest);
      return false;
    });
  }

  /** Resolves with the time of the first message to reach any observer after `after` (ms). */
  nextObserverArrival(after: number): Promise<number> {
    if (this.lastObserverArrival > after) return Promise.resolve(this.lastObserverArrival);
    return new Promise((resolve) => this.arrivalWatch.push({ after, resolve }));
  }

  /** Starts every writer's loop: one numbered message every `intervalMs`, each send awaited. */
  send(): void {
    if (this.sending) return;
    this.sending = true;
    this.loops = this.writers.map((w, k) => this.writeLoop(w, this.writerTabs[k]!));
  }

  private async writeLoop(w: WriterStats, live: LiveTab): Promise<void> {
    let n = 0;
    while (this.sending) {
      const text = `w${w.writer}#${n}${PAD}`.slice(0, 100);
      try {
        const res = await live.tab.send(text);
        if (res.status >= 200 && res.status < 300) {
          w.accepted++;
          n++;
        } else {
          // Refused before it was taken (server starting, tab not re-attached yet): same number again.
          w.rejected++;
        }
      } catch {
        // No answer: the server may have taken it before dying. A person would not know either; a new
        // number keeps "exactly once" checkable.
        w.unanswered.push(n);
        n++;
      }
      await sleep(this.opts.intervalMs);
    }
  }

  /** Stops the writers (waits for their in-flight sends). */
  async stopSending(): Promise<void> {
    this.sending = false;
    await Promise.all(this.loops);
  }

  /** Writer k's tab as it is now (a reload replaces it): the drills press Retry on it. */
  writerTab(k: number): ChatTab {
    return this.writerTabs[k]!.tab;
  }

  /** Acknowledged messages so far. */
  ackedCount(): number {
    return this.writers.reduce((sum, w) => sum + w.acked.size, 0);
  }

  /** Accepted sends still not acknowledged. */
  pendingCount(): number {
    return this.writers.reduce((sum, w) => sum + Math.max(0, w.accepted - w.acked.size), 0);
  }

  /** Waits until every acknowledged message (from its list's oldest item on) is on every observer, or the timeout. */
  async settle(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const o of this.observers) {
      const left = Math.max(1, deadline - Date.now());
      await o.tab
        .waitUntil(() => this.check(o.tab).lost.length === 0, left, "every acked message")
        .catch(() => undefined);
    }
  }

  /** Each observer's list checked against the acknowledgements (from its oldest item on). */
  checkObservers(): ListCheck[] {
    return this.observers.map((o) => this.check(o.tab));
  }

  async close(): Promise<void> {
    await this.stopSending();
    await Promise.all([...this.writerTabs, ...this.observers].map((t) => t.close()));
  }
}

function texts(messages: readonly ShownMessage[]): string[] {
  return messages.map((m) => m.text);
}
