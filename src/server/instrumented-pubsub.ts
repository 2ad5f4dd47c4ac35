// The app's pub/sub engine as the app uses it when metrics are on: the same engine, with its
// publishes (count, ack latency, failures by error class) and its deliveries to the app's
// subscriptions counted on the way through. Everything else goes to the engine as is.
import type { Counter, Histogram } from "prom-client";
import type { PublishAck, PubSub } from "../pubsub/types.ts";

/** The metrics a publish counts in (metrics.ts registers them). */
export interface PublishMetrics {
  readonly publishes: Counter<"result">;
  readonly publishFailures: Counter<"error">;
  readonly ackSeconds: Histogram;
}

/** The error label of a failed publish: the engine's error classes by name, anything else "other". */
const PUBLISH_ERRORS = new Set([
  "SubjectError",
  "StreamLimitError",
  "WrongLastSequenceError",
  "StreamNotFoundError",
  "PubSubClosedError",
  "PublishTimeoutError",
]);

/** The app's engine, counting what goes through it; everything else is the engine's own. */
export class InstrumentedPubSub implements PubSub {
  readonly kind: PubSub["kind"];
  /** Messages handed to subscription handlers (a plain number, read at scrape time). */
  deliveries = 0;
  // Passed through as they are.
  readonly ensureStream: PubSub["ensureStream"];
  readonly history: PubSub["history"];
  readonly info: PubSub["info"];
  readonly close: PubSub["close"];
  readonly deleteStream?: PubSub["deleteStream"];
  readonly status?: PubSub["status"];

  constructor(
    readonly inner: PubSub,
    private readonly metrics: PublishMetrics,
  ) {
    this.kind = inner.kind;
    this.ensureStream = (config) => inner.ensureStream(config);
    this.history = (subject, query) => inner.history(subject, query);
    this.info = (stream) => inner.info(stream);
    this.close = () => inner.close();
    if (inner.deleteStream) this.deleteStream = (stream) => inner.deleteStream!(stream);
    if (inner.status) this.status = () => inner.status!();
  }

  publish(...[subject, data, opts]: Parameters<PubSub["publish"]>): Promise<PublishAck | null> {
    const started = performance.now();
    let published: Promise<PublishAck | null>;
    try {
      published = this.inner.publish(subject, data, opts);
    } catch (err) {
      this.failed(err);
      throw err;
    }
    return published.then(
      (ack) => {
        if (ack) {
          this.metrics.ackSeconds.observe((performance.now() - started) / 1000);
          this.metrics.publishes.inc({ result: ack.duplicate ? "duplicate" : "stored" });
        } else this.metrics.publishes.inc({ result: "core" });
        return ack;
      },
      (err: unknown) => {
        this.failed(err);
        throw err;
      },
    );
  }

  private failed(err: unknown): void {
    const name = (err as Error | undefined)?.name ?? "";
    this.metrics.publishes.inc({ result: "failed" });
    this.metrics.publishFailures.inc({ error: PUBLISH_ERRORS.has(name) ? name : "other" });
  }

  subscribe(...[pattern, handler, opts]: Parameters<PubSub["subscribe"]>): ReturnType<PubSub["subscribe"]> {
    return this.inner.subscribe(
      pattern,
      (msg) => {
        this.deliveries++;
        return handler(msg);
      },
      opts,
    );
  }
}
