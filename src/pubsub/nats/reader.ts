// Short reads of stored messages by sequence: replay for subscribe({fromSeq}), the older pages of
// history, and (directNext) a feed's way around a consumer it cannot create.
//
// Server 2.9 has no "last N of a subject" and no batch get (2.11), so a read is a short-lived ordered
// consumer with one filter subject and opt_start_seq (docs/reference/nats-facts.md §2, method B: about
// 2-3 ms for 50 messages when the start is near the data). It stops at the first message at/after
// `endSeq`, or when the server says nothing more is pending, never "when it has been quiet for a while".
//
// When the consumer cannot be had (creating one is not answered for seconds after a stream-leader
// election: §3, and the cluster test saw it fail for 15 s on end), the same read is done by the stream
// leader's message gets, one request per matching message (`next_by_subj`). Those need only the stream
// leader, which the caller has just heard from (stream info), and unlike direct gets they are never
// answered by a replica that is behind: a read that must include the caller's own writes stays exact.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type MsgRequest } from "@nats-io/jetstream";
import { type NatsConnection, nuid } from "@nats-io/transport-node";
import type { StreamMessage } from "../types.ts";
import { DirectGetError, isTransient, ReadTimeoutError } from "./errors.ts";
import { fromDirectReply, fromStoredMsg, toStreamMessage } from "./message.ts";

/** What a read needs: a consumer's client, the manager for the stream leader's message gets, and the engine's outage note. */
export interface ReadClients {
  js: JetStreamClient;
  jsm: JetStreamManager;
  consumerOutage: ConsumerOutage;
}

/** After a read could not have its consumer, reads go straight to the leader's gets for this long. */
const CONSUMERLESS_MS = 3_000;

/**
 * One engine's note that consumers could not be had just now. Without it every read during an election
 * would wait out its own consumer timeout (2 s) before turning to the gets; with it one read pays that,
 * and the next ones for CONSUMERLESS_MS do not. After that a read tries a consumer again.
 */
export class ConsumerOutage {
  #until = 0;

  get likely(): boolean {
    return Date.now() < this.#until;
  }

  seen(): void {
    this.#until = Date.now() + CONSUMERLESS_MS;
  }
}

export interface RangeQuery {
  /** Consumer filter subject (one subject or pattern; undefined = whole stream). */
  filter?: string;
  /** First seq to read (clamped by the server to the stream's first seq). */
  startSeq: number;
  /** Stop before this seq (exclusive). */
  endSeq?: number;
  /** Stop after this many matching messages. */
  limit?: number;
  /** Extra client-side filter, for patterns the server filter cannot express. */
  match?: (subject: string) => boolean;
  timeoutMs?: number;
}

const READ_INACTIVE_MS = 10_000;
const READ_TIMEOUT_MS = 5_000;

export interface RangeResult {
  msgs: StreamMessage[];
  /** True when the read reached endSeq or the end of the stream; false when it stopped at `limit`. */
  done: boolean;
  /** Last seq the read went through (matching or not); startSeq - 1 when it read nothing. */
  lastSeq: number;
}

export async function readRange(clients: ReadClients, stream: string, q: RangeQuery): Promise<StreamMessage[]> {
  return (await readPage(clients, stream, q)).msgs;
}

/** One read by a consumer, or by the leader's message gets when the consumer path fails transiently. */
export async function readPage(clients: ReadClients, stream: string, q: RangeQuery): Promise<RangeResult> {
  const empty: RangeResult = { msgs: [], done: true, lastSeq: q.startSeq - 1 };
  if (q.limit !== undefined && q.limit <= 0) return { ...empty, done: false };
  if (q.endSeq !== undefined && q.endSeq <= q.startSeq) return empty;
  if (!clients.consumerOutage.likely) {
    try {
      return await readByConsumer(clients.js, stream, q);
    } catch (err) {
      if (!isTransient(err)) throw err;
      clients.consumerOutage.seen();
    }
  }
  return readByGets(clients.jsm, stream, q);
}

async function readByConsumer(js: JetStreamClient, stream: string, q: RangeQuery): Promise<RangeResult> {
  const out: StreamMessage[] = [];
  const res: RangeResult = { msgs: out, done: true, lastSeq: q.startSeq - 1 };
  const consumer = await js.consumers.get(stream, {
    name_prefix: `via_read_${nuid.next()}`,
    ...(q.filter ? { filter_subjects: q.filter } : {}),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, q.startSeq),
    inactive_threshold: READ_INACTIVE_MS,
  });
  try {
    const ci = await consumer.info(true);
    if (ci.num_pending === 0) return res;
    const batch = Math.max(16, Math.min(1000, q.limit ?? ci.num_pending, ci.num_pending));
    const iter = await consumer.consume({ max_messages: batch, expires: 5_000 });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void iter.close();
    }, q.timeoutMs ?? READ_TIMEOUT_MS);
    try {
      res.done = false;
      for await (const m of iter) {
        if (q.endSeq !== undefined && m.seq >= q.endSeq) {
          res.done = true;
          break;
        }
        res.lastSeq = m.seq;
        if (!q.match || q.match(m.subject)) out.push(toStreamMessage(stream, m));
        if (m.info.pending === 0) {
          res.done = true;
          break;
        }
        if (q.limit !== undefined && out.length >= q.limit) break;
      }
    } finally {
      clearTimeout(timer);
      void iter.close().catch(() => {});
    }
    if (timedOut) throw new ReadTimeoutError(`read of stream ${stream} from seq ${q.startSeq} timed out`);
    return res;
  } finally {
    // Fire and forget: the server would drop it after READ_INACTIVE_MS anyway.
    void consumer.delete().catch(() => {});
  }
}

/** The same read as readByConsumer, one stream-leader message get per message it returns. */
async function readByGets(jsm: JetStreamManager, stream: string, q: RangeQuery): Promise<RangeResult> {
  const out: StreamMessage[] = [];
  const res: RangeResult = { msgs: out, done: false, lastSeq: q.startSeq - 1 };
  const deadline = Date.now() + (q.timeoutMs ?? READ_TIMEOUT_MS);
  let seq = Math.max(1, q.startSeq);
  while (q.limit === undefined || out.length < q.limit) {
    if (Date.now() > deadline) throw new ReadTimeoutError(`read of stream ${stream} from seq ${q.startSeq} timed out`);
    const m = await leaderNext(jsm, stream, seq, q.filter);
    if (!m || (q.endSeq !== undefined && m.seq >= q.endSeq)) {
      res.done = true;
      break;
    }
    res.lastSeq = m.seq;
    if (!q.match || q.match(m.subject)) out.push(m);
    seq = m.seq + 1;
  }
  return res;
}

/**
 * The first stored message with seq >= `seq` matching `filter` (default any subject), as the stream
 * leader has it, or null when there is none. The request shape (`next_by_subj`) is server 2.9's, which
 * the client library types only for direct gets.
 */
async function leaderNext(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  filter = ">",
): Promise<StreamMessage | null> {
  const query = { seq, next_by_subj: filter } as unknown as MsgRequest;
  const sm = await jsm.streams.getMessage(stream, query);
  return sm ? fromStoredMsg(stream, sm) : null;
}

/**
 * The last `limit` messages matching `filter` with seq < beforeSeq, reading backwards in growing chunks.
 * `density` (messages of the filter per stream message, 0..1) sizes the first chunk so a typical read is one round.
 */
export async function readLastBefore(
  clients: ReadClients,
  stream: string,
  q: { filter: string; beforeSeq: number; limit: number; firstSeq: number; density: number; timeoutMs?: number },
): Promise<StreamMessage[]> {
  if (q.limit <= 0) return [];
  let end = q.beforeSeq;
  let collected: StreamMessage[] = [];
  let span = Math.ceil((q.limit / Math.max(q.density, 1e-6)) * 1.25) + 16;
  while (collected.length < q.limit && end > q.firstSeq) {
    const start = Math.max(q.firstSeq, end - span);
    const chunk = await readRange(clients, stream, {
      filter: q.filter,
      startSeq: start,
      endSeq: end,
      ...(q.timeoutMs !== undefined ? { timeoutMs: q.timeoutMs } : {}),
    });
    collected = chunk.concat(collected);
    end = start;
    span *= 4;
  }
  return collected.length > q.limit ? collected.slice(collected.length - q.limit) : collected;
}

const enc = new TextEncoder();

/**
 * The first stored message with seq >= `seq` (matching `filter`, default any subject), or null when the
 * answering server stores none (yet). One request, answered by the stream's leader or any replica
 * (streams are created with allow_direct): it needs no consumer and no stream leader, so it works
 * while consumers cannot be created (a leader election, a connection that just moved to another node;
 * docs/reference/nats-facts.md §3). A replica may be a little behind the leader: null means "nothing
 * here yet", never "nothing will be"; and a message returned for `seq` means no message in [seq, its
 * seq) is stored (a replica applies the stream's log, deletes included, in order).
 */
export async function directNext(
  nc: NatsConnection,
  stream: string,
  seq: number,
  opts: { filter?: string; timeoutMs: number },
): Promise<StreamMessage | null> {
  const body = enc.encode(JSON.stringify({ seq: Math.max(1, seq), next_by_subj: opts.filter ?? ">" }));
  const r = await nc.request(`$JS.API.DIRECT.GET.${stream}`, body, { timeout: opts.timeoutMs });
  const code = r.headers?.code ?? 0;
  if (code === 404) return null;
  if (code !== 0 || !r.headers) throw new DirectGetError(code, r.headers?.description ?? "no headers");
  return fromDirectReply(stream, r);
}
