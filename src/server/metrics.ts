// The app's metrics registry, served in the Prometheus text format (prom-client). One Registry per app,
// never prom-client's global one, so two apps in one process do not clash and an app's own metrics
// (`app.metrics.registry`) sit next to the framework's.
//
// Nothing here costs per event beyond a plain increment: the gauges and most counters are read at
// scrape time from what the app already keeps (`app.stats()`, the tab registry's write counters, the
// engine's status), once per scrape however many series read them. Per request or message there is one
// histogram observation: an action's answer, a publish's ack, a feed's live message (once per subject,
// not per tab). Process metrics (memory, CPU, event loop lag, GC) are collected once per process and
// appended to every app's scrape.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../log.ts";
import type { PubSub, PubSubStatus } from "../pubsub/types.ts";
import type { AppStats } from "./app-stats.ts";
import { InstrumentedPubSub, type PublishMetrics } from "./instrumented-pubsub.ts";
import { MetricsServer } from "./metrics-server.ts";

export interface MetricsOptions {
  /** Where the metrics are served (default "/metrics"). On the app's port it answers any Host, like /healthz. */
  path?: string;
  /**
   * Serve them from a server of their own on this port (0: any free one; `app.metrics.port` says which)
   * instead of the app's port, which then has no metrics path. Started with the app, closed by `app.close()`.
   */
  port?: number;
  /** The interface that server binds (default 127.0.0.1). */
  host?: string;
  /** Also the process's memory, CPU, event loop lag, GC and handles (prom-client's defaults; default true). */
  processMetrics?: boolean;
}

/** What the metrics read from the app, at scrape time. */
export interface MetricsSource {
  stats(): AppStats;
  /** Events, and their bytes, written to event streams since start. */
  written(): { events: number; bytes: number };
}

const DEFAULT_PATH = "/metrics";

/** Seconds. An action's time includes waiting for the tab's earlier actions (they run one at a time). */
const ACTION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds. A NATS publish is retried for up to 15 s through an outage (publishRetryMs). */
const ACK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15];
/** Seconds. A feed catching up after an engine outage delivers messages minutes old. */
const FEED_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

let processRegistry: Registry | undefined;
/** One per process: two apps would otherwise each start an event loop monitor and a GC observer. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class AppMetrics implements PublishMetrics {
  /** The app's registry: register the app's own metrics here (`registers: [app.metrics.registry]`). */
  readonly registry = new Registry();
  /** The path metrics are served at, on the app's port or on their own (`port`). */
  readonly path: string;
  /** Whether the app's own port serves them (no `port` option). */
  readonly onAppPort: boolean;
  /** Resolves once the metrics' own server listens (at once without `port`); rejects if it cannot. */
  listening: Promise<void> = Promise.resolve();
  private readonly withProcess: boolean;
  /** The metrics' own server, with the `port` option. */
  private readonly ownServer: MetricsServer | undefined;
  private pubsub: InstrumentedPubSub | undefined;
  /** One `stats()` per scrape: every collect callback of one scrape runs in the same synchronous pass. */
  private snapshot: AppStats | undefined;

  private readonly actions: Counter<"status">;
  private readonly actionSeconds: Histogram<"outcome">;
  private readonly feedDelay: Histogram;
  /** @internal Read by the instrumented engine. */
  readonly publishes: Counter<"result">;
  /** @internal */
  readonly publishFailures: Counter<"error">;
  /** @internal */
  readonly ackSeconds: Histogram;

  constructor(
    options: MetricsOptions,
    private readonly source: MetricsSource,
    logger: Logger,
  ) {
    this.path = checkPath(options.path ?? DEFAULT_PATH);
    this.withProcess = options.processMetrics ?? true;
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (s: AppStats) => number) => {
      const g: Gauge = new Gauge({ name, help, registers, collect: () => g.set(read(this.stats())) });
    };
    // Counters the app keeps as plain numbers, copied at scrape time.
    const counter = (name: string, help: string, read: () => number) => {
      const c: Counter = new Counter({
        name,
        help,
        registers,
        collect: () => {
          c.reset();
          c.inc(read());
        },
      });
    };

    gauge(
      "via_tabs",
      "Live tab contexts: with an open event stream, or waiting for it within their TTL.",
      (s) => s.tabs,
    );
    gauge(
      "via_streams_open",
      "Tabs with an open event stream (their own, or a lane of a shared one).",
      (s) => s.connected,
    );
    gauge(
      "via_shared_streams",
      "Shared event streams open: one per browser whose tabs share one (the runtime's shared worker).",
      (s) => s.sharedStreams,
    );
    gauge("via_shared_stream_tabs", "Tabs attached to a shared event stream.", (s) => s.sharedTabs);
    gauge("via_tabs_detached", "Tabs whose event stream dropped, waiting for it within their TTL.", (s) => s.detached);
    gauge(
      "via_streams_backed_up",
      "Event streams whose socket refused the last write (their events queue until it drains).",
      (s) => s.backedUp,
    );
    gauge("via_sessions", "Browser sessions kept in memory (with a live tab or data).", (s) => s.sessions);
    gauge(
      "via_queued_bytes",
      "Bytes held for all event streams: queued events plus what the sockets have not handed to the kernel.",
      (s) => s.queuedBytes.total,
    );
    gauge("via_queued_bytes_max", "Bytes held for the event stream holding the most.", (s) => s.queuedBytes.max);
    gauge("via_queue_cap_bytes", "The per-tab cap of held bytes (queueCapBytes).", (s) => s.queueCapBytes);
    gauge("via_budget_bytes", "The app-wide budget of held bytes over all tabs (budgetBytes).", (s) => s.budget.bytes);
    counter(
      "via_stream_overflows_total",
      "Event streams cut because their tab went over the per-tab cap.",
      () => this.stats().overflows,
    );
    counter(
      "via_budget_cuts_total",
      "Event streams cut because all tabs together went over the app's budget.",
      () => this.stats().budget.cuts,
    );
    counter(
      "via_detached_dropped_total",
      "Detached tab contexts disposed because more than maxDetachedTabs waited.",
      () => this.stats().detachedDropped,
    );
    counter(
      "via_stream_events_total",
      "Events written to tabs' event streams (patches, signals, list items; not keepalives).",
      () => source.written().events,
    );
    counter(
      "via_stream_bytes_total",
      "Bytes of the events written to tabs' event streams.",
      () => source.written().bytes,
    );

    this.actions = new Counter({
      name: "via_actions_total",
      help: 'Action requests answered, by HTTP status ("aborted": the client went away before the answer).',
      labelNames: ["status"],
      registers,
    });
    this.actionSeconds = new Histogram({
      name: "via_action_duration_seconds",
      help: "Time from an action request to its answer (ok 2xx, refused 4xx, error 5xx, aborted).",
      labelNames: ["outcome"],
      buckets: ACTION_BUCKETS,
      registers,
    });
    this.publishes = new Counter({
      name: "via_publishes_total",
      help: "Publishes through the app's engine (c.publish, app.pubsub), by result: stored, duplicate, core, failed.",
      labelNames: ["result"],
      registers,
    });
    this.publishFailures = new Counter({
      name: "via_publish_failures_total",
      help: "Failed publishes through the app's engine, by error class.",
      labelNames: ["error"],
      registers,
    });
    this.ackSeconds = new Histogram({
      name: "via_publish_ack_seconds",
      help: "Time from a stream publish to its ack (stored durably, or found a duplicate).",
      buckets: ACK_BUCKETS,
      registers,
    });
    counter(
      "via_pubsub_deliveries_total",
      "Messages the engine handed to the app's subscriptions (a feed's one per subject, c.subscribe's per tab).",
      () => this.pubsub?.deliveries ?? 0,
    );
    const connected: Gauge<"engine"> = new Gauge({
      name: "via_pubsub_connected",
      help: "1 while the pub/sub engine reaches its server or storage, else 0.",
      labelNames: ["engine"],
      registers,
      collect: () => {
        const status = this.engineStatus();
        if (status) connected.set({ engine: this.pubsub!.kind }, status.connected ? 1 : 0);
      },
    });
    counter(
      "via_pubsub_reconnects_total",
      "Times the pub/sub engine re-established its connection (NATS; the embedded engine has none).",
      () => this.engineStatus()?.reconnects ?? 0,
    );
    this.feedDelay = new Histogram({
      name: "via_feed_delivery_delay_seconds",
      help: "Feed lag: time from the stream storing a message to this process's feed sending it to its tabs.",
      buckets: FEED_BUCKETS,
      registers,
    });

    const port = options.port;
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
      throw new RangeError(`metrics port must be an integer 0-65535, got ${port}`);
    this.ownServer =
      port === undefined
        ? undefined
        : new MetricsServer(this.path, port, options.host ?? "127.0.0.1", (req, res) => this.serve(req, res), logger);
    this.onAppPort = this.ownServer === undefined;
  }

  /** Starts the metrics' own server (with `port`); `listening` says when it is up. Called once by the app. */
  start(): void {
    if (!this.ownServer) return;
    this.ownServer.start();
    this.listening = this.ownServer.listening;
  }

  /** The metrics' own server's port (with the `port` option, once `listening` resolved). */
  get port(): number | undefined {
    return this.ownServer?.port;
  }

  private stats(): AppStats {
    if (!this.snapshot) {
      this.snapshot = this.source.stats();
      queueMicrotask(() => {
        this.snapshot = undefined;
      });
    }
    return this.snapshot;
  }

  private engineStatus(): PubSubStatus | undefined {
    return this.pubsub?.inner.status?.();
  }

  /**
   * The engine the app uses, wrapped so its publishes (count, ack latency, failures) and deliveries are
   * counted; its connection status is read at scrape time.
   */
  instrument(pubsub: PubSub): PubSub {
    this.pubsub = new InstrumentedPubSub(pubsub, this);
    return this.pubsub;
  }

  /** Count an action request and time it, when its answer is sent (or its client goes away). */
  observeAction(res: ServerResponse): void {
    const started = performance.now();
    res.once("close", () => {
      const seconds = (performance.now() - started) / 1000;
      let status: string;
      let outcome: string;
      // Over HTTP/2 an aborted response reports itself finished: it was never ended by us, though.
      if (!res.writableEnded || !res.writableFinished) {
        status = "aborted";
        outcome = "aborted";
      } else {
        status = String(res.statusCode);
        outcome = res.statusCode < 400 ? "ok" : res.statusCode < 500 ? "refused" : "error";
      }
      this.actions.inc({ status });
      this.actionSeconds.observe({ outcome }, seconds);
    });
  }

  /** A feed got a live message the stream stored at `storedAt` (ms since the epoch) and sends it to its tabs. */
  feedDelivered(storedAt: number): void {
    this.feedDelay.observe(Math.max(0, Date.now() - storedAt) / 1000);
  }

  /** The metrics in the Prometheus text format. */
  async scrape(): Promise<string> {
    const [own, proc] = await Promise.all([
      this.registry.metrics(),
      this.withProcess ? processMetrics().metrics() : undefined,
    ]);
    return proc ? `${own}\n${proc}` : own;
  }

  /** Answer a scrape (GET or HEAD; the caller checked the method). */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.scrape();
    res.writeHead(200, { "Content-Type": this.registry.contentType, "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  /** Closes the metrics' own server, if there is one. */
  async close(): Promise<void> {
    await this.ownServer?.close();
  }
}

function checkPath(path: string): string {
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(path) || path.startsWith("/_via/") || ["/healthz", "/readyz"].includes(path))
    throw new RangeError(
      `metrics path must be a path like "/metrics" (letters, digits, "-._~/"), not under /_via/ nor /healthz or /readyz, got ${JSON.stringify(path)}`,
    );
  return path;
}
