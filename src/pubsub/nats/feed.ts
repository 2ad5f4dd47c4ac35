// One ordered consumer per stream per process: every stored message of the stream flows through it, in
// seq order, to the engine's local router. Thousands of local subscribers cost one consumer on the server.
//
// The library's ordered consumer recovers by itself after a server bounce, but it stalls until two idle
// heartbeats are missed (about 45 s with the defaults, docs/reference/nats-facts.md §7), because its recreated consumer is
// pulled with the stale pending count. So this feed owns recovery: on a connection `reconnect`, a missed
// heartbeat, or any reset/not-found notice, it drops the consumer and creates a fresh one that starts at
// lastSeq + 1. Nothing is lost (the stream has it) and nothing is delivered twice (seq <= lastSeq is dropped).
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nuid } from "@nats-io/transport-node";
import type { Logger } from "../../log.ts";

/** Pull expiry for the feed. Idle heartbeats come every expires/2, so a dead pull is noticed within ~expires. */
const FEED_EXPIRES_MS = 5_000;
/** The server forgets a feed consumer this long after its process stopped pulling (crash without close()). */
const FEED_INACTIVE_MS = 30_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

const RESTART_ON = new Set([
  "heartbeats_missed",
  "reset",
  "consumer_not_found",
  "consumer_deleted",
  "stream_not_found",
  "no_responders",
]);

/** The pull consumer implementation has a `name` that the exported type leaves out. */
type NamedConsumer = Consumer & { name: string };

export interface FeedEvents {
  /** Called in seq order, once per seq. */
  onMessage(stream: string, msg: JsMsg): void;
  /** The stream was deleted and recreated under the same name: positions restart in a new epoch. */
  onEpochChange(stream: string, epoch: string): void;
}

export class StreamFeed {
  /** Highest seq handed to onMessage (in the current epoch). */
  lastSeq: number;
  /** Number of consumers created so far (1 + restarts); tests and logs read it. */
  consumersCreated = 0;
  /** When the pending restart began (ms since epoch; 0 = none pending), for the "resumed" log line. */
  #restartAt = 0;

  #gen = 0;
  #messages: ConsumerMessages | null = null;
  // The library renames an ordered consumer when it resets it internally, so keep the object, not the name.
  #consumer: NamedConsumer | null = null;
  #stopped = false;
  #running: Promise<void> | null = null;
  #waiters: Array<{ seq: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }> = [];

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
    /** The stream's epoch (created timestamp) the positions belong to. */
    public epoch: string,
    startSeq: number,
    private readonly events: FeedEvents,
    private readonly log: Logger,
  ) {
    this.lastSeq = startSeq - 1;
  }

  /** Creates the consumer; resolves once it is pulling (retrying transient failures until stopped). */
  start(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Drops the current consumer and resumes from lastSeq + 1. Restarts requested meanwhile coalesce. */
  restart(reason: string): void {
    if (this.#stopped) return;
    this.log.info({ stream: this.stream, reason, lastSeq: this.lastSeq }, "nats feed restart");
    if (this.#restartAt === 0) this.#restartAt = Date.now();
    // A create in progress sees the generation change at its next step and starts over from lastSeq + 1.
    this.#closeCurrent();
    if (!this.#running) void this.start();
  }

  /** Resolves true once lastSeq >= seq, false after timeoutMs. */
  waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.lastSeq >= seq) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((x) => x !== w);
          resolve(false);
        }, timeoutMs),
      };
      this.#waiters.push(w);
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const name = this.#consumer?.name;
    this.#closeCurrent();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#waiters = [];
    // Deleting now spares the server FEED_INACTIVE_MS of a useless consumer; best effort.
    if (name) await this.jsm.consumers.delete(this.stream, name).catch(() => {});
  }

  /** Name of the consumer currently feeding (null while recovering). */
  get consumerName(): string | null {
    return this.#consumer?.name ?? null;
  }

  #closeCurrent(): void {
    this.#gen++;
    const msgs = this.#messages;
    const name = this.#consumer?.name;
    this.#messages = null;
    this.#consumer = null;
    if (msgs) void msgs.close().catch(() => {});
    if (name && !this.#stopped) void this.jsm.consumers.delete(this.stream, name).catch(() => {});
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      const gen = ++this.#gen;
      let step = "stream info";
      try {
        // Detect a delete + recreate while we were away: the old positions mean nothing in the new epoch.
        const si = await this.jsm.streams.info(this.stream);
        if (si.created !== this.epoch) {
          this.log.warn({ stream: this.stream, old: this.epoch, new: si.created }, "nats stream recreated: new epoch");
          this.epoch = si.created;
          this.lastSeq = 0;
          this.events.onEpochChange(this.stream, si.created);
        }
        step = "consumer create";
        const consumer = (await this.js.consumers.get(this.stream, {
          // Unique per consumer (names are per stream, shared by all processes); the prefix tells operators
          // listing consumers what it is.
          name_prefix: `via_feed_${nuid.next()}`,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.lastSeq + 1,
          inactive_threshold: FEED_INACTIVE_MS,
        })) as NamedConsumer;
        if (this.#stopped || gen !== this.#gen) {
          void consumer.delete().catch(() => {});
          if (this.#stopped) return;
          continue;
        }
        step = "consume";
        const msgs = await consumer.consume({
          expires: FEED_EXPIRES_MS,
          max_messages: 512,
          callback: (m) => this.#onMsg(gen, m),
        });
        if (this.#stopped || gen !== this.#gen) {
          void msgs.close().catch(() => {});
          void consumer.delete().catch(() => {});
          if (this.#stopped) return;
          continue;
        }
        this.#messages = msgs;
        this.#consumer = consumer;
        this.consumersCreated++;
        if (this.#restartAt !== 0) {
          this.log.info(
            { stream: this.stream, fromSeq: this.lastSeq + 1, ms: Date.now() - this.#restartAt },
            "nats feed resumed",
          );
          this.#restartAt = 0;
        }
        void this.#watch(gen, msgs);
        return;
      } catch (err) {
        if (this.#stopped) return;
        const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** attempt) * (0.75 + Math.random() * 0.5);
        attempt++;
        // Expected during a server restart or a leader election; log at warn after a few tries.
        const level = attempt > 3 ? "warn" : "debug";
        this.log[level](
          { stream: this.stream, step, err: (err as Error).message, attempt },
          "nats feed consumer create failed",
        );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  async #watch(gen: number, msgs: ConsumerMessages): Promise<void> {
    try {
      for await (const s of msgs.status()) {
        if (gen !== this.#gen) return;
        if (RESTART_ON.has(s.type)) {
          this.restart(s.type);
          return;
        }
      }
    } catch {
      // the iterator ends with the consumer
    }
    // The library also ends a consume by itself (a 400, an ordered consumer it failed to recreate 30 times, a
    // throwing callback...), and then the status iterator just ends: without a restart here the feed would
    // stay silent until the next reconnect. A short pause keeps a consume that keeps ending from spinning.
    if (this.#stopped || gen !== this.#gen) return;
    await new Promise((r) => setTimeout(r, RETRY_MIN_MS));
    if (!this.#stopped && gen === this.#gen) this.restart("consume ended");
  }

  #onMsg(gen: number, m: JsMsg): void {
    // Messages from a consumer we already dropped may still be in the socket buffer: their positions
    // are covered by the new consumer, so ignore them.
    if (gen !== this.#gen) return;
    const seq = m.seq;
    if (seq <= this.lastSeq) return;
    if (seq > this.lastSeq + 1) {
      // Normal when the messages in between were deleted (limits, expiry, purge) before the feed got there.
      this.log.info({ stream: this.stream, from: this.lastSeq + 1, to: seq - 1 }, "nats feed skipped seqs");
    }
    this.lastSeq = seq;
    try {
      this.events.onMessage(this.stream, m);
    } catch (err) {
      // Never into the library: a throwing callback ends its consume.
      this.log.error({ err, stream: this.stream, seq }, "nats feed delivery failed");
    } finally {
      if (this.#waiters.length > 0) {
        const ready = this.#waiters.filter((w) => w.seq <= seq);
        if (ready.length > 0) {
          this.#waiters = this.#waiters.filter((w) => w.seq > seq);
          for (const w of ready) {
            clearTimeout(w.timer);
            w.resolve(true);
          }
        }
      }
    }
  }
}
