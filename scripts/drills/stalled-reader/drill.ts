// The stalled-reader drill, shared by `npm run drill:stalled-reader` (scripts/drills/stalled-reader.ts) and
// its short version in test/drills/stalled-reader.test.ts.
//
// The chat runs in its own process (./server.ts, embedded engine) so the drill can read the server's
// numbers (`app.stats()`, memory, CPU) over IPC. In one room: N observer tabs (lean stream readers that
// time every message), writer tabs posting numbered messages through the chat's protocol, and a reference
// tab that never drops. Rounds alternate without and with a stalled tab; every round has one extra tab,
// which in a round "with" opens its stream and then stops reading it (the socket is paused, so TCP
// backpressure builds up to the server), and in a round "without" reads on (a control: the same joins
// and presses, so the only difference between the rounds is the stall). A round:
//
//   1. the extra tab presses "Load older" with an explicit cursor just past its newest message, so every
//      press answers a full page of 50 items (a prepend; the runtime would send its oldest position and
//      stop at the start of the room): the stalled one until the server reports its stream backed up (on
//      loopback the kernel buffers 4-12 MB per socket, which live messages alone would take minutes to
//      fill), the control one as many times;
//   2. the measured window: every observer's delivery latency (send → arrival), while the stalled tab's
//      events queue on the server;
//   3. the extra tab presses on: the stalled one until the server cuts its stream at the queue cap (the
//      cut disposes its tab context);
//   4. it reads again: the stalled one meets the cut and reconnects like the runtime (same tab id, the
//      view's hash and the list's newest position; the server re-bootstraps its context and resumes the
//      list from there, or resets it to the last page if the gap is over 1,000 messages) and must show
//      every message the reference tab shows over the range both show, once, in order, and skip no
//      message of the room anywhere in its list. The control tab is checked the same way, and since the
//      server trims its list early (it counts every page the tab was sent, though the tab keeps one copy
//      of each item), it must also have received every message stored while it was open.
//
// Throughout, `app.stats()` is polled: the bytes the server holds for any one tab (queue plus the
// response's unsent buffer) must stay under the cap. Latency: the median of the rounds' p99 with the
// stalled tab against the median without; an odd number of rounds starting and ending without puts
// both kinds at the same mean time, so a load that drifts over the run (other processes) biases neither.
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { type ClientRequest, request } from "node:http";
import { ChatTab, parseMessages, type ShownMessage } from "../../../harness/chat-client.ts";
import { killAtExit, removeDir, sleep, tempDir } from "../../../harness/cleanup.ts";
import { actionIn, Browser, parseEvents, type TabClient } from "../../../harness/sse-client.ts";
import { median, percentile } from "../../../harness/stats.ts";
import type { AppStats } from "../../../src/server/app.ts";
import { DrillTimeoutError, now, waitUntil } from "../clock.ts";
import { checkList, type ListCheck, labelOf, listHoles, listStart, type WriterStats } from "../traffic.ts";
import type { ServerReply, ServerRequest } from "./protocol.ts";

export interface StalledReaderOptions {
  /** Observer tabs whose latency is measured (default 200). */
  observers?: number;
  /** Writer tabs (default 10). */
  writers?: number;
  /** Pause between one writer's sends (default 200 ms: 5 messages/s each). */
  intervalMs?: number;
  /**
   * Message length in characters (default 1,000). A press of "Load older" is answered with 50 of them
   * (~65 KB at 1,000), so this sets how fast the presses fill the stalled tab's socket and queue. With
   * short messages (~20 KB a page, 200 KB/s at the tab's 10 presses/s) a paused loopback socket keeps
   * taking them in (the kernel keeps reclaiming receive memory and reopening the window), so the
   * stalled tab's queue may never reach the cap.
   */
  messageChars?: number;
  /**
   * Rounds, alternating without and with the stalled tab, starting and ending without (default 7: an odd
   * count puts both kinds at the same mean position, so a load that drifts over the run biases neither).
   */
  rounds?: number;
  /** Measured window per round (default 5 s). */
  roundMs?: number;
  /** The server's per-tab queue cap (default 1 MiB, the framework's default). */
  queueCapBytes?: number;
  /** Pause after every round (default 2 s). */
  gapMs?: number;
  /** Messages in the room before the first round (default 60): "Load older" needs pages to load. */
  minHistory?: number;
  room?: string;
  /** Hard cap on the whole drill (default 10 min). */
  timeLimitMs?: number;
  log?: (line: string) => void;
}

export interface Recovery {
  ok: boolean;
  /** Why not, when not ok. */
  detail: string;
  /** Messages the recovered tab shows. */
  shown: number;
  /** Messages compared with the reference tab (the range both show). */
  compared: number;
  missing: number;
  extra: number;
  duplicated: number;
  reordered: number;
  /** Places where the tab's list skips messages of the room (see listHoles). */
  holes: number;
  /** Control tab: the room's messages (as the reference got them) since it opened that reached it, all of them. */
  delivered?: number;
  /** Resume → the tab shows everything the reference showed at the resume. */
  ms: number;
  /** Resume → the old stream drained (the backlog the kernel held was read and the cut met). */
  drainMs?: number;
  /**
   * How the list came back after the reconnect: "filled" from the position the tab reported (the
   * missed messages one by one), or "reset" to the last page (a gap over 1,000 messages).
   */
  resumed?: "filled" | "reset";
}

export interface RoundResult {
  index: number;
  stalled: boolean;
  /** Latency samples (observer × message) in the window. */
  samples: number;
  p50: number;
  p99: number;
  max: number;
  /** Observers that missed a message sent in the window. */
  observersMissing: number;
  /** Most bytes the server held for one tab (stats polled every 50 ms) during the round. */
  maxTabBytes: number;
  /** CPU used during the window, % of one core: the server process, and this drill process (the tabs). */
  serverCpu: number;
  drillCpu: number;
  /** CPU used by every other process on the machine during the window, % of one core (Linux /proc/stat). */
  otherCpu: number;
  /** Stalled rounds: time to backpressure (first Load older → stream backed up). */
  backedUpMs?: number;
  /** Presses of Load older before the window (stalled: until backed up; control: as many). */
  presses: number;
  /** Stalled rounds: the server cut the stream at the cap. */
  cut?: boolean;
  /** The extra tab after it read again (stalled: after the cut and a reconnect) against the reference. */
  recovery?: Recovery;
}

export interface StalledReaderResult {
  observers: number;
  writers: number;
  capBytes: number;
  rounds: RoundResult[];
  p99Without: number;
  p99With: number;
  /** p99With / p99Without (medians over rounds). */
  ratio: number;
  /** Median over the rounds with the stalled tab of p99 / the mean p99 of the rounds just before and after. */
  pairedRatio: number;
  /** Most bytes held for one tab over the whole run. */
  maxTabBytes: number;
  /**
   * The largest single event an extra tab received (a page of older items, a list reset, a view render;
   * the stalled tab's after its reconnect). One event alone is let through even over the cap, so the
   * bound the server keeps is max(cap, this).
   */
  largestEvent: number;
  serverRss: { min: number; max: number };
  /** Every observer's stream stayed open. */
  observersIntact: boolean;
  /** The reference tab's list checked against the writers' acks (all messages once, in order). */
  reference: ListCheck;
  memoryOk: boolean;
  recoveryOk: boolean;
  totalMs: number;
}

const PAD = " lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore";
// The observers' one concession to speed (200 of them, every message): the label of each item in a
// #messages patch, read straight from the item's text paragraph (the markup parseMessages reads).
const LABELS = /class="text">(w\d+#\d+)(?=[\s<])/g;

/** CPU time the whole machine spent busy so far, in ms (Linux; NaN elsewhere). */
function machineBusyMs(): number {
  try {
    const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const t = fields.map(Number);
    // user nice system idle iowait irq softirq steal …, in USER_HZ (100 per second)
    const busy = t.reduce((a, b) => a + b, 0) - (t[3] ?? 0) - (t[4] ?? 0) - (t[8] ?? 0) - (t[9] ?? 0);
    return busy * 10;
  } catch {
    return Number.NaN;
  }
}

// ---- the server process --------------------------------------------------------------------------

const SERVER = new URL("./server.ts", import.meta.url);
const TSX = import.meta.resolve("tsx");

interface ServerStats {
  stats: AppStats;
  rss: number;
  heapUsed: number;
  cpuMicros: number;
}

class ServerProcess {
  private nextId = 1;
  private waiting = new Map<number, (s: ServerStats) => void>();
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on("message", (m: ServerReply) => {
      if (m.type !== "stats") return;
      this.waiting.get(m.id)?.({ stats: m.stats, rss: m.rss, heapUsed: m.heapUsed, cpuMicros: m.cpuMicros });
      this.waiting.delete(m.id);
    });
  }

  static start(dir: string, room: string, capBytes: number): Promise<ServerProcess> {
    const child = fork(SERVER, [dir, room, String(capBytes)], {
      execArgv: ["--import", TSX],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "error" },
    });
    killAtExit(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("chat server not ready after 30 s")), 30_000);
      child.once("exit", (code, signal) => reject(new Error(`chat server exited (code ${code}, signal ${signal})`)));
      const onReady = (m: ServerReply) => {
        if (m.type !== "ready") return;
        clearTimeout(timer);
        child.off("message", onReady);
        resolve(new ServerProcess(child, m.url));
      };
      child.on("message", onReady);
    });
  }

  stats(): Promise<ServerStats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      const req: ServerRequest = { type: "stats", id };
      this.child.send(req, (err) => {
        if (err && this.waiting.delete(id)) reject(err);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.kill("SIGKILL");
    await gone;
  }
}

// ---- tabs ------------------------------------------------------------------------------------------

/**
 * A tab kept as light as possible: a page load like a browser's, then its event stream read with
 * node:http and handed over in complete blocks, nothing kept. 200 full protocol tabs (every event parsed
 * and kept, the whole list re-scanned) would cost the drill process more than the server under test,
 * and a growing cost would show as a latency drift over the run.
 */
class LeanTab {
  ended = false;
  private req: ClientRequest | undefined;

  private constructor(readonly client: TabClient) {}

  static async open(base: string, room: string, onBlocks: (text: string, at: number) => void): Promise<LeanTab> {
    const browser = new Browser(base);
    const tab = new LeanTab(await browser.load(`/room/${encodeURIComponent(room)}`));
    // Like the runtime: report what the page's list holds, so the list resumes from the page's newest
    // message (no report would reset it to the last page once more).
    const items = parseMessages(tab.client.html);
    const newest = items.reduce((max, m) => Math.max(max, m.seq ?? 0), 0);
    const more = tab.client.html.includes('data-via-more=""') ? 1 : 0;
    const report = `&streams=${encodeURIComponent(`messages:${newest}:${items.length}:${more}`)}`;
    await new Promise<void>((resolve, reject) => {
      tab.req = request(
        tab.client.streamUrl(report),
        { headers: { Accept: "text/event-stream", Cookie: browser.cookie } },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`stream → ${res.statusCode}`));
            res.resume();
            return;
          }
          res.setEncoding("utf8");
          let buffer = "";
          res.on("data", (chunk: string) => {
            const at = now();
            buffer += chunk;
            const end = buffer.lastIndexOf("\n\n");
            if (end < 0) return;
            const complete = buffer.slice(0, end + 2);
            buffer = buffer.slice(end + 2);
            onBlocks(complete, at);
          });
          const done = () => {
            tab.ended = true;
          };
          res.on("end", done);
          res.on("close", done);
          res.on("error", done);
          resolve();
        },
      );
      tab.req.on("error", (err) => {
        tab.ended = true;
        reject(err);
      });
      tab.req.end();
    });
    return tab;
  }

  close(): void {
    this.req?.destroy();
  }
}

/** An observer: times every message appended to its list; remembers the labels of the current window. */
class LeanObserver {
  /** Labels seen since the last reset (one round's window). */
  seen = new Set<string>();
  private constructor(readonly tab: LeanTab) {}

  static async open(base: string, room: string, onLabel: (label: string, at: number) => void): Promise<LeanObserver> {
    let self: LeanObserver | undefined;
    const tab = await LeanTab.open(base, room, (text, at) => {
      if (!text.includes("selector #messages")) return;
      for (const m of text.matchAll(LABELS)) {
        self?.seen.add(m[1]!);
        onLabel(m[1]!, at);
      }
    });
    self = new LeanObserver(tab);
    return self;
  }

  get ended(): boolean {
    return this.tab.ended;
  }

  close(): void {
    this.tab.close();
  }
}

/**
 * Writer tabs: numbered messages through the Send action. A message is acked once the writer's own stream
 * shows it stored: its "sending…" item updated in place (same id) by the ack or by the room's stored copy,
 * both `append` patches of #messages.
 */
class Writers {
  readonly stats: WriterStats[] = [];
  readonly tabs: LeanTab[] = [];
  /** When each label was (last) posted. */
  readonly sentAt = new Map<string, number>();
  /** The stream position of each writer's message, from the stored copy its own tab got. */
  readonly seqs = new Map<string, number>();
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly intervalMs: number,
    private readonly chars: number,
  ) {}

  async open(base: string, room: string, count: number): Promise<void> {
    for (let k = 0; k < count; k++) {
      const w: WriterStats = { writer: k, accepted: 0, rejected: 0, unanswered: [], acked: new Map() };
      const mine = `class="text">w${k}#`;
      const tab = await LeanTab.open(base, room, (text, at) => {
        if (!text.includes(mine)) return;
        for (const e of parseEvents(text)) {
          if (e.data.selector !== "#messages" || !e.data.elements?.includes(mine)) continue;
          for (const m of parseMessages(e.data.elements)) {
            const l = labelOf(m.text);
            if (l?.writer !== k) continue;
            if (m.seq !== undefined) this.seqs.set(`w${k}#${l.n}`, m.seq);
            if (m.state === "sent" && !w.acked.has(l.n)) w.acked.set(l.n, at);
          }
        }
      });
      this.tabs.push(tab);
      this.stats.push(w);
    }
  }

  start(): void {
    this.running = true;
    this.loops = this.tabs.map((tab, k) => this.loop(tab, this.stats[k]!));
  }

  private async loop(tab: LeanTab, w: WriterStats): Promise<void> {
    // Writers start spread over one interval, so sends do not come in bursts of `writers`.
    await sleep((this.intervalMs * w.writer) / Math.max(1, this.tabs.length));
    const send = actionIn(tab.client.html, "send");
    let n = 0;
    let pad = PAD;
    while (pad.length < this.chars) pad += PAD;
    while (this.running) {
      const label = `w${w.writer}#${n}`;
      const text = `${label}${pad}`.slice(0, Math.max(label.length, this.chars));
      this.sentAt.set(label, now());
      try {
        const res = await tab.client.action(send, { ...tab.client.signals, statement: text });
        if (res.status >= 200 && res.status < 300) {
          w.accepted++;
          n++;
        } else w.rejected++;
      } catch {
        w.unanswered.push(n);
        n++;
      }
      await sleep(this.intervalMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  close(): void {
    for (const t of this.tabs) t.close();
  }
}

// ---- the drill -------------------------------------------------------------------------------------

/**
 * Checks a recovered tab against the reference over the seq range both show, up to `upTo`, and its
 * whole list against the room (`roomSeqs`): no message of the room skipped between two of its items.
 */
export function compareWithReference(
  tab: readonly ShownMessage[],
  reference: readonly ShownMessage[],
  upTo: number,
  roomSeqs: Iterable<number> = [],
  /** The two lists must overlap (false for a tab whose list may have just been trimmed past `upTo`). */
  requireOverlap = true,
): Omit<Recovery, "ms"> {
  const stored = (ms: readonly ShownMessage[]) => ms.filter((m) => m.state === "sent" && m.seq !== undefined);
  const t = stored(tab);
  const r = stored(reference);
  const ids = new Set<string>();
  let duplicated = 0;
  let reordered = 0;
  let last = 0;
  for (const m of t) {
    if (ids.has(m.id)) duplicated++;
    ids.add(m.id);
    if (m.seq! <= last) reordered++;
    last = Math.max(last, m.seq!);
  }
  const lo = Math.max(t[0]?.seq ?? Number.POSITIVE_INFINITY, r[0]?.seq ?? Number.POSITIVE_INFINITY);
  const inRange = (m: ShownMessage) => m.seq! >= lo && m.seq! <= upTo;
  const want = r.filter(inRange).map((m) => m.id);
  const got = t.filter(inRange).map((m) => m.id);
  const gotSet = new Set(got);
  const wantSet = new Set(want);
  const missing = want.filter((id) => !gotSet.has(id)).length;
  const extra = got.filter((id) => !wantSet.has(id)).length;
  const sameOrder = missing === 0 && extra === 0 && want.every((id, i) => got[i] === id);
  const holes = listHoles(t, roomSeqs);
  const ok =
    duplicated === 0 && reordered === 0 && sameOrder && (want.length > 0 || !requireOverlap) && holes.length === 0;
  const detail = ok
    ? "ok"
    : `compared ${want.length}: missing ${missing}, extra ${extra}, duplicated ${duplicated}, reordered ${reordered}` +
      `${sameOrder ? "" : ", not the reference's order"}; holes ${holes.length}` +
      `${holes.length > 0 ? ` (${holes.slice(0, 3).join("; ")})` : ""}`;
  return {
    ok,
    detail,
    shown: tab.length,
    compared: want.length,
    missing,
    extra,
    duplicated,
    reordered,
    holes: holes.length,
  };
}

export async function runStalledReaderDrill(opts: StalledReaderOptions = {}): Promise<StalledReaderResult> {
  const log = opts.log ?? (() => {});
  const observerCount = opts.observers ?? 200;
  const writerCount = opts.writers ?? 10;
  const roundsCount = opts.rounds ?? 7;
  const roundMs = opts.roundMs ?? 5_000;
  const cap = opts.queueCapBytes ?? 1024 * 1024;
  const room = opts.room ?? "Go";
  const started = now();
  const deadline = started + (opts.timeLimitMs ?? 600_000);
  const dir = tempDir("via-drill-stalled-");
  let server: ServerProcess | undefined;
  const observers: LeanObserver[] = [];
  let writers: Writers | undefined;
  let reference: ChatTab | undefined;
  let extra: ChatTab | undefined;
  let polling = false;
  let poller: Promise<void> | undefined;
  try {
    server = await ServerProcess.start(dir, room, cap);
    const srv = server;
    const base = srv.url;
    log(`chat server ${base} (pid ${srv.child.pid}), queue cap ${cap} bytes`);

    // Latency samples: arrival − send, bucketed by the window the message was sent in.
    let window: { from: number; to: number; samples: number[]; labels: Set<string> } | undefined;
    writers = new Writers(opts.intervalMs ?? 200, opts.messageChars ?? 1000);
    const w = writers;
    const sentAt = w.sentAt;
    const onLabel = (label: string, at: number) => {
      const sent = sentAt.get(label);
      if (sent === undefined || !window || sent < window.from || sent >= window.to) return;
      window.samples.push(at - sent);
    };

    await w.open(base, room, writerCount);
    reference = await ChatTab.open(base, room);
    const ref = reference;
    // Every position the room's messages have, as far as the drill knows: each writer's own messages
    // (their stored copies) and everything the reference tab, which never drops, was ever shown.
    const refIds = new Map<number, string>();
    const noteRef = () => {
      for (const m of ref.messages) if (m.seq !== undefined) refIds.set(m.seq, m.id);
    };
    noteRef();
    ref.onChange = noteRef;
    const roomSeqs = () => [...refIds.keys(), ...w.seqs.values()];
    w.start();
    // Some history first, so "Load older" has pages to load.
    await waitUntil("history", () => ref.messages.length >= (opts.minHistory ?? 60), deadline);

    for (let i = 0; i < observerCount; i += 10) {
      const batch = Math.min(10, observerCount - i);
      observers.push(
        ...(await Promise.all(Array.from({ length: batch }, () => LeanObserver.open(base, room, onLabel)))),
      );
    }
    log(`${observers.length} observers, ${writerCount} writers, 1 reference tab connected`);

    // Stats every 50 ms: the most any one tab held, per round.
    let maxTabBytes = 0;
    let roundMax = 0;
    let last: ServerStats | undefined;
    const rss = { min: Number.POSITIVE_INFINITY, max: 0 };
    polling = true;
    poller = (async () => {
      while (polling) {
        try {
          last = await srv.stats();
          maxTabBytes = Math.max(maxTabBytes, last.stats.queuedBytes.max);
          roundMax = Math.max(roundMax, last.stats.queuedBytes.max);
          rss.min = Math.min(rss.min, last.rss);
          rss.max = Math.max(rss.max, last.rss);
        } catch {
          // the server is going away
        }
        await sleep(50);
      }
    })();

    await sleep(opts.gapMs ?? 2_000); // settle after the joins (presence updates to every tab)
    const rounds: RoundResult[] = [];
    // Presses of "Load older" the last stalled tab needed to back up and then to be cut; the control tab
    // of a round without presses as often, so both kinds of round make the server do the same work.
    let largestEvent = 0;
    let prelude = 20;
    let postlude = 10;
    for (let r = 0; r < roundsCount; r++) {
      const withStalled = r % 2 === 1;
      roundMax = 0;
      // Every round has one extra tab: it stops reading (stalled) or reads on (control).
      extra = await ChatTab.open(base, room);
      const ex = extra;
      const openedAt = ex.position;
      if (withStalled) ex.client.stream?.pause();
      const loadOlder = actionIn(ex.client.html, "load-older");
      /**
       * One press per 100 ms (under the tab's 10/s limit), each after a stats poll, until `done`. The
       * cursor is just past the tab's newest message (the stalled tab's stays where it stopped reading):
       * every press is answered with a full page of 50 items, which the tab already shows (a reading tab
       * keeps one copy of each: an item whose id is in the list is updated in place).
       */
      const press = async (done: (s: AppStats, presses: number) => boolean, limitMs: number): Promise<number> => {
        const by = Math.min(deadline, now() + limitMs);
        for (let n = 0; ; n++) {
          if (done((await srv.stats()).stats, n)) return n;
          if (now() > by) throw new DrillTimeoutError(`the extra tab did not get there in ${n} presses of Load older`);
          const cursor = String(ex.position + 1);
          await ex.client.action(loadOlder, ex.client.signals, {}, cursor).catch(() => undefined);
          await sleep(100);
        }
      };
      const t0 = now();
      const overflows = (await srv.stats()).stats.overflows;
      // Stalled: press until its stream backs up (on loopback the kernel holds 4-12 MB first: 60-180
      // presses of 1,000-character messages), or is already cut (a small cap can be passed between two polls).
      const presses = await press(
        (s, n) => (withStalled ? s.backedUp > 0 || s.overflows > overflows : n >= prelude),
        90_000,
      );
      const backedUpMs = now() - t0;
      if (withStalled) prelude = presses;
      await sleep(500);
      // The measured window: sends in [from, to), arrivals waited for a little after.
      const win = { from: now(), to: now() + roundMs, samples: [] as number[], labels: new Set<string>() };
      for (const o of observers) o.seen = new Set();
      window = win;
      const cpu0 = {
        server: (await srv.stats()).cpuMicros,
        drill: process.cpuUsage(),
        machine: machineBusyMs(),
        at: now(),
      };
      await sleep(roundMs);
      const cpu1 = {
        server: (await srv.stats()).cpuMicros,
        drill: process.cpuUsage(cpu0.drill),
        machine: machineBusyMs(),
        at: now(),
      };
      const pct = (micros: number) => micros / 10 / (cpu1.at - cpu0.at);
      const ours = cpu1.server - cpu0.server + cpu1.drill.user + cpu1.drill.system;
      await sleep(500);
      window = undefined;
      for (const [label, at] of sentAt) if (at >= win.from && at < win.to) win.labels.add(label);
      const storedLabels = new Set(
        ref.messages.map((m) => labelOf(m.text)).map((l) => (l ? `w${l.writer}#${l.n}` : "")),
      );
      let observersMissing = 0;
      for (const o of observers) {
        for (const label of win.labels) {
          if (storedLabels.has(label) && !o.seen.has(label)) {
            observersMissing++;
            break;
          }
        }
      }
      const sorted = Float64Array.from(win.samples).sort();
      const round: RoundResult = {
        index: r + 1,
        stalled: withStalled,
        samples: sorted.length,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        max: sorted.at(-1) ?? Number.NaN,
        observersMissing,
        maxTabBytes: 0,
        serverCpu: pct(cpu1.server - cpu0.server),
        drillCpu: pct(cpu1.drill.user + cpu1.drill.system),
        otherCpu: Math.max(0, pct((cpu1.machine - cpu0.machine) * 1000 - ours)),
        presses,
        ...(withStalled ? { backedUpMs } : {}),
      };
      // Stalled: press on until the server cuts the stream at the cap.
      const after = await press((s, n) => (withStalled ? s.overflows > overflows : n >= postlude), 30_000).catch(
        () => -1,
      );
      if (withStalled) {
        round.cut = after >= 0;
        if (after >= 0) postlude = after;
      }
      // Read again, like a tab whose network came back: meet the cut, reconnect like the runtime (its
      // context was disposed at the cut: the server re-bootstraps it and resumes the list from the
      // position the tab reports); then it must show what the reference shows. (The control tab is
      // checked the same way.)
      const upTo = Math.max(0, ...ref.messages.map((m) => m.seq ?? 0));
      const t1 = now();
      ex.client.stream?.resume();
      let recovery: Recovery;
      try {
        await waitUntil(
          "the extra tab to drain",
          () => !ex.connected || ex.messages.some((m) => (m.seq ?? 0) >= upTo),
          deadline,
        );
        const drainMs = now() - t1;
        let reconnected = false;
        if (!ex.connected) {
          await ex.connect();
          reconnected = true;
        }
        await ex.waitUntil((ms) => ms.some((m) => (m.seq ?? 0) >= upTo), 20_000, `message seq ${upTo}`);
        const reset = (ex.client.stream?.events ?? []).some(
          (e) => e.event === "datastar-patch-elements" && e.data.selector === "#messages" && e.data.mode === "inner",
        );
        recovery = {
          ...compareWithReference(ex.messages, ref.messages, upTo, roomSeqs(), withStalled),
          ms: now() - t1,
          drainMs,
          ...(reconnected ? { resumed: reset ? ("reset" as const) : ("filled" as const) } : {}),
        };
        if (!withStalled) {
          // The control tab's list is trimmed from the top much sooner than the reference's (the server
          // counts each page it was sent, though the tab keeps one copy of each item), so it shows few
          // of the round's messages by now; it must have received every one of them, though.
          let delivered = 0;
          const undelivered: number[] = [];
          for (const [seq, id] of refIds) {
            if (seq <= openedAt || seq > upTo) continue;
            if (ex.arrivals.has(id)) delivered++;
            else undelivered.push(seq);
          }
          recovery.delivered = delivered;
          if (undelivered.length > 0 || delivered === 0) {
            recovery.ok = false;
            recovery.detail = `${recovery.detail === "ok" ? "" : `${recovery.detail}; `}received ${delivered} of the round's messages, not ${undelivered.length} (seqs ${undelivered.slice(0, 5).join(", ")})`;
          }
        }
      } catch (err) {
        recovery = {
          ok: false,
          detail: `${(err as Error).message}; the stream ${ex.connected ? "is open" : "was closed again"}`,
          shown: ex.messages.length,
          compared: 0,
          missing: 0,
          extra: 0,
          duplicated: 0,
          reordered: 0,
          holes: 0,
          ms: now() - t1,
        };
      }
      round.recovery = recovery;
      // The control tab's stream got every event its presses caused; the stalled tab's current stream is
      // the one after its reconnect (the fill or the reset).
      for (const e of ex.client.stream?.events ?? []) {
        if (e.event === "datastar-patch-elements") {
          largestEvent = Math.max(largestEvent, Buffer.byteLength(e.data.elements ?? ""));
        }
      }
      ex.close();
      extra = undefined;
      round.maxTabBytes = roundMax;
      rounds.push(round);
      log(describeRound(round, cap));
      // The same pause after every round, so what a round leaves behind (garbage to collect, a tab
      // leaving) mostly lands here rather than in the next round's window.
      await sleep(opts.gapMs ?? 2_000);
    }
    polling = false;
    await poller;
    await w.stop();
    // The reference tab is held to every acknowledged message from its list's oldest item on: it shows
    // the room's newest ~1,000 (the server trims the oldest from the top).
    const seqOf = (label: string) => w.seqs.get(label);
    const referenceCheckNow = () =>
      checkList(
        ref.messages.filter((m) => m.state === "sent").map((m) => m.text),
        w.stats,
        listStart(ref.messages, ref.hasOlder, seqOf),
      );
    await ref
      .waitUntil(() => referenceCheckNow().lost.length === 0, 10_000, "every acked message on the reference tab")
      .catch(() => undefined);
    const referenceCheck = referenceCheckNow();
    const p99Without = median(rounds.filter((x) => !x.stalled).map((x) => x.p99));
    const p99With = median(rounds.filter((x) => x.stalled).map((x) => x.p99));
    const paired: number[] = [];
    rounds.forEach((x, i) => {
      if (!x.stalled) return;
      const around = [rounds[i - 1], rounds[i + 1]].filter((y): y is RoundResult => y !== undefined && !y.stalled);
      if (around.length > 0) paired.push(x.p99 / (around.reduce((sum, y) => sum + y.p99, 0) / around.length));
    });
    return {
      observers: observers.length,
      writers: writerCount,
      capBytes: cap,
      rounds,
      p99Without,
      p99With,
      ratio: p99With / p99Without,
      pairedRatio: median(paired),
      maxTabBytes,
      serverRss: rss,
      observersIntact: observers.every((o) => !o.ended) && rounds.every((x) => x.observersMissing === 0),
      reference: referenceCheck,
      largestEvent,
      memoryOk: maxTabBytes <= Math.max(cap, largestEvent),
      recoveryOk: rounds.every((x) => x.recovery?.ok === true),
      totalMs: now() - started,
    };
  } finally {
    polling = false;
    await poller?.catch(() => undefined);
    extra?.close();
    reference?.close();
    await writers?.stop().catch(() => undefined);
    writers?.close();
    for (const o of observers) o.close();
    await server?.stop();
    removeDir(dir);
  }
}

export const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

export function describeRound(r: RoundResult, cap: number): string {
  const rec = r.recovery;
  const head =
    `  round ${r.index} ${r.stalled ? "WITH the stalled tab   " : "without (control tab) "}: ` +
    `${r.samples} samples, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; ` +
    `CPU server ${r.serverCpu.toFixed(0)} %, tabs ${r.drillCpu.toFixed(0)} %, other processes ${r.otherCpu.toFixed(0)} %; ` +
    `most held for one tab ${kib(r.maxTabBytes)} of ${kib(cap)}`;
  const shows = `${rec?.ok ? "ok" : `FAILED (${rec?.detail})`}, ${rec?.compared ?? 0} messages compared with the reference`;
  if (!r.stalled)
    return (
      `${head}\n      control tab: ${r.presses} presses of Load older, reading; shows every message: ${shows}; ` +
      `messages stored since it opened, received: ${rec?.delivered ?? 0}`
    );
  return (
    `${head}\n      stalled tab: backed up after ${Math.round(r.backedUpMs ?? 0)} ms (${r.presses} presses of Load older); ` +
    `${r.cut ? "cut at the cap" : "NOT cut"}; recovered in ${Math.round(rec?.ms ?? 0)} ms ` +
    `(old stream gone after ${Math.round(rec?.drainMs ?? 0)} ms; list ${rec?.resumed ?? "not resumed"}): ${shows}`
  );
}
