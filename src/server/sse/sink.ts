// The writing end of one event stream, and what waits to be written to it. It lives exactly as long
// as the connection: a tab whose stream is detached has no sink, so it holds no output at all.
//
// An HTTP/1.1 event stream is written as a plain body that ends when the connection closes (no
// chunked transfer encoding): every event is then a single socket write of bytes that can be shared
// with other streams as they are, where chunked encoding would add a length line and two CRLF writes
// per event. Writes go to the socket directly, corked per flush so a flush's events leave in one
// system call. An HTTP/2 event stream (a TLS server, see listen.ts) is written to the response's
// stream instead, with the same queueing and accounting; a cut resets that stream only. A tab on a
// shared stream (mux.ts) has a sink of its own too, writing to its lane of that stream (writer.ts).
//
// Output waits for the next flush (the tab schedules it). The common case, one event per flush (a
// broadcast), is held in one slot; a second event, or a socket that refused the last write, moves
// them into a TabQueue, which coalesces renders and is capped in bytes together with what the socket
// still buffers. Every byte held is reported to the app's budget (`held`).
import type { ServerResponse } from "node:http";
import { type Chunk, type QueuedKind, TabQueue } from "./queue.ts";
import { openWriter, type SinkWriter } from "./writer.ts";

export const EVENT_STREAM_HEADERS = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache, no-transform",
  // nginx and friends buffer responses by default, which would hold events back.
  "X-Accel-Buffering": "no",
} as const;

/** Where a sink reports the bytes it holds and what it wrote, and its cap. */
export interface SinkHost {
  readonly queueCapBytes: number;
  held(delta: number): void;
  /** `events` events of `bytes` bytes in all were written to the socket (a count for metrics). */
  wrote(events: number, bytes: number): void;
}

export class EventSink {
  private next: Chunk | undefined;
  private nextSize = 0;
  private queue: TabQueue | undefined;
  private waitingForDrain = false;
  /** What the socket buffered at the last write, as reported to the budget. */
  private bufferedSample = 0;

  private constructor(
    private readonly writer: SinkWriter,
    private readonly host: SinkHost,
  ) {}

  /** Sends the event-stream headers and returns the sink, or undefined if the client is already gone. */
  static open(res: ServerResponse, host: SinkHost): EventSink | undefined {
    const writer = openWriter(res, EVENT_STREAM_HEADERS);
    return writer && new EventSink(writer, host);
  }

  /** A sink writing to `writer` (a lane of a shared stream, whose headers went out already). */
  static over(writer: SinkWriter, host: SinkHost): EventSink {
    return new EventSink(writer, host);
  }

  /** Bytes held for this stream: waiting output plus what the socket has not handed to the kernel. */
  get pendingBytes(): number {
    return this.nextSize + (this.queue?.bytes ?? 0) + this.writer.writableLength;
  }

  /** The socket refused the last write: output waits for `drain` (a slow or stalled reader). */
  get backedUp(): boolean {
    return this.waitingForDrain;
  }

  /** Nothing is waiting to be written. */
  get idle(): boolean {
    return this.next === undefined && (this.queue?.length ?? 0) === 0 && !this.waitingForDrain;
  }

  /**
   * Keep one event for the next flush. False when the queue went over its cap: everything waiting was
   * dropped and the caller must cut the stream.
   */
  push(chunk: Chunk, kind: QueuedKind, size: number): boolean {
    if (!this.queue && this.next === undefined && !this.waitingForDrain && kind === "patch") {
      this.next = chunk;
      this.nextSize = size;
      this.host.held(size);
      return true;
    }
    this.queue ??= new TabQueue({ capBytes: this.host.queueCapBytes });
    const queue = this.queue;
    const before = queue.bytes + this.nextSize;
    if (this.next !== undefined) {
      queue.push(this.next, "patch", 0, this.nextSize);
      this.next = undefined;
      this.nextSize = 0;
    }
    // What the socket still buffers counts too: a stalled reader holds at most the cap in all.
    if (!queue.push(chunk, kind, this.writer.writableLength, size)) {
      this.host.held(-before);
      return false;
    }
    this.host.held(queue.bytes - before);
    return true;
  }

  /** Write what waits, unless the socket asked us to wait for `drain` (`onDrained` runs after it). */
  flush(onDrained: () => void): void {
    if (this.waitingForDrain || this.writer.destroyed) return;
    let ok: boolean;
    if (this.next !== undefined) {
      const size = this.nextSize;
      ok = this.writer.write(this.next);
      this.next = undefined;
      this.nextSize = 0;
      this.host.held(-size);
      this.host.wrote(1, size);
    } else {
      const queue = this.queue;
      if (!queue || queue.length === 0) return;
      const queued = queue.bytes;
      const events = queue.length;
      ok = this.writeAll(queue.takeAll());
      this.host.held(-queued);
      this.host.wrote(events, queued);
      // An idle stream keeps no queue: it is made again when more than one event waits for a flush.
      if (ok) this.queue = undefined;
    }
    this.sampleBuffered();
    if (ok) return;
    // Respect backpressure: keep queueing (bounded, coalescing) until the socket drains.
    this.waitingForDrain = true;
    this.writer.onDrain(() => {
      this.waitingForDrain = false;
      this.sampleBuffered();
      onDrained();
    });
  }

  private writeAll(chunks: readonly Chunk[]): boolean {
    const writer = this.writer;
    if (chunks.length === 1) return writer.write(chunks[0]!);
    writer.cork();
    let ok = true;
    for (const chunk of chunks) ok = writer.write(chunk);
    writer.uncork();
    return ok;
  }

  private sampleBuffered(): void {
    const now = this.writer.destroyed ? 0 : this.writer.writableLength;
    if (now !== this.bufferedSample) {
      this.host.held(now - this.bufferedSample);
      this.bufferedSample = now;
    }
  }

  /** Write a comment (keepalive) at once if nothing else waits; proxies then keep an idle stream open. */
  writeIdle(comment: Buffer): void {
    if (this.writer.keepsAlive && this.idle && !this.writer.destroyed) this.writer.write(comment);
  }

  onClose(fn: () => void): void {
    this.writer.onClose(fn);
  }

  /** Ends the stream: what waits is written first, then `last` (a final event). Releases its bytes. */
  end(last?: Chunk): void {
    if (last !== undefined && !this.waitingForDrain) this.flush(() => {});
    this.release();
    this.writer.end(last);
  }

  /**
   * Ends a stream whose reader fell a whole queue cap behind (or the app over its budget) at once:
   * what it still buffers is stale, since the tab resyncs on reconnect (see the writer's `cut`).
   */
  cut(): void {
    this.release();
    this.writer.cut();
  }

  /** Forget what waits and give its bytes back to the budget. */
  release(): void {
    const held = this.nextSize + (this.queue?.bytes ?? 0) + this.bufferedSample;
    if (held !== 0) this.host.held(-held);
    this.next = undefined;
    this.nextSize = 0;
    this.queue = undefined;
    this.bufferedSample = 0;
  }
}
