// The servers an app listens with, and starting one as a promise.
//
// Without TLS: a node:http server. With TLS (`app.listen(port, host, { tls })`): a
// node:http2 secure server that speaks HTTP/2 to clients that offer it (ALPN "h2": every browser) and
// HTTP/1.1 to the others (allowHTTP1). Over HTTP/2 all of a browser's tabs share one connection, each
// event stream one stream of it, so a browser is not held to 6 open tabs per origin (its cap on
// HTTP/1.1 connections, each of which an open event stream keeps busy).
//
// The app's handler serves both: node's HTTP/2 compatibility API gives it request and response
// objects shaped like node:http's. What differs (no socket to write to, no connection-level headers,
// a stream to reset rather than a connection) is handled where it matters: sse/writer.ts for event
// streams, security.ts for the host (`:authority`). The server limits (`ServerLimits`) apply to both
// protocols, as far as each has them: see `createAppServer`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from "node:http2";
import type { Server as NetServer, Socket } from "node:net";

/** Timeouts and caps of the server `listen` creates (an app mounted elsewhere sets its own server's). */
export interface ServerLimits {
  /** Time a client has to send the request headers (default 10 s). */
  headersTimeoutMs?: number;
  /**
   * Time a client has to send a whole request, body included (default 10 s); an event stream is a GET
   * without a body, so its response may last as long as it likes.
   */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection is kept (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** Requests one keep-alive connection may carry before it is closed (default 1,000). */
  maxRequestsPerSocket?: number;
  /** Connections open at once, streams included; past it new connections are closed at once (default 20,000). */
  maxConnections?: number;
  /**
   * With TLS, streams one HTTP/2 connection (one browser: all its tabs) may have open at once, event
   * streams included (default 1,000); a browser queues more until one ends.
   */
  maxStreamsPerConnection?: number;
}

export const DEFAULT_SERVER_LIMITS: Required<ServerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 20_000,
  maxStreamsPerConnection: 1_000,
};

/** Serve over TLS: HTTPS with HTTP/2, and HTTP/1.1 for clients without HTTP/2. */
export interface TlsOptions {
  /** The certificate chain in PEM: the server's certificate first, then any intermediates. */
  cert: string | Buffer;
  /** Its private key in PEM. */
  key: string | Buffer;
}

/** The server `app.listen` made, with the two steps of a graceful shutdown. */
export interface AppServer {
  readonly server: Server | Http2SecureServer;
  /**
   * Stops accepting connections, closes idle keep-alive connections and asks HTTP/2 clients to go
   * away (GOAWAY: no new streams; the connection closes when its open streams end). Resolves once
   * every connection is closed.
   */
  close(): Promise<void>;
  /** Closes every connection still open at once. */
  destroyAll(): void;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The app's server. HTTP/1.1 (both servers): `headersTimeoutMs`, `requestTimeoutMs`,
 * `keepAliveTimeoutMs`, `maxRequestsPerSocket` as node:http applies them. With TLS also: the TLS
 * handshake within `headersTimeoutMs`; an HTTP/2 connection with no open stream closed after
 * `keepAliveTimeoutMs` (GOAWAY), at most `maxStreamsPerConnection` streams open at once on one
 * (SETTINGS_MAX_CONCURRENT_STREAMS; a browser queues more until one ends). An HTTP/2 request body has
 * no server-wide timer: the app bounds action bodies itself (`readBody`, `requestTimeoutMs`).
 * `maxConnections` counts TCP connections of either protocol.
 */
export function createAppServer(handler: Handler, limits: Required<ServerLimits>, tls?: TlsOptions): AppServer {
  if (!tls) return plainServer(handler, limits);
  return secureServer(handler, limits, tls);
}

function plainServer(handler: Handler, limits: Required<ServerLimits>): AppServer {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this interval (30 s by default, which would let a slow
      // client hold a connection for up to 40 s).
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    handler,
  );
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  return {
    server,
    close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      return closed;
    },
    destroyAll() {
      server.closeAllConnections();
    },
  };
}

/** The node:http settings that an HTTP/2 server with allowHTTP1 reads for its HTTP/1.1 connections. */
interface Http1Settings {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  maxRequestsPerSocket: number;
  connectionsCheckingInterval: number;
}

function secureServer(handler: Handler, limits: Required<ServerLimits>, tls: TlsOptions): AppServer {
  const server = createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      allowHTTP1: true,
      // A client that connects and never completes the handshake: as one that never sends its headers.
      handshakeTimeout: limits.headersTimeoutMs,
      settings: { maxConcurrentStreams: limits.maxStreamsPerConnection },
    },
    // The compatibility API's request and response stand in for node:http's (see the file comment).
    handler as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  );
  // HTTP/1.1 connections are node:http's, driven by these properties of the server (read when a
  // request arrives; the checking interval when the server starts listening).
  Object.assign(server, {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
  } satisfies Http1Settings);
  server.maxConnections = limits.maxConnections;

  // Every connection, to close what a graceful shutdown leaves open (node:http2 has no
  // closeAllConnections), and every HTTP/2 session, to send it GOAWAY on close (server.close() alone
  // waits for them forever).
  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  let closing = false;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session: ServerHttp2Session) => {
    if (closing) {
      session.close();
      return;
    }
    sessions.add(session);
    // An HTTP/2 connection is kept while it has open streams (a browser's event streams keep it), and
    // closed once it has had none for keepAliveTimeoutMs, like an idle HTTP/1.1 keep-alive connection.
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      idle = setTimeout(() => session.close(), limits.keepAliveTimeoutMs);
      idle.unref();
    };
    const streamClosed = () => {
      if (--open === 0 && !session.closed && !session.destroyed) armIdle();
    };
    session.on("stream", (stream) => {
      if (open++ === 0) clearTimeout(idle);
      stream.once("close", streamClosed);
    });
    session.once("close", () => {
      clearTimeout(idle);
      sessions.delete(session);
    });
    armIdle();
  });

  return {
    server,
    close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle HTTP/1.1 keep-alive connections (node:http's own list of the server's HTTP/1.1 ones).
      (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      for (const session of sessions) session.close();
      return closed;
    },
    destroyAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/**
 * Starts a server as a promise: resolves once it listens, rejects with the listen error (a port in
 * use) instead of leaving it as an unhandled 'error' event.
 */
export function listenOn(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
