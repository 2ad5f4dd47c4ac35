// The writing end of one event stream. An HTTP/1.1 event stream is written as a plain body that ends
// when the connection closes (no chunked transfer encoding): every event is then a single socket write
// of bytes that can be shared with other streams as they are, where chunked encoding would add a
// length line and two CRLF writes per event. Writes go to the socket directly, corked per flush so a
// tab's events of one tick leave in one system call.
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Chunk } from "./queue.ts";

export const EVENT_STREAM_HEADERS = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache, no-transform",
  // nginx and friends buffer responses by default, which would hold events back.
  "X-Accel-Buffering": "no",
} as const;

export class EventSink {
  private readonly socket: Socket;

  private constructor(private readonly res: ServerResponse) {
    this.socket = res.socket as Socket;
  }

  /** Sends the event-stream headers and returns the sink, or undefined if the client is already gone. */
  static open(res: ServerResponse): EventSink | undefined {
    if (!res.socket || res.socket.destroyed) return undefined;
    res.removeHeader("Transfer-Encoding");
    res.writeHead(200, { ...EVENT_STREAM_HEADERS, Connection: "close" });
    res.flushHeaders();
    return new EventSink(res);
  }

  get closed(): boolean {
    return this.socket.destroyed || this.res.writableEnded;
  }

  /** Bytes accepted but not yet taken by the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Writes one event; false when the socket asks us to wait for `drain`. */
  write1(chunk: Chunk): boolean {
    const socket = this.socket;
    return socket.destroyed ? true : socket.write(chunk);
  }

  /** Writes the events in order, in one system call; false when the socket asks us to wait for `drain`. */
  write(chunks: readonly Chunk[]): boolean {
    const socket = this.socket;
    if (socket.destroyed) return true;
    if (chunks.length === 1) return socket.write(chunks[0]!);
    socket.cork();
    let ok = true;
    for (const chunk of chunks) ok = socket.write(chunk);
    socket.uncork();
    return ok;
  }

  onDrain(fn: () => void): void {
    this.socket.once("drain", fn);
  }

  onClose(fn: () => void): void {
    this.res.once("close", fn);
  }

  /** Ends the stream after `last` (a final event). */
  end(last?: Chunk): void {
    if (this.res.writableEnded) return;
    if (last !== undefined && !this.socket.destroyed) this.socket.write(last);
    this.res.end();
  }

  /**
   * Ends a stream whose reader fell a whole queue cap behind. A TCP reset, not a close: what the kernel
   * still buffers for it (up to a few MiB on loopback) is stale, since the tab resyncs on reconnect, so
   * it is dropped at once instead of being held until the reader drains it; and a reader that stalled
   * learns of the cut as soon as it reads again. Sockets that cannot reset (TLS) are destroyed.
   */
  cut(): void {
    const socket = this.socket;
    if (typeof socket.resetAndDestroy === "function") {
      try {
        socket.resetAndDestroy();
        return;
      } catch {
        // not a TCP handle (TLS, a wrapped socket): destroy below
      }
    }
    this.res.destroy();
  }
}
