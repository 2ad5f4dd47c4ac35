// A feed's work done once for every tab: each stored message decoded once, rendered once per variant
// and encoded once per variant into the frame every member tab of that variant is sent. The results
// are kept for page renders, fills and tabs that join later, within a byte budget, least recently used
// first out.
import type { Logger } from "../log.ts";
import type { StreamMessage } from "../pubsub/types.ts";
import type { FeedOptions } from "./feed-types.ts";
import { renderHtml } from "./html.ts";
import { patchElements } from "./sse/encoder.ts";
import { withPosition } from "./stream-protocol.ts";

/** One message of one list as decoded, and its renderings so far. */
export interface RenderedMessage {
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

export class FeedRenderCache<T> {
  /** In order of use: the least recently used first. */
  private readonly entries = new Map<string, RenderedMessage>();
  private cachedBytes = 0;

  constructor(
    private readonly options: Pick<FeedOptions<T, unknown>, "decode" | "render">,
    private readonly budgetBytes: number,
    private readonly logger: Logger,
  ) {}

  /** Entries kept. */
  get size(): number {
    return this.entries.size;
  }

  /** What the entries kept count against the budget. */
  get bytes(): number {
    return this.cachedBytes;
  }

  /** `msg` as shown in the list `listId`: decoded now, or taken from the cache. */
  message(listId: string, msg: StreamMessage): RenderedMessage {
    // Seq and time together: a stream deleted and recreated reuses seqs, not both.
    const key = `${listId}\n${msg.subject}\n${msg.seq}\n${msg.time}`;
    let entry = this.entries.get(key);
    if (entry) {
      // Most recently used last, so the oldest entry is the first to go.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry;
    }
    let value: unknown;
    try {
      value = this.options.decode(msg);
    } catch (err) {
      this.logger.warn(
        { subject: msg.subject, seq: msg.seq, reason: (err as Error).message },
        "feed skipped an undecodable message",
      );
    }
    entry = { key, value, html: new Map(), frames: new Map(), bytes: 0 };
    this.entries.set(key, entry);
    this.account(entry, ENTRY_OVERHEAD + msg.data.length);
    return entry;
  }

  /** The list item of `entry` in `variant`, carrying its position. */
  itemHtml(entry: RenderedMessage, variant: string, msg: StreamMessage): string {
    let html = entry.html.get(variant);
    if (html === undefined) {
      const meta = { subject: msg.subject, seq: msg.seq, time: msg.time };
      html = withPosition(renderHtml(this.options.render(entry.value as T, meta, variant)), msg.seq);
      entry.html.set(variant, html);
      this.account(entry, html.length);
    }
    return html;
  }

  /** The event that appends the item of `entry` in `variant` to the list `listId`. */
  frame(entry: RenderedMessage, listId: string, variant: string, msg: StreamMessage): Buffer {
    let frame = entry.frames.get(variant);
    if (!frame) {
      const html = this.itemHtml(entry, variant, msg);
      // The id is the stream position: the same for every tab, so the bytes are shared.
      const event = patchElements(html, { selector: `#${listId}`, mode: "append", eventId: String(msg.seq) });
      frame = Buffer.from(event, "utf8");
      entry.frames.set(variant, frame);
      this.account(entry, frame.length);
    }
    return frame;
  }

  /** `entry` grew by `bytes`; past the budget the least recently used entries go (not `entry` itself). */
  private account(entry: RenderedMessage, bytes: number): void {
    entry.bytes += bytes;
    this.cachedBytes += bytes;
    while (this.cachedBytes > this.budgetBytes && this.entries.size > 1) {
      const oldest = this.entries.values().next().value!;
      if (oldest === entry) break;
      this.entries.delete(oldest.key);
      this.cachedBytes -= oldest.bytes;
    }
  }
}
