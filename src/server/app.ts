// The application: what an app registers (pages, stylesheets, channels, feeds), the request routing
// (health, metrics, static files, then the framework's endpoints: pages and actions in tab-requests.ts,
// event streams in tab-streams.ts), and its life (listen, graceful shutdown). `app.handler` is a plain
// node:http handler, so it mounts in Express/Fastify/Hono. Its options are in app-options.ts, what it
// reports of itself in app-stats.ts.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { buildRuntime } from "../client/build.ts";
import { createLogger, type Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import {
  type AppOptions,
  type ListenResult,
  type PageInit,
  type ResolvedAppOptions,
  resolveAppOptions,
  type ServerLimits,
} from "./app-options.ts";
import { type AppStats, collectStats } from "./app-stats.ts";
import { AssetRegistry, STATIC_PREFIX } from "./assets.ts";
import { Channel, type ChannelOptions } from "./channel.ts";
import { clientAddress } from "./client-address.ts";
import { ClientLimits } from "./client-limits.ts";
import { Feed, type FeedOptions } from "./feed.ts";
import { allowMethods, answerError, HttpError } from "./http-error.ts";
import { type AppServer, createAppServer, DEFAULT_SERVER_LIMITS, listenOn, type TlsOptions } from "./listen.ts";
import { AppMetrics } from "./metrics.ts";
import { RouteTable } from "./routes.ts";
import { randomSecret, secretFromEngine, secretFromOption } from "./secret.ts";
import { checkSingleHost, HostAllowList, setSecurityHeaders } from "./security.ts";
import { SessionStore } from "./session.ts";
import { resolveSessionOptions } from "./session-store.ts";
import { comment } from "./sse/encoder.ts";
import { TabIds } from "./tab-id.ts";
import { TabRequests } from "./tab-requests.ts";
import { MUX_PATH, type PageEntry, SSE_PATH, TabStreams } from "./tab-streams.ts";
import { TabRegistry } from "./tabs.ts";

export type {
  AppOptions,
  ClientLimitOptions,
  ListenResult,
  PageInit,
  RateLimit,
  ServerLimits,
} from "./app-options.ts";
export type { AppStats } from "./app-stats.ts";

const ACTION_PREFIX = "/_via/action/";

export class App {
  readonly logger: Logger;
  readonly assets = new AssetRegistry();
  private readonly pages = new RouteTable<PageEntry>();
  private readonly tabs: TabRegistry;
  // Channels of any member data type; `channel<D>()` gives each caller its own view of the type.
  private readonly channels = new Map<string, Channel<unknown>>();
  private sessions: SessionStore | undefined;
  private readonly stylesheets: string[] = [];
  private readonly opts: ResolvedAppOptions;
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
  /** The browser runtime's URL, its shared worker's, and their version (a page with another reloads). */
  private readonly runtime: Promise<{ url: string; workerUrl: string; version: string }>;
  /** The endpoints that carry tabs' events. */
  private readonly streams: TabStreams;
  /** Page loads and actions. */
  private readonly requests: TabRequests;
  /** What the app secret signs: tab ids and session cookies. */
  private readonly keys: Promise<{ tabIds: TabIds; sessions: SessionStore }>;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private server: AppServer | undefined;
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
    this.opts = resolveAppOptions(options);
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
    this.runtime = buildRuntime().then(({ code, worker }) => {
      const page = this.assets.add("runtime.js", code);
      const shared = this.assets.add("worker.js", worker);
      // One version for both: a page and the worker it starts come from the same build.
      return { url: page.url, workerUrl: shared.url, version: `${page.hash}${shared.hash.slice(0, 4)}` };
    });
    // Surface a broken runtime build at start-up rather than on the first page view.
    this.runtime.catch((err) => this.logger.error({ err }, "client runtime build failed"));
    // Checked now: a bad option fails createApp, not the first request.
    const sessionOptions = resolveSessionOptions(options.sessions, options.pubsub !== undefined);
    this.keys = this.loadSecret(options.secret, options.pubsub).then(async (secret) => {
      // The engine itself, like the secret: session reads and writes are the framework's, not app traffic.
      this.sessions = await SessionStore.open(secret, {
        rateLimit: this.opts.sessionRateLimit,
        idleTtlMs: Math.max(this.opts.contextTtlMs, 30 * 60_000),
        sessions: sessionOptions,
        pubsub: options.pubsub,
        logger: this.logger,
      });
      return { tabIds: new TabIds(secret, this.opts.tabIdMaxAgeMs), sessions: this.sessions };
    });
    this.keys.catch((err) => this.logger.error({ err }, "could not load the app secret or open the session store"));
    const keepalive = Buffer.from(comment("keepalive"));
    this.keepaliveTimer = setInterval(() => {
      for (const tab of this.tabs.values()) tab.keepalive(keepalive);
      this.streams.muxes.keepalive();
    }, this.opts.keepaliveMs);
    this.keepaliveTimer.unref();
    const isReady = () => this.ready;
    const host = {
      get ready() {
        return isReady();
      },
      opts: this.opts,
      serverLimits: this.serverLimits,
      tabs: this.tabs,
      pages: this.pages,
      limits: this.limits,
      keys: this.keys,
      runtime: this.runtime,
      stylesheets: this.stylesheets,
      clientOf: (req: IncomingMessage) => this.clientOf(req),
    };
    this.streams = new TabStreams(host);
    this.requests = new TabRequests(host);
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
    return collectStats({
      tabs: this.tabs,
      muxes: this.streams.muxes,
      sessions: this.sessions,
      queueCapBytes: this.opts.queueCapBytes,
      budgetBytes: this.opts.budgetBytes,
    });
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
    if (!(url.startsWith(SSE_PATH) || url.startsWith(MUX_PATH))) setSecurityHeaders(res, this.opts.csp);
    this.route(req, res).catch((err: unknown) => answerError(req, res, err, this.logger));
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
      allowMethods(method, ["GET", "HEAD"]);
      return this.metrics.serve(req, res);
    }
    // Health checks name whatever address the prober uses and reveal nothing; everything else is ours
    // only under a name we answer to.
    this.hosts?.check(req);
    if (path.startsWith(STATIC_PREFIX)) return this.serveStatic(res, method, path);
    const streamed = this.streams.serve(req, res, url);
    if (streamed) return streamed;
    if (path.startsWith(ACTION_PREFIX)) {
      allowMethods(method, ["POST"]);
      this.metrics?.observeAction(res);
      return this.requests.serveAction(req, res, path.slice(ACTION_PREFIX.length));
    }
    if (path.startsWith("/_via/")) throw new HttpError(404, "no such framework endpoint");
    allowMethods(method, ["GET", "HEAD"]);
    return this.requests.servePage(req, res, url);
  }

  private plain(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : `${body}\n`);
  }

  private async serveStatic(res: ServerResponse, method: string, path: string): Promise<void> {
    allowMethods(method, ["GET", "HEAD"]);
    // The runtime's files are registered once its build is done.
    await this.runtime;
    this.assets.serve(res, method, path);
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

  // ---- running ----

  /**
   * Listen on `port` (0 = any free port). Handles SIGINT/SIGTERM with a graceful shutdown unless told not
   * to. With `tls` it serves HTTPS: HTTP/2 to browsers (all of a browser's tabs share one connection,
   * where HTTP/1.1 allows a browser 6 per origin, each held by an open event stream) and HTTP/1.1 to
   * clients without HTTP/2.
   */
  async listen(
    port: number,
    host = "127.0.0.1",
    opts: { handleSignals?: boolean; tls?: TlsOptions } = {},
  ): Promise<ListenResult> {
    await this.whenReady();
    const limits = this.serverLimits;
    const served = createAppServer(this.handler, limits, opts.tls);
    const server = served.server;
    let warnedAt = 0;
    server.on("drop", () => {
      // One line per second at most while connections are being refused.
      if (performance.now() - warnedAt < 1_000) return;
      warnedAt = performance.now();
      this.logger.warn({ maxConnections: limits.maxConnections }, "connection cap reached: refusing connections");
    });
    // The name the server is started under is one it answers to.
    this.hosts?.add([host]);
    this.server = served;
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
    return { server, port: addr.port, url: `${opts.tls ? "https" : "http"}://${shownHost}:${addr.port}` };
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
    this.streams.muxes.endAll();
    this.tabs.disposeAll("shutdown");
    await this.sessions?.close(this.opts.shutdownTimeoutMs);
    await this.metrics?.close();
    const server = this.server;
    if (!server) return;
    // Idle connections close now, HTTP/2 ones once their streams ended (which the goodbyes did).
    const closed = server.close();
    const budget = new Promise<void>((resolve) => setTimeout(resolve, this.opts.shutdownTimeoutMs).unref());
    await Promise.race([closed, budget]);
    server.destroyAll();
    await closed;
  }
}

export function createApp(options?: AppOptions): App {
  return new App(options);
}
