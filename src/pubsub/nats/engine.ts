// The NATS JetStream engine: the PubSub interface on a nats-server (2.9.10 and newer), for apps that run
// several instances. Per process it holds one connection (connection.ts), one feed per known stream (an
// ordered consumer, or direct gets by sequence while that consumer is down: feed.ts, streams.ts) feeding
// the local subscriptions (subscriptions.ts), one outbox per subject for stream publishes (outbox.ts),
// and per-subject history windows (history.ts). Failover: JetStream's stream-leader advisories and
// reconnects wake every retry (retry.ts) and restart the feeds at once.
//
// This file wires those parts together and is the PubSub surface: each call is checked (contract.ts,
// the same checks and messages as the embedded engine) and handed to the part that owns it.

import { checkHistory, checkPublish, checkStreamName, checkSubscribe } from "../contract.ts";
import type {
  Handler,
  HistoryQuery,
  PublishAck,
  PublishOptions,
  PubSub,
  PubSubStatus,
  StreamConfig,
  StreamInfo,
  StreamMessage,
  SubscribeOptions,
  Unsubscribe,
} from "../types.ts";
import { type NatsEngineOptions, type NatsLink, openLink } from "./connection.ts";
import { History } from "./history.ts";
import { Outbox } from "./outbox.ts";
import { PUBLISH_RETRY_MS, sleep } from "./retry.ts";
import { StreamRegistry } from "./streams.ts";
import { Subscriptions } from "./subscriptions.ts";

export type { NatsEngineOptions };

/** Deleting the feed consumers at close is a courtesy to the server; close() does not hang on it during an outage. */
const FEED_STOP_WAIT_MS = 2_000;

export async function connectNats(opts: NatsEngineOptions): Promise<PubSub> {
  const link = await openLink(opts);
  return new NatsPubSub(link, opts.publishRetryMs ?? PUBLISH_RETRY_MS);
}

/** The parts of one NATS engine, for src/testing/nats.ts (tests look inside; the app never does). */
export interface NatsEngineParts {
  link: NatsLink;
  streams: StreamRegistry;
  subscriptions: Subscriptions;
}

const partsOf = new WeakMap<PubSub, NatsEngineParts>();

/** The parts of an engine made by connectNats; undefined for any other engine. */
export function natsEngineParts(engine: PubSub): NatsEngineParts | undefined {
  return partsOf.get(engine);
}

class NatsPubSub implements PubSub {
  readonly kind = "nats" as const;

  readonly #link: NatsLink;
  readonly #streams: StreamRegistry;
  readonly #subscriptions: Subscriptions;
  readonly #history: History;
  readonly #outbox: Outbox;
  #closing: Promise<void> | null = null;

  constructor(link: NatsLink, publishRetryMs: number) {
    this.#link = link;
    const streams = new StreamRegistry(link, {
      onMessage: (stream, m) => {
        this.#history.onFeedMessage(stream, m);
        this.#subscriptions.onFeedMessage(m);
      },
      onSkip: (stream) => this.#subscriptions.onFeedSkip(stream),
      onEpochChange: (stream) => {
        this.#history.dropStream(stream);
        this.#subscriptions.onEpochChange(stream);
      },
      onForget: (stream) => {
        this.#history.dropStream(stream);
        this.#subscriptions.onStreamForgotten(stream);
      },
    });
    this.#streams = streams;
    this.#subscriptions = new Subscriptions(link, streams);
    this.#history = new History(link, streams);
    this.#outbox = new Outbox(link, streams, publishRetryMs);
    link.watch({
      // Consumers may be gone (server restart) or stalled: every feed resumes from its last seq now.
      onReconnect: () => streams.restartFeeds("reconnect"),
      // Its consumer may have lived on the node that died; a fresh one costs milliseconds, and direct
      // reads carry the feed meanwhile.
      onLeaderElected: (stream) => streams.restartFeed(stream, "stream leader elected"),
    });
    partsOf.set(this, { link, streams, subscriptions: this.#subscriptions });
  }

  status(): PubSubStatus {
    return this.#link.status();
  }

  async publish(subject: string, data: Uint8Array | string, opts: PublishOptions = {}): Promise<PublishAck | null> {
    this.#link.assertOpen();
    return this.#outbox.publish(subject, checkPublish(subject, data, opts));
  }

  subscribe(pattern: string, handler: Handler, opts: SubscribeOptions = {}): Unsubscribe {
    this.#link.assertOpen();
    const fromSeq = checkSubscribe(pattern, handler, opts);
    return this.#subscriptions.subscribe(pattern, handler, fromSeq);
  }

  async history(subject: string, query: HistoryQuery): Promise<StreamMessage[]> {
    this.#link.assertOpen();
    return this.#history.read(subject, checkHistory(subject, query));
  }

  ensureStream(config: StreamConfig): Promise<StreamInfo> {
    return this.#streams.ensure(config);
  }

  async info(stream: string): Promise<StreamInfo> {
    this.#link.assertOpen();
    return this.#streams.info(checkStreamName(stream));
  }

  async deleteStream(stream: string): Promise<void> {
    this.#link.assertOpen();
    return this.#streams.delete(checkStreamName(stream));
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#link.markClosed();
    this.#closing = (async () => {
      this.#subscriptions.closeAll();
      const feeds = this.#streams.takeFeeds();
      await Promise.race([Promise.all(feeds.map((f) => f.stop())), sleep(FEED_STOP_WAIT_MS)]);
      await this.#link.shutdown();
    })();
    return this.#closing;
  }
}
