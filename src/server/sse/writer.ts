// Where an event stream's bytes go. A tab's sink (EventSink) queues, coalesces and accounts for its
// events the same way whatever carries them; a writer is the carrier:
// - a socket: an HTTP/1.1 response whose body is written to the connection directly (see sink.ts);
// - an HTTP/2 stream: the response's own stream of a connection that other streams (the browser's
//   other tabs) share, so it is written, backed up and cut alone;
// - a lane of a shared stream: one tab's share of a response that carries several tabs (mux.ts).
// `openWriter` sends a response's event-stream headers and gives the writer for its protocol.
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { constants, Http2ServerResponse, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Chunk } from "./queue.ts";

export interface SinkWriter {
  /** Write one event; false when the carrier asks to wait for `onDrain` (the bytes are kept). */
  write(chunk: Chunk): boolean;
  /** Gather the writes until `uncork` into one system call. */
  cork(): void;
  uncork(): void;
  /** Idle streams need a comment now and then to stay open (a lane's shared stream has its own). */
  readonly keepsAlive: boolean;
  /** Bytes written but not yet handed on (to the kernel; for an HTTP/2 stream, to its connection). */
  readonly writableLength: number;
  /** The carrier is gone: writes are dropped. */
  readonly destroyed: boolean;
  /** The stream was ended on our side. */
  readonly writableEnded: boolean;
  /** `fn` once the carrier can take more. */
  onDrain(fn: () => void): void;
  /** `fn` once the stream closes, whichever side closed it. */
  onClose(fn: () => void): void;
  /** End the stream after `last`. */
  end(last?: Chunk): void;
  /** End it at once: what it still buffers is stale (the tab resyncs when it reconnects). */
  cut(): void;
}

/** An HTTP/1.1 event stream written to its socket. */
export class SocketWriter implements SinkWriter {
  private readonly socket: Socket;
  readonly keepsAlive = true;

  constructor(private readonly res: ServerResponse) {
    this.socket = res.socket as Socket;
  }

  write(chunk: Chunk): boolean {
    return this.socket.write(chunk);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get writableEnded(): boolean {
    return this.res.writableEnded;
  }

  onDrain(fn: () => void): void {
    this.socket.once("drain", fn);
  }

  onClose(fn: () => void): void {
    this.res.once("close", fn);
  }

  end(last?: Chunk): void {
    if (this.res.writableEnded) return;
    if (last !== undefined && !this.socket.destroyed) this.socket.write(last);
    this.res.end();
  }

  /**
   * A TCP reset, not a close: what the kernel still buffers for it (up to a few MiB on loopback) is
   * dropped at once instead of being held until the reader drains it, and a reader that stalled
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

/**
 * An HTTP/2 event stream: written to the response's stream. Backpressure is the stream's own (its
 * buffer, bounded by the peer's flow-control window and the shared connection's socket), and a cut
 * resets this stream alone (RST_STREAM): the connection, and every other tab's stream on it, go on.
 */
export class H2StreamWriter implements SinkWriter {
  private readonly stream: ServerHttp2Stream;
  readonly keepsAlive = true;

  constructor(private readonly res: Http2ServerResponse) {
    this.stream = res.stream;
  }

  write(chunk: Chunk): boolean {
    return this.stream.write(chunk);
  }

  cork(): void {
    this.stream.cork();
  }

  uncork(): void {
    this.stream.uncork();
  }

  /** Bytes the stream holds: not yet taken by the connection (flow control, a busy socket). */
  get writableLength(): number {
    return this.stream.writableLength;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableEnded(): boolean {
    return this.res.writableEnded;
  }

  onDrain(fn: () => void): void {
    this.stream.once("drain", fn);
  }

  onClose(fn: () => void): void {
    this.res.once("close", fn);
  }

  end(last?: Chunk): void {
    if (this.res.writableEnded) return;
    if (last !== undefined && !this.stream.destroyed) this.stream.write(last);
    this.res.end();
  }

  /** RST_STREAM (CANCEL): what the stream still holds is dropped; the connection is not touched. */
  cut(): void {
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
  }
}

/**
 * Sends `headers` with a 200 on `res`, an event stream's response, and returns the writer of its body
 * for the response's protocol, or undefined if the client is already gone. HTTP/1.1: a plain body
 * that ends with the connection (`Connection: close`, no chunked encoding), written to the socket.
 * HTTP/2 (node:http2's compatibility response): the response's stream, whose end ends the body
 * (HTTP/2 has no connection-level headers).
 */
export function openWriter(
  res: ServerResponse | Http2ServerResponse,
  headers: OutgoingHttpHeaders,
): SinkWriter | undefined {
  if (res instanceof Http2ServerResponse) {
    if (res.stream.destroyed || res.stream.closed) return undefined;
    res.writeHead(200, headers);
    return new H2StreamWriter(res);
  }
  if (!res.socket || res.socket.destroyed) return undefined;
  res.removeHeader("Transfer-Encoding");
  res.writeHead(200, { ...headers, Connection: "close" });
  res.flushHeaders();
  return new SocketWriter(res);
}
