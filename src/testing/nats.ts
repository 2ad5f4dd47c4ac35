// Test support for the NATS engine: what tests look at inside an engine made by connectNats (its
// connection, its feeds, its core subscriptions), kept off the engine itself so the production class
// carries only the PubSub interface. Not exported from `via-ts/testing`: it is about this package's own
// engine internals, which may change in any release.
import type { NatsConnection } from "@nats-io/transport-node";
import { natsEngineParts } from "../pubsub/nats/engine.ts";
import type { StreamFeed } from "../pubsub/nats/feed.ts";
import type { PubSub } from "../pubsub/types.ts";

export interface NatsFeedStats {
  stream: string;
  /** The consumer feeding the stream, null while the feed reads by direct get. */
  consumer: string | null;
  lastSeq: number;
  consumersCreated: number;
}

export interface NatsEngineProbe {
  /** The engine's connection (to wait for JetStream after a server restart, ...). */
  readonly connection: NatsConnection;
  /** Feed state per known stream. */
  feedStats(): NatsFeedStats[];
  /** The feed of a known stream (tests measure its restarts and how it read). */
  feedOf(stream: string): StreamFeed | undefined;
  /** Number of core NATS subscriptions held for patterns no known stream covers. */
  readonly coreSubscriptionCount: number;
}

/** Looks inside an engine made by connectNats; throws for any other engine. */
export function natsProbe(engine: PubSub): NatsEngineProbe {
  const parts = natsEngineParts(engine);
  if (!parts) throw new TypeError(`natsProbe: not a NATS engine made by connectNats (kind ${engine.kind})`);
  const { link, streams, subscriptions } = parts;
  return {
    connection: link.nc,
    feedStats: () =>
      [...streams.all()].map((ks) => ({
        stream: ks.name,
        consumer: ks.feed.consumerName,
        lastSeq: ks.feed.lastSeq,
        consumersCreated: ks.feed.consumersCreated,
      })),
    feedOf: (stream) => streams.get(stream)?.feed,
    get coreSubscriptionCount() {
      return subscriptions.coreCount;
    },
  };
}
