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
import { Channel, type ChannelOptions } from "./channel.ts";
import { clientAddress } from "./client-address.ts";
import { type ClientLimitOptions, ClientLimits } from "./client-limits.ts";
import type { Context } from "./context.ts";
import { Feed, type FeedOptions } from "./feed.ts";
import { documentHtml } from "./html.ts";
import { HttpError } from "./http-error.ts";
import { listenOn } from "./listen.ts";
import { AppMetrics, type MetricsOptions } from "./metrics.ts";
import { type RateLimit, tooManyRequests } from "./rate-limit.ts";
import { RouteTable } from "./routes.ts";
import { randomSecret, secretFromEngine, secretFromOption } from "./secret.ts";
import {
  checkActionOrigin,
  checkSameOrigin,
  checkSingleHost,
  DEFAULT_CSP,
  HostAllowList,
  isHttps,
  setSecurityHeaders,
} from "./security.ts";
import { type Session, SessionStore } from "./session.ts";
import { decodeActionRequest } from "./signals-codec.ts";
import { comment, customEvent } from "./sse/encoder.ts";
import { EVENT_STREAM_HEADERS, EventSink } from "./sse/sink.ts";
import { parseClientStreams } from "./stream.ts";
import { ACTION_ID, type ClientReport, Tab } from "./tab.ts";
import { isWellFormedTabId, TabIds } from "./tab-id.ts";
import { TabRegistry } from "./tabs.ts";

export type PageInit = (c: Context) => void | Promise<void>;

export type { ClientLimitOptions } from "./client-limits.ts";
export type { RateLimit } from "./rate-limit.ts";

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
  /**
   * Behind your own reverse proxy only: trust X-Forwarded-Proto (the Secure cookie flag, origin checks)
   * and the last X-Forwarded-For entry (the client address that per-client limits count). Without it,
   * every client behind the proxy counts as the proxy's address.
   */
  trustProxy?: boolean;
  /**
   * Limits per client address (see `ClientLimitOptions` for the defaults), beside the per-session and
   * per-tab ones; `false` turns them off (a load test from one machine).
   */
  clientLimits?: ClientLimitOptions | false;
  /**
   * Host names (without port) the app answers to; ".example.com" allows its subdomains. Other Host
   * headers get a 403, which stops DNS rebinding. Default: localhost, this machine's addresses and
   * name, and the host `listen` binds. `"any"` turns the check off.
   */
  allowedHosts?: readonly string[] | "any";
  /** Limits of the server `listen` creates (see `ServerLimits`). */
  server?: ServerLimits;
  /** Graceful shutdown budget (default 5 s). */
  shutdownTimeoutMs?: number;
  /**
   * Most tabs whose stream dropped and whose context waits for it (the TTL) at a time (default 10,000);
   * past it the oldest is disposed. Safe for a real tab: when it reconnects, it re-bootstraps.
   */
  maxDetachedTabs?: number;
  /**
   * What all tabs' outgoing events may hold together, queues and socket buffers (default 128 MiB). Over
   * it the streams holding the most are cut; their tabs re-bootstrap when they reconnect.
   */
  budgetBytes?: number;
  /**
   * Signs tab ids (at least 32 bytes). Every instance behind one load balancer needs the same one, and
   * it must survive restarts for open tabs to re-bootstrap. Default: kept in the pub/sub engine when
   * there is one (created by the first instance), else random per process (tabs reload after a restart).
   */
  secret?: string | Buffer;
  /** How long a page's tab id can start a context after the page was served (default 7 days). */
  tabIdMaxAgeMs?: number;
  /**
   * Prometheus metrics (`app.metrics`): `true` serves them at /metrics on the app's port (answering any
   * Host, like /healthz); `{ path, port, host }` moves them, `port` to a server of their own. Default off.
   */
  metrics?: boolean | MetricsOptions;
}

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
}

const DEFAULT_SERVER_LIMITS: Required<ServerLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 20_000,
};

/** A snapshot of the app's tabs and of the memory their outgoing events hold (`app.stats()`). */
export interface AppStats {
  /** Live tab contexts: connected, or disconnected within their TTL. (A page load that never opened its stream is none.) */
  tabs: number;
  /** Tabs with an open event stream. */
  connected: number;
  /**
   * Browser sessions kept in memory: those with a live tab or with data set. A page load, or a refused
   * request, keeps none.
   */
  sessions: number;
  /** Tabs whose stream dropped, waiting for it within their TTL. */
  detached: number;
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
  /** The app-wide budget over all tabs' held bytes, and the streams cut since start for going over it. */
  budget: { bytes: number; cuts: number };
  /** Detached tabs disposed since start because there were more than `maxDetachedTabs`. */
  detachedDropped: number;
}

export interface ListenResult {
  server: Server;
  port: number;
  url: string;
}

const SSE_PATH = "/_via/sse";
const ACTION_PREFIX = "/_via/action/";

type PageEntry = { pattern: string; init: PageInit };

export class App {
  readonly logger: Logger;
  readonly assets = new AssetRegistry();
  private readonly pages = new RouteTable<PageEntry>();
  private readonly tabs: TabRegistry;
  /** Tabs whose context is being built for a stream right now (a second stream for one waits for it). */
  private readonly starting = new Map<string, Promise<Tab | undefined>>();
  // Channels of any member data type; `channel<D>()` gives each caller its own view of the type.
  private readonly channels = new Map<string, Channel<unknown>>();
  private sessions: SessionStore | undefined;
  private readonly stylesheets: string[] = [];
  private readonly opts: Required<
    Omit<AppOptions, "logger" | "pubsub" | "secret" | "clientLimits" | "allowedHosts" | "server" | "metrics">
  >;
  private readonly serverLimits: Required<ServerLimits>;
  /** Per-address limits; undefined when turned off. */
  private readonly limits: ClientLimits | undefined;
  /** Undefined when any Host is allowed. */
  private readonly hosts: HostAllowList | undefined;
  private warnedForwardedFor = false;
  /**
   * The engine of `options.pubsub`; with metrics on, a wrapper of it that counts publishes and
   * deliveries (use it rather than the engine itself for them to count).
   */
  readonly pubsub: PubSub | undefined;
  /** The app's metrics when `metrics` is on: `app.metrics.registry` takes the app's own prom-client metrics. */
  readonly metrics: AppMetrics | undefined;
  private readonly runtime: Promise<Asset>;
  /** What the app secret signs: tab ids and session cookies. */
  private readonly keys: Promise<{ tabIds: TabIds; sessions: SessionStore }>;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private server: Server | undefined;
  private ready = true;
  private closing: Promise<void> | undefined;
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];

  constructor(options: AppOptions = {}) {
    this.logger = options.logger ?? createLogger();
    this.metrics = options.metrics
      ? new AppMetrics(
          options.metrics === true ? {} : options.metrics,
          {
            stats: () => this.stats(),
            written: () => ({ events: this.tabs.eventsWritten, bytes: this.tabs.bytesWritten }),
          },
          this.logger,
        )
      : undefined;
    this.pubsub = options.pubsub && this.metrics ? this.metrics.instrument(options.pubsub) : options.pubsub;
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
      maxDetachedTabs: options.maxDetachedTabs ?? 10_000,
      budgetBytes: options.budgetBytes ?? 128 * 1024 * 1024,
      tabIdMaxAgeMs: options.tabIdMaxAgeMs ?? 7 * 24 * 3600_000,
    };
    for (const key of ["maxDetachedTabs", "budgetBytes", "queueCapBytes", "tabIdMaxAgeMs"] as const) {
      const value = this.opts[key];
      if (!Number.isInteger(value) || value < 1)
        throw new RangeError(`${key} must be a positive integer, got ${value}`);
    }
    this.tabs = new TabRegistry(
      {
        queueCapBytes: this.opts.queueCapBytes,
        ttlMs: this.opts.contextTtlMs,
        rateLimit: this.opts.tabRateLimit,
        maxDetachedTabs: this.opts.maxDetachedTabs,
        budgetBytes: this.opts.budgetBytes,
      },
      this.logger,
      this.pubsub,
    );
    this.serverLimits = { ...DEFAULT_SERVER_LIMITS, ...options.server };
    this.limits = options.clientLimits === false ? undefined : new ClientLimits(options.clientLimits);
    this.hosts =
      options.allowedHosts === "any" ? undefined : new HostAllowList(options.allowedHosts ?? HostAllowList.local());
    this.runtime = buildRuntime().then(({ code }) => this.assets.add("runtime.js", code));
    // Surface a broken runtime build at start-up rather than on the first page view.
    this.runtime.catch((err) => this.logger.error({ err }, "client runtime build failed"));
    this.keys = this.loadSecret(options.secret, options.pubsub).then((secret) => {
      this.sessions = new SessionStore(secret, {
        rateLimit: this.opts.sessionRateLimit,
        idleTtlMs: Math.max(this.opts.contextTtlMs, 30 * 60_000),
      });
      return { tabIds: new TabIds(secret, this.opts.tabIdMaxAgeMs), sessions: this.sessions };
    });
    this.keys.catch((err) => this.logger.error({ err }, "could not load the app secret"));
    const keepalive = Buffer.from(comment("keepalive"));
    this.keepaliveTimer = setInterval(() => {
      for (const tab of this.tabs.values()) tab.keepalive(keepalive);
    }, this.opts.keepaliveMs);
    this.keepaliveTimer.unref();
    this.handler = this.handler.bind(this);
    // Last, so a constructor that throws leaves no server behind.
    this.metrics?.start();
    this.metrics?.listening.catch((err) => this.logger.error({ err }, "the metrics server could not listen"));
  }

  /** The secret from the option, else from `engine` (not the app's metered one: no app traffic). */
  private async loadSecret(secret: string | Buffer | undefined, engine: PubSub | undefined): Promise<Buffer> {
    if (secret !== undefined) return secretFromOption(secret);
    if (engine) return secretFromEngine(engine);
    this.logger.info("no app secret and no pub/sub engine: tab ids are signed with a per-process secret");
    return randomSecret();
  }

  /** Register a page. `init` runs to render the page, and again when the tab's event stream attaches. */
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

  /**
   * The channel `name`: a group of live tabs that get the same patches, each rendered and encoded once
   * (a room's roster), and that knows which of its members are present. It exists while it has
   * members; `options` apply when this call creates it. `join` adds a tab until the tab is disposed.
   */
  channel<D = unknown>(name: string, options?: ChannelOptions<D>): Channel<D> {
    let channel = this.channels.get(name) as Channel<D> | undefined;
    if (!channel) {
      const created: Channel<D> = new Channel<D>(
        name,
        (empty) => {
          if (this.channels.get(name) === (empty as Channel<unknown>)) this.channels.delete(name);
        },
        options,
      );
      this.channels.set(name, created as Channel<unknown>);
      channel = created;
    }
    return channel;
  }

  /**
   * A feed: stored pub/sub messages shown as streamed lists, decoded, rendered and encoded once per
   * message (and variant) for every tab that joined its subject. Declare it once per app.
   */
  feed<T, M = undefined>(options: FeedOptions<T, M>): Feed<T, M> {
    return new Feed<T, M>(this, options);
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
      sessions: this.sessions?.size ?? 0,
      detached: this.tabs.detachedCount,
      backedUp,
      queuedBytes: { total, max },
      queueCapBytes: this.opts.queueCapBytes,
      overflows: this.tabs.overflows,
      budget: { bytes: this.opts.budgetBytes, cuts: this.tabs.budgetCuts },
      detachedDropped: this.tabs.detachedDropped,
    };
  }

  /** Resolves once the client runtime is built and the secret loaded; `listen` awaits it. */
  async whenReady(): Promise<void> {
    await Promise.all([this.runtime, this.keys, this.metrics?.listening]);
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
    checkSingleHost(req);
    const path = url.pathname;
    if (path === "/healthz") return this.plain(req, res, 200, "ok");
    if (path === "/readyz") return this.plain(req, res, this.ready ? 200 : 503, this.ready ? "ready" : "shutting down");
    // Like health checks, a scraper names whatever address it found (a pod IP): counts, no user data.
    if (this.metrics?.onAppPort && path === this.metrics.path) {
      allow(method, ["GET", "HEAD"]);
      return this.metrics.serve(req, res);
    }
    // Health checks name whatever address the prober uses and reveal nothing; everything else is ours
    // only under a name we answer to.
    this.hosts?.check(req);
    if (path.startsWith(STATIC_PREFIX)) return this.serveStatic(res, method, path);
    if (path === SSE_PATH) {
      allow(method, ["GET"]);
      return this.serveStream(req, res, url);
    }
    if (path.startsWith(ACTION_PREFIX)) {
      allow(method, ["POST"]);
      this.metrics?.observeAction(res);
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

  /** The key per-client limits count this request under (and what `c.clientAddress` says). */
  private clientOf(req: IncomingMessage): string {
    if (!this.opts.trustProxy && !this.warnedForwardedFor && req.headers["x-forwarded-for"] !== undefined) {
      this.warnedForwardedFor = true;
      this.logger.warn(
        "requests carry X-Forwarded-For but trustProxy is off: per-client limits count the proxy's address for every client behind it",
      );
    }
    return clientAddress(req, this.opts.trustProxy);
  }

  /**
   * The browser's session: the one its cookie proves, or a fresh one (and its cookie) when the request
   * has no cookie this server signed. Fresh sessions count against the address's limit.
   */
  private sessionFor(req: IncomingMessage, res: ServerResponse, sessions: SessionStore, client: string): Session {
    const existing = sessions.fromRequest(req);
    if (existing) return existing;
    this.limits?.newSession(client);
    const session = sessions.create();
    res.setHeader("Set-Cookie", sessions.cookie(session, isHttps(req, this.opts.trustProxy)));
    return session;
  }

  /**
   * A page: `init` renders it in a static context that is thrown away with the response, so a page
   * load that never opens its stream costs the server nothing after it was sent.
   */
  private async servePage(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.ready) throw new HttpError(503, "server is shutting down");
    const client = this.clientOf(req);
    this.limits?.pageLoad(client);
    const match = this.pages.match(url.pathname);
    if (!match) throw new HttpError(404, "page not found");
    const [runtime, { tabIds, sessions }] = await Promise.all([this.runtime, this.keys]);
    const session = this.sessionFor(req, res, sessions, client);
    const tab = new Tab(tabIds.issue(session.id), session, false, match.params, url.pathname + url.search, this.tabs);
    tab.clientAddress = client;
    let html: string | undefined;
    try {
      // init runs for a HEAD too, so HEAD answers as GET would (init may refuse the route with a 4xx).
      await match.value.init(tab.ctx);
      if (req.method !== "HEAD") {
        html = documentHtml({
          title: this.opts.title,
          lang: this.opts.lang,
          boot: { tab: tab.id, signals: tab.signalValues(), v: runtime.hash },
          runtimeUrl: runtime.url,
          stylesheets: this.stylesheets,
          view: tab.pageView(),
        });
      }
    } finally {
      tab.dispose("page rendered");
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html);
  }

  /**
   * The event stream. A tab id names a live context, or (first attach, after the TTL, after a restart)
   * is verified and gets a new live context built from the tab's route: `init` runs again in the same
   * session. An id the server did not issue to this session gets a 4xx and allocates nothing.
   */
  private async serveStream(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.ready) throw new HttpError(503, "server is shutting down");
    checkSameOrigin(req, this.opts.trustProxy, "event stream");
    const tabId = url.searchParams.get("tab");
    if (!isWellFormedTabId(tabId)) throw new HttpError(400, "missing or malformed tab id");
    const [runtime, { tabIds, sessions }] = await Promise.all([this.runtime, this.keys]);
    let session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued: load the page first");
    let tab = this.tabs.get(tabId);
    if (tab && tab.session.id !== session.id) throw new HttpError(403, "this tab belongs to another session");
    if (!tab) {
      const verdict = tabIds.verify(tabId, session.id, { fresh: true });
      if (!verdict.ok) throw new HttpError(verdict.status, verdict.reason);
    }
    // The runtime asks this (same URL plus probe=1) after a stream failed to open, to learn whether it
    // was refused: the same checks, no stream, nothing built.
    if (url.searchParams.get("probe") === "1") {
      res.writeHead(204, { "Cache-Control": "no-store" });
      res.end();
      return;
    }
    const clientVersion = url.searchParams.get("v");
    if (clientVersion && clientVersion !== runtime.hash) {
      return this.endWith(res, customEvent("via-reload", [["reason", "the client runtime was updated"]]));
    }
    const report: ClientReport = {
      viewHash: url.searchParams.get("h") ?? undefined,
      streams: parseClientStreams(url.searchParams.get("streams")),
    };
    const client = this.clientOf(req);
    const release = this.limits?.openStream(client);
    if (release) res.once("close", release);
    let fresh = false;
    if (!tab) {
      // Every check passed: from here on the session is worth keeping (its live tab holds it).
      session = sessions.remember(session);
      const built = await this.startTab(tabId, session, url.searchParams.get("path") ?? "", report);
      if (built === "reload") {
        return this.endWith(res, customEvent("via-reload", [["reason", "no page for this tab"]]));
      }
      if (!built) throw new HttpError(503, "the tab could not start; retry");
      tab = built;
      fresh = true;
    }
    const sink = EventSink.open(res, this.tabs);
    if (!sink || tab.disposed) {
      if (fresh && !tab.disposed) tab.dispose("stream closed while the tab started");
      return;
    }
    tab.clientAddress = client;
    tab.attach(sink, report, fresh);
  }

  /**
   * Builds the live context of a tab from its route. One at a time per tab id: a second stream request
   * for the same tab while the first builds waits for it instead of building another context.
   */
  private async startTab(
    tabId: string,
    session: Session,
    path: string,
    report: ClientReport,
  ): Promise<Tab | "reload" | undefined> {
    const pending = this.starting.get(tabId);
    if (pending) {
      const tab = await pending;
      return tab && !tab.disposed ? tab : undefined;
    }
    // Only a path of this origin: "//host/x" or "/\\host" would parse as another host's URL.
    if (!/^\/(?![/\\])/.test(path)) return "reload";
    let target: URL;
    try {
      target = new URL(path, "http://localhost");
    } catch {
      return "reload";
    }
    // A malformed percent-encoding is a client bug: match() answers it with a 400.
    const match = this.pages.match(target.pathname);
    if (!match) return "reload";
    const tab = new Tab(tabId, session, true, match.params, target.pathname + target.search, this.tabs);
    tab.report = report;
    this.tabs.add(tab);
    const built = (async () => {
      try {
        await match.value.init(tab.ctx);
        return tab;
      } catch (err) {
        tab.dispose("init failed");
        throw err;
      }
    })();
    this.starting.set(
      tabId,
      built.catch(() => undefined),
    );
    try {
      return await built;
    } catch (err) {
      // The page refused the route (e.g. a room that no longer exists): a reload shows its answer.
      if (err instanceof HttpError && err.status < 500) return "reload";
      throw err;
    } finally {
      this.starting.delete(tabId);
    }
  }

  private endWith(res: ServerResponse, event: string): void {
    res.writeHead(200, EVENT_STREAM_HEADERS);
    res.end(event);
  }

  private async serveAction(req: IncomingMessage, res: ServerResponse, actionId: string): Promise<void> {
    checkActionOrigin(req, this.opts.trustProxy);
    const tabId = req.headers["via-tab"];
    if (!isWellFormedTabId(tabId)) throw new HttpError(400, "missing or malformed Via-Tab header");
    const { tabIds, sessions } = await this.keys;
    const session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued");
    const tab = this.tabs.get(tabId);
    if (!tab) {
      const verdict = tabIds.verify(tabId, session.id, { fresh: false });
      if (!verdict.ok) throw new HttpError(verdict.status, verdict.reason);
      throw new HttpError(410, "unknown tab: it expired or the server restarted; reconnecting");
    }
    if (tab.session.id !== session.id) throw new HttpError(403, "this tab belongs to another session");
    requireJsonContentType(req);
    const client = this.clientOf(req);
    this.limits?.action(client);
    for (const limiter of [tab.limiter, tab.session.limiter]) {
      const verdict = limiter.take();
      if (!verdict.ok)
        throw tooManyRequests("too many actions: slow down (try again in {seconds} s)", verdict.retryAfterMs);
    }
    const body = await readBody(req, {
      maxBytes: this.opts.maxBodyBytes,
      timeoutMs: this.serverLimits.requestTimeoutMs,
    });
    const { signals, cursor } = decodeActionRequest(body);
    if (!ACTION_ID.test(actionId) || !tab.hasAction(actionId)) throw new HttpError(404, "unknown action");
    tab.clientAddress = client;
    await tab.runAction(actionId, signals, cursor);
    res.writeHead(204, { "Cache-Control": "no-store" });
    res.end();
  }

  // ---- running ----

  /** Listen on `port` (0 = any free port). Handles SIGINT/SIGTERM with a graceful shutdown unless told not to. */
  async listen(port: number, host = "127.0.0.1", opts: { handleSignals?: boolean } = {}): Promise<ListenResult> {
    await this.whenReady();
    const limits = this.serverLimits;
    const server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Node checks the two timeouts above on this interval (30 s by default, which would let a slow
        // client hold a connection for up to 40 s).
        connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
      },
      this.handler,
    );
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    server.maxConnections = limits.maxConnections;
    let warnedAt = 0;
    server.on("drop", () => {
      // One line per second at most while connections are being refused.
      if (performance.now() - warnedAt < 1_000) return;
      warnedAt = performance.now();
      this.logger.warn({ maxConnections: limits.maxConnections }, "connection cap reached: refusing connections");
    });
    // The name the server is started under is one it answers to.
    this.hosts?.add([host]);
    this.server = server;
    await listenOn(server, port, host);
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
    for (const tab of [...this.tabs.values()]) tab.sayGoodbye("server shutting down");
    this.tabs.disposeAll("shutdown");
    this.sessions?.close();
    await this.metrics?.close();
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
