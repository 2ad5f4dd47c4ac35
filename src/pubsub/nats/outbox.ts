// Publishing on the NATS engine. A subject no known stream captures is a core publish (fire and forget);
// a stream subject goes through that subject's outbox, which sends it, and re-sends it with the same msg
// id through failures, until it is acked, refused for good, or past its deadline.
//
// Why an outbox per subject: publishes of one subject must be stored in call order across failures.
// Everything queued goes out together (one write, in call order, so the server stores it in that order),
// and what is queued meanwhile waits for that batch's answers. A publish that failed transiently (no ack
// in time, no responders, a lost connection) goes again, with the same msg id, before anything queued
// after it. Retrying each message on its own schedule would store the messages sent during an outage in
// the order their retries happen to fire, after messages sent later (in the chat drill, every message
// of a 2 s nats-server outage lands after newer ones that way). And the client drops whatever was
// written while disconnected when it dials again, so a reconnect re-sends the batch in flight at once
// instead of waiting for its attempt timeout.
import type { PubAck as JsPubAck } from "@nats-io/jetstream";
import { type MsgHdrsImpl, headers as natsHeaders, nuid } from "@nats-io/transport-node";
import type { CheckedPublish } from "../contract.ts";
import { PublishTimeoutError, PubSubClosedError, StreamLimitError } from "../errors.ts";
import type { PublishAck } from "../types.ts";
import { fileStoreMsgSize, serverHasDiscardNewBytesBug } from "./config.ts";
import type { NatsLink } from "./connection.ts";
import { isTransient, mapPublishError } from "./errors.ts";
import { MSG_ID_HDR } from "./message.ts";
import { attemptTimeoutBefore, backoff, sleepOrWake } from "./retry.ts";
import type { KnownStream, StreamRegistry } from "./streams.ts";

/** At most this many publishes of one subject are sent before their answers are in. */
const OUTBOX_BATCH = 256;
/** The optimistic-concurrency header; message.ts leaves it out of deliveries (it is not the app's). */
const EXPECTED_LAST_SUBJ_SEQ_HDR = "Nats-Expected-Last-Subject-Sequence";

/** A stream publish waiting in its subject's outbox. */
interface Outgoing {
  ks: KnownStream;
  payload: Uint8Array;
  h: MsgHdrsImpl;
  msgId: string;
  /** The engine made the msg id up (the caller gave none). */
  generatedId: boolean;
  expected: number | undefined;
  deadline: number;
  lastError?: unknown;
  resolve: (ack: PublishAck) => void;
  reject: (err: unknown) => void;
}

type Answer = { ack: JsPubAck } | { err: unknown } | undefined;

export class Outbox {
  /** Per subject: stream publishes not yet answered, in call order (see the header: why an outbox). */
  #queues = new Map<string, Outgoing[]>();
  readonly #bytesBug: boolean;

  constructor(
    private readonly link: NatsLink,
    private readonly streams: StreamRegistry,
    /** Total time one stream publish is retried before PublishTimeoutError. */
    private readonly publishRetryMs: number,
  ) {
    this.#bytesBug = serverHasDiscardNewBytesBug(link.nc.info?.version);
  }

  /** Arguments already checked (contract.ts). Null for a core publish. */
  async publish(subject: string, p: CheckedPublish): Promise<PublishAck | null> {
    const deadline = Date.now() + this.publishRetryMs;
    // The lookup is a server round trip for a stream this process does not know yet: retry it through an
    // outage like the publish itself.
    const ks = await this.link.retrying(() => this.streams.streamFor(subject), deadline);
    this.link.assertOpen();
    let userHeaders: MsgHdrsImpl | undefined;
    if (p.headers.length > 0) {
      userHeaders = natsHeaders() as MsgHdrsImpl;
      for (const [k, v] of p.headers) userHeaders.set(k, v);
    }
    if (!ks) {
      this.link.nc.publish(subject, p.payload, userHeaders ? { headers: userHeaders } : undefined);
      return null;
    }
    const cfg = ks.config;
    // The server counts headers (incl. our msg id) in max_msg_size; ours is about the payload.
    if (cfg.maxMsgSize > 0 && p.payload.length > cfg.maxMsgSize) throw new StreamLimitError(ks.name, "maxMsgSize");
    const h = userHeaders ?? (natsHeaders() as MsgHdrsImpl);
    // Always a msg id, so a retry after a lost ack is deduplicated by the server instead of stored twice.
    const msgId = p.msgId ?? nuid.next();
    h.set(MSG_ID_HDR, msgId);
    const expected = p.expectLastSubjectSeq;
    if (expected !== undefined) h.set(EXPECTED_LAST_SUBJ_SEQ_HDR, String(expected));
    const o = { ks, payload: p.payload, h, msgId, generatedId: p.msgId === undefined, expected, deadline };
    if (!(this.#bytesBug && cfg.discard === "new" && cfg.maxBytes > 0)) return this.#enqueue(subject, o);
    // Check and publish one at a time per stream in this process, so our own concurrent publishes cannot
    // all pass the check and then make the server evict (see #checkBytes).
    const prev = ks.bytesGate;
    let release!: () => void;
    ks.bytesGate = new Promise<void>((r) => {
      release = r;
    });
    try {
      await prev;
      await this.link.retrying(() => this.#checkBytes(ks, subject, h, p.payload.length), deadline);
      return await this.#enqueue(subject, o);
    } finally {
      release();
    }
  }

  /**
   * discard "new" + maxBytes on servers < 2.10.5: the server checks the payload only and then evicts old
   * messages to make room (nats-server#4771). So check the exact stored size here first: one stream-info
   * round trip, only for such streams on such servers. Exact within one process (publishes to such a stream
   * are serialised); racy between processes (the server still keeps the byte limit, by evicting). A caller's
   * own re-publish of an already stored msg id near the limit is rejected instead of acked as a duplicate.
   */
  async #checkBytes(ks: KnownStream, subject: string, h: MsgHdrsImpl, payloadLen: number): Promise<void> {
    const si = await this.link.jsm.streams.info(ks.name);
    if (si.state.bytes + fileStoreMsgSize(subject, h, payloadLen) > ks.config.maxBytes) {
      throw new StreamLimitError(ks.name, "maxBytes");
    }
  }

  /** Queues one stream publish in its subject's outbox; the first one in an empty outbox starts its drain. */
  #enqueue(subject: string, fields: Omit<Outgoing, "resolve" | "reject">): Promise<PublishAck> {
    return new Promise<PublishAck>((resolve, reject) => {
      const o: Outgoing = { ...fields, resolve, reject };
      const queue = this.#queues.get(subject);
      if (queue) {
        queue.push(o);
        return;
      }
      const fresh = [o];
      this.#queues.set(subject, fresh);
      void this.#drain(subject, fresh);
    });
  }

  /** Sends a subject's queued publishes in batches, keeping their call order in the stream across failures. */
  async #drain(subject: string, queue: Outgoing[]): Promise<void> {
    let attempt = 0;
    try {
      while (queue.length > 0) {
        if (this.link.closed) {
          for (const o of queue.splice(0)) o.reject(new PubSubClosedError());
          return;
        }
        const batch = queue.slice(0, OUTBOX_BATCH);
        const { answers, woken } = await this.#send(subject, batch, attempt);
        const { failed, lastError } = this.#settle(subject, queue, batch, answers);
        if (!failed) {
          attempt = 0;
          continue;
        }
        attempt++;
        const wait = woken ? 0 : backoff(attempt);
        // Those whose time is up get their answer now; the others go again, in order, after the wait.
        for (let i = queue.length - 1; i >= 0; i--) {
          const o = queue[i]!;
          if (Date.now() + wait < o.deadline) continue;
          queue.splice(i, 1);
          o.reject(
            new PublishTimeoutError(
              `publish to ${subject} (msg id ${o.msgId}) not confirmed within ${this.publishRetryMs} ms; it may or may not be stored`,
              { cause: o.lastError ?? lastError },
            ),
          );
        }
        this.link.log.debug(
          { subject, queued: queue.length, attempt, woken, err: (lastError as Error | undefined)?.message },
          "nats publish retry",
        );
        if (wait > 0 && queue.length > 0) await sleepOrWake(wait, this.link.bell.next());
      }
    } finally {
      if (this.#queues.get(subject) === queue) this.#queues.delete(subject);
    }
  }

  /**
   * Sends one batch (one write, in call order) and waits for its answers, or for the bell: after a
   * reconnect or a new stream leader the answers still missing will not come (`woken`), and the batch
   * goes again at once.
   */
  async #send(subject: string, batch: Outgoing[], attempt: number): Promise<{ answers: Answer[]; woken: boolean }> {
    const answers: Answer[] = new Array(batch.length);
    // One timeout for the batch, bounded by its most urgent deadline: the batch is answered as a whole,
    // so a publish about to expire must not wait for the others' longer attempts. Short after a failure
    // (retry.ts): an unanswered attempt during an election should not delay the first one after it.
    const timeout = attemptTimeoutBefore(attempt, Math.min(...batch.map((o) => o.deadline)));
    const all = Promise.all(
      batch.map((o, i) =>
        this.link.js.publish(subject, o.payload, { headers: o.h, timeout }).then(
          (ack) => {
            answers[i] = { ack };
          },
          (err: unknown) => {
            answers[i] = { err };
          },
        ),
      ),
    );
    const woken = await this.link.untilWoken(all);
    return { answers, woken };
  }

  /** Settles each publish of the batch that got its answer and takes it off the queue; the others stay. */
  #settle(
    subject: string,
    queue: Outgoing[],
    batch: Outgoing[],
    answers: Answer[],
  ): { failed: boolean; lastError: unknown } {
    let failed = false;
    let lastError: unknown;
    const done = new Set<Outgoing>();
    for (const [i, o] of batch.entries()) {
      const r = answers[i];
      if (r === undefined) {
        // No answer before the connection was replaced: it goes again on the new one.
        failed = true;
        continue;
      }
      if ("ack" in r) {
        const ack = r.ack;
        this.streams.noteAcked(ack.stream, ack.seq);
        // Stored: the feed must deliver it soon (it reads it at once if its consumer is down).
        if (ack.stream === o.ks.name) o.ks.feed.expect(ack.seq);
        // With an id we generated, "duplicate" can only mean our own retry after a lost ack: the caller's
        // message is stored once, and for the caller it is new.
        o.resolve({ stream: ack.stream, seq: ack.seq, duplicate: o.generatedId ? false : ack.duplicate });
      } else if (this.link.closed) {
        o.reject(new PubSubClosedError());
      } else {
        const mapped = mapPublishError(r.err, o.ks.name, subject, o.expected);
        if (mapped || !isTransient(r.err)) {
          o.reject(mapped ?? r.err);
        } else {
          failed = true;
          lastError = r.err;
          o.lastError = r.err;
          continue;
        }
      }
      done.add(o);
    }
    for (let i = queue.length - 1; i >= 0; i--) if (done.has(queue[i]!)) queue.splice(i, 1);
    return { failed, lastError };
  }
}
