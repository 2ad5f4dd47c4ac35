// The NATS JetStream engine: the PubSub interface on a nats-server (2.9.10 and newer), for apps that run
// several instances. Per process it holds one connection, one feed per known stream (an ordered consumer,
// or direct gets by sequence while that consumer is down: feed.ts) feeding an in-process SubjectRouter,
// and one core subscription per distinct non-stream pattern. Failover: JetStream's stream-leader
// advisories and reconnects wake every retry (retry.ts) and restart the feeds at once.
//
// "Known stream" = ensured by this process, or found on the server (publish via STREAM.FIND, subscribe
// via STREAM.NAMES). Messages of known streams reach local subscribers only through the feed, with
// (stream, seq, time); core subscriptions drop those subjects so nothing arrives twice.
import { readFileSync } from "node:fs";
import {
  type JetStreamClient,
  type JetStreamManager,
  type PubAck as JsPubAck,
  type StreamInfo as JsStreamInfo,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import {
  connect,
  credsAuthenticator,
  type Msg,
  type MsgHdrs,
  type MsgHdrsImpl,
  type NatsConnection,
  type NodeConnectionOptions,
  headers as natsHeaders,
  nuid,
  type Subscription,
} from "@nats-io/transport-node";
import { type Logger, silentLogger } from "../../log.ts";
import { checkHeaders, MAX_HISTORY } from "../config.ts";
import { PublishTimeoutError, PubSubClosedError, StreamLimitError, StreamNotFoundError } from "../errors.ts";
import { SubjectRouter } from "../router.ts";
import { matchesPattern, parsePattern, parsePublishSubject, patternsOverlap } from "../subjects.ts";
import type {
  Delivery,
  Handler,
  Headers,
  HistoryQuery,
  PublishAck,
  PublishOptions,
  PubSub,
  PubSubStatus,
  ResolvedStreamConfig,
  StreamConfig,
  StreamInfo,
  StreamMessage,
  SubscribeOptions,
  Unsubscribe,
} from "../types.ts";
import {
  apiErrorCode,
  fileStoreMsgSize,
  fromJsConfig,
  fromJsInfo,
  mapPublishError,
  mapStreamError,
  resolveStreamConfig,
  serverHasDiscardNewBytesBug,
  toJsConfig,
} from "./config.ts";
import { type FeedClients, StreamFeed } from "./feed.ts";
import { fromNatsHeaders, MSG_ID_HDR, toStreamMessage } from "./message.ts";
import { readLastBefore, readPage } from "./reader.ts";
import { attemptTimeout, Bell, backoff, isTransient, retrying, sleep, sleepOrWake } from "./retry.ts";
import { SubjectWindow, WINDOW_SIZE, WindowCache } from "./window.ts";

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

/** A stream publish waiting in its subject's outbox. */
interface Outgoing {
  ks: KnownStream;
  payload: Uint8Array;
  h: MsgHdrsImpl;
  msgId: string;
  generatedId: boolean;
  expected: number | undefined;
  deadline: number;
  lastError?: unknown;
  resolve: (ack: PublishAck) => void;
  reject: (err: unknown) => void;
}

/** At most this many publishes of one subject are sent before their answers are in. */
const OUTBOX_BATCH = 256;

/** Headers the engine (or JetStream) sets; they are not the app's, so deliveries leave them out. */
const EXPECTED_LAST_SUBJ_SEQ_HDR = "Nats-Expected-Last-Subject-Sequence";
/** How long "no stream captures this subject" is believed before asking the server again. */
const NO_STREAM_TTL_MS = 2_000;
/** How long a STREAM.NAMES lookup for a subscription pattern is reused. */
const DISCOVERY_TTL_MS = 10_000;
/** How long history waits for the feed to reach the stream's last seq before reading the stream directly. */
const FEED_CATCH_UP_MS = 2_000;
const REPLAY_PAGE = 1_000;
const JS_API_TIMEOUT_MS = 2_000;
/** The feeds' API requests (stream info, consumer create): short, since they are retried (retry.ts). */
const FEED_API_TIMEOUT_MS = 1_000;
/** JetStream announces each stream leader it elects here (the last token is the stream). */
const LEADER_ELECTED = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*";
/**
 * How long reads and stream management keep retrying through a failover (timeouts, no responders): no
 * consumer can be created without a meta leader, no stream read or update without a stream leader.
 */
const API_RETRY_MS = 15_000;

const enc = new TextEncoder();

export async function connectNats(opts: NatsEngineOptions): Promise<PubSub> {
  const log = opts.logger ?? silentLogger;
  const co: NodeConnectionOptions = {
    servers: opts.servers,
    name: opts.name ?? "via-ts",
    // Defaults give up for good after ~21 s of outage (docs/reference/nats-facts.md §7): never give up, retry fast.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 250,
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
  // checkAPI: false skips an account-info round trip that can time out right after a node dies (docs/reference/nats-facts.md §3).
  // A short API timeout: during a cluster failover a request may get no answer at all, and a retry after
  // JS_API_TIMEOUT_MS gets through sooner than one long wait (consumer create: 5-8 s with 1 s tries,
  // ~20 s with the 5 s default, measured on the 3-node cluster).
  const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: JS_API_TIMEOUT_MS });
  const js = jetstream(nc, { timeout: JS_API_TIMEOUT_MS });
  const feedClients: FeedClients = {
    nc,
    js: jetstream(nc, { timeout: FEED_API_TIMEOUT_MS }),
    jsm: await jetstreamManager(nc, { checkAPI: false, timeout: FEED_API_TIMEOUT_MS }),
  };
  return new NatsPubSub(nc, js, jsm, log, opts.publishRetryMs ?? 15_000, feedClients);
}

interface KnownStream {
  name: string;
  config: ResolvedStreamConfig;
  feed: StreamFeed;
  /** Removers of this stream's subject patterns in the stream router. */
  routes: Array<() => void>;
  /** Resolves once the feed's first consumer is pulling. */
  ready: Promise<void>;
  /** Serialises check-then-publish for discard "new" + maxBytes on servers with nats-server#4771. */
  bytesGate: Promise<void>;
}

/** One local subscription. Stream messages come from the feeds, core messages from the pattern's core sub. */
class Subscriber {
  closed = false;
  replaying = false;
  /** Holds a reference on the core subscription of its pattern. */
  core = false;
  /** Last seq delivered per stream: later feed copies (restarts, replay seam) are dropped. */
  readonly last = new Map<string, number>();
  /** Streams whose feed skipped deleted seqs since this subscriber's last delivery from them. */
  gaps: Set<string> | undefined;
  #buffer: StreamMessage[] = [];

  constructor(
    readonly pattern: string,
    readonly handler: Handler,
    readonly log: Logger,
  ) {}

  fromFeed(m: StreamMessage): void {
    if (this.closed) return;
    if (this.replaying) {
      this.#buffer.push(m);
      return;
    }
    this.emitStream(m);
  }

  emitStream(m: StreamMessage): void {
    if (this.closed) return;
    if (m.seq <= (this.last.get(m.stream) ?? 0)) return;
    this.last.set(m.stream, m.seq);
    if (this.gaps?.delete(m.stream)) {
      // A copy for this subscriber alone: the shared message object stays as it is for the others.
      this.#call(Object.freeze({ ...m, gapBefore: true as const }));
      return;
    }
    this.#call(m);
  }

  /** The stream's feed skipped deleted seqs: this subscriber's next message from it says so. */
  skipped(stream: string): void {
    if (this.closed || !this.last.has(stream)) return;
    this.gaps ??= new Set();
    this.gaps.add(stream);
  }

  emitCore(d: Delivery): void {
    if (!this.closed) this.#call(d);
  }

  /** Ends replay: the live messages that arrived meanwhile follow the replayed ones, deduped by seq. */
  goLive(): void {
    const buffered = this.#buffer;
    this.#buffer = [];
    this.replaying = false;
    for (const m of buffered) this.emitStream(m);
  }

  #call(d: Delivery): void {
    try {
      const r = this.handler(d) as unknown;
      if (r instanceof Promise) r.catch((err: unknown) => this.#failed(d, err));
    } catch (err) {
      // One failing handler must not stop the feed for everyone else.
      this.#failed(d, err);
    }
  }

  #failed(d: Delivery, err: unknown): void {
    this.log.error({ err, pattern: this.pattern, subject: d.subject, seq: d.seq }, "subscription handler threw");
  }
}

interface CoreSub {
  sub: Subscription;
  subscribers: Set<Subscriber>;
}

/** Validates like the embedded engine (so a header means the same on both) and converts. */
function toNatsHeaders(h: Headers | undefined): MsgHdrs | undefined {
  const entries = checkHeaders(h);
  if (entries.length === 0) return undefined;
  const out = natsHeaders();
  for (const [k, v] of entries) out.set(k, v);
  return out;
}

/** Is every subject matching `p` also matched by `s`? (`p` ⊆ `s`, both valid patterns.) */
export function patternCovers(s: string, p: string): boolean {
  const st = s.split(".");
  const pt = p.split(".");
  for (let i = 0; ; i++) {
    if (i === st.length) return i === pt.length;
    if (st[i] === ">") return i < pt.length;
    if (i === pt.length) return false;
    if (pt[i] === ">") return false;
    if (st[i] === "*") continue;
    if (pt[i] !== st[i]) return false;
  }
}

export class NatsPubSub implements PubSub {
  readonly kind = "nats" as const;

  #closed = false;
  #closing: Promise<void> | null = null;
  #streams = new Map<string, KnownStream>();
  #registering = new Map<string, Promise<KnownStream>>();
  /** Stream subject patterns -> stream name: "is this subject stored, and where". */
  #streamRouter = new SubjectRouter<string>();
  #subs = new SubjectRouter<Subscriber>();
  #coreSubs = new Map<string, CoreSub>();
  #noStream = new Map<string, number>();
  #finding = new Map<string, Promise<KnownStream | null>>();
  #discovered = new Map<string, { until: number; done: Promise<void> }>();
  /** Highest seq this process got an ack for, per stream: a later live subscriber starts after it. */
  #lastAcked = new Map<string, number>();
  #windows = new WindowCache();
  #allSubs = new Set<Subscriber>();
  /** Per subject: stream publishes not yet answered, in call order (see #drain). */
  #outboxes = new Map<string, Outgoing[]>();
  /**
   * Rings on every reconnect and every stream-leader election: publish batches waiting for answers that
   * will not come go again at once, retries stop waiting, feeds look again.
   */
  readonly #bell = new Bell();
  readonly #bytesBug: boolean;
  /** Between a "disconnect" and the next "reconnect" status of the connection. */
  #disconnected = false;
  #reconnects = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
    private readonly publishRetryMs: number,
    private readonly feedClients: FeedClients,
  ) {
    this.#bytesBug = serverHasDiscardNewBytesBug(nc.info?.version);
    void this.#watchStatus();
    this.#watchLeaders();
  }

  /**
   * A stream leader elected (after its old leader died, or moved): the cue that its publishes and reads
   * are answered again, seconds before a missed heartbeat or a request timeout would tell. Best effort:
   * a user not allowed to subscribe to advisories still recovers by those.
   */
  #watchLeaders(): void {
    try {
      this.nc.subscribe(LEADER_ELECTED, {
        callback: (err, msg) => {
          if (err || this.#closed) return;
          const stream = msg.subject.slice(LEADER_ELECTED.length - 1);
          const ks = this.#streams.get(stream);
          if (!ks) return;
          this.log.info({ stream }, "nats stream leader elected");
          // Its consumer may have lived on the node that died; a fresh one costs milliseconds, and direct
          // reads carry the feed meanwhile.
          ks.feed.restart("stream leader elected");
          this.#bell.ring();
        },
      });
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        "nats: no stream leader advisories; failover is noticed by timeouts",
      );
    }
  }

  // ---------------------------------------------------------------- connection

  async #watchStatus(): Promise<void> {
    try {
      await this.#statusLoop();
    } catch (err) {
      if (!this.#closed) this.log.error({ err }, "nats status watcher stopped");
    }
  }

  async #statusLoop(): Promise<void> {
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
          // Consumers may be gone (server restart) or stalled; resume every feed from its last seq now
          // instead of waiting for missed heartbeats.
          for (const ks of this.#streams.values()) ks.feed.restart("reconnect");
          this.#bell.ring();
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

  status(): PubSubStatus {
    return { connected: !this.#closed && !this.#disconnected && !this.nc.isClosed(), reconnects: this.#reconnects };
  }

  #assertOpen(): void {
    if (this.#closed) throw new PubSubClosedError();
  }

  // ---------------------------------------------------------------- streams

  async ensureStream(config: StreamConfig): Promise<StreamInfo> {
    this.#assertOpen();
    const resolved = resolveStreamConfig(config);
    const jsCfg = toJsConfig(resolved);
    // add and update with the same config are idempotent, so a retry after a lost reply is safe.
    const deadline = Date.now() + API_RETRY_MS;
    let si: JsStreamInfo;
    let updated = false;
    try {
      si = await this.#retrying(() => this.jsm.streams.add(jsCfg), deadline);
    } catch (err) {
      if (apiErrorCode(err) !== 10058) throw mapStreamError(err, resolved.name);
      // Exists with another config: update the limits in place (the server applies them at once).
      try {
        si = await this.#retrying(() => this.jsm.streams.update(resolved.name, jsCfg), deadline);
        updated = true;
      } catch (err2) {
        throw mapStreamError(err2, resolved.name);
      }
    }
    this.#assertOpen();
    const known = this.#streams.get(resolved.name);
    if (known && known.feed.epoch === si.created) {
      known.config = resolved;
      this.#setRoutes(known, resolved.subjects);
      await known.ready;
    } else {
      if (known) this.#forget(known);
      const ks = await this.#register(resolved.name, si);
      ks.config = resolved;
    }
    const info = await this.info(resolved.name);
    const perSubject = resolved.maxMsgsPerSubject;
    if (updated && perSubject > 0) {
      // nats-server 2.9.10 does not trim at once when max_msgs_per_subject goes from unlimited to a
      // limit (it does when an existing limit is lowered). Trim the subjects over it ourselves, oldest
      // first, exactly what the limit would do; on servers that trim there is nothing left over to trim.
      const over = Object.entries(info.subjects).filter(([, n]) => n > perSubject);
      if (over.length > 0) {
        for (const [subject] of over) {
          await this.jsm.streams.purge(resolved.name, { filter: subject, keep: perSubject });
        }
        return this.info(resolved.name);
      }
    }
    return info;
  }

  async info(stream: string): Promise<StreamInfo> {
    this.#assertOpen();
    try {
      const si = await this.#retrying(
        () => this.jsm.streams.info(stream, { subjects_filter: ">" }),
        Date.now() + API_RETRY_MS,
      );
      const ks = this.#streams.get(stream);
      if (ks) ks.config = fromJsConfig(si.config);
      return fromJsInfo(si);
    } catch (err) {
      if ((err as Error)?.name === "InvalidNameError") throw new StreamNotFoundError(stream);
      throw mapStreamError(err, stream);
    }
  }

  async deleteStream(stream: string): Promise<void> {
    this.#assertOpen();
    try {
      await this.jsm.streams.delete(stream);
    } catch (err) {
      if ((err as Error)?.name === "InvalidNameError") throw new StreamNotFoundError(stream);
      throw mapStreamError(err, stream);
    }
    const ks = this.#streams.get(stream);
    if (ks) this.#forget(ks);
  }

  #setRoutes(ks: KnownStream, subjects: string[]): void {
    for (const r of ks.routes) r();
    ks.routes = subjects.map((s) => this.#streamRouter.add(s, ks.name));
    this.#noStream.clear();
  }

  #forget(ks: KnownStream): void {
    void ks.feed.stop();
    for (const r of ks.routes) r();
    this.#streams.delete(ks.name);
    this.#windows.dropStream(ks.name);
    this.#lastAcked.delete(ks.name);
    for (const sub of this.#allSubs) {
      // Positions of a deleted stream mean nothing for a stream recreated under its name.
      sub.last.delete(ks.name);
      // Subscribers that relied on this stream's feed now need core delivery for those subjects.
      if (!sub.core && !this.#covered(sub.pattern)) this.#attachCore(sub.pattern, sub);
    }
  }

  /** Makes a stream known: routes its subjects and starts its feed at the stream's current end. */
  #register(name: string, si?: JsStreamInfo): Promise<KnownStream> {
    const existing = this.#streams.get(name);
    if (existing) return existing.ready.then(() => existing);
    let p = this.#registering.get(name);
    if (p) return p;
    p = (async () => {
      const info = si ?? (await this.jsm.streams.info(name));
      this.#assertOpen();
      const already = this.#streams.get(name);
      if (already) return already;
      const feed = new StreamFeed(
        this.feedClients,
        name,
        info.created,
        info.state.last_seq + 1,
        {
          onMessage: (stream, m) => this.#onFeedMessage(stream, m),
          onEpochChange: (stream) => this.#onEpochChange(stream),
          onSkip: (stream) => this.#onFeedSkip(stream),
        },
        this.log,
        this.#bell,
      );
      const ks: KnownStream = {
        name,
        config: fromJsConfig(info.config),
        feed,
        routes: [],
        ready: Promise.resolve(),
        bytesGate: Promise.resolve(),
      };
      this.#streams.set(name, ks);
      this.#setRoutes(ks, info.config.subjects ?? []);
      ks.ready = feed.start();
      await ks.ready;
      return ks;
    })().finally(() => this.#registering.delete(name));
    this.#registering.set(name, p);
    return p;
  }

  #onFeedMessage(stream: string, m: StreamMessage): void {
    const w = this.#windows.peek(m.subject);
    if (w && w.stream === stream) w.append(m);
    for (const sub of this.#subs.match(m.subject)) sub.fromFeed(m);
  }

  /** The stream's feed skipped deleted seqs: every subscriber that follows the stream is told with its next message. */
  #onFeedSkip(stream: string): void {
    for (const sub of this.#allSubs) sub.skipped(stream);
  }

  #onEpochChange(stream: string): void {
    this.#windows.dropStream(stream);
    this.#lastAcked.delete(stream);
    // Subscribers' positions belong to the old epoch; the new one starts again at seq 1.
    for (const sub of this.#allSubs) sub.last.delete(stream);
  }

  /** The known stream that captures a literal subject, asking the server (cached) when none does. */
  async #streamFor(subject: string): Promise<KnownStream | null> {
    const hit = this.#streamRouter.match(subject)[0];
    if (hit !== undefined) {
      const ks = this.#streams.get(hit);
      if (ks) return ks;
    }
    const until = this.#noStream.get(subject);
    if (until !== undefined && until > Date.now()) return null;
    let p = this.#finding.get(subject);
    if (!p) {
      p = (async () => {
        let name: string;
        try {
          name = await this.jsm.streams.find(subject);
        } catch (err) {
          if ((err as Error)?.message?.includes("no stream matches subject")) {
            if (this.#noStream.size > 10_000) this.#noStream.clear();
            this.#noStream.set(subject, Date.now() + NO_STREAM_TTL_MS);
            return null;
          }
          throw err;
        }
        return this.#register(name);
      })().finally(() => this.#finding.delete(subject));
      this.#finding.set(subject, p);
    }
    return p;
  }

  /** Finds streams whose subjects overlap a subscription pattern and makes them known (cached per pattern). */
  #discover(pattern: string): Promise<void> {
    const now = Date.now();
    const cached = this.#discovered.get(pattern);
    if (cached && cached.until > now) return cached.done;
    const done = (async () => {
      try {
        const names: string[] = [];
        for await (const n of this.jsm.streams.names(pattern)) names.push(n);
        await Promise.all(names.filter((n) => !this.#streams.has(n)).map((n) => this.#register(n)));
      } catch (err) {
        if (!this.#closed) this.log.warn({ err: (err as Error).message, pattern }, "nats stream discovery failed");
        this.#discovered.delete(pattern);
      }
    })();
    if (this.#discovered.size > 10_000) this.#discovered.clear();
    this.#discovered.set(pattern, { until: now + DISCOVERY_TTL_MS, done });
    return done;
  }

  #overlapping(pattern: string): KnownStream[] {
    const out: KnownStream[] = [];
    for (const ks of this.#streams.values()) {
      if (ks.config.subjects.some((s) => patternsOverlap(s, pattern))) out.push(ks);
    }
    return out;
  }

  #covered(pattern: string): boolean {
    for (const ks of this.#streams.values()) {
      if (ks.config.subjects.some((s) => patternCovers(s, pattern))) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- publish

  async publish(subject: string, data: Uint8Array | string, opts: PublishOptions = {}): Promise<PublishAck | null> {
    this.#assertOpen();
    parsePublishSubject(subject);
    let payload: Uint8Array;
    if (typeof data === "string") payload = enc.encode(data);
    // A copy: a retry re-sends it later, and the caller may reuse its buffer meanwhile.
    else if (data instanceof Uint8Array) payload = new Uint8Array(data);
    else throw new TypeError("data must be a Uint8Array or a string");
    const userHeaders = toNatsHeaders(opts.headers);
    const expected = opts.expectLastSubjectSeq;
    if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 0)) {
      throw new TypeError(`expectLastSubjectSeq must be a non-negative integer, got ${String(expected)}`);
    }
    if (opts.msgId !== undefined && (typeof opts.msgId !== "string" || opts.msgId.length === 0)) {
      throw new TypeError("msgId must be a non-empty string");
    }
    const deadline = Date.now() + this.publishRetryMs;
    // The lookup is a server round trip for a stream this process does not know yet: retry it through an
    // outage like the publish itself.
    const ks = await this.#retrying(() => this.#streamFor(subject), deadline);
    this.#assertOpen();
    if (!ks) {
      this.nc.publish(subject, payload, userHeaders ? { headers: userHeaders } : undefined);
      return null;
    }
    const cfg = ks.config;
    // The server counts headers (incl. our msg id) in max_msg_size; ours is about the payload.
    if (cfg.maxMsgSize > 0 && payload.length > cfg.maxMsgSize) throw new StreamLimitError(ks.name, "maxMsgSize");
    const h = (userHeaders ?? natsHeaders()) as MsgHdrsImpl;
    // Always a msg id, so a retry after a lost ack is deduplicated by the server instead of stored twice.
    const msgId = opts.msgId ?? nuid.next();
    h.set(MSG_ID_HDR, msgId);
    if (expected !== undefined) h.set(EXPECTED_LAST_SUBJ_SEQ_HDR, String(expected));
    const send = () => this.#send(ks, subject, payload, h, msgId, opts.msgId === undefined, expected, deadline);
    if (!(this.#bytesBug && cfg.discard === "new" && cfg.maxBytes > 0)) return send();
    // Check and publish one at a time per stream in this process, so our own concurrent publishes cannot
    // all pass the check and then make the server evict (see #checkBytes).
    const prev = ks.bytesGate;
    let release!: () => void;
    ks.bytesGate = new Promise<void>((r) => {
      release = r;
    });
    try {
      await prev;
      await this.#retrying(() => this.#checkBytes(ks, subject, h, payload.length), deadline);
      return await send();
    } finally {
      release();
    }
  }

  /**
   * Queues one stream publish in its subject's outbox; it is sent (and re-sent with the same msg id) until
   * acked, definitely refused, or past its deadline. See #drain for why an outbox.
   */
  #send(
    ks: KnownStream,
    subject: string,
    payload: Uint8Array,
    h: MsgHdrsImpl,
    msgId: string,
    generatedId: boolean,
    expected: number | undefined,
    deadline: number,
  ): Promise<PublishAck> {
    return new Promise<PublishAck>((resolve, reject) => {
      const o: Outgoing = { ks, payload, h, msgId, generatedId, expected, deadline, resolve, reject };
      const queue = this.#outboxes.get(subject);
      if (queue) {
        queue.push(o);
        return;
      }
      const fresh = [o];
      this.#outboxes.set(subject, fresh);
      void this.#drain(subject, fresh);
    });
  }

  /**
   * Sends a subject's queued publishes, keeping their call order in the stream across failures.
   *
   * Everything queued goes out together (one write, in call order, so the server stores it in that order),
   * and what is queued meanwhile waits for that batch's answers. A publish that failed transiently (no ack
   * in time, no responders, a lost connection) goes again, with the same msg id, before anything queued
   * after it. Publishing each message on its own retry schedule, as this engine did before, stored the
   * messages sent during an outage in the order their retries happened to fire, after messages sent later
   * (the chat drill saw every message of a 2 s nats-server outage stored after newer ones).
   *
   * And: the client drops whatever was written while disconnected when it dials again, so a reconnect
   * re-sends the batch in flight at once instead of waiting for its attempt timeout.
   */
  async #drain(subject: string, queue: Outgoing[]): Promise<void> {
    let attempt = 0;
    try {
      while (queue.length > 0) {
        if (this.#closed) {
          for (const o of queue.splice(0)) o.reject(new PubSubClosedError());
          return;
        }
        const batch = queue.slice(0, OUTBOX_BATCH);
        const results: Array<{ ack: JsPubAck } | { err: unknown } | undefined> = new Array(batch.length);
        // One timeout for the batch, bounded by its most urgent deadline: the batch is answered as a whole,
        // so a publish about to expire must not wait for the others' longer attempts. Short after a failure
        // (retry.ts): an unanswered attempt during an election should not delay the first one after it.
        let left = attemptTimeout(attempt);
        for (const o of batch) left = Math.min(left, o.deadline - Date.now());
        const timeout = Math.max(250, left);
        const answers = Promise.all(
          batch.map((o, i) => {
            return this.js.publish(subject, o.payload, { headers: o.h, timeout }).then(
              (ack) => {
                results[i] = { ack };
              },
              (err: unknown) => {
                results[i] = { err };
              },
            );
          }),
        );
        const reconnected = await this.#untilWoken(answers);
        let failed = false;
        let lastError: unknown;
        const done = new Set<Outgoing>();
        for (const [i, o] of batch.entries()) {
          const r = results[i];
          if (r === undefined) {
            // No answer before the connection was replaced: it goes again on the new one.
            failed = true;
            continue;
          }
          if ("ack" in r) {
            const ack = r.ack;
            if (ack.seq > (this.#lastAcked.get(ack.stream) ?? 0)) this.#lastAcked.set(ack.stream, ack.seq);
            // Stored: the feed must deliver it soon (it reads it at once if its consumer is down).
            if (ack.stream === o.ks.name) o.ks.feed.expect(ack.seq);
            // With an id we generated, "duplicate" can only mean our own retry after a lost ack: the caller's
            // message is stored once, and for the caller it is new.
            o.resolve({ stream: ack.stream, seq: ack.seq, duplicate: o.generatedId ? false : ack.duplicate });
          } else if (this.#closed) {
            o.reject(new PubSubClosedError());
          } else if (mapPublishError(r.err, o.ks.name, subject, o.expected) || !isTransient(r.err)) {
            o.reject(mapPublishError(r.err, o.ks.name, subject, o.expected) ?? r.err);
          } else {
            failed = true;
            lastError = r.err;
            o.lastError = r.err;
            continue;
          }
          done.add(o);
        }
        for (let i = queue.length - 1; i >= 0; i--) if (done.has(queue[i]!)) queue.splice(i, 1);
        if (!failed) {
          attempt = 0;
          continue;
        }
        attempt++;
        const wait = reconnected ? 0 : backoff(attempt);
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
        this.log.debug(
          { subject, queued: queue.length, attempt, reconnected, err: (lastError as Error | undefined)?.message },
          "nats publish retry",
        );
        if (wait > 0 && queue.length > 0) await sleepOrWake(wait, this.#bell.next());
      }
    } finally {
      if (this.#outboxes.get(subject) === queue) this.#outboxes.delete(subject);
    }
  }

  /** Waits for `p`, or less if the bell rings meanwhile (a reconnect, a new stream leader); true if it did. */
  #untilWoken(p: Promise<unknown>): Promise<boolean> {
    return Promise.race([p.then(() => false), this.#bell.next().then(() => true)]);
  }

  /**
   * discard "new" + maxBytes on servers < 2.10.5: the server checks the payload only and then evicts old
   * messages to make room (nats-server#4771). So check the exact stored size here first: one stream-info
   * round trip, only for such streams on such servers. Exact within one process (publishes to such a stream
   * are serialised); racy between processes (the server still keeps the byte limit, by evicting). A caller's
   * own re-publish of an already stored msg id near the limit is rejected instead of acked as a duplicate.
   */
  async #checkBytes(ks: KnownStream, subject: string, h: MsgHdrsImpl, payloadLen: number): Promise<void> {
    const si = await this.jsm.streams.info(ks.name);
    if (si.state.bytes + fileStoreMsgSize(subject, h, payloadLen) > ks.config.maxBytes) {
      throw new StreamLimitError(ks.name, "maxBytes");
    }
  }

  // ---------------------------------------------------------------- subscribe

  subscribe(pattern: string, handler: Handler, opts: SubscribeOptions = {}): Unsubscribe {
    this.#assertOpen();
    parsePattern(pattern);
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    const fromSeq = opts.fromSeq;
    if (fromSeq !== undefined && (!Number.isSafeInteger(fromSeq) || fromSeq < 0)) {
      throw new TypeError(`fromSeq must be a non-negative integer, got ${String(fromSeq)}`);
    }
    const sub = new Subscriber(pattern, handler, this.log);
    for (const ks of this.#overlapping(pattern)) {
      // A live subscriber starts after what this process has seen or published; a replaying one at fromSeq.
      const start = fromSeq !== undefined ? fromSeq - 1 : Math.max(ks.feed.lastSeq, this.#lastAcked.get(ks.name) ?? 0);
      sub.last.set(ks.name, Math.max(0, start));
    }
    if (fromSeq !== undefined) sub.replaying = true;
    const removeRoute = this.#subs.add(pattern, sub);
    this.#allSubs.add(sub);
    const covered = this.#covered(pattern);
    if (!covered) {
      this.#attachCore(pattern, sub);
      // Streams created by other processes that overlap the pattern: start their feeds. Best effort: what
      // is published before a feed starts reaches this subscriber as a core message, without a seq.
      // (ensureStream first, or subscribe with fromSeq, for exact positions.)
      if (fromSeq === undefined) void this.#discover(pattern);
    }
    if (fromSeq !== undefined) void this.#replay(sub, fromSeq, covered);
    return () => {
      if (sub.closed) return;
      sub.closed = true;
      removeRoute();
      this.#allSubs.delete(sub);
      this.#detachCore(pattern, sub);
    };
  }

  #attachCore(pattern: string, sub: Subscriber): void {
    let cs = this.#coreSubs.get(pattern);
    if (!cs) {
      const subscribers = new Set<Subscriber>();
      // A leading wildcard on a real server also matches the client's own plumbing (_INBOX replies,
      // $JS API calls): not app messages, and the embedded engine has none. Only a pattern that names
      // such a prefix explicitly gets them.
      const first = pattern.split(".")[0]!;
      const internalToo = first !== "*" && first !== ">";
      const nsub = this.nc.subscribe(pattern, {
        callback: (err, msg) => {
          if (err) {
            this.log.error({ err, pattern }, "nats core subscription error");
            return;
          }
          this.#onCoreMessage(msg, subscribers, internalToo);
        },
      });
      cs = { sub: nsub, subscribers };
      this.#coreSubs.set(pattern, cs);
    }
    cs.subscribers.add(sub);
    sub.core = true;
  }

  #detachCore(pattern: string, sub: Subscriber): void {
    const cs = this.#coreSubs.get(pattern);
    sub.core = false;
    if (!cs) return;
    cs.subscribers.delete(sub);
    if (cs.subscribers.size === 0) {
      this.#coreSubs.delete(pattern);
      if (!this.#closed) cs.sub.unsubscribe();
    }
  }

  #onCoreMessage(msg: Msg, subscribers: Set<Subscriber>, internalToo: boolean): void {
    if (!internalToo && (msg.subject.startsWith("$") || msg.subject.startsWith("_INBOX."))) return;
    // A subject of a known stream arrives through that stream's feed, with its seq.
    if (this.#streamRouter.match(msg.subject).length > 0) return;
    const d: Delivery = Object.freeze({
      subject: msg.subject,
      data: msg.data,
      headers: Object.freeze(fromNatsHeaders(msg.headers)),
    });
    for (const s of subscribers) s.emitCore(d);
  }

  async #replay(sub: Subscriber, fromSeq: number, covered: boolean): Promise<void> {
    try {
      if (!covered) await this.#discover(sub.pattern);
      for (const ks of this.#overlapping(sub.pattern)) {
        if (sub.closed || this.#closed) return;
        if (!sub.last.has(ks.name)) sub.last.set(ks.name, Math.max(0, fromSeq - 1));
        await ks.ready;
        await this.#replayStream(sub, ks);
      }
    } finally {
      sub.goLive();
    }
  }

  async #replayStream(sub: Subscriber, ks: KnownStream): Promise<void> {
    // The server can filter by the pattern only when the pattern lies inside one of the stream's subjects.
    const serverFilter = ks.config.subjects.some((s) => patternCovers(s, sub.pattern));
    let attempt = 0;
    while (!sub.closed && !this.#closed) {
      const from = (sub.last.get(ks.name) ?? 0) + 1;
      try {
        const page = await readPage(this.js, ks.name, {
          ...(serverFilter ? { filter: sub.pattern } : {}),
          ...(serverFilter ? {} : { match: (s: string) => matchesPattern(sub.pattern, s) }),
          startSeq: from,
          limit: REPLAY_PAGE,
        });
        attempt = 0;
        for (const m of page.msgs) sub.emitStream(toStreamMessage(ks.name, m));
        // Non-matching messages advance the position too, so the next page does not re-read them.
        if (page.lastSeq > (sub.last.get(ks.name) ?? 0)) sub.last.set(ks.name, page.lastSeq);
        if (page.done) return;
      } catch (err) {
        if (sub.closed || this.#closed) return;
        attempt++;
        this.log.warn(
          { err: (err as Error).message, stream: ks.name, from, attempt },
          "nats replay read failed; retrying",
        );
        await sleepOrWake(backoff(attempt), this.#bell.next());
      }
    }
  }

  // ---------------------------------------------------------------- history

  async history(subject: string, query: HistoryQuery): Promise<StreamMessage[]> {
    this.#assertOpen();
    parsePublishSubject(subject);
    validateQuery(query);
    const deadline = Date.now() + API_RETRY_MS;
    const retry = <T>(fn: () => Promise<T>) => this.#retrying(fn, deadline);
    const ks = await retry(() => this.#streamFor(subject));
    this.#assertOpen();
    if (!ks) return [];
    await ks.ready;
    // One cheap round trip: the subject's stored count and the stream's bounds right now. Stored messages
    // of a subject are always its newest ones (limits and expiry evict oldest first), so with the count the
    // window knows which of its messages are still there; and last_seq gives read-your-writes.
    const si = await retry(() => this.jsm.streams.info(ks.name, { subjects_filter: subject }));
    const lastSeq = si.state.last_seq;
    const count = si.state.subjects?.[subject] ?? 0;
    const firstSeq = si.state.first_seq;
    const density = si.state.messages > 0 ? count / si.state.messages : 1;
    if (count === 0) return [];

    let cands: StreamMessage[] = [];
    let hasAll = false;
    const w = await this.#window(ks, subject, lastSeq, firstSeq, density, deadline);
    // The window is only complete up to lastSeq if the feed got there while the window was in the cache
    // (an LRU eviction meanwhile stops its updates).
    if (w && (await ks.feed.waitFor(lastSeq, FEED_CATCH_UP_MS)) && this.#windows.peek(subject) === w) {
      cands = w.msgs.filter((m) => m.seq <= lastSeq);
      if (cands.length > count) cands = cands.slice(cands.length - count);
      hasAll = w.low === 0 || cands.length >= count;
    }
    const readBefore = async (beforeSeq: number, limit: number): Promise<StreamMessage[]> => {
      const older = cands.filter((m) => m.seq < beforeSeq);
      if (older.length >= limit) return older.slice(older.length - limit);
      if (hasAll) return older;
      const more = await retry(() =>
        readLastBefore(this.js, ks.name, {
          filter: subject,
          beforeSeq: older.length > 0 ? older[0]!.seq : beforeSeq,
          limit: limit - older.length,
          firstSeq,
          density,
        }),
      );
      return more.map((m) => toStreamMessage(ks.name, m)).concat(older);
    };
    if ("last" in query) return readBefore(lastSeq + 1, Math.min(query.last, count, MAX_HISTORY));
    const limit = Math.min(query.limit, MAX_HISTORY);
    if ("beforeSeq" in query) return readBefore(query.beforeSeq, limit);
    const after = query.afterSeq;
    if (hasAll || (cands.length > 0 && after + 1 >= cands[0]!.seq)) {
      return cands.filter((m) => m.seq > after).slice(0, limit);
    }
    const page = await retry(() => readPage(this.js, ks.name, { filter: subject, startSeq: after + 1, limit }));
    return page.msgs.map((m) => toStreamMessage(ks.name, m));
  }

  /** The subject's window, built from the stream on first use (null if that read fails: history reads the stream). */
  async #window(
    ks: KnownStream,
    subject: string,
    lastSeq: number,
    firstSeq: number,
    density: number,
    deadline: number,
  ): Promise<SubjectWindow | null> {
    let w = this.#windows.get(subject);
    if (w && w.stream !== ks.name) {
      this.#windows.delete(subject);
      w = undefined;
    }
    if (!w) {
      const nw = new SubjectWindow(ks.name, subject);
      // Registered before the read, so feed messages after this point are kept (see SubjectWindow.fill);
      // the read covers everything up to where the feed already is, so there is no gap at the seam.
      this.#windows.set(nw);
      const bound = Math.max(lastSeq, ks.feed.lastSeq);
      nw.building = (async () => {
        const read = await this.#retrying(
          () =>
            readLastBefore(this.js, ks.name, {
              filter: subject,
              beforeSeq: bound + 1,
              limit: WINDOW_SIZE,
              firstSeq,
              density,
            }),
          deadline,
        );
        // Fewer than asked means the read went back to the stream's first seq: it has every stored message.
        nw.fill(
          read.map((m) => toStreamMessage(ks.name, m)),
          read.length < WINDOW_SIZE,
        );
      })();
      w = nw;
    }
    try {
      await w.building;
      return w;
    } catch (err) {
      this.#windows.delete(subject);
      this.log.warn({ err: (err as Error).message, subject }, "nats history window build failed");
      return null;
    }
  }

  /** Retries transient failures (timeouts, no responders, failover) with the retry policy until the deadline. */
  #retrying<T>(fn: () => Promise<T>, deadline: number): Promise<T> {
    return retrying(fn, {
      deadline,
      assertOpen: () => this.#assertOpen(),
      wake: this.#bell,
      onRetry: (err, attempt) => this.log.debug({ err: (err as Error).message, attempt }, "nats read retry"),
    });
  }

  // ---------------------------------------------------------------- close

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      for (const cs of this.#coreSubs.values()) cs.sub.unsubscribe();
      this.#coreSubs.clear();
      for (const s of this.#allSubs) s.closed = true;
      this.#allSubs.clear();
      const feeds = [...this.#streams.values()].map((ks) => ks.feed);
      this.#streams.clear();
      // Deleting the feed consumers is a courtesy to the server; do not hang on it during an outage.
      await Promise.race([Promise.all(feeds.map((f) => f.stop())), sleep(2_000)]);
      if (!this.nc.isClosed()) {
        await Promise.race([this.nc.drain().catch(() => {}), sleep(2_000)]);
        if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
      }
    })();
    return this.#closing;
  }

  // ---------------------------------------------------------------- introspection for tests

  /** Feed state per known stream (tests and diagnostics). */
  feedStats(): Array<{ stream: string; consumer: string | null; lastSeq: number; consumersCreated: number }> {
    return [...this.#streams.values()].map((ks) => ({
      stream: ks.name,
      consumer: ks.feed.consumerName,
      lastSeq: ks.feed.lastSeq,
      consumersCreated: ks.feed.consumersCreated,
    }));
  }

  /** The feed object of a known stream (tests measure its restart timings). */
  feedOf(stream: string): StreamFeed | undefined {
    return this.#streams.get(stream)?.feed;
  }

  get connection(): NatsConnection {
    return this.nc;
  }

  /** Number of core NATS subscriptions held for non-stream patterns. */
  get coreSubscriptionCount(): number {
    return this.#coreSubs.size;
  }
}

function validateQuery(q: HistoryQuery): void {
  const bad = (what: string) => new TypeError(`history query: ${what}`);
  const nonNeg = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!q || typeof q !== "object") throw bad("must be an object");
  if ("last" in q) {
    if (!nonNeg(q.last)) throw bad("last must be a non-negative integer");
  } else if ("afterSeq" in q) {
    if (!nonNeg(q.afterSeq) || !nonNeg(q.limit)) throw bad("afterSeq and limit must be non-negative integers");
  } else if ("beforeSeq" in q) {
    if (!nonNeg(q.beforeSeq) || !nonNeg(q.limit)) throw bad("beforeSeq and limit must be non-negative integers");
  } else {
    throw bad("needs last, afterSeq or beforeSeq");
  }
}
