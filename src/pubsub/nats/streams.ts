// The streams the NATS engine knows, and their management: ensure (create, or update the limits in
// place), info, delete, and finding the stream that captures a subject or overlaps a pattern.
//
// "Known stream" = ensured by this process, or found on the server (publish via STREAM.FIND, subscribe
// via STREAM.NAMES). Each known stream has one feed (feed.ts) that hands its messages, in seq order, to
// the engine's subscriptions and history windows (StreamEvents); its subject patterns sit in a router,
// so "is this subject stored, and where" costs no round trip.
import type { StreamInfo as JsStreamInfo } from "@nats-io/jetstream";
import { resolveStreamConfig, subjectsOverlapError } from "../contract.ts";
import type { StreamConfigError } from "../errors.ts";
import { SubjectRouter } from "../router.ts";
import { patternCovers, patternsOverlap } from "../subjects.ts";
import type { ResolvedStreamConfig, StreamConfig, StreamInfo, StreamMessage } from "../types.ts";
import { fromJsConfig, fromJsInfo, toJsConfig } from "./config.ts";
import type { NatsLink } from "./connection.ts";
import {
  isNoStreamForSubject,
  isStreamNameInUse,
  isStreamNotFound,
  isSubjectsOverlap,
  mapStreamError,
} from "./errors.ts";
import { StreamFeed } from "./feed.ts";
import { API_RETRY_MS } from "./retry.ts";

/** How long "no stream captures this subject" is believed before asking the server again. */
const NO_STREAM_TTL_MS = 2_000;
/** How long a STREAM.NAMES lookup for a subscription pattern is reused. */
const DISCOVERY_TTL_MS = 10_000;
/** Caches keyed by subject or pattern are dropped whole past this size (they refill on demand). */
const MAX_CACHED_LOOKUPS = 10_000;

export interface KnownStream {
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

/** What the known streams tell the rest of the engine. */
export interface StreamEvents {
  /** A stored message, from the stream's feed: in seq order, once per seq. */
  onMessage(stream: string, m: StreamMessage): void;
  /** The feed skipped seqs the stream deleted (limits, expiry) before it got to them. */
  onSkip(stream: string): void;
  /** The stream was deleted and recreated under the same name: its positions start again at seq 1. */
  onEpochChange(stream: string): void;
  /** The stream is no longer known (deleted, or replaced by a new epoch ensured by this process). */
  onForget(stream: string): void;
}

export class StreamRegistry {
  #streams = new Map<string, KnownStream>();
  #registering = new Map<string, Promise<KnownStream>>();
  /** Stream subject patterns -> stream name: "is this subject stored, and where". */
  #router = new SubjectRouter<string>();
  #noStream = new Map<string, number>();
  #finding = new Map<string, Promise<KnownStream | null>>();
  #discovered = new Map<string, { until: number; done: Promise<void> }>();
  /** Highest seq this process got an ack for, per stream: a later live subscriber starts after it. */
  #lastAcked = new Map<string, number>();

  constructor(
    private readonly link: NatsLink,
    private readonly events: StreamEvents,
  ) {}

  get(name: string): KnownStream | undefined {
    return this.#streams.get(name);
  }

  all(): IterableIterator<KnownStream> {
    return this.#streams.values();
  }

  /** Is `subject` stored by a known stream (so it reaches subscribers through that stream's feed)? */
  stores(subject: string): boolean {
    return this.#router.match(subject).length > 0;
  }

  noteAcked(stream: string, seq: number): void {
    if (seq > (this.#lastAcked.get(stream) ?? 0)) this.#lastAcked.set(stream, seq);
  }

  lastAcked(stream: string): number {
    return this.#lastAcked.get(stream) ?? 0;
  }

  /** Every feed resumes from its last seq at once, instead of waiting for missed heartbeats. */
  restartFeeds(reason: string): void {
    for (const ks of this.#streams.values()) ks.feed.restart(reason);
  }

  /** Restarts one known stream's feed; false when the stream is not known. */
  restartFeed(stream: string, reason: string): boolean {
    const ks = this.#streams.get(stream);
    if (!ks) return false;
    ks.feed.restart(reason);
    return true;
  }

  /** Forgets every stream (the engine is closing) and returns their feeds for stopping. */
  takeFeeds(): StreamFeed[] {
    const feeds = [...this.#streams.values()].map((ks) => ks.feed);
    this.#streams.clear();
    return feeds;
  }

  async ensure(config: StreamConfig): Promise<StreamInfo> {
    this.link.assertOpen();
    const resolved = resolveStreamConfig(config);
    const jsCfg = toJsConfig(resolved);
    const { jsm } = this.link;
    // add and update with the same config are idempotent, so a retry after a lost reply is safe.
    const deadline = Date.now() + API_RETRY_MS;
    let si: JsStreamInfo;
    let updated = false;
    try {
      si = await this.link.retrying(() => jsm.streams.add(jsCfg), deadline);
    } catch (err) {
      if (!isStreamNameInUse(err)) throw await this.#ensureError(err, resolved);
      // Exists with another config: update the limits in place (the server applies them at once).
      try {
        si = await this.link.retrying(() => jsm.streams.update(resolved.name, jsCfg), deadline);
        updated = true;
      } catch (err2) {
        throw await this.#ensureError(err2, resolved);
      }
    }
    this.link.assertOpen();
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
      // limit (it does when an existing limit is lowered). Trim the subjects over it here, oldest first,
      // exactly what the limit would do; on servers that trim there is nothing left over to trim.
      const over = Object.entries(info.subjects).filter(([, n]) => n > perSubject);
      if (over.length > 0) {
        // A purge that keeps the newest N is the same request however often it is made: retried safely.
        for (const [subject] of over) {
          await this.link.retrying(
            () => jsm.streams.purge(resolved.name, { filter: subject, keep: perSubject }),
            deadline,
          );
        }
        return this.info(resolved.name);
      }
    }
    return info;
  }

  /**
   * The error ensureStream throws. The server does not say which stream overlaps; one listing of the
   * streams finds it, so the message names it as the embedded engine's does.
   */
  async #ensureError(err: unknown, config: ResolvedStreamConfig): Promise<unknown> {
    if (!isSubjectsOverlap(err)) return mapStreamError(err, config.name);
    const found = await this.#findOverlap(config).catch(() => null);
    return found ?? mapStreamError(err, config.name);
  }

  async #findOverlap(config: ResolvedStreamConfig): Promise<StreamConfigError | null> {
    for await (const si of this.link.jsm.streams.list()) {
      if (si.config.name === config.name) continue;
      for (const a of config.subjects) {
        for (const b of si.config.subjects ?? []) {
          if (patternsOverlap(a, b)) return subjectsOverlapError(config.name, a, b, si.config.name);
        }
      }
    }
    return null;
  }

  async info(stream: string): Promise<StreamInfo> {
    this.link.assertOpen();
    try {
      const si = await this.link.retrying(
        () => this.link.jsm.streams.info(stream, { subjects_filter: ">" }),
        Date.now() + API_RETRY_MS,
      );
      const ks = this.#streams.get(stream);
      if (ks) ks.config = fromJsConfig(si.config);
      return fromJsInfo(si);
    } catch (err) {
      throw mapStreamError(err, stream);
    }
  }

  async delete(stream: string): Promise<void> {
    this.link.assertOpen();
    // Retried through a failover like every stream request. A retry that finds no stream means an
    // earlier attempt deleted it and its answer was lost: done. Only the first attempt's "not found" is
    // the caller's error.
    let tries = 0;
    try {
      await this.link.retrying(async () => {
        try {
          await this.link.jsm.streams.delete(stream);
        } catch (err) {
          if (tries > 0 && isStreamNotFound(err)) return;
          throw err;
        } finally {
          tries++;
        }
      }, Date.now() + API_RETRY_MS);
    } catch (err) {
      throw mapStreamError(err, stream);
    }
    const ks = this.#streams.get(stream);
    if (ks) this.#forget(ks);
  }

  #setRoutes(ks: KnownStream, subjects: string[]): void {
    for (const r of ks.routes) r();
    ks.routes = subjects.map((s) => this.#router.add(s, ks.name));
    this.#noStream.clear();
  }

  #forget(ks: KnownStream): void {
    void ks.feed.stop();
    for (const r of ks.routes) r();
    this.#streams.delete(ks.name);
    this.#lastAcked.delete(ks.name);
    this.events.onForget(ks.name);
  }

  /** Makes a stream known: routes its subjects and starts its feed at the stream's current end. */
  #register(name: string, si?: JsStreamInfo): Promise<KnownStream> {
    const existing = this.#streams.get(name);
    if (existing) return existing.ready.then(() => existing);
    let p = this.#registering.get(name);
    if (p) return p;
    p = (async () => {
      const info = si ?? (await this.link.jsm.streams.info(name));
      this.link.assertOpen();
      const already = this.#streams.get(name);
      if (already) return already;
      const feed = new StreamFeed(
        this.link.feedClients,
        name,
        info.created,
        info.state.last_seq + 1,
        {
          onMessage: (stream, m) => this.events.onMessage(stream, m),
          onEpochChange: (stream) => {
            this.#lastAcked.delete(stream);
            this.events.onEpochChange(stream);
          },
          onSkip: (stream) => this.events.onSkip(stream),
        },
        this.link.log,
        this.link.bell,
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

  /** The known stream that captures a literal subject, asking the server (cached) when none does. */
  async streamFor(subject: string): Promise<KnownStream | null> {
    const hit = this.#router.match(subject)[0];
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
          name = await this.link.jsm.streams.find(subject);
        } catch (err) {
          if (isNoStreamForSubject(err)) {
            if (this.#noStream.size > MAX_CACHED_LOOKUPS) this.#noStream.clear();
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
  discover(pattern: string): Promise<void> {
    const now = Date.now();
    const cached = this.#discovered.get(pattern);
    if (cached && cached.until > now) return cached.done;
    const done = (async () => {
      try {
        const names: string[] = [];
        for await (const n of this.link.jsm.streams.names(pattern)) names.push(n);
        await Promise.all(names.filter((n) => !this.#streams.has(n)).map((n) => this.#register(n)));
      } catch (err) {
        if (!this.link.closed)
          this.link.log.warn({ err: (err as Error).message, pattern }, "nats stream discovery failed");
        this.#discovered.delete(pattern);
      }
    })();
    if (this.#discovered.size > MAX_CACHED_LOOKUPS) this.#discovered.clear();
    this.#discovered.set(pattern, { until: now + DISCOVERY_TTL_MS, done });
    return done;
  }

  /** Known streams some message of the pattern could be stored in. */
  overlapping(pattern: string): KnownStream[] {
    const out: KnownStream[] = [];
    for (const ks of this.#streams.values()) {
      if (ks.config.subjects.some((s) => patternsOverlap(s, pattern))) out.push(ks);
    }
    return out;
  }

  /** Does one known stream capture every subject of the pattern (so its feed alone serves it)? */
  covers(pattern: string): boolean {
    for (const ks of this.#streams.values()) {
      if (ks.config.subjects.some((s) => patternCovers(s, pattern))) return true;
    }
    return false;
  }
}
