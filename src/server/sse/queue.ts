// A tab's outgoing event queue: encoded SSE events waiting for the tab's socket to accept them (a
// detached tab queues nothing: it resyncs when it attaches). An event is a string (encoded for this
// tab) or a Buffer (a frame encoded once and shared by every tab it goes to). Two rules keep it
// bounded and correct:
//
// - Full-view renders coalesce. A newer render supersedes any older one, so only the newest is kept,
//   and it goes to the END of the queue, never to the old render's slot: patches queued after the old
//   render were computed against older state, and replaying them after the newer render would undo it.
// - A byte cap. A tab that does not drain (stalled socket, slow client) must not hold server memory
//   without limit. Over the cap the queue drops everything and reports overflow; the caller closes the
//   stream and the tab gets a full resync when it reconnects, so nothing dropped here is needed. What
//   the socket still buffers from earlier writes counts against the same cap (`heldBytes`). One event
//   alone always fits (a resync's full render can be bigger than the cap; refusing it would cut every
//   reconnect of that tab), so the bound is max(cap, largest single event).

export type QueuedKind = "render" | "patch";
/** One encoded event: a string for this tab alone, or a Buffer shared with other tabs. */
export type Chunk = string | Buffer;

export function chunkBytes(chunk: Chunk): number {
  return typeof chunk === "string" ? Buffer.byteLength(chunk, "utf8") : chunk.length;
}

export interface TabQueueOptions {
  /** Most UTF-8 bytes the queue may hold after coalescing. */
  capBytes: number;
}

// Compaction threshold: holes left by superseded renders are swept once they are both numerous and
// at least half the array, so each push costs O(1) amortised and memory stays proportional to content.
const MIN_HOLES_TO_COMPACT = 32;

export class TabQueue {
  readonly #capBytes: number;
  // Queued events in order; `undefined` marks the slot of a render that a newer render superseded.
  // Holes avoid an O(n) splice per render.
  #items: Array<Chunk | undefined> = [];
  #holes = 0;
  #bytes = 0;
  // Invariant: at most one render is queued (each render push removes the older one), so one index
  // is all the bookkeeping coalescing needs. -1 when no render is queued.
  #renderAt = -1;
  #renderBytes = 0;
  #overflowed = false;

  constructor(opts: TabQueueOptions) {
    if (!Number.isFinite(opts.capBytes) || opts.capBytes <= 0) {
      throw new RangeError(`TabQueue capBytes must be a positive number, got ${opts.capBytes}`);
    }
    this.#capBytes = opts.capBytes;
  }

  /**
   * Queues one encoded event. Returns false if the queue is over its cap: everything queued has been
   * dropped, `overflowed` is set, and the caller should close the stream so the tab resyncs.
   * While overflowed every push is refused (and dropped) until `clear()`: events queued after a gap
   * would be applied on top of state the tab never received.
   * `heldBytes`: bytes already written for this reader but still buffered by its socket; they count
   * against the same cap, so queue and socket buffer together stay bounded.
   */
  push(chunk: Chunk, kind: QueuedKind = "patch", heldBytes = 0, size = chunkBytes(chunk)): boolean {
    if (this.#overflowed) return false;
    if (kind === "render" && this.#renderAt >= 0) {
      this.#items[this.#renderAt] = undefined;
      this.#holes++;
      this.#bytes -= this.#renderBytes;
    }
    this.#items.push(chunk);
    this.#bytes += size;
    if (kind === "render") {
      this.#renderAt = this.#items.length - 1;
      this.#renderBytes = size;
    }
    // One event always fits when nothing else is queued or held: a full render bigger than the cap must
    // still reach a tab that resyncs, or that tab could never recover (every reconnect would be cut). So
    // a tab's memory is bounded by the cap, or by its largest single event if that is bigger.
    const alone = this.#items.length - this.#holes === 1 && heldBytes === 0;
    if (this.#bytes + heldBytes > this.#capBytes && !alone) {
      this.#reset();
      this.#overflowed = true;
      return false;
    }
    if (this.#holes >= MIN_HOLES_TO_COMPACT && this.#holes * 2 >= this.#items.length) this.#compact();
    return true;
  }

  /** Everything queued, in order; the queue is left empty. */
  takeAll(): Chunk[] {
    const out: Chunk[] = [];
    for (const item of this.#items) if (item !== undefined) out.push(item);
    this.#reset();
    return out;
  }

  /** Queued UTF-8 bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Queued events. */
  get length(): number {
    return this.#items.length - this.#holes;
  }

  /** True after the cap was exceeded, until `clear()`. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Empties the queue and re-arms it after an overflow (call when the tab reconnects and resyncs). */
  clear(): void {
    this.#reset();
    this.#overflowed = false;
  }

  #reset(): void {
    this.#items = [];
    this.#holes = 0;
    this.#bytes = 0;
    this.#renderAt = -1;
    this.#renderBytes = 0;
  }

  #compact(): void {
    const kept: Chunk[] = [];
    let renderAt = -1;
    for (let i = 0; i < this.#items.length; i++) {
      const item = this.#items[i];
      if (item === undefined) continue;
      if (i === this.#renderAt) renderAt = kept.length;
      kept.push(item);
    }
    this.#items = kept;
    this.#holes = 0;
    this.#renderAt = renderAt;
  }
}
