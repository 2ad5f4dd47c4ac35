// A Feed shows the stored messages of pub/sub subjects as streamed lists, one subject per list (a
// chat room's messages). It is declared once per app and joined by each tab:
//
//   publish → one subscription per subject and process → decoded once → rendered once per variant →
//   encoded once → the same bytes written to every member tab's stream
//
// The app says what is shared (`render`) and what differs per tab (`variant`, e.g. "mine"); the feed
// owns the caching (feed-render-cache.ts). A tab keeps no items, only its list's position, so its
// memory does not grow with traffic; a list resumes from that position (feed-stream.ts).
//
// This module is the subject side: one subscription per subject and list id, live messages handed to
// the lists that follow, the last page that page renders share, and no silent holes: when the engine
// skipped deleted messages that may be a subject's, the live messages wait while the feed checks which
// lists lost something, and those get a marker item (`gap`) where the messages were.
import type { Logger } from "../log.ts";
import type { Delivery, HistoryQuery, PubSub, StreamMessage } from "../pubsub/types.ts";
import type { Context } from "./context.ts";
import { FeedRenderCache, type RenderedMessage } from "./feed-render-cache.ts";
import { type FeedSource, FeedStream, Topic } from "./feed-stream.ts";
import type { FeedOptions, GapInfo, JoinOptions } from "./feed-types.ts";
import { renderHtml } from "./html.ts";
import { patchElements } from "./sse/encoder.ts";

export { FeedStream } from "./feed-stream.ts";
export type { FeedOptions, GapInfo, ItemMeta, JoinOptions, ResetInfo } from "./feed-types.ts";

/** The app-side dependencies of a feed. */
export interface FeedHost {
  readonly pubsub: PubSub | undefined;
  readonly logger: Logger;
  readonly metrics?: { feedDelivered(storedAt: number): void } | undefined;
}

/**
 * How long a subject's last page, read for one page render, serves the next ones (a crowd loading a
 * room). A message stored meanwhile drops it at once if this process follows the subject; otherwise a
 * page may miss the last quarter of a second, which its stream then fills: the live list catches up
 * from the page's position with a fresh read.
 */
const PAGE_REUSE_MS = 250;

export class Feed<T, M = undefined> implements FeedSource<T, M> {
  private readonly topics = new Map<string, Topic<T, M>>();
  private readonly cache: FeedRenderCache<T>;
  /** Last pages recently read for page renders, by subject. */
  private readonly pages = new Map<string, { at: number; msgs: StreamMessage[] }>();
  readonly pageSize: number;
  readonly limit: number;
  readonly fillLimit: number;

  /** @internal Made by `app.feed(options)`. */
  constructor(
    private readonly host: FeedHost,
    readonly options: FeedOptions<T, M>,
  ) {
    this.pageSize = positiveInt("pageSize", options.pageSize ?? 50);
    this.limit = positiveInt("limit", options.limit ?? 1000);
    this.fillLimit = positiveInt("fillLimit", options.fillLimit ?? this.limit);
    const cacheBytes = positiveInt("cacheBytes", options.cacheBytes ?? 8 * 1024 * 1024);
    this.cache = new FeedRenderCache<T>(options, cacheBytes, host.logger);
  }

  private pubsub(): PubSub {
    if (!this.host.pubsub) throw new Error("a feed needs a pub/sub engine: pass createApp({ pubsub })");
    return this.host.pubsub;
  }

  /**
   * Show `subject` in this tab as the list `opts.id`, with `member` as this tab's input to `variant`.
   * In the page render it loads the last page; in the live context it follows the subject from the
   * position the browser reports. Put `{...list.container()}` on the list element and
   * `{...list.older.onClick()}` on a "Load older" button shown while `list.more`.
   */
  async join(c: Context, subject: string, member: M, opts: JoinOptions = {}): Promise<FeedStream<T, M>> {
    const stream = new FeedStream<T, M>(c._tab, opts.id ?? "messages", this, subject, member, opts.onReset);
    if (!c.live) await stream.loadPage();
    else if (!c.disposed) {
      stream.topic = this.topicFor(stream);
      stream.topic.members.add(stream);
    }
    return stream;
  }

  // ---- topics ----

  private topicFor(stream: FeedStream<T, M>): Topic<T, M> {
    const key = `${stream.id}\n${stream.subject}`;
    let topic = this.topics.get(key);
    if (!topic) {
      const t = new Topic<T, M>(stream.subject, stream.id);
      topic = t;
      this.topics.set(key, t);
      t.unsubscribe = this.pubsub().subscribe(t.subject, (msg) => this.deliver(t, msg));
    }
    return topic;
  }

  /** @internal */
  leave(topic: Topic<T, M>, stream: FeedStream<T, M>): void {
    topic.members.delete(stream);
    if (topic.members.size > 0) return;
    topic.unsubscribe?.();
    this.topics.delete(`${topic.listId}\n${topic.subject}`);
  }

  // ---- live messages, and gaps before them ----

  private deliver(topic: Topic<T, M>, msg: Delivery): void {
    if (msg.seq === undefined || msg.time === undefined) return; // a core message: feeds show stored ones
    const m = msg as StreamMessage;
    if (topic.held) {
      topic.held.push(m);
      return;
    }
    if (m.gapBefore) {
      // Messages were deleted before the engine could deliver them: the following lists may have a hole
      // before this one. Hold the live messages until that is known, so the marker goes in its place.
      topic.held = [m];
      void this.checkGap(topic);
      return;
    }
    this.deliverNow(topic, m);
  }

  private deliverNow(topic: Topic<T, M>, msg: StreamMessage): void {
    const seq = msg.seq;
    if (seq > topic.known) topic.known = seq;
    topic.lastTime = msg.time;
    this.host.metrics?.feedDelivered(msg.time);
    this.pages.delete(topic.subject);
    const entry = this.cache.message(topic.listId, msg);
    if (entry.value === undefined) return;
    for (const stream of topic.members) {
      if (seq <= stream.pos || !stream.following) continue;
      const frame = this.frameFor(entry, stream, msg);
      stream.appendFrame(frame, seq, msg.time);
    }
  }

  /**
   * The first held message came after deleted ones. A following list whose newest message the stream
   * still has lost nothing (a subject loses its oldest messages first); one whose newest is gone (or that
   * had none) gets a gap marker before the held messages. Then they go out, in order.
   */
  private async checkGap(topic: Topic<T, M>): Promise<void> {
    const first = topic.held![0]!;
    const since = topic.lastTime || undefined;
    const positions = new Set<number>();
    for (const stream of topic.members) if (stream.following && stream.pos < first.seq) positions.add(stream.pos);
    const gone = new Set<number>();
    await Promise.all(
      [...positions].map(async (pos) => {
        try {
          if (pos === 0 || !(await this.stillStored(topic.subject, pos))) gone.add(pos);
        } catch (err) {
          // Unknown: say so rather than risk a silent hole.
          this.host.logger.warn({ err, subject: topic.subject, pos }, "feed could not check a gap; marking it");
          gone.add(pos);
        }
      }),
    );
    const held = topic.held ?? [];
    topic.held = undefined;
    if (gone.size > 0) {
      this.host.logger.info({ subject: topic.subject, before: first.seq, lists: gone.size }, "feed gap marked");
      const frame = Buffer.from(
        patchElements(this.gapHtml({ seq: first.seq, time: first.time, ...(since ? { since } : {}) }), {
          selector: `#${topic.listId}`,
          mode: "append",
        }),
        "utf8",
      );
      for (const stream of topic.members) {
        if (stream.following && stream.pos < first.seq && gone.has(stream.pos)) stream.appendGap(frame);
      }
    }
    if (held.length === 0) return;
    this.deliverNow(topic, held[0]!);
    // A later one may say "gap" again: deliver() holds again from there.
    for (const m of held.slice(1)) this.deliver(topic, m);
  }

  /** Is message `seq` of `subject` still stored? */
  private async stillStored(subject: string, seq: number): Promise<boolean> {
    const read = await this.history(subject, { afterSeq: seq - 1, limit: 1 });
    return read[0]?.seq === seq;
  }

  /** @internal The gap marker's markup (the app's `gap`, or the default). */
  gapHtml(info: GapInfo): string {
    if (this.options.gap) return renderHtml(this.options.gap(info));
    return '<li class="via-gap" role="note">Some messages expired before they could be shown here.</li>';
  }

  // ---- renderings, once per message and variant (feed-render-cache.ts) ----

  private variantOf(entry: RenderedMessage, stream: FeedStream<T, M>): string {
    return this.options.variant ? this.options.variant(entry.value as T, stream.member) : "";
  }

  private frameFor(entry: RenderedMessage, stream: FeedStream<T, M>, msg: StreamMessage): Buffer {
    return this.cache.frame(entry, stream.id, this.variantOf(entry, stream), msg);
  }

  /** @internal Items of `msgs` (in order) as one string, for a page render, a reset or older items. */
  itemsHtml(stream: FeedStream<T, M>, msgs: readonly StreamMessage[]): { html: string; n: number } {
    let html = "";
    let n = 0;
    for (const msg of msgs) {
      const entry = this.cache.message(stream.id, msg);
      if (entry.value === undefined) continue;
      html += this.cache.itemHtml(entry, this.variantOf(entry, stream), msg);
      n++;
    }
    return { html, n };
  }

  /** @internal */
  frameOf(stream: FeedStream<T, M>, msg: StreamMessage): Buffer | undefined {
    const entry = this.cache.message(stream.id, msg);
    return entry.value === undefined ? undefined : this.frameFor(entry, stream, msg);
  }

  /** @internal */
  history(subject: string, query: HistoryQuery): Promise<StreamMessage[]> {
    return this.pubsub().history(subject, query);
  }

  /** @internal The subject's last page for a page render: read, or reused for PAGE_REUSE_MS. */
  async lastPage(subject: string): Promise<StreamMessage[]> {
    const now = Date.now();
    const hit = this.pages.get(subject);
    if (hit && now - hit.at < PAGE_REUSE_MS) return hit.msgs;
    const msgs = await this.history(subject, { last: this.pageSize });
    if (this.pages.size >= 1024) {
      for (const [key, page] of this.pages) if (now - page.at >= PAGE_REUSE_MS) this.pages.delete(key);
      if (this.pages.size >= 1024) this.pages.delete(this.pages.keys().next().value!);
    }
    this.pages.set(subject, { at: now, msgs });
    return msgs;
  }

  /** Subjects followed in this process and their member tabs (for monitoring). */
  stats(): { topics: number; members: number; cached: number; cachedBytes: number } {
    let members = 0;
    for (const t of this.topics.values()) members += t.members.size;
    return { topics: this.topics.size, members, cached: this.cache.size, cachedBytes: this.cache.bytes };
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`feed ${name} must be a positive integer, got ${value}`);
  return value;
}
