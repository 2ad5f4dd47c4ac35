// A Feed shows the stored messages of pub/sub subjects as streamed lists, one subject per list (a
// chat room's messages). It is declared once per app and joined by each tab:
//
//   publish → one subscription per subject and process → decoded once → rendered once per variant →
//   encoded once → the same bytes written to every member tab's stream
//
// The app says what is shared (`render`) and what differs per tab (`variant`, e.g. "mine"); the feed
// owns the caching. A tab keeps no items, only its list's position (the newest seq it was sent), so
// its memory does not grow with traffic. Positions make lists resumable: the page renders the last
// page of the subject, and when the tab's stream attaches (the first time, after a drop, or after a
// server restart) the list is filled from the position the browser reports — history first, then
// live, no gap and no duplicate. A gap too long to fill (or a position the stream no longer knows)
// resets the list to the last page.
//
// No silent holes: messages the stream deleted (a limit, expiry) before a list got them cannot be
// filled. A list that comes back to find its newest message gone, or that follows live while the
// engine's feed skipped deleted messages that may be its subject's, shows a marker item (`gap`) where
// they were, then what the stream still has.
import type { Logger } from "../log.ts";
import type { Delivery, PubSub, StreamMessage, Unsubscribe } from "../pubsub/types.ts";
import type { Action } from "./action.ts";
import type { Context } from "./context.ts";
import { renderHtml } from "./html.ts";
import { patchElements } from "./sse/encoder.ts";
import { type ClientStreamState, Stream, withPosition } from "./stream.ts";
import type { Tab } from "./tab.ts";
import type { Html } from "./types.ts";

/** Where a list has a gap it cannot fill: messages the stream deleted before the list got them. */
export interface GapInfo {
  /** The message the list shows next, after the gap. */
  seq: number;
  /** When the stream stored it (ms since the Unix epoch). */
  time: number;
  /** When the stream stored the list's last message before the gap, if this process knows. */
  since?: number;
}

/** Why a list was reset to the last page. */
export interface ResetInfo {
  /** The list's newest message is no longer stored (and neither, maybe, some after it). */
  expired: boolean;
}

/** Where a message sits in its stream. */
export interface ItemMeta {
  subject: string;
  seq: number;
  /** When the stream stored it (ms since the Unix epoch). */
  time: number;
}

export interface FeedOptions<T, M> {
  /** The value a stored message shows (validate here; throw to skip the message). Runs once per message. */
  decode: (msg: Delivery) => T;
  /** One list item for a value. Runs once per message and variant, never per tab. */
  render: (value: T, meta: ItemMeta, variant: string) => Html;
  /** Which rendering a member gets (default ""). Runs per member and message: keep it a comparison. */
  variant?: (value: T, member: M) => string;
  /** Items on the page, and per "Load older" (default 50). */
  pageSize?: number;
  /** Items a tab keeps; past it the oldest leave the page and "Load older" brings them back (default 1,000). */
  limit?: number;
  /**
   * The list item that marks a gap the list cannot fill (messages the stream deleted before the list got
   * them). Default: `<li class="via-gap" role="note">` saying some messages expired. Escaped like any JSX.
   */
  gap?: (info: GapInfo) => Html;
  /** Most missed items a reattaching tab is sent one by one; a longer gap resets its list (default `limit`). */
  fillLimit?: number;
  /**
   * What the decoded and rendered messages kept for page renders, fills and new tabs may take, in bytes
   * of their markup and encoded frames (default 8 MiB; the least recently used go first).
   */
  cacheBytes?: number;
}

export interface JoinOptions {
  /** The list's element id (default "messages"). */
  id?: string;
  /** Called after the list was reset to the last page (e.g. to re-add this tab's unsent items). */
  onReset?: (info: ResetInfo) => void;
}

/** The app-side dependencies of a feed. */
export interface FeedHost {
  readonly pubsub: PubSub | undefined;
  readonly logger: Logger;
  readonly metrics?: { feedDelivered(storedAt: number): void } | undefined;
}

interface Rendered {
  key: string;
  /** Undefined when the message failed to decode (it is skipped everywhere). */
  value: unknown;
  html: Map<string, string>;
  frames: Map<string, Buffer>;
  /** What this entry counts against the cache's budget. */
  bytes: number;
}

/** A decoded message's share of the budget before anything is rendered: its payload and bookkeeping. */
const ENTRY_OVERHEAD = 256;
/**
 * How long a subject's last page, read for one page render, serves the next ones (a crowd loading a
 * room). A message stored meanwhile drops it at once if this process follows the subject; otherwise a
 * page may miss the last quarter of a second, which its stream then fills: the live list catches up
 * from the page's position with a fresh read.
 */
const PAGE_REUSE_MS = 250;

/** The live members of one subject (and list id) in this process, and its one subscription. */
export class Topic<T, M> {
  readonly members = new Set<FeedStream<T, M>>();
  /** Highest seq of this subject known to be stored (delivered live, or seen in history). */
  known = 0;
  /** When the stream stored the last message delivered live (0: none yet). */
  lastTime = 0;
  /** Live messages held back while a possible gap before the first of them is checked. */
  held: StreamMessage[] | undefined;
  unsubscribe: Unsubscribe | undefined;
  constructor(
    readonly subject: string,
    readonly listId: string,
  ) {}
}

export class Feed<T, M = undefined> {
  private readonly topics = new Map<string, Topic<T, M>>();
  private readonly cache = new Map<string, Rendered>();
  /** Last pages recently read for page renders, by subject. */
  private readonly pages = new Map<string, { at: number; msgs: StreamMessage[] }>();
  readonly pageSize: number;
  readonly limit: number;
  readonly fillLimit: number;
  private readonly cacheBudget: number;
  private cachedBytes = 0;

  /** @internal Made by `app.feed(options)`. */
  constructor(
    private readonly host: FeedHost,
    readonly options: FeedOptions<T, M>,
  ) {
    this.pageSize = positiveInt("pageSize", options.pageSize ?? 50);
    this.limit = positiveInt("limit", options.limit ?? 1000);
    this.fillLimit = positiveInt("fillLimit", options.fillLimit ?? this.limit);
    this.cacheBudget = positiveInt("cacheBytes", options.cacheBytes ?? 8 * 1024 * 1024);
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
    const entry = this.rendered(topic.listId, msg);
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

  // ---- rendering, once per message and variant ----

  private rendered(listId: string, msg: StreamMessage): Rendered {
    // Seq and time together: a stream deleted and recreated reuses seqs, not both.
    const key = `${listId}\n${msg.subject}\n${msg.seq}\n${msg.time}`;
    let entry = this.cache.get(key);
    if (entry) {
      // Most recently used last, so the oldest entry is the first to go.
      this.cache.delete(key);
      this.cache.set(key, entry);
      return entry;
    }
    let value: unknown;
    try {
      value = this.options.decode(msg);
    } catch (err) {
      this.host.logger.warn(
        { subject: msg.subject, seq: msg.seq, reason: (err as Error).message },
        "feed skipped an undecodable message",
      );
    }
    entry = { key, value, html: new Map(), frames: new Map(), bytes: 0 };
    this.cache.set(key, entry);
    this.account(entry, ENTRY_OVERHEAD + msg.data.length);
    return entry;
  }

  /** `entry` grew by `bytes`; past the budget the least recently used entries go (not `entry` itself). */
  private account(entry: Rendered, bytes: number): void {
    entry.bytes += bytes;
    this.cachedBytes += bytes;
    while (this.cachedBytes > this.cacheBudget && this.cache.size > 1) {
      const oldest = this.cache.values().next().value!;
      if (oldest === entry) break;
      this.cache.delete(oldest.key);
      this.cachedBytes -= oldest.bytes;
    }
  }

  private variantOf(entry: Rendered, stream: FeedStream<T, M>): string {
    return this.options.variant ? this.options.variant(entry.value as T, stream.member) : "";
  }

  private itemHtml(entry: Rendered, variant: string, msg: StreamMessage): string {
    let html = entry.html.get(variant);
    if (html === undefined) {
      const meta = { subject: msg.subject, seq: msg.seq, time: msg.time };
      html = withPosition(renderHtml(this.options.render(entry.value as T, meta, variant)), msg.seq);
      entry.html.set(variant, html);
      this.account(entry, html.length);
    }
    return html;
  }

  private frameFor(entry: Rendered, stream: FeedStream<T, M>, msg: StreamMessage): Buffer {
    const variant = this.variantOf(entry, stream);
    let frame = entry.frames.get(variant);
    if (!frame) {
      const html = this.itemHtml(entry, variant, msg);
      // The id is the stream position: the same for every tab, so the bytes are shared.
      const event = patchElements(html, { selector: `#${stream.id}`, mode: "append", eventId: String(msg.seq) });
      frame = Buffer.from(event, "utf8");
      entry.frames.set(variant, frame);
      this.account(entry, frame.length);
    }
    return frame;
  }

  /** @internal Items of `msgs` (in order) as one string, for a page render, a reset or older items. */
  itemsHtml(stream: FeedStream<T, M>, msgs: readonly StreamMessage[]): { html: string; n: number } {
    let html = "";
    let n = 0;
    for (const msg of msgs) {
      const entry = this.rendered(stream.id, msg);
      if (entry.value === undefined) continue;
      html += this.itemHtml(entry, this.variantOf(entry, stream), msg);
      n++;
    }
    return { html, n };
  }

  /** @internal */
  frameOf(stream: FeedStream<T, M>, msg: StreamMessage): Buffer | undefined {
    const entry = this.rendered(stream.id, msg);
    return entry.value === undefined ? undefined : this.frameFor(entry, stream, msg);
  }

  /** @internal */
  history(subject: string, query: Parameters<PubSub["history"]>[1]): Promise<StreamMessage[]> {
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
    return { topics: this.topics.size, members, cached: this.cache.size, cachedBytes: this.cachedBytes };
  }
}

/** One tab's list of a feed's subject: what the tab holds is in the browser; here only its position. */
export class FeedStream<T, M> extends Stream {
  /** Newest seq this tab's list holds (0: none). */
  pos = 0;
  /** When the stream stored the message at `pos`, if known (not after a re-bootstrap). */
  private posTime: number | undefined;
  /** @internal The subject's live members in this process (live context only). */
  topic: Topic<T, M> | undefined;
  /** Live messages go to this tab (false while it is detached, or catching up from history). */
  following = false;
  /** "Load older": put `{...list.older.onClick()}` on a button shown while `list.more`. */
  readonly older: Action;
  private catchingUp = false;
  /** The pending reset is because the list's newest message is gone. */
  private resetExpired = false;
  /** Bumped on every attach: a catch-up round that began before it starts over from the new position. */
  private generation = 0;
  /** No report from the browser for this list: it must be reset to the last page. */
  private needsReset = true;

  constructor(
    tab: Tab,
    id: string,
    private readonly feed: Feed<T, M>,
    readonly subject: string,
    readonly member: M,
    private readonly onReset: ((info: ResetInfo) => void) | undefined,
  ) {
    super(tab, id, { limit: feed.limit });
    this.older = tab.addAction((cursor) => this.loadOlder(cursor), { name: `${id}-older`, page: id });
    const state = tab.report.streams.get(id);
    if (state) this.take(state);
  }

  private take(state: ClientStreamState): void {
    // What the server last sent may not have reached the browser (a dropped stream): its report wins.
    if (state.pos !== this.pos) this.posTime = undefined;
    this.pos = state.pos;
    this.count = state.count;
    this.more = state.more;
    this.needsReset = false;
  }

  /** @internal Page render: the last page of the subject. */
  async loadPage(): Promise<void> {
    const page = await this.feed.lastPage(this.subject);
    const { html, n } = this.feed.itemsHtml(this, page);
    this.resetHtml(html, n, page.length === this.feed.pageSize);
    this.pos = page.at(-1)?.seq ?? 0;
    this.posTime = page.at(-1)?.time;
  }

  /** @internal A live message for this tab (already encoded, shared with the other members). */
  appendFrame(frame: Buffer, seq: number, time?: number): void {
    this.tab.push(frame, "patch", frame.length);
    this.pos = seq;
    this.posTime = time;
    this.inserted(1, "end");
  }

  /** @internal A gap marker for this tab (encoded, maybe shared with the other members). */
  appendGap(frame: Buffer): void {
    this.tab.push(frame, "patch", frame.length);
    this.inserted(1, "end");
  }

  override attached(state: ClientStreamState | undefined): void {
    this.generation++;
    // Without a report the browser's list is unknown: the last page replaces it.
    if (state) this.take(state);
    else this.needsReset = true;
    void this.catchUp();
  }

  override detached(): void {
    this.following = false;
  }

  override disposed(): void {
    this.following = false;
    if (this.topic) this.feed.leave(this.topic, this);
    this.topic = undefined;
  }

  /**
   * History from `pos`, then live: reads until nothing newer than what the subscription has delivered
   * is missing, then follows. Messages that arrive live meanwhile are skipped and read from history.
   */
  private async catchUp(): Promise<void> {
    const topic = this.topic;
    if (this.catchingUp || !topic) return;
    this.catchingUp = true;
    this.following = false;
    try {
      for (let round = 0; round < 100; round++) {
        if (!this.tab.connected) return;
        const generation = this.generation;
        if (this.needsReset) {
          await this.resetToLastPage(topic, generation);
          continue;
        }
        // The list already holds the newest message this process knows of, and the subscription
        // delivers everything after it: nothing to read (the common case, a page just loaded).
        if (topic.known > 0 && this.pos === topic.known) {
          this.following = true;
          return;
        }
        // Read from the list's newest message itself: while the store still has it, nothing after it
        // was evicted (limits and expiry remove a subject's oldest first), so the fill has no hole. If
        // it is gone (evicted, expired, or a stream recreated since), the list is reset instead.
        const from = this.pos;
        const read = await this.feed.history(this.subject, {
          afterSeq: Math.max(0, from - 1),
          limit: this.feed.fillLimit + 2,
        });
        if (!this.tab.connected) return;
        // Reattached meanwhile: the browser reported a new position, read from there.
        if (generation !== this.generation) continue;
        // The list's newest message is gone (evicted or expired while the tab was away): what came after
        // it may be gone too, and nothing can bring that back. If messages after it are still stored, the
        // list shows a gap marker and then those; if none are (a stream recreated, or all expired), or
        // too many to fill, it is reset to the last page.
        const expired = from > 0 && read[0]?.seq !== from;
        if (expired && !(read.length > 0 && read[0]!.seq > from)) {
          this.needsReset = true;
          this.resetExpired = true;
          continue;
        }
        const missed = from > 0 && !expired ? read.slice(1) : read;
        const frames = this.fillFrames(missed);
        if (!frames) {
          this.needsReset = true;
          this.resetExpired ||= expired;
          continue;
        }
        if (expired) {
          const next = missed[0]!;
          const since = this.posTime;
          const html = this.feed.gapHtml({ seq: next.seq, time: next.time, ...(since ? { since } : {}) });
          this.tab.log.info({ subject: this.subject, after: from, before: next.seq }, "feed gap marked");
          this.insertHtml(html, 1, "end");
        }
        for (const [msg, frame] of frames) {
          if (msg.seq > topic.known) topic.known = msg.seq;
          if (frame) this.appendFrame(frame, msg.seq, msg.time);
          else {
            this.pos = msg.seq;
            this.posTime = msg.time;
          }
        }
        if (from > topic.known) topic.known = from;
        if (this.pos >= topic.known) {
          this.following = true;
          return;
        }
      }
      this.tab.log.warn({ subject: this.subject }, "feed could not catch up; the list resets on the next attach");
      this.needsReset = true;
    } catch (err) {
      this.tab.log.warn({ err, subject: this.subject }, "feed catch-up failed; the list resets on the next attach");
      this.needsReset = true;
    } finally {
      this.catchingUp = false;
    }
  }

  /**
   * The frames that fill the list with `missed`, or undefined when filling is the wrong answer: more
   * messages than `fillLimit`, or more bytes than half the tab's queue cap (they are queued at once, and
   * a fill cut for overflow would be repeated by every reconnect). The last page replaces the list then.
   */
  private fillFrames(missed: readonly StreamMessage[]): Array<[StreamMessage, Buffer | undefined]> | undefined {
    if (missed.length > this.feed.fillLimit) return undefined;
    const budget = this.tab.queueCapBytes / 2;
    let bytes = 0;
    const out: Array<[StreamMessage, Buffer | undefined]> = [];
    for (const msg of missed) {
      const frame = this.feed.frameOf(this, msg);
      bytes += frame?.length ?? 0;
      if (bytes > budget) return undefined;
      out.push([msg, frame]);
    }
    return out;
  }

  private async resetToLastPage(topic: { known: number }, generation: number): Promise<void> {
    const page = await this.feed.history(this.subject, { last: this.feed.pageSize });
    if (!this.tab.connected || generation !== this.generation) return;
    const last = page.at(-1)?.seq ?? 0;
    if (last > topic.known) topic.known = last;
    const { html, n } = this.feed.itemsHtml(this, page);
    this.resetHtml(html, n, page.length === this.feed.pageSize);
    this.pos = last;
    this.posTime = page.at(-1)?.time;
    this.needsReset = false;
    const expired = this.resetExpired;
    this.resetExpired = false;
    this.onReset?.({ expired });
  }

  private async loadOlder(cursor: string | undefined): Promise<void> {
    // The action body's decoder let through only 1-15 digits.
    const before = cursor === undefined ? 0 : Number(cursor);
    if (before <= 1) {
      this.setMore(false);
      return;
    }
    const page = await this.feed.history(this.subject, { beforeSeq: before, limit: this.feed.pageSize });
    const { html, n } = this.feed.itemsHtml(this, page);
    if (n > 0) this.insertHtml(html, n, "start", false);
    this.setMore(page.length === this.feed.pageSize);
  }

  private setMore(more: boolean): void {
    if (more === this.more) return;
    this.more = more;
    this.tab.pushRender();
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`feed ${name} must be a positive integer, got ${value}`);
  return value;
}
