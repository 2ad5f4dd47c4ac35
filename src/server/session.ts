// Browser sessions: an id the server issued, signed, in an HttpOnly cookie, and a small record per
// session. Tabs (contexts) are pinned to the session that created them, so a tab id leaked to another
// browser is useless there (403).
//
// The cookie is `<id>.<mac>`: a value the server did not sign (a planted id, an old unsigned cookie, a
// forgery) is never adopted; the request gets a fresh session instead. A signed id the server does
// not hold in memory (after a restart, or on another instance with the same secret) is its own: its
// data is read from the engine store (session-store.ts) before the page renders or its live tab
// starts, and open tabs re-bootstrap in it without a reload. A session is held in memory only once it
// is used (a live tab, or data set on it): a page load, or a request that is refused, leaves nothing
// behind and writes nothing.
//
// Session data is JSON, because it is what every instance and the next start of this one read back:
// `set` refuses anything else, saying where. Per-process things (a rate limiter, a cache) go in
// `memo`, which is never stored.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import { HttpError } from "./http-error.ts";
import { newId } from "./ids.ts";
import { type RateLimit, TokenBucket } from "./rate-limit.ts";
import {
  encodeRecord,
  MAX_SESSION_BYTES,
  recordBytes,
  SessionDataError,
  type SessionEntry,
  sessionEntry,
} from "./session-data.ts";
import { type EngineSession, EngineSessionStore, type ResolvedSessionOptions, StoredState } from "./session-store.ts";

export const SESSION_COOKIE = "via_session";

export interface SessionStoreOptions {
  /** Per-session action rate limit across all its tabs. */
  rateLimit: RateLimit;
  /** A session with no tabs is forgotten (from memory) after this long without requests (ms). */
  idleTtlMs: number;
}

const NOTHING_UNSTORED: ReadonlySet<string> = new Set();

// Every page load of a new browser makes one, so what most sessions never use (app data, memos, the
// rate limiter) is made on first use.
export class Session implements EngineSession {
  #data: Map<string, SessionEntry> | undefined;
  #memo: Map<string, unknown> | undefined;
  #limiter: TokenBucket | undefined;
  #loaded: boolean;
  /** Live tabs of this session: a session with any is never swept. */
  liveTabs = 0;
  lastSeen = Date.now();
  /** @internal The engine store's state of this session (undefined with the memory store, or not yet known). */
  _stored: StoredState | undefined;

  constructor(
    readonly id: string,
    private readonly store: SessionStore,
    /**
     * Made here for a request that brought no session cookie: nothing can be stored under it yet, so
     * an app can skip looking (the chat's identity lookup, for every first page load of a browser).
     */
    readonly isNew = false,
    loaded = true,
  ) {
    this.#loaded = loaded;
  }

  get limiter(): TokenBucket {
    this.#limiter ??= new TokenBucket(this.store.rateLimit);
    return this.#limiter;
  }

  /**
   * App data for this browser session (e.g. a chosen nickname), as set: a frozen copy, so change it by
   * setting it again. With the engine store it is the same on every instance and after a restart.
   */
  get<T = unknown>(key: string): T | undefined {
    this.#mustBeLoaded("get");
    return this.#data?.get(key)?.value as T | undefined;
  }

  /**
   * Sets `key` to a copy of `value`, which must be JSON (plain objects, arrays, strings, finite numbers,
   * booleans, null; at most 64 KiB for the whole session): anything else throws a SessionDataError that
   * says where. Keeps the session in memory, and with the engine store writes it soon (the sets of one
   * turn of the event loop are one write; a failed write is logged and retried, never thrown here).
   */
  set(key: string, value: unknown): void {
    this.#mustBeLoaded("set");
    this.store._put(this, key, sessionEntry(key, value));
  }

  /** Removes `key` (stored like a set). */
  delete(key: string): void {
    this.#mustBeLoaded("delete");
    this.store._put(this, key, undefined);
  }

  /**
   * A per-process value of this session (a rate limiter, a cache, anything): `make()` on first use, then
   * the same value. Never stored nor seen by other instances; it lives as long as this process holds
   * the session in memory (while it has a live tab, and a while after).
   */
  memo<T>(key: string, make: () => T): T {
    this.#memo ??= new Map();
    if (this.#memo.has(key)) return this.#memo.get(key) as T;
    const value = make();
    this.#memo.set(key, value);
    return value;
  }

  /** @internal Whether its data is here (a session whose cookie names it is read first, see SessionStore.load). */
  get _loaded(): boolean {
    return this.#loaded;
  }

  /** @internal */
  _has(key: string): boolean {
    return this.#data?.has(key) ?? false;
  }

  /** @internal The stored size of this session's data with `key` set to `entry`. */
  _bytesWith(key: string, entry: SessionEntry): number {
    const entries = new Map(this.#data);
    entries.set(key, entry);
    return recordBytes(entries);
  }

  /** @internal */
  _put(key: string, entry: SessionEntry | undefined): void {
    if (entry) {
      this.#data ??= new Map();
      this.#data.set(key, entry);
    } else this.#data?.delete(key);
  }

  /** @internal The record the engine store writes. */
  _record(): string {
    return encodeRecord(this.#data ?? []);
  }

  /** @internal Takes a stored record, except for `unstored`: keys this process changed since (they win). */
  _adopt(entries: Map<string, SessionEntry>, unstored: ReadonlySet<string>): void {
    const next = new Map(entries);
    for (const key of unstored) {
      const mine = this.#data?.get(key);
      if (mine) next.set(key, mine);
      else next.delete(key);
    }
    this.#data = next;
    this.#loaded = true;
  }

  #mustBeLoaded(what: string): void {
    if (!this.#loaded) throw new Error(`session.${what}: this session's data is not loaded (SessionStore.load)`);
  }
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const MAC_BYTES = 16;
const COOKIE_PATTERN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/;

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Held sessions by subject (engine store), for the records other instances write. */
  private readonly bySubject = new Map<string, Session>();
  /** Reads under way, by session id: concurrent requests of one session share one. */
  private readonly loading = new Map<string, Promise<Session>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly key: Buffer;
  readonly rateLimit: RateLimit;

  constructor(
    secret: Buffer,
    private readonly opts: SessionStoreOptions,
    /** Where session data is kept beyond this process; undefined: in memory only. */
    private readonly engine?: EngineSessionStore,
    private readonly log?: Logger,
  ) {
    // A key of its own, so a session MAC can never stand in for a tab id MAC made with the secret.
    this.key = createHmac("sha256", secret).update("via session cookie").digest();
    this.rateLimit = opts.rateLimit;
    this.sweeper = setInterval(() => this.sweep(), Math.min(opts.idleTtlMs, 60_000));
    this.sweeper.unref();
    engine?.follow((subject) => this.bySubject.get(subject));
  }

  /** The store `AppOptions.sessions` asks for: with "engine", the sessions stream is created first. */
  static async open(
    secret: Buffer,
    opts: SessionStoreOptions & { sessions: ResolvedSessionOptions; pubsub: PubSub | undefined; logger: Logger },
  ): Promise<SessionStore> {
    const { sessions, pubsub, logger } = opts;
    const engine =
      sessions.store === "engine" && pubsub
        ? await EngineSessionStore.open(pubsub, secret, { ttlMs: sessions.ttlMs, replicas: sessions.replicas }, logger)
        : undefined;
    return new SessionStore(secret, opts, engine, logger);
  }

  /** Sessions held in memory now (in use: with a live tab or data). */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * The request's session if its cookie carries an id this server signed, else undefined. Nothing is
   * read or held for it yet: enough to check who the request is from. Before its data is used (a
   * page's `init`, a live tab), `load` it; `remember` it once the request has passed every check.
   */
  fromRequest(req: IncomingMessage): Session | undefined {
    const id = this.verify(readCookie(req, SESSION_COOKIE));
    if (id === undefined) return undefined;
    const known = this.sessions.get(id);
    if (known) {
      known.lastSeen = Date.now();
      return known;
    }
    // With the memory store there is nothing to read: a session this process does not hold is empty.
    return new Session(id, this, false, this.engine === undefined);
  }

  /**
   * `session` with its data: itself when it is here (held, new, or the memory store), else the
   * session as stored (one read, shared by concurrent requests of the session). Throws a 503 when the
   * engine cannot answer.
   */
  async load(session: Session): Promise<Session> {
    if (session._loaded) return session;
    const known = this.sessions.get(session.id);
    if (known) return known;
    let loading = this.loading.get(session.id);
    if (!loading) {
      loading = this.read(session.id);
      this.loading.set(session.id, loading);
      const done = () => this.loading.delete(session.id);
      loading.then(done, done);
    }
    return loading;
  }

  private async read(id: string): Promise<Session> {
    const engine = this.engine!;
    let stored: Awaited<ReturnType<EngineSessionStore["read"]>>;
    try {
      stored = await engine.read(id);
    } catch (err) {
      this.log?.warn({ err }, "could not read session data from the engine");
      throw new HttpError(503, "session data is unavailable right now: retry", { "Retry-After": "2" });
    }
    const known = this.sessions.get(id);
    if (known) return known;
    const session = new Session(id, this);
    session._stored = stored.state;
    if (stored.entries) session._adopt(stored.entries, NOTHING_UNSTORED);
    return session;
  }

  /** A fresh session for a request without a (valid) cookie; `cookie(session)` is what to set. */
  create(): Session {
    return new Session(newId(), this, true);
  }

  /**
   * Holds `session` in memory (a live tab or data makes it worth keeping); the one already held under
   * its id wins. Its data must be loaded. A session in use whose stored record is past half its TTL is
   * written again, so the data of a browser that keeps coming back does not expire.
   */
  remember(session: Session): Session {
    const known = this.sessions.get(session.id);
    if (known) {
      this.engine?.refresh(known);
      return known;
    }
    if (!session._loaded) throw new Error("a session is held only once its data is loaded (SessionStore.load)");
    this.sessions.set(session.id, session);
    if (this.engine) {
      session._stored ??= new StoredState(this.engine.subjectOf(session.id));
      this.bySubject.set(session._stored.subject, session);
      this.engine.refresh(session);
    }
    return session;
  }

  /** @internal `session.set` (an entry) and `session.delete` (undefined): kept, then stored soon. */
  _put(session: Session, key: string, entry: SessionEntry | undefined): void {
    // If a parallel request holds another record of this id already, the data goes there.
    const kept = this.sessions.get(session.id) ?? session;
    if (entry === undefined && !kept._has(key)) return;
    if (entry) {
      const bytes = kept._bytesWith(key, entry);
      if (bytes > MAX_SESSION_BYTES) {
        throw new SessionDataError(
          `session.set(${JSON.stringify(key)}): the session's data would be ${bytes.toLocaleString("en")} bytes as ` +
            `JSON; the limit is ${MAX_SESSION_BYTES.toLocaleString("en")}`,
        );
      }
    }
    this.remember(kept);
    kept._put(key, entry);
    this.engine?.schedule(kept, key);
  }

  /** The `Set-Cookie` value for `session`. */
  cookie(session: Session, secure: boolean): string {
    // A session cookie (no Max-Age): it ends with the browser session, as its name says.
    const value = `${session.id}.${this.mac(session.id).toString("base64url")}`;
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
  }

  private verify(value: string | undefined): string | undefined {
    const m = value === undefined ? null : COOKIE_PATTERN.exec(value);
    if (!m) return undefined;
    const [, id, mac] = m as unknown as [string, string, string];
    const given = Buffer.from(mac, "base64url");
    // Only the spelling we wrote (22 characters carry 2 bits more than 16 bytes).
    if (given.toString("base64url") !== mac) return undefined;
    return timingSafeEqual(given, this.mac(id)) ? id : undefined;
  }

  private mac(id: string): Buffer {
    return createHmac("sha256", this.key).update(id).digest().subarray(0, MAC_BYTES);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.opts.idleTtlMs;
    for (const [id, s] of this.sessions) {
      if (s.liveTabs === 0 && s.lastSeen < cutoff) {
        this.sessions.delete(id);
        if (s._stored) this.bySubject.delete(s._stored.subject);
      }
    }
  }

  /** Stops sweeping and following; waits (at most `timeoutMs`) for the session writes already asked for. */
  async close(timeoutMs = 5_000): Promise<void> {
    clearInterval(this.sweeper);
    await this.engine?.close(timeoutMs);
    this.sessions.clear();
    this.bySubject.clear();
  }
}
