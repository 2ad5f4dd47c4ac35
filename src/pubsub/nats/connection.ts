// The NATS engine's link to the server: connecting (never giving up on reconnects), the JetStream clients
// every part of the engine shares, the connection's status (what `status()` reports, and the reconnects
// that restart the feeds), JetStream's stream-leader advisories, and closing. Whether the engine is closed
// lives here too, since every part checks it before it talks to the server.
//
// The bell (retry.ts) rings on every reconnect and every stream-leader election of a known stream:
// whatever waits for an answer that will not come, or for its next retry, tries again at once.
import { readFileSync } from "node:fs";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { type Logger, silentLogger } from "../../log.ts";
import { assertOpen } from "../contract.ts";
import type { PubSubStatus } from "../types.ts";
import type { FeedClients } from "./feed.ts";
import { ConsumerOutage } from "./reader.ts";
import { Bell, RECONNECT, retrying, sleep } from "./retry.ts";

export interface NatsEngineOptions {
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  credsFile?: string;
  tls?: object;
  name?: string;
  logger?: Logger;
  /**
   * Total time a stream publish is retried (same msg id) before PublishTimeoutError. Default 15 s: a
   * stream leader election after a node dies took 5.1-9.4 s here (docs/reference/nats-facts.md §3), plus reconnect time.
   */
  publishRetryMs?: number;
  /** Keep retrying the very first connect instead of failing at once. Default false: a bad URL fails startup loudly. */
  waitOnFirstConnect?: boolean;
}

/**
 * The engine's API requests (publish, stream management, reads): short, since a request during a
 * cluster failover may get no answer at all, and a retry gets through sooner than one long wait
 * (consumer create: 5-8 s with 1 s tries, ~20 s with the 5 s default, measured on the 3-node cluster).
 */
const JS_API_TIMEOUT_MS = 2_000;
/** The feeds' API requests (stream info, consumer create): shorter still, since the feeds retry forever. */
const FEED_API_TIMEOUT_MS = 1_000;
/** JetStream announces each stream leader it elects here (the last token is the stream). */
const LEADER_ELECTED = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*";
/** How long close() waits for the server before it lets go (an outage must not hang a shutdown). */
const CLOSE_WAIT_MS = 2_000;

/** What the connection tells the rest of the engine. */
export interface LinkEvents {
  /** The connection is back: consumers may be gone (server restart) or stalled. */
  onReconnect(): void;
  /** JetStream elected a leader for `stream`; false when the engine does not follow that stream. */
  onLeaderElected(stream: string): boolean;
}

export class NatsLink {
  /** Rings on reconnects and on leader elections of followed streams. */
  readonly bell = new Bell();
  /** Shared by the engine's reads (reader.ts): consumers could not be created a moment ago. */
  readonly consumerOutage = new ConsumerOutage();
  #closed = false;
  /** Between a "disconnect" and the next "reconnect" status of the connection. */
  #disconnected = false;
  #reconnects = 0;

  constructor(
    readonly nc: NatsConnection,
    /** With JS_API_TIMEOUT_MS. */
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    /** With FEED_API_TIMEOUT_MS. */
    readonly feedClients: FeedClients,
    readonly log: Logger,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws PubSubClosedError once the engine is closed. */
  assertOpen(): void {
    assertOpen(this.#closed);
  }

  status(): PubSubStatus {
    return { connected: !this.#closed && !this.#disconnected && !this.nc.isClosed(), reconnects: this.#reconnects };
  }

  /** Retries transient failures (timeouts, no responders, failover) with the retry policy until the deadline. */
  retrying<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
    return retrying(fn, {
      deadline,
      assertOpen: () => this.assertOpen(),
      wake: this.bell,
      onRetry: (err, attempt) => this.log.debug({ err: (err as Error).message, attempt }, "nats request retry"),
    });
  }

  /** Waits for `p`, or less if the bell rings meanwhile (a reconnect, a new stream leader); true if it did. */
  untilWoken(p: Promise<unknown>): Promise<boolean> {
    return Promise.race([p.then(() => false), this.bell.next().then(() => true)]);
  }

  /** Starts telling `events` about reconnects and leader elections. */
  watch(events: LinkEvents): void {
    void this.#watchStatus(events);
    this.#watchLeaders(events);
  }

  /**
   * A stream leader elected (after its old leader died, or moved): the cue that its publishes and reads
   * are answered again, seconds before a missed heartbeat or a request timeout would tell. Best effort:
   * a user not allowed to subscribe to advisories still recovers by those.
   */
  #watchLeaders(events: LinkEvents): void {
    try {
      this.nc.subscribe(LEADER_ELECTED, {
        callback: (err, msg) => {
          if (err || this.#closed) return;
          const stream = msg.subject.slice(LEADER_ELECTED.length - 1);
          if (!events.onLeaderElected(stream)) return;
          this.log.info({ stream }, "nats stream leader elected");
          this.bell.ring();
        },
      });
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        "nats: no stream leader advisories; failover is noticed by timeouts",
      );
    }
  }

  async #watchStatus(events: LinkEvents): Promise<void> {
    try {
      await this.#statusLoop(events);
    } catch (err) {
      if (!this.#closed) this.log.error({ err }, "nats status watcher stopped");
    }
  }

  async #statusLoop(events: LinkEvents): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.#disconnected = true;
          this.log.warn({ server: s.server }, "nats disconnected");
          break;
        case "reconnecting":
          this.log.debug("nats reconnecting");
          break;
        case "reconnect":
          this.#disconnected = false;
          this.#reconnects++;
          this.log.info({ server: s.server }, "nats reconnected");
          events.onReconnect();
          this.bell.ring();
          break;
        case "error":
          this.log.error({ err: s.error }, "nats async error");
          break;
        case "staleConnection":
        case "slowConsumer":
        case "ldm":
          this.log.warn({ type: s.type }, "nats status");
          break;
        case "close":
          return;
        default:
          break;
      }
    }
  }

  /** From now on every call is refused; what is in flight sees it at its next step. */
  markClosed(): void {
    this.#closed = true;
  }

  /** Drains the connection (what was published goes out), or closes it if the server does not answer. */
  async shutdown(): Promise<void> {
    if (this.nc.isClosed()) return;
    await Promise.race([this.nc.drain().catch(() => {}), sleep(CLOSE_WAIT_MS)]);
    if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
  }
}

/** Connects, fails at once on a bad URL (unless waitOnFirstConnect), and makes the shared clients. */
export async function openLink(opts: NatsEngineOptions): Promise<NatsLink> {
  const log = opts.logger ?? silentLogger;
  const co: NodeConnectionOptions = {
    servers: opts.servers,
    name: opts.name ?? "via-ts",
    ...RECONNECT,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    // A silent network death (no RST) is noticed after ~2 missed pings instead of the default ~4 minutes.
    pingInterval: 20_000,
    maxPingOut: 2,
    timeout: 5_000,
  };
  if (opts.user !== undefined) co.user = opts.user;
  if (opts.pass !== undefined) co.pass = opts.pass;
  if (opts.token !== undefined) co.token = opts.token;
  if (opts.tls !== undefined) co.tls = opts.tls;
  if (opts.credsFile) co.authenticator = credsAuthenticator(new Uint8Array(readFileSync(opts.credsFile)));
  const nc = await connect(co);
  log.info({ server: nc.getServer(), version: nc.info?.version }, "nats connected");
  // checkAPI: false skips an account-info round trip that can time out right after a node dies
  // (docs/reference/nats-facts.md §3).
  const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: JS_API_TIMEOUT_MS });
  const js = jetstream(nc, { timeout: JS_API_TIMEOUT_MS });
  const feedClients: FeedClients = {
    nc,
    js: jetstream(nc, { timeout: FEED_API_TIMEOUT_MS }),
    jsm: await jetstreamManager(nc, { checkAPI: false, timeout: FEED_API_TIMEOUT_MS }),
  };
  return new NatsLink(nc, js, jsm, feedClients, log);
}
