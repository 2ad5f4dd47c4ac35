// The NATS engine's local subscriptions: one in-process router of subscribers, fed by the known streams'
// feeds (stream messages, with seq) and by one core NATS subscription per distinct pattern that no known
// stream covers (core messages). Messages of known streams reach subscribers only through the feed;
// the core subscriptions drop those subjects, so nothing arrives twice. A subscription with fromSeq
// replays the stream first (short reads by sequence), holding the live messages that arrive meanwhile,
// then goes live with no gap and no duplicate at the seam.
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../../log.ts";
import { invokeHandler } from "../contract.ts";
import { SubjectRouter } from "../router.ts";
import { matchesPattern, patternCovers } from "../subjects.ts";
import type { Delivery, Handler, StreamMessage, Unsubscribe } from "../types.ts";
import type { NatsLink } from "./connection.ts";
import { fromNatsHeaders } from "./message.ts";
import { readPage } from "./reader.ts";
import { pauseBeforeRetry } from "./retry.ts";
import type { KnownStream, StreamRegistry } from "./streams.ts";

/** Messages read per replay page. */
const REPLAY_PAGE = 1_000;

/** One local subscription. Stream messages come from the feeds, core messages from the pattern's core sub. */
class Subscriber {
  closed = false;
  replaying = false;
  /** Holds a reference on the core subscription of its pattern. */
  core = false;
  /** Last seq delivered per stream: later feed copies (restarts, replay seam) are dropped. */
  readonly last = new Map<string, number>();
  /** Streams whose feed skipped deleted seqs since this subscriber's last delivery from them. */
  gaps: Set<string> | undefined;
  #buffer: StreamMessage[] = [];

  constructor(
    readonly pattern: string,
    readonly handler: Handler,
    readonly log: Logger,
  ) {}

  fromFeed(m: StreamMessage): void {
    if (this.closed) return;
    if (this.replaying) {
      this.#buffer.push(m);
      return;
    }
    this.emitStream(m);
  }

  emitStream(m: StreamMessage): void {
    if (this.closed) return;
    if (m.seq <= (this.last.get(m.stream) ?? 0)) return;
    this.last.set(m.stream, m.seq);
    if (this.gaps?.delete(m.stream)) {
      // A copy for this subscriber alone: the shared message object stays as it is for the others.
      invokeHandler(this.handler, Object.freeze({ ...m, gapBefore: true as const }), this.log, this.pattern);
      return;
    }
    invokeHandler(this.handler, m, this.log, this.pattern);
  }

  /** The stream's feed skipped deleted seqs: this subscriber's next message from it says so. */
  skipped(stream: string): void {
    if (this.closed || !this.last.has(stream)) return;
    this.gaps ??= new Set();
    this.gaps.add(stream);
  }

  emitCore(d: Delivery): void {
    if (!this.closed) invokeHandler(this.handler, d, this.log, this.pattern);
  }

  /** Ends replay: the live messages that arrived meanwhile follow the replayed ones, deduped by seq. */
  goLive(): void {
    const buffered = this.#buffer;
    this.#buffer = [];
    this.replaying = false;
    for (const m of buffered) this.emitStream(m);
  }
}

interface CoreSub {
  sub: Subscription;
  subscribers: Set<Subscriber>;
}

export class Subscriptions {
  #router = new SubjectRouter<Subscriber>();
  #all = new Set<Subscriber>();
  #coreSubs = new Map<string, CoreSub>();

  constructor(
    private readonly link: NatsLink,
    private readonly streams: StreamRegistry,
  ) {}

  /** Arguments already checked (contract.ts); `fromSeq` undefined = live only. */
  subscribe(pattern: string, handler: Handler, fromSeq: number | undefined): Unsubscribe {
    const sub = new Subscriber(pattern, handler, this.link.log);
    for (const ks of this.streams.overlapping(pattern)) {
      // A live subscriber starts after what this process has seen or published; a replaying one at fromSeq.
      const start = fromSeq !== undefined ? fromSeq - 1 : Math.max(ks.feed.lastSeq, this.streams.lastAcked(ks.name));
      sub.last.set(ks.name, Math.max(0, start));
    }
    if (fromSeq !== undefined) sub.replaying = true;
    const removeRoute = this.#router.add(pattern, sub);
    this.#all.add(sub);
    const covered = this.streams.covers(pattern);
    if (!covered) {
      this.#attachCore(pattern, sub);
      // Streams created by other processes that overlap the pattern: start their feeds. Best effort: what
      // is published before a feed starts reaches this subscriber as a core message, without a seq.
      // (ensureStream first, or subscribe with fromSeq, for exact positions.)
      if (fromSeq === undefined) void this.streams.discover(pattern);
    }
    if (fromSeq !== undefined) void this.#replay(sub, fromSeq, covered);
    return () => {
      if (sub.closed) return;
      sub.closed = true;
      removeRoute();
      this.#all.delete(sub);
      this.#detachCore(pattern, sub);
    };
  }

  /** A stored message from a known stream's feed. */
  onFeedMessage(m: StreamMessage): void {
    for (const sub of this.#router.match(m.subject)) sub.fromFeed(m);
  }

  /** The stream's feed skipped deleted seqs: every subscriber that follows the stream is told with its next message. */
  onFeedSkip(stream: string): void {
    for (const sub of this.#all) sub.skipped(stream);
  }

  /** Subscribers' positions belong to the old epoch; the new one starts again at seq 1. */
  onEpochChange(stream: string): void {
    for (const sub of this.#all) sub.last.delete(stream);
  }

  onStreamForgotten(stream: string): void {
    for (const sub of this.#all) {
      // Positions of a deleted stream mean nothing for a stream recreated under its name.
      sub.last.delete(stream);
      // Subscribers that relied on this stream's feed need core delivery for those subjects from here on.
      if (!sub.core && !this.streams.covers(sub.pattern)) this.#attachCore(sub.pattern, sub);
    }
  }

  /** Number of core NATS subscriptions held for non-stream patterns. */
  get coreCount(): number {
    return this.#coreSubs.size;
  }

  /** Ends every subscription at once (the engine is closing). */
  closeAll(): void {
    for (const cs of this.#coreSubs.values()) cs.sub.unsubscribe();
    this.#coreSubs.clear();
    for (const s of this.#all) s.closed = true;
    this.#all.clear();
  }

  #attachCore(pattern: string, sub: Subscriber): void {
    let cs = this.#coreSubs.get(pattern);
    if (!cs) {
      const subscribers = new Set<Subscriber>();
      // A leading wildcard on a real server also matches the client's own plumbing (_INBOX replies,
      // $JS API calls): not app messages, and the embedded engine has none. Only a pattern that names
      // such a prefix explicitly gets them.
      const first = pattern.split(".")[0]!;
      const internalToo = first !== "*" && first !== ">";
      const nsub = this.link.nc.subscribe(pattern, {
        callback: (err, msg) => {
          if (err) {
            this.link.log.error({ err, pattern }, "nats core subscription error");
            return;
          }
          this.#onCoreMessage(msg, subscribers, internalToo);
        },
      });
      cs = { sub: nsub, subscribers };
      this.#coreSubs.set(pattern, cs);
    }
    cs.subscribers.add(sub);
    sub.core = true;
  }

  #detachCore(pattern: string, sub: Subscriber): void {
    const cs = this.#coreSubs.get(pattern);
    sub.core = false;
    if (!cs) return;
    cs.subscribers.delete(sub);
    if (cs.subscribers.size === 0) {
      this.#coreSubs.delete(pattern);
      if (!this.link.closed) cs.sub.unsubscribe();
    }
  }

  #onCoreMessage(msg: Msg, subscribers: Set<Subscriber>, internalToo: boolean): void {
    if (!internalToo && (msg.subject.startsWith("$") || msg.subject.startsWith("_INBOX."))) return;
    // A subject of a known stream arrives through that stream's feed, with its seq.
    if (this.streams.stores(msg.subject)) return;
    const d: Delivery = Object.freeze({
      subject: msg.subject,
      data: msg.data,
      headers: Object.freeze(fromNatsHeaders(msg.headers)),
    });
    for (const s of subscribers) s.emitCore(d);
  }

  async #replay(sub: Subscriber, fromSeq: number, covered: boolean): Promise<void> {
    try {
      if (!covered) await this.streams.discover(sub.pattern);
      for (const ks of this.streams.overlapping(sub.pattern)) {
        if (sub.closed || this.link.closed) return;
        if (!sub.last.has(ks.name)) sub.last.set(ks.name, Math.max(0, fromSeq - 1));
        await ks.ready;
        await this.#replayStream(sub, ks);
      }
    } finally {
      sub.goLive();
    }
  }

  async #replayStream(sub: Subscriber, ks: KnownStream): Promise<void> {
    // The server can filter by the pattern only when the pattern lies inside one of the stream's subjects.
    const serverFilter = ks.config.subjects.some((s) => patternCovers(s, sub.pattern));
    let attempt = 0;
    while (!sub.closed && !this.link.closed) {
      const from = (sub.last.get(ks.name) ?? 0) + 1;
      try {
        const page = await readPage(this.link, ks.name, {
          ...(serverFilter ? { filter: sub.pattern } : {}),
          ...(serverFilter ? {} : { match: (s: string) => matchesPattern(sub.pattern, s) }),
          startSeq: from,
          limit: REPLAY_PAGE,
        });
        attempt = 0;
        for (const m of page.msgs) sub.emitStream(m);
        // Non-matching messages advance the position too, so the next page does not re-read them.
        if (page.lastSeq > (sub.last.get(ks.name) ?? 0)) sub.last.set(ks.name, page.lastSeq);
        if (page.done) return;
      } catch (err) {
        if (sub.closed || this.link.closed) return;
        attempt++;
        this.link.log.warn(
          { err: (err as Error).message, stream: ks.name, from, attempt },
          "nats replay read failed; retrying",
        );
        await pauseBeforeRetry(attempt, this.link.bell.next());
      }
    }
  }
}
