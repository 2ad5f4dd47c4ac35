// Pub/sub entry point: pick the engine with one setting. No NATS URL → the embedded engine on a data
// directory; a NATS URL (or several, comma-separated) → NATS JetStream.
import type { Logger } from "../log.ts";
import { openEmbedded } from "./embedded/engine.ts";
import { connectNats, type NatsEngineOptions } from "./nats/engine.ts";
import type { PubSub } from "./types.ts";

export interface OpenPubSubOptions {
  /** NATS server URL(s); a string may hold several, comma-separated. Unset → embedded engine. */
  natsUrl?: string | string[];
  /** Embedded engine's data directory (default "./data"). */
  dataDir?: string;
  /** Extra NATS connection options (credentials, TLS, ...). */
  nats?: Omit<NatsEngineOptions, "servers" | "logger">;
  logger?: Logger;
}

/** "nats://a:4222, nats://b:4222" → two URLs; blanks are dropped (an empty NATS_URL means "not set"). */
export function parseNatsUrls(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : value.split(",")).map((s) => s.trim()).filter((s) => s !== "");
}

export async function openPubSub(opts: OpenPubSubOptions = {}): Promise<PubSub> {
  const servers = parseNatsUrls(opts.natsUrl);
  if (servers.length > 0) {
    return connectNats({ ...opts.nats, servers, ...(opts.logger ? { logger: opts.logger } : {}) });
  }
  return openEmbedded({ dataDir: opts.dataDir ?? "./data", ...(opts.logger ? { logger: opts.logger } : {}) });
}

// The checks and error texts every engine shares: another engine that calls them passes the
// conformance suite's argument tests with the same messages as ours.
export * as engineContract from "./contract.ts";
export * from "./errors.ts";
export { MAX_NAME_BYTES, nameToToken, parsePattern, parsePublishSubject, tokenToName } from "./subjects.ts";
export type * from "./types.ts";
export { connectNats, openEmbedded };
