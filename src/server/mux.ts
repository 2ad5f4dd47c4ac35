// Shared event streams: one response that carries the events of several tabs of one browser
// (docs/PROTOCOL.md §6). The browser's shared worker opens it (`GET /_via/mux`); each tab then asks
// to be attached to it under a slot number the worker gave it (`POST /_via/attach`), and gets a lane:
// a sink like a tab's own stream, whose events are written to the shared response. The stream stays
// Datastar events as they are, plus two events of ours: `via-tab` (slot N) before a run of one tab's
// events, and `via-tab-end` (slot N) when a lane ends.
//
// Each lane queues on its own, with its own cap, exactly like a tab's own stream: a tab whose events
// pile up is cut alone. They share the socket, so a reader that stops reading backs them all up, and
// each is cut at its cap. Each lane counts what the socket still buffers as its own (for the cap and
// the app's budget), so a backed-up shared stream is counted once per lane: it is cut sooner, never
// later, than the same tabs on streams of their own.
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { newId } from "./ids.ts";
import { comment, customEvent } from "./sse/encoder.ts";
import type { Chunk } from "./sse/queue.ts";
import { EVENT_STREAM_HEADERS, EventSink, type SinkHost } from "./sse/sink.ts";
import { openWriter, type SinkWriter } from "./sse/writer.ts";

/** Lanes one shared stream may carry: far more tabs than a person opens, few enough to bound it. */
export const MAX_LANES = 64;
const SLOT = /^[1-9][0-9]{0,8}$/;

export class MuxStream {
  readonly id = newId();
  private readonly lanes = new Map<number, Lane>();
  /** The slot whose events were written last: a run of one tab's events is named once. */
  private lastSlot = 0;
  private closed = false;
  /** Corked until the running callback returns (see `write`). */
  private corked = false;
  private readonly uncork = () => {
    this.corked = false;
    this.out.uncork();
  };
  /** Lanes waiting for the response to drain: one listener on it for all of them. */
  private drainWaiters: Array<() => void> = [];

  private constructor(
    private readonly out: SinkWriter,
    /** The session that opened it: only its tabs may attach. */
    readonly sessionId: string,
    private readonly registry: MuxRegistry,
  ) {
    out.onClose(() => this.gone());
  }

  /** Sends the headers and the stream's name, or returns undefined if the client is already gone. */
  static open(
    res: ServerResponse | Http2ServerResponse,
    sessionId: string,
    registry: MuxRegistry,
  ): MuxStream | undefined {
    const out = openWriter(res, EVENT_STREAM_HEADERS);
    if (!out) return undefined;
    const mux = new MuxStream(out, sessionId, registry);
    out.write(customEvent("via-mux", [["id", mux.id]]));
    registry.add(mux);
    return mux;
  }

  get laneCount(): number {
    return this.lanes.size;
  }

  /**
   * A sink for the tab in `slot` (a decimal number the worker chose), or a reason why not. Slots are
   * not reused on one stream: a late event for an old slot cannot reach the tab that has it now.
   */
  lane(slot: string, host: SinkHost): EventSink | "bad slot" | "slot taken" | "full" | "closed" {
    if (this.closed || this.out.destroyed) return "closed";
    if (!SLOT.test(slot)) return "bad slot";
    const n = Number(slot);
    if (this.lanes.has(n)) return "slot taken";
    if (this.lanes.size >= MAX_LANES) return "full";
    const lane = new Lane(this, n, Buffer.from(customEvent("via-tab", [["slot", String(n)]])));
    this.lanes.set(n, lane);
    return EventSink.over(lane, host);
  }

  /**
   * @internal Write `chunk` for the tab in `slot`, naming the slot first if another tab wrote last.
   * Everything written for this stream before the running callback returns (process.nextTick uncorks;
   * the shared flush writes every tab's events in one callback) leaves in one system call.
   */
  write(slot: number, marker: Buffer, chunk: Chunk): boolean {
    if (!this.corked) {
      this.corked = true;
      this.out.cork();
      process.nextTick(this.uncork);
    }
    if (this.lastSlot !== slot) {
      this.lastSlot = slot;
      this.out.write(marker);
    }
    return this.out.write(chunk);
  }

  /** @internal The shared response, for a lane's corking and byte count. */
  get writer(): SinkWriter {
    return this.out;
  }

  /** @internal `fn` once the shared response can take more. */
  onDrain(fn: () => void): void {
    this.drainWaiters.push(fn);
    if (this.drainWaiters.length > 1) return;
    this.out.onDrain(() => {
      for (const wake of this.drainWaiters.splice(0)) wake();
    });
  }

  /** @internal The lane in `slot` ended: the worker tells its tab, which attaches again if it lives. */
  ended(slot: number): void {
    this.lanes.delete(slot);
    if (this.closed || this.out.destroyed) return;
    this.out.write(customEvent("via-tab-end", [["slot", String(slot)]]));
    if (this.lastSlot === slot) this.lastSlot = 0;
  }

  /** A comment when nothing else waits to be written, so proxies keep the stream open. */
  keepalive(text: Buffer): void {
    if (!this.closed && !this.out.destroyed && this.out.writableLength === 0) this.out.write(text);
  }

  /** Ends the stream with `last` (server shutdown: every lane's tab is told by its own event first). */
  end(last?: string): void {
    if (!this.closed) this.out.end(last);
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    for (const lane of [...this.lanes.values()]) lane.streamClosed();
    this.lanes.clear();
  }
}

/** One tab's share of a MuxStream: what its EventSink writes to. */
class Lane implements SinkWriter {
  readonly keepsAlive = false;
  private ended = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly mux: MuxStream,
    private readonly slot: number,
    /** The `via-tab` event that names this lane's slot: made once, written before each run of its events. */
    private readonly marker: Buffer,
  ) {}

  get destroyed(): boolean {
    return this.ended || this.mux.writer.destroyed;
  }

  get writableLength(): number {
    return this.mux.writer.writableLength;
  }

  write(chunk: Chunk): boolean {
    if (this.destroyed) return true;
    return this.mux.write(this.slot, this.marker, chunk);
  }

  cork(): void {
    this.mux.writer.cork();
  }

  uncork(): void {
    this.mux.writer.uncork();
  }

  onDrain(fn: () => void): void {
    this.mux.onDrain(fn);
  }

  onClose(fn: () => void): void {
    if (this.ended) fn();
    else this.closeListeners.push(fn);
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  /** The tab's stream ends (its events written first): the shared stream goes on. */
  end(last?: Chunk): void {
    if (this.ended) return;
    if (last !== undefined) this.write(last);
    this.close();
  }

  /** Cut: what the socket buffers for this lane still arrives, then the end; the tab resyncs. */
  cut(): void {
    this.close();
  }

  /** The shared stream closed under it. */
  streamClosed(): void {
    if (this.ended) return;
    this.ended = true;
    for (const fn of this.closeListeners.splice(0)) fn();
  }

  private close(): void {
    this.ended = true;
    this.mux.ended(this.slot);
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}

/** The open shared streams of an app, by id. */
export class MuxRegistry {
  private readonly streams = new Map<string, MuxStream>();
  private readonly keepaliveComment = Buffer.from(comment("keepalive"));

  get size(): number {
    return this.streams.size;
  }

  /** Lanes of all shared streams (tabs attached to one). O(streams). */
  get lanes(): number {
    let n = 0;
    for (const mux of this.streams.values()) n += mux.laneCount;
    return n;
  }

  get(id: string): MuxStream | undefined {
    return this.streams.get(id);
  }

  add(mux: MuxStream): void {
    this.streams.set(mux.id, mux);
  }

  delete(mux: MuxStream): void {
    if (this.streams.get(mux.id) === mux) this.streams.delete(mux.id);
  }

  keepalive(): void {
    for (const mux of this.streams.values()) mux.keepalive(this.keepaliveComment);
  }

  /** Ends every shared stream (after each tab got its goodbye on its lane). */
  endAll(): void {
    for (const mux of [...this.streams.values()]) mux.end();
  }
}
