// An engine that passes everything to another and lets a test watch (or hold back) some calls: what
// an app is given, as any engine would be, to count the reads and writes it makes.
import type { PubSub } from "../../src/pubsub/types.ts";

export interface Watch {
  /** Before each `history` read; may delay it (a gate) by returning a promise. */
  history?(subject: string): void | Promise<void>;
  /** Before each `publish`. */
  publish?(subject: string): void;
}

export function watchedEngine(inner: PubSub, watch: Watch): PubSub {
  return {
    kind: inner.kind,
    publish: (subject, data, opts) => {
      watch.publish?.(subject);
      return inner.publish(subject, data, opts);
    },
    subscribe: (pattern, handler, opts) => inner.subscribe(pattern, handler, opts),
    ensureStream: (config) => inner.ensureStream(config),
    info: (stream) => inner.info(stream),
    close: () => inner.close(),
    history: async (subject, query) => {
      await watch.history?.(subject);
      return inner.history(subject, query);
    },
  };
}
