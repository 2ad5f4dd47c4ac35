// One feed per stream per process: every stored message of the stream flows through it, in seq order, to
// the engine's local router. Thousands of local subscribers cost one consumer on the server.
//
// Two ways of reading, merged by seq (a message at or below `lastSeq` is dropped, so each seq is
// delivered once and in order, whichever way it came):
//
// - an ordered consumer, the normal way: the server pushes batches, one request per 512 messages;
// - direct gets by sequence (reader.ts, directNext), answered by the stream's leader or any replica, and
//   needing neither a consumer nor a stream leader. They carry the feed whenever the consumer is not
//   running: after a reconnect, a stream-leader change, a missed heartbeat, or while creating the
//   consumer keeps failing (during an election consumer creation is never answered; the connection's
//   new node answers direct gets at once, docs/reference/nats-facts.md §3).
//
// Both read every stored message from where they start, in order, skipping only what the stream no
// longer has; each starts at or below lastSeq + 1. So merged they miss nothing the stream still stores,
// and a seq they jump over was deleted (evicted by a limit, expired) before the feed got there: the feed
// says so (onSkip) before it delivers the message after the gap.
//
// Direct reads cannot tell a stream deleted and recreated under the same name (its epoch): only the
// consumer path's stream info does. A recreation during a recovery can hand over a few messages of the
// new epoch before the epoch change is seen; they come again, in the new epoch, after it.
//
// Recovery is owned here, not left to the library: its ordered consumer recreates itself after a server
// bounce, but then stalls until two idle heartbeats are missed (docs/reference/nats-facts.md §7). So on a
// `reconnect`, a new stream leader, a missed heartbeat, any reset/not-found notice, or a consumer that made
// no progress while this process's own publishes were acknowledged beyond it, the feed drops its consumer,
// reads on by direct gets at once, and creates a fresh consumer at lastSeq + 1 in the background (short
// attempts, retried with jitter: retry.ts).
//
// Why one file of about 500 lines: the consumer, the direct reads, the stall check and delivery are one
// state machine over one position (lastSeq), one generation counter and one epoch. Each way of reading
// decides what to do from the others' state (the reads stop once the consumer is trusted, a consumer is
// replaced when it falls behind the reads or this process's acks, an epoch change voids a read in
// flight); split into modules, that state would have to be shared through an interface as wide as the
// class, and the invariant "each seq delivered once, in order" would no longer be checkable in one place.
import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { type NatsConnection, nuid } from "@nats-io/transport-node";
import type { Logger } from "../../log.ts";
import type { StreamMessage } from "../types.ts";
import { toStreamMessage } from "./message.ts";
import { directNext } from "./reader.ts";
import { ATTEMPT, Bell, pauseBeforeRetry, sleepOrWake } from "./retry.ts";

/** Pull expiry for the feed's consumer. Idle heartbeats come every expires/2: a dead pull is noticed within ~expires. */
const FEED_EXPIRES_MS = 3_000;
/** The server forgets a feed consumer this long after its process stopped pulling (crash without close()). */
const FEED_INACTIVE_MS = 30_000;
/** While the consumer is not running: how often the direct-get reader looks for new messages. */
const READ_POLL_MS = 100;
/** Direct gets in flight at once while catching up. */
const READ_WINDOW = 32;
/**
 * A consumer that delivered nothing for this long while the stream had a message this process published
 * beyond it is stuck (its server died, its leader moved): it is replaced.
 */
const STALL_MS = 1_000;
/**
 * A new consumer is trusted (the direct reads stop) once it delivered a message and caught up with them,
 * or ran this long with nothing to catch up on. Right after an election a consumer can take most of a
 * second to deliver its first message (seen on the 3-node cluster); the reads cover that.
 */
const CONFIRM_MS = 3_000;

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
  onMessage(stream: string, msg: StreamMessage): void;
  /** The stream was deleted and recreated under the same name: positions restart in a new epoch. */
  onEpochChange(stream: string, epoch: string): void;
  /**
   * Seqs `from`..`to` will never be delivered: the stream deleted them (limits, expiry) before the feed
   * got to them. Called just before the message after them.
   */
  onSkip(stream: string, from: number, to: number): void;
}

export interface FeedClients {
  nc: NatsConnection;
  /** With a short request timeout (the feed retries rather than waits). */
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export class StreamFeed {
  /** Highest seq handed to onMessage (in the current epoch). */
  lastSeq: number;
  /** Number of consumers created so far (1 + restarts); tests and logs read it. */
  consumersCreated = 0;
  /** Messages delivered by direct gets (the consumer was not running, or was behind); tests read it. */
  readDirect = 0;
  /** When the pending restart began (ms since epoch; 0 = none pending), for the "resumed" log line. */
  #restartAt = 0;

  #gen = 0;
  /** Bumped when the epoch changes: a direct read begun before it delivers nothing after. */
  #epochGen = 0;
  #messages: ConsumerMessages | null = null;
  // The library renames an ordered consumer when it resets it internally, so keep the object, not the name.
  #consumer: NamedConsumer | null = null;
  /** Last seq the current consumer handed over (delivered or not), or where it started: its progress. */
  #consumerSeq = 0;
  /** Where the current consumer started (opt_start_seq - 1) and when it was made. */
  #consumerFrom = 0;
  #consumerAt = 0;
  /** When the current consumer last handed over a message (or was made). */
  #consumerMovedAt = 0;
  #stopped = false;
  #polling = false;
  #reading: Promise<boolean> | null = null;
  /** Rings when waiting is pointless: a reconnect, a new leader, a message known to be stored. */
  readonly #bell = new Bell();
  #waiters: Array<{ seq: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }> = [];
  /** The highest seq this process knows is stored (its own acks), and the stall check watching it. */
  #expected = 0;
  #stallTimer: NodeJS.Timeout | null = null;
  /** The expected seq a stall check already replaced the consumer for. */
  #stalledFor = 0;
  #creating = false;
  #ready: { promise: Promise<void>; resolve: () => void } | null = null;

  constructor(
    private readonly clients: FeedClients,
    readonly stream: string,
    /** The stream's epoch (created timestamp) the positions belong to. */
    public epoch: string,
    startSeq: number,
    private readonly events: FeedEvents,
    private readonly log: Logger,
    /** Bell of the engine: rings on reconnects and stream-leader elections. */
    private readonly engineBell: Bell,
  ) {
    this.lastSeq = startSeq - 1;
  }

  /** Starts following the stream; resolves once it is current (consumer pulling, or read up to the end). */
  start(): Promise<void> {
    if (!this.#ready) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#ready = { promise, resolve };
      this.#recover();
    }
    return this.#ready.promise;
  }

  /** Drops the current consumer and resumes from lastSeq + 1 (direct gets at once, a new consumer soon). */
  restart(reason: string): void {
    if (this.#stopped) return;
    this.log.info({ stream: this.stream, reason, lastSeq: this.lastSeq }, "nats feed restart");
    if (this.#restartAt === 0) this.#restartAt = Date.now();
    // A create in progress sees the generation change at its next step and starts over from lastSeq + 1.
    this.#closeCurrent();
    this.#recover();
    this.#bell.ring();
  }

  /**
   * This process published `seq` and it was acknowledged: the feed must deliver it soon. While the
   * consumer is down the reader fetches it now; a consumer that makes no progress meanwhile is replaced.
   */
  expect(seq: number): void {
    if (this.#stopped || seq <= this.lastSeq || seq <= this.#expected) return;
    this.#expected = seq;
    if (this.#polling) this.#bell.ring();
    this.#armStallCheck();
  }

  #armStallCheck(): void {
    if (this.#stallTimer || this.#stopped) return;
    const progress = this.#consumerSeq;
    const gen = this.#gen;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      const expected = this.#expected;
      if (this.#stopped || this.lastSeq >= expected) return;
      if (gen !== this.#gen || !this.#consumer || this.#consumerSeq !== progress) {
        // Replaced meanwhile, still being made, or moving: look again later.
        this.#armStallCheck();
        return;
      }
      if (this.#stalledFor === expected) {
        // Replaced once for this seq already and still not delivered: it was deleted before anyone read
        // it (a purge). Nothing to wait for.
        this.#expected = this.lastSeq;
        return;
      }
      this.#stalledFor = expected;
      this.restart("consumer stalled behind an acknowledged publish");
      this.#armStallCheck();
    }, STALL_MS);
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
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#bell.ring();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#waiters = [];
    this.#ready?.resolve();
    // Deleting now spares the server FEED_INACTIVE_MS of a useless consumer; best effort.
    if (name) await this.clients.jsm.consumers.delete(this.stream, name).catch(() => {});
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
    if (name && !this.#stopped) void this.clients.jsm.consumers.delete(this.stream, name).catch(() => {});
  }

  /** Both ways at once: direct reads until the consumer runs, and the consumer's creation. */
  #recover(): void {
    void this.#poll();
    if (!this.#creating) void this.#createConsumer();
  }

  /** The consumer is running and proven: it delivers, and has everything the direct reads delivered. */
  #trusted(): boolean {
    if (!this.#consumer || this.#consumerSeq < this.lastSeq) return false;
    return this.#consumerSeq > this.#consumerFrom || Date.now() - this.#consumerAt >= CONFIRM_MS;
  }

  /** Wakes on the feed's own bell or the engine's. */
  #woken(): Promise<void> {
    return Promise.race([this.#bell.next(), this.engineBell.next()]);
  }

  // ---------------------------------------------------------------- direct reads

  /** Reads by direct get until a consumer is trusted: to the end, then again every READ_POLL_MS (or when rung). */
  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    let failures = 0;
    try {
      while (!this.#stopped && !this.#trusted()) {
        try {
          const from = this.lastSeq + 1;
          if (await this.#readToEnd()) {
            this.log.info(
              { stream: this.stream, from, to: this.lastSeq, consumer: this.#consumer !== null },
              "nats feed read directly",
            );
          }
          failures = 0;
          this.#ready?.resolve();
          // A consumer that stays behind what the reads found, without moving, is not going to catch up.
          if (this.#consumer && this.#consumerSeq < this.lastSeq && Date.now() - this.#consumerMovedAt > CONFIRM_MS) {
            this.restart("consumer not catching up");
          }
          await sleepOrWake(READ_POLL_MS, this.#woken());
        } catch (err) {
          if (this.#stopped) return;
          failures++;
          this.log[failures > 20 ? "warn" : "debug"](
            { stream: this.stream, err: (err as Error).message, attempt: failures },
            "nats feed direct read failed",
          );
          await pauseBeforeRetry(failures, this.#woken());
        }
      }
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Reads every stored message after lastSeq by direct gets, READ_WINDOW requests at a time, until the
   * answering server has no more. One read at a time; true if it delivered anything.
   */
  #readToEnd(): Promise<boolean> {
    this.#reading ??= (async () => {
      const epoch = this.#epochGen;
      let delivered = false;
      // One request to learn whether there is anything at all (the usual answer while polling), then
      // wider windows while every answer is a new message.
      let window = 1;
      for (;;) {
        const from = this.lastSeq + 1;
        const asks: Array<Promise<StreamMessage | null>> = [];
        for (let i = 0; i < window; i++) {
          asks.push(directNext(this.clients.nc, this.stream, from + i, { timeoutMs: ATTEMPT.retryMs }));
        }
        // Every answer is awaited (a rejected one is not left unhandled); the first failure fails the read.
        const settled = await Promise.allSettled(asks);
        if (this.#stopped || epoch !== this.#epochGen) return delivered;
        // Answer i is the first stored message at or after from + i. Taken in order, each either repeats
        // what was delivered already or follows it with nothing stored in between; the walk stops at the
        // first "none", which is the end as far as that server knows.
        let fresh = 0;
        for (const s of settled) {
          if (s.status === "rejected") throw s.reason;
          const m = s.value;
          if (m === null) return delivered;
          if (m.seq <= this.lastSeq) continue;
          this.readDirect++;
          this.#deliver(m);
          delivered = true;
          fresh++;
        }
        window = fresh === window ? Math.min(READ_WINDOW, window * 4) : Math.max(1, fresh);
      }
    })().finally(() => {
      this.#reading = null;
    });
    return this.#reading;
  }

  // ---------------------------------------------------------------- the consumer

  async #createConsumer(): Promise<void> {
    // Cleared in the same step as the loop's return (a finally, not a .finally() callback a tick later), so
    // a restart right after the consumer was made always starts a new loop.
    this.#creating = true;
    try {
      await this.#createLoop();
    } finally {
      this.#creating = false;
    }
  }

  async #createLoop(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped && !this.#consumer) {
      const gen = ++this.#gen;
      let step = "stream info";
      try {
        // Detect a delete + recreate while we were away: the old positions mean nothing in the new epoch.
        const si = await this.clients.jsm.streams.info(this.stream);
        if (si.created !== this.epoch) {
          this.log.warn({ stream: this.stream, old: this.epoch, new: si.created }, "nats stream recreated: new epoch");
          this.epoch = si.created;
          this.#epochGen++;
          this.lastSeq = 0;
          this.#expected = 0;
          this.#stalledFor = 0;
          this.events.onEpochChange(this.stream, si.created);
        }
        step = "consumer create";
        const startFrom = this.lastSeq;
        const consumer = (await this.clients.js.consumers.get(this.stream, {
          // Unique per consumer (names are per stream, shared by all processes); the prefix tells operators
          // listing consumers what it is.
          name_prefix: `via_feed_${nuid.next()}`,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: startFrom + 1,
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
          callback: (m) => this.#onConsumerMsg(gen, m),
        });
        if (this.#stopped || gen !== this.#gen) {
          void msgs.close().catch(() => {});
          void consumer.delete().catch(() => {});
          if (this.#stopped) return;
          continue;
        }
        this.#messages = msgs;
        this.#consumer = consumer;
        this.#consumerFrom = startFrom;
        this.#consumerSeq = startFrom;
        this.#consumerAt = Date.now();
        this.#consumerMovedAt = this.#consumerAt;
        this.consumersCreated++;
        this.#ready?.resolve();
        if (this.#restartAt !== 0) {
          this.log.info(
            { stream: this.stream, fromSeq: this.lastSeq + 1, ms: Date.now() - this.#restartAt },
            "nats feed resumed",
          );
          this.#restartAt = 0;
        }
        void this.#watch(gen, msgs);
        // Published and acknowledged while it was being made: the stall check starts now.
        if (this.#expected > this.lastSeq) this.#armStallCheck();
        return;
      } catch (err) {
        if (this.#stopped) return;
        attempt++;
        // Expected during a server restart or a leader election (the reader carries the feed meanwhile);
        // log at warn once it goes on.
        const level = attempt > 10 ? "warn" : "debug";
        this.log[level](
          { stream: this.stream, step, err: (err as Error).message, attempt },
          "nats feed consumer create failed",
        );
        await pauseBeforeRetry(attempt, this.#woken());
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
    await pauseBeforeRetry(1);
    if (!this.#stopped && gen === this.#gen) this.restart("consume ended");
  }

  #onConsumerMsg(gen: number, jm: JsMsg): void {
    // Messages from a consumer we already dropped may still be in the socket buffer: their positions
    // are covered by the new consumer (or the reader), so ignore them.
    if (gen !== this.#gen) return;
    if (jm.seq > this.#consumerSeq) {
      this.#consumerSeq = jm.seq;
      this.#consumerMovedAt = Date.now();
    }
    if (jm.seq <= this.lastSeq) return;
    this.#deliver(toStreamMessage(this.stream, jm));
  }

  // ---------------------------------------------------------------- delivery

  #deliver(m: StreamMessage): void {
    const seq = m.seq;
    if (seq <= this.lastSeq) return;
    if (seq > this.lastSeq + 1) {
      // Normal when the messages in between were deleted (limits, expiry, purge) before the feed got there.
      this.log.info({ stream: this.stream, from: this.lastSeq + 1, to: seq - 1 }, "nats feed skipped seqs");
      try {
        this.events.onSkip(this.stream, this.lastSeq + 1, seq - 1);
      } catch (err) {
        this.log.error({ err, stream: this.stream, seq }, "nats feed skip notice failed");
      }
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
