// What an app is configured with (`createApp(options)`) and what `app.listen()` answers. The limits of
// the server `listen` makes are in listen.ts; what `app.stats()` reports, in app-stats.ts.
import type { Server } from "node:http";
import type { Http2SecureServer } from "node:http2";
import type { Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import type { ClientLimitOptions } from "./client-limits.ts";
import type { Context } from "./context.ts";
import type { ServerLimits } from "./listen.ts";
import type { MetricsOptions } from "./metrics.ts";
import type { RateLimit } from "./rate-limit.ts";
import { DEFAULT_CSP } from "./security.ts";
import type { SessionOptions } from "./session-store.ts";

export type PageInit = (c: Context) => void | Promise<void>;

export type { ClientLimitOptions } from "./client-limits.ts";
export type { ServerLimits } from "./listen.ts";
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
  /**
   * A tab on a stream of its own (a browser without SharedWorker) that stays hidden this long releases
   * the stream and stays present ("parked") until it is shown or closed (docs/PROTOCOL.md §6). `false`:
   * never. Default 30 s.
   */
  parkHiddenTabsAfterMs?: number | false;
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
   * Where `c.session` data lives: `{ store: "engine" }` (the default with `pubsub`) keeps it in the
   * engine for every instance and across restarts, for `ttlMs` after its last write (default 30 days);
   * `{ store: "memory" }` (the default without) in this process only.
   */
  sessions?: SessionOptions;
  /**
   * Prometheus metrics (`app.metrics`): `true` serves them at /metrics on the app's port (answering any
   * Host, like /healthz); `{ path, port, host }` moves them, `port` to a server of their own. Default off.
   */
  metrics?: boolean | MetricsOptions;
}

export interface ListenResult {
  /** A node:http server, or with `tls` a node:http2 secure server (HTTP/2 and HTTP/1.1). */
  server: Server | Http2SecureServer;
  port: number;
  url: string;
}

/** The options an app runs with: every plain setting with its default filled in. */
export type ResolvedAppOptions = Required<
  Omit<AppOptions, "logger" | "pubsub" | "secret" | "clientLimits" | "allowedHosts" | "server" | "metrics" | "sessions">
>;

/** Fills in the defaults; a bad value throws here, at `createApp`, not on the first request. */
export function resolveAppOptions(options: AppOptions): ResolvedAppOptions {
  const opts: ResolvedAppOptions = {
    title: options.title ?? "via",
    lang: options.lang ?? "en",
    contextTtlMs: options.contextTtlMs ?? 120_000,
    queueCapBytes: options.queueCapBytes ?? 1024 * 1024,
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    tabRateLimit: options.tabRateLimit ?? { ratePerSec: 10, burst: 20 },
    sessionRateLimit: options.sessionRateLimit ?? { ratePerSec: 30, burst: 60 },
    keepaliveMs: options.keepaliveMs ?? 15_000,
    parkHiddenTabsAfterMs: options.parkHiddenTabsAfterMs ?? 30_000,
    csp: options.csp ?? DEFAULT_CSP,
    trustProxy: options.trustProxy ?? false,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 5_000,
    maxDetachedTabs: options.maxDetachedTabs ?? 10_000,
    budgetBytes: options.budgetBytes ?? 128 * 1024 * 1024,
    tabIdMaxAgeMs: options.tabIdMaxAgeMs ?? 7 * 24 * 3600_000,
  };
  for (const key of ["maxDetachedTabs", "budgetBytes", "queueCapBytes", "tabIdMaxAgeMs"] as const) {
    const value = opts[key];
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer, got ${value}`);
  }
  const park = opts.parkHiddenTabsAfterMs;
  if (park !== false && (!Number.isInteger(park) || park < 1)) {
    throw new RangeError(`parkHiddenTabsAfterMs must be a positive integer or false, got ${park}`);
  }
  return opts;
}
