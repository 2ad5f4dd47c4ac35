// The application: routes, sessions, tabs, and the three framework endpoints (page, event stream,
// action). `app.handler` is a plain node:http handler, so it mounts in Express/Fastify/Hono;
// `app.listen()` runs it on its own server with graceful shutdown.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { buildRuntime } from "../client/build.ts";
import { createLogger, type Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import { type Asset, AssetRegistry, STATIC_PREFIX } from "./assets.ts";
import { readBody, requireJsonContentType } from "./body.ts";
import { type AttachMode, type Context, Tab } from "./context.ts";
import { documentHtml } from "./html.ts";
import { HttpError } from "./http-error.ts";
import { isWellFormedId, newId } from "./ids.ts";
import { RouteTable } from "./routes.ts";
import { checkActionOrigin, DEFAULT_CSP, isHttps, setSecurityHeaders } from "./security.ts";
import { readCookie, SESSION_COOKIE, type Session, SessionStore, sessionCookie } from "./session.ts";
import { decodeActionBody } from "./signals-codec.ts";
import { comment, customEvent } from "./sse/encoder.ts";

export type PageInit = (c: Context) => void | Promise<void>;

export interface RateLimit {
  ratePerSec: number;
  burst: number;
}

export interface AppOptions {
  /** Document title. */
  title?: string;
  /** `<html lang>`. */
  lang?: string;
  logger?: Logger;
  /** The pub/sub engine behind `c.publish` / `c.subscribe` (embedded or NATS). The app does not close it. */
  pubsub?: PubSub;
  /** How long a tab's context outlives its event stream, so a reconnect resumes it (ms, default 2 min). */
  contextTtlMs?: number;
  /** Cap of a tab's outgoing queue in bytes (default 1 MiB). Over it the stream is closed; the tab resyncs. */
  queueCapBytes?: number;
  /** Action request body cap (default 64 KiB). */
  maxBodyBytes?: number;
  /** Per-tab action rate (default 10/s, burst 20). */
  tabRateLimit?: RateLimit;
  /** Per-session action rate across its tabs (default 30/s, burst 60). */
  sessionRateLimit?: RateLimit;
  /** Keepalive comment interval on event streams (default 15 s). */
  keepaliveMs?: number;
  /** Content-Security-Policy header; `false` sends none. Default: strict, no 'unsafe-eval', no inline script. */
  csp?: string | false;
  /** Trust X-Forwarded-Proto for the Secure cookie flag and origin checks (only behind your own proxy). */
  trustProxy?: boolean;
  /** Graceful shutdown budget (default 5 s). */
  shutdownTimeoutMs?: number;
  /**
   * Most page loads whose tab has not opened its event stream yet (default 10,000). Each holds a context
   * for the TTL, so a flood of GETs could otherwise fill memory; past the cap the oldest is dropped.
   * Safe for a real tab: when its stream does open, it re-bootstraps like after a restart.
   */
  maxUnattachedTabs?: number;
}

/** A snapshot of the app's tabs and of the memory their outgoing events hold (`app.stats()`). */
export interface AppStats {
  /** Live tab contexts: connected, or disconnected within their TTL. */
  tabs: number;
  /** Tabs with an open event stream. */
  connected: number;
  /** Streams whose socket refused the last write: their events queue until it drains. */
  backedUp: number;
  /**
   * Bytes held for tabs' event streams: per tab its queue plus its response's `writableLength` (written,
   * not yet taken by the kernel). `max` is the largest single tab; it stays under `queueCapBytes`, or
   * under the tab's largest single event if that alone is bigger (one event always gets through).
   */
  queuedBytes: { total: number; max: number };
  /** The per-tab cap (`AppOptions.queueCapBytes`). */
  queueCapBytes: number;
  /** Streams cut since start because their tab went over the cap (each such tab resyncs when it reconnects). */
  overflows: number;
}

export interface ListenResult {
  server: Server;
  port: number;
  url: string;
}

const SSE_PATH = "/_via/sse";
const ACTION_PREFIX = "/_via/action/";

export class App {
  readonly logger: Logger;
  readonly assets = new AssetRegistry();
  private readonly pages = new RouteTable<{ pattern: string; init: PageInit }>();
  private readonly tabs = new Map<string, Tab>();
  private readonly sessions: SessionStore;
  private readonly stylesheets: string[] = [];
  private readonly opts: Required<Omit<AppOptions, "logger" | "pubsub">>;
  readonly pubsub: PubSub | undefined;
  private readonly runtime: Promise<Asset>;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private server: Server | undefined;
  private ready = true;
  private closing: Promise<void> | undefined;
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  private overflows = 0;
  /** Tabs whose page was served but whose stream never opened, oldest first (see maxUnattachedTabs). */
  private readonly unattached = new Set<Tab>();
  private unattachedDropped = 0;

  constructor(options: AppOptions = {}) {
    this.logger = options.logger ?? createLogger();
    this.pubsub = options.pubsub;
    this.opts = {
      title: options.title ?? "via",
      lang: options.lang ?? "en",
      contextTtlMs: options.contextTtlMs ?? 120_000,
      queueCapBytes: options.queueCapBytes ?? 1024 * 1024,
      maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
      tabRateLimit: options.tabRateLimit ?? { ratePerSec: 10, burst: 20 },
      sessionRateLimit: options.sessionRateLimit ?? { ratePerSec: 30, burst: 60 },
      keepaliveMs: options.keepaliveMs ?? 15_000,
      csp: options.csp ?? DEFAULT_CSP,
      trustProxy: options.trustProxy ?? false,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 5_000,
      maxUnattachedTabs: options.maxUnattachedTabs ?? 10_000,
    };
    if (!Number.isInteger(this.opts.maxUnattachedTabs) || this.opts.maxUnattachedTabs < 1) {
      throw new RangeError(`maxUnattachedTabs must be a positive integer, got ${this.opts.maxUnattachedTabs}`);
    }
    this.sessions = new SessionStore({
      ...this.opts.sessionRateLimit,
      idleTtlMs: Math.max(this.opts.contextTtlMs, 30 * 60_000),
    });
    this.runtime = buildRuntime().then(({ code }) => this.assets.add("runtime.js", code));
    // Surface a broken runtime build at start-up rather than on the first page view.
    this.runtime.catch((err) => this.logger.error({ err }, "client runtime build failed"));
    const keepalive = comment("keepalive");
    this.keepaliveTimer = setInterval(() => {
      for (const tab of this.tabs.values()) tab.keepalive(keepalive);
    }, this.opts.keepaliveMs);
    this.keepaliveTimer.unref();
    this.handler = this.handler.bind(this);
  }

  /** Register a page. `init` runs once per tab (page load) and closes over that tab's state. */
  page(pattern: string, init: PageInit): this {
    this.pages.add(pattern, { pattern, init });
    return this;
  }

  /** Serve a stylesheet on every page (content-hashed URL, cached for a year). */
  stylesheet(name: string, css: string | Buffer): string {
    const { url } = this.assets.add(name, css, "text/css; charset=utf-8");
    this.stylesheets.push(url);
    return url;
  }

  /** Number of live tab contexts (connected or within their TTL). */
  get tabCount(): number {
    return this.tabs.size;
  }

  /**
   * Tabs, open streams and the bytes queued for them, for monitoring and drills. O(tabs): meant to be
   * polled now and then (a metrics scrape), not per event.
   */
  stats(): AppStats {
    let connected = 0;
    let backedUp = 0;
    let total = 0;
    let max = 0;
    for (const tab of this.tabs.values()) {
      if (tab.connected) connected++;
      if (tab.backedUp) backedUp++;
      const bytes = tab.pendingBytes;
      total += bytes;
      if (bytes > max) max = bytes;
    }
    return {
      tabs: this.tabs.size,
      connected,
      backedUp,
      queuedBytes: { total, max },
      queueCapBytes: this.opts.queueCapBytes,
      overflows: this.overflows,
    };
  }

  /** Resolves once the client runtime is built; `listen` awaits it. */
  async whenReady(): Promise<void> {
    await this.runtime;
  }

  // ---- HTTP ----

  /** A node:http request handler. */
  handler(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    res.on("finish", () => this.logRequest(req, res, started));
    // The event stream is a long-lived non-document response: its headers would only cost memory for
    // as long as it is open (~1.3 KiB per tab), so it gets none of the document headers.
    const url = req.url ?? "";
    if (!(url === SSE_PATH || url.startsWith(`${SSE_PATH}?`))) setSecurityHeaders(res, this.opts.csp);
    this.route(req, res).catch((err: unknown) => this.fail(req, res, err));
  }

  private logRequest(req: IncomingMessage, res: ServerResponse, started: number): void {
    this.logger.info(
      {
        method: req.method,
        path: req.url?.split("?")[0],
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      },
      "request",
    );
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let httpErr: HttpError;
    if (err instanceof HttpError) httpErr = err;
    else {
      // Only page code (init, a view) gets here: bad input is always an HttpError with a reason.
      this.logger.error({ err, url: req.url }, "request failed");
      httpErr = new HttpError(500, "internal error");
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(httpErr.status, {
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...httpErr.headers,
    });
    res.end(`${httpErr.message}\n`);
    // Drain (bounded) what the client still sends, so it sees our reply instead of a reset.
    if (!req.complete) req.resume();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      throw new HttpError(400, "malformed request URL");
    }
    const path = url.pathname;
    if (path === "/healthz") return this.plain(req, res, 200, "ok");
    if (path === "/readyz") return this.plain(req, res, this.ready ? 200 : 503, this.ready ? "ready" : "shutting down");
    if (path.startsWith(STATIC_PREFIX)) return this.serveStatic(res, method, path);
    if (path === SSE_PATH) {
      allow(method, ["GET"]);
      return this.serveStream(req, res, url);
    }
    if (path.startsWith(ACTION_PREFIX)) {
      allow(method, ["POST"]);
      return this.serveAction(req, res, path.slice(ACTION_PREFIX.length));
    }
    if (path.startsWith("/_via/")) throw new HttpError(404, "no such framework endpoint");
    allow(method, ["GET", "HEAD"]);
    return this.servePage(req, res, url);
  }

  private plain(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : `${body}\n`);
  }

  private async serveStatic(res: ServerResponse, method: string, path: string): Promise<void> {
    allow(method, ["GET", "HEAD"]);
    await this.runtime;
    const asset = this.assets.get(path);
    if (!asset) throw new HttpError(404, "no such static file");
    res.writeHead(200, {
      "Content-Type": asset.type,
      "Content-Length": asset.body.length,
      "Cache-Control": "public, max-age=31536000, immutable",
      ETag: `"${asset.hash}"`,
    });
    res.end(method === "HEAD" ? undefined : asset.body);
  }

  /** The browser's session, creating one (and setting its cookie) when the request has none. */
  private sessionFor(req: IncomingMessage, res: ServerResponse): Session {
    const existing = this.sessions.fromRequest(req);
    if (existing && readCookie(req, SESSION_COOKIE) === existing.id) return existing;
    const session = this.sessions.create();
    res.setHeader("Set-Cookie", sessionCookie(session, isHttps(req, this.opts.trustProxy)));
    return session;
  }

  private async servePage(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.ready) throw new HttpError(503, "server is shutting down");
    const match = this.pages.match(url.pathname);
    if (!match) throw new HttpError(404, "page not found");
    const runtime = await this.runtime;
    const session = this.sessionFor(req, res);
    // init runs for a HEAD too, so HEAD answers as GET would (init may refuse the route with a 4xx).
    const tab = await this.createTab(newId(), session, match.value, match.params, url.pathname + url.search);
    if (req.method === "HEAD") {
      tab.dispose("HEAD request"); // nobody will ever connect to it
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
      res.end();
      return;
    }
    const html = documentHtml({
      title: this.opts.title,
      lang: this.opts.lang,
      boot: { tab: tab.id, signals: tab.signalValues(), v: runtime.hash },
      runtimeUrl: runtime.url,
      stylesheets: this.stylesheets,
      view: tab.renderView(),
    });
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html);
  }

  private async createTab(
    id: string,
    session: Session,
    page: { pattern: string; init: PageInit },
    params: Record<string, string>,
    path: string,
  ): Promise<Tab> {
    const tab = new Tab(id, session, page.pattern, params, path, {
      queueCapBytes: this.opts.queueCapBytes,
      ttlMs: this.opts.contextTtlMs,
      rateLimit: this.opts.tabRateLimit,
      logger: this.logger,
      pubsub: this.pubsub,
      onDispose: (t) => {
        if (this.tabs.get(t.id) === t) this.tabs.delete(t.id);
        this.unattached.delete(t);
      },
      onOverflow: () => {
        this.overflows++;
      },
    });
    this.tabs.set(id, tab);
    this.unattached.add(tab);
    if (this.unattached.size > this.opts.maxUnattachedTabs) {
      const oldest = this.unattached.values().next().value!;
      // Logged at the first drop and every 1,000th, so a flood does not also flood the log.
      if (this.unattachedDropped++ % 1000 === 0) {
        this.logger.warn(
          { cap: this.opts.maxUnattachedTabs, dropped: this.unattachedDropped },
          "too many tabs that never connected: dropping the oldest",
        );
      }
      oldest.dispose("never connected, over maxUnattachedTabs");
    }
    try {
      await page.init(tab.ctx);
    } catch (err) {
      tab.dispose("init failed");
      throw err;
    }
    return tab;
  }

  private async serveStream(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.ready) throw new HttpError(503, "server is shutting down");
    const tabId = url.searchParams.get("tab");
    if (!isWellFormedId(tabId)) throw new HttpError(400, "missing or malformed tab id");
    const session = this.sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie: load the page first");
    const runtime = await this.runtime;
    let tab = this.tabs.get(tabId);
    let mode: AttachMode;
    if (tab) {
      if (tab.session !== session) throw new HttpError(403, "this tab belongs to another session");
      mode = tab.connected || url.searchParams.has("last") || req.headers["last-event-id"] ? "resync" : "first";
    } else {
      // Unknown tab: the server restarted or the context expired. Re-run the page's init for the
      // tab's route in the same session, reusing the tab id, so the page recovers without a reload.
      const path = url.searchParams.get("path") ?? "";
      const reload = () => this.endWith(res, customEvent("via-reload", [["reason", "no page for this tab"]]));
      // Only a path of this origin: "//host/x" or "/\\host" would parse as another host's URL.
      if (!/^\/(?![/\\])/.test(path)) return reload();
      let pathname: string;
      try {
        pathname = new URL(path, "http://localhost").pathname;
      } catch {
        return reload();
      }
      // A malformed percent-encoding is a client bug: match() answers it with a 400.
      const match = this.pages.match(pathname);
      if (!match) return reload();
      try {
        tab = await this.createTab(tabId, session, match.value, match.params, path);
      } catch (err) {
        // The page refused the route (e.g. a room that no longer exists): a reload shows its answer.
        if (err instanceof HttpError && err.status < 500) return reload();
        throw err;
      }
      mode = "rebootstrap";
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      // nginx and friends buffer responses by default, which would hold events back.
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    const clientVersion = url.searchParams.get("v");
    if (clientVersion && clientVersion !== runtime.hash) {
      res.end(customEvent("via-reload", [["reason", "the client runtime was updated"]]));
      return;
    }
    this.unattached.delete(tab);
    tab.attach(res, mode);
  }

  private endWith(res: ServerResponse, event: string): void {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.end(event);
  }

  private async serveAction(req: IncomingMessage, res: ServerResponse, actionId: string): Promise<void> {
    checkActionOrigin(req, this.opts.trustProxy);
    const tabId = req.headers["via-tab"];
    if (!isWellFormedId(tabId)) throw new HttpError(400, "missing or malformed Via-Tab header");
    const session = this.sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie");
    const tab = this.tabs.get(tabId);
    if (!tab) throw new HttpError(410, "unknown tab: it expired or the server restarted; reconnecting");
    if (tab.session !== session) throw new HttpError(403, "this tab belongs to another session");
    requireJsonContentType(req);
    for (const limiter of [tab.limiter, session.limiter]) {
      const verdict = limiter.take();
      if (!verdict.ok) {
        const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
        throw new HttpError(429, "too many actions: slow down", { "Retry-After": String(seconds) });
      }
    }
    const body = await readBody(req, { maxBytes: this.opts.maxBodyBytes });
    const signals = decodeActionBody(body);
    if (!/^a[0-9]{1,6}$/.test(actionId) || !tab.hasAction(actionId)) throw new HttpError(404, "unknown action");
    await tab.runAction(actionId, signals);
    res.writeHead(204, { "Cache-Control": "no-store" });
    res.end();
  }

  // ---- running ----

  /** Listen on `port` (0 = any free port). Handles SIGINT/SIGTERM with a graceful shutdown unless told not to. */
  async listen(port: number, host = "127.0.0.1", opts: { handleSignals?: boolean } = {}): Promise<ListenResult> {
    await this.runtime;
    const server = createServer(this.handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    if (opts.handleSignals ?? true) {
      for (const sig of ["SIGINT", "SIGTERM"] as const) {
        const onSignal = () => {
          this.logger.info({ signal: sig }, "shutting down");
          this.close().finally(() => process.exit(0));
        };
        process.once(sig, onSignal);
        this.signalHandlers.push([sig, onSignal]);
      }
    }
    const addr = server.address() as AddressInfo;
    const shownHost = host.includes(":") ? `[${host}]` : host;
    return { server, port: addr.port, url: `http://${shownHost}:${addr.port}` };
  }

  /**
   * Graceful shutdown: readiness goes false, every stream gets a final `via-bye` event and closes,
   * contexts are disposed, the server closes; whatever is left after the budget is cut.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.ready = false;
    for (const [sig, fn] of this.signalHandlers) process.off(sig, fn);
    clearInterval(this.keepaliveTimer);
    for (const tab of [...this.tabs.values()]) {
      tab.sayGoodbye("server shutting down");
      tab.dispose("shutdown");
    }
    this.sessions.close();
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const budget = new Promise<void>((resolve) => setTimeout(resolve, this.opts.shutdownTimeoutMs).unref());
    await Promise.race([closed, budget]);
    server.closeAllConnections();
    await closed;
  }
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method))
    throw new HttpError(405, `method ${method} not allowed here`, { Allow: methods.join(", ") });
}

export function createApp(options?: AppOptions): App {
  return new App(options);
}
