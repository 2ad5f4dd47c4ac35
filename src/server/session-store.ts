// Session data kept in the app's pub/sub engine, so that a restart, or another instance with the same
// secret, has it: one subject per session in a small stream (`VIA_SESSIONS`, `_via.session.<token>`),
// whose last message is the session's whole data as JSON.
//
// - The subject's token is an HMAC of the session id (a key of its own, derived from the app secret):
//   the id is a bearer secret, and anyone who can list subjects (a NATS operator, a monitoring tool)
//   must not be able to turn them into cookies.
// - Expiry is the stream's: it keeps one message per subject (`maxMsgsPerSubject` 1) for `ttlMs`
//   (`maxAge`), so the data of a session nobody wrote for that long goes without any sweep of ours.
//   A write refreshes it; so does a live tab of a session whose record is older than half the TTL.
// - A read happens only for a signed cookie whose session this process does not hold (the page
//   render, or the event stream about to build a live tab); concurrent reads of one id share one.
// - Writes are coalesced (the sets of one turn of the event loop are one publish) and conditional on
//   the subject's last seq: when another instance wrote meanwhile, its record is read and this
//   instance's changed keys are laid over it, so two instances changing different keys lose neither.
//   A write that fails is logged and retried a few times; the handler that set the value never sees it.
// - Every instance follows the subjects live and updates the sessions it holds, so a rename on one
//   instance shows on the next page another instance serves for that browser.
//
// What a session's data may hold and how its record is written: session-data.ts.
import { createHmac, randomBytes } from "node:crypto";
import type { Logger } from "../log.ts";
import { WrongLastSequenceError } from "../pubsub/errors.ts";
import type { Delivery, PubSub, Unsubscribe } from "../pubsub/types.ts";
import { decodeRecord, MAX_SESSION_BYTES, type SessionEntry } from "./session-data.ts";

// The data's limits beside the store's settings, for code that reads both (test/unit/session-data.test.ts).
export { MAX_SESSION_BYTES, SessionDataError } from "./session-data.ts";

export const SESSION_STREAM = "VIA_SESSIONS";
export const SESSION_SUBJECT_PREFIX = "_via.session";
/** How long stored session data lives after its last write by default: 30 days. */
export const DEFAULT_SESSION_TTL_MS = 30 * 24 * 3600_000;
/** The smallest TTL taken: JetStream's max age has a resolution of about a second. */
export const MIN_SESSION_TTL_MS = 1_000;
/** Conflicting writes of other instances in a row before this write gives up for now. */
const MAX_CONFLICTS = 5;
/** Retries of a write that failed (the engine was unreachable), after these delays. */
const RETRY_DELAYS_MS = [1_000, 5_000, 30_000];
/** Marks the records this process wrote, so the live follower skips its own. */
const WRITER_HEADER = "Via-Session-Writer";

/** `AppOptions.sessions`: where session data (`c.session.set`) lives and for how long. */
export interface SessionOptions {
  /**
   * "engine": in the app's pub/sub engine, for every instance and across restarts (the default when the
   * app has `pubsub`); "memory": in this process only, lost on restart (the default without `pubsub`).
   */
  store?: "engine" | "memory";
  /**
   * With the engine store: how long a session's data is kept after its last write (ms, default 30 days,
   * at least 1 s). The stream's max age: every instance should use the same value (the last instance to
   * start sets it for all).
   */
  ttlMs?: number;
  /** With the engine store on a NATS cluster: replicas of the sessions stream (default 1). */
  replicas?: number;
}

export interface ResolvedSessionOptions {
  store: "engine" | "memory";
  ttlMs: number;
  replicas: number | undefined;
}

/** Checks `AppOptions.sessions` at `createApp`, so a bad value fails there and not on the first request. */
export function resolveSessionOptions(options: SessionOptions | undefined, hasEngine: boolean): ResolvedSessionOptions {
  const store = options?.store ?? (hasEngine ? "engine" : "memory");
  if (store !== "engine" && store !== "memory") {
    throw new RangeError(`sessions.store must be "engine" or "memory", got ${JSON.stringify(store)}`);
  }
  if (store === "engine" && !hasEngine) {
    throw new RangeError('sessions.store "engine" needs a pub/sub engine: pass `pubsub` to createApp');
  }
  const ttlMs = options?.ttlMs ?? DEFAULT_SESSION_TTL_MS;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_SESSION_TTL_MS) {
    throw new RangeError(`sessions.ttlMs must be an integer of at least ${MIN_SESSION_TTL_MS} ms, got ${ttlMs}`);
  }
  const replicas = options?.replicas;
  if (replicas !== undefined && (!Number.isSafeInteger(replicas) || replicas < 1)) {
    throw new RangeError(`sessions.replicas must be a positive integer, got ${replicas}`);
  }
  return { store, ttlMs, replicas };
}

/** What the engine store knows of one session: where it is stored, its last seq, what is not stored yet. */
export class StoredState {
  /** The subject's last stored seq as far as this process knows (0: nothing stored). */
  seq = 0;
  /** When that record was stored (ms since the epoch; 0: never). */
  time = 0;
  /** Keys set or deleted since the last write began. */
  dirty = new Set<string>();
  /** Keys of the write under way. */
  inflight = new Set<string>();
  /** Rewrite the record even with nothing changed (it is getting old while the session is in use). */
  refresh = false;
  queued = false;
  writing = false;
  failures = 0;

  constructor(readonly subject: string) {}

  /** Keys this process changed that the stream may not have yet. */
  get unstored(): Set<string> {
    return this.inflight.size === 0 ? this.dirty : new Set([...this.dirty, ...this.inflight]);
  }
}

/** A held session as the engine store sees it (session.ts): its stored state, its record, a newer record. */
export interface EngineSession {
  readonly _stored: StoredState | undefined;
  /** The record to write: the session's whole data. */
  _record(): string;
  /** Takes a stored record, except for `unstored`: keys this process changed since (they win). */
  _adopt(entries: Map<string, SessionEntry>, unstored: ReadonlySet<string>): void;
}

export interface StoredSession {
  state: StoredState;
  entries: Map<string, SessionEntry> | undefined;
}

export class EngineSessionStore {
  readonly #pubsub: PubSub;
  readonly #key: Buffer;
  readonly #ttlMs: number;
  readonly #log: Logger;
  /** Marks this process's writes (see WRITER_HEADER). */
  readonly #writer = randomBytes(9).toString("base64url");
  readonly #writes = new Set<Promise<void>>();
  readonly #retries = new Set<NodeJS.Timeout>();
  #unsubscribe: Unsubscribe | undefined;
  #closed = false;

  private constructor(pubsub: PubSub, secret: Buffer, ttlMs: number, log: Logger) {
    this.#pubsub = pubsub;
    // A key of its own: a subject token can stand in for neither a cookie MAC nor a tab id MAC.
    this.#key = createHmac("sha256", secret).update("via session subject").digest();
    this.#ttlMs = ttlMs;
    this.#log = log;
  }

  /** Creates the sessions stream (or sets its TTL and replicas in place). */
  static async open(
    pubsub: PubSub,
    secret: Buffer,
    opts: { ttlMs: number; replicas?: number | undefined },
    log: Logger,
  ): Promise<EngineSessionStore> {
    await pubsub.ensureStream({
      name: SESSION_STREAM,
      subjects: [`${SESSION_SUBJECT_PREFIX}.*`],
      maxMsgsPerSubject: 1,
      maxAge: opts.ttlMs,
      maxMsgSize: MAX_SESSION_BYTES,
      ...(opts.replicas ? { replicas: opts.replicas } : {}),
    });
    return new EngineSessionStore(pubsub, secret, opts.ttlMs, log);
  }

  /** The session's subject: `_via.session.<22 base64url characters of HMAC(id)>`. */
  subjectOf(id: string): string {
    return `${SESSION_SUBJECT_PREFIX}.${createHmac("sha256", this.#key).update(id).digest().subarray(0, 16).toString("base64url")}`;
  }

  /** The stored data of session `id` (one history read). Rejects when the engine cannot answer. */
  async read(id: string): Promise<StoredSession> {
    const state = new StoredState(this.subjectOf(id));
    const [last] = await this.#pubsub.history(state.subject, { last: 1 });
    if (!last) return { state, entries: undefined };
    state.seq = last.seq;
    state.time = last.time;
    const entries = decodeRecord(last.data);
    if (!entries) this.#log.warn({ subject: state.subject, seq: last.seq }, "unreadable session record ignored");
    return { state, entries };
  }

  /**
   * Follows every session's subject: `find` names the held session of a subject, which takes a newer
   * record another instance wrote.
   */
  follow(find: (subject: string) => EngineSession | undefined): void {
    this.#unsubscribe = this.#pubsub.subscribe(`${SESSION_SUBJECT_PREFIX}.*`, (msg) => this.#onRecord(msg, find));
  }

  #onRecord(msg: Delivery, find: (subject: string) => EngineSession | undefined): void {
    if (msg.headers[WRITER_HEADER] === this.#writer || msg.seq === undefined) return;
    const session = find(msg.subject);
    const state = session?._stored;
    if (!session || !state || msg.seq <= state.seq) return;
    state.seq = msg.seq;
    state.time = msg.time ?? Date.now();
    const entries = decodeRecord(msg.data);
    if (entries) session._adopt(entries, state.unstored);
  }

  /** Writes the session's data soon: everything set in this turn of the event loop goes in one publish. */
  schedule(session: EngineSession, key?: string): void {
    const state = session._stored;
    if (!state) return;
    if (key !== undefined) state.dirty.add(key);
    if (state.queued || state.writing || this.#closed) return;
    state.queued = true;
    setImmediate(() => {
      state.queued = false;
      this.#track(this.#write(session, state));
    });
  }

  /** A session in use keeps its data: the record is rewritten when it is past half its TTL. */
  refresh(session: EngineSession): void {
    const state = session._stored;
    if (!state || state.time === 0 || Date.now() - state.time < this.#ttlMs / 2) return;
    state.refresh = true;
    this.schedule(session);
  }

  #track(write: Promise<void>): void {
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  async #write(session: EngineSession, state: StoredState): Promise<void> {
    if (state.writing) return;
    state.writing = true;
    try {
      let conflicts = 0;
      while (state.dirty.size > 0 || state.refresh) {
        state.inflight = state.dirty;
        state.dirty = new Set();
        state.refresh = false;
        try {
          const ack = await this.#pubsub.publish(state.subject, session._record(), {
            expectLastSubjectSeq: state.seq,
            headers: { [WRITER_HEADER]: this.#writer },
          });
          if (!ack) throw new Error(`no stream captures ${state.subject} (was ${SESSION_STREAM} deleted?)`);
          // A newer record of another instance may have been taken meanwhile (it was based on this one).
          if (ack.seq > state.seq) {
            state.seq = ack.seq;
            state.time = Date.now();
          }
          state.inflight = new Set();
          state.failures = 0;
        } catch (err) {
          for (const key of state.inflight) state.dirty.add(key);
          state.inflight = new Set();
          if (err instanceof WrongLastSequenceError && ++conflicts <= MAX_CONFLICTS) {
            await this.#catchUp(session, state);
            continue;
          }
          this.#failed(session, state, err);
          return;
        }
      }
    } catch (err) {
      this.#failed(session, state, err);
    } finally {
      state.writing = false;
    }
  }

  /** After a conflict: takes the stored record, with this process's unstored keys laid over it. */
  async #catchUp(session: EngineSession, state: StoredState): Promise<void> {
    const [last] = await this.#pubsub.history(state.subject, { last: 1 });
    if (!last) {
      // Expired (or removed) meanwhile: this process's data is the whole record again.
      state.seq = 0;
      state.time = 0;
      state.refresh = true;
      return;
    }
    state.seq = last.seq;
    state.time = last.time;
    const entries = decodeRecord(last.data);
    if (entries) session._adopt(entries, state.unstored);
  }

  #failed(session: EngineSession, state: StoredState, err: unknown): void {
    // Logged by subject, never by session id (a bearer secret).
    const attempt = state.failures++;
    const delay = RETRY_DELAYS_MS[attempt];
    if (this.#closed || delay === undefined) {
      this.#log.error(
        { err, subject: state.subject },
        "session data could not be stored: this process keeps it; the session's next change tries again",
      );
      state.failures = 0;
      return;
    }
    this.#log.warn({ err, subject: state.subject, retryInMs: delay }, "session data could not be stored; retrying");
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      this.schedule(session);
    }, delay);
    timer.unref();
    this.#retries.add(timer);
  }

  /** Stops following and retrying; waits (at most `timeoutMs`) for the writes already asked for. */
  async close(timeoutMs: number): Promise<void> {
    this.#unsubscribe?.();
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
    // Writes scheduled in this turn start on the next one; then no new ones start.
    await new Promise((resolve) => setImmediate(resolve));
    this.#closed = true;
    if (this.#writes.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#writes]), budget]);
    clearTimeout(timer);
  }
}
