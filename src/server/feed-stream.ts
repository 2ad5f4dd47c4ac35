// One tab's list of a feed's subject (a FeedStream), and a subject's live lists in this process (a
// Topic). The tab's items are in the browser; the server keeps only the list's position, the newest
// seq it was sent, which is also all it needs to resume: when the tab's stream attaches, the list is
// filled from the position the browser reports (history first, then live, no gap and no duplicate),
// or gets a gap marker where the stream deleted what it missed, or is reset to the last page.
import type { HistoryQuery, StreamMessage, Unsubscribe } from "../pubsub/types.ts";
import type { Action } from "./action.ts";
import type { GapInfo, ResetInfo } from "./feed-types.ts";
import { Stream } from "./stream.ts";
import type { ClientStreamState } from "./stream-protocol.ts";
import type { Tab } from "./tab.ts";

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

/** What a list needs of its feed (feed.ts): settings, reads, and the renderings shared by all its lists. */
export interface FeedSource<T, M> {
  readonly pageSize: number;
  readonly limit: number;
  readonly fillLimit: number;
  history(subject: string, query: HistoryQuery): Promise<StreamMessage[]>;
  lastPage(subject: string): Promise<StreamMessage[]>;
  itemsHtml(stream: FeedStream<T, M>, msgs: readonly StreamMessage[]): { html: string; n: number };
  frameOf(stream: FeedStream<T, M>, msg: StreamMessage): Buffer | undefined;
  gapHtml(info: GapInfo): string;
  leave(topic: Topic<T, M>, stream: FeedStream<T, M>): void;
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
    private readonly feed: FeedSource<T, M>,
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
