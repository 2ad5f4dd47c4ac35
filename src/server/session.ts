// Browser sessions: an id the server issued, signed, in an HttpOnly cookie, and a small in-memory
// record per session. Tabs (contexts) are pinned to the session that created them, so a tab id leaked
// to another browser is useless there (403).
//
// The cookie is `<id>.<mac>`: a value the server did not sign (a planted id, an old unsigned cookie, a
// forgery) is never adopted; the request gets a fresh session instead. A signed id the server does
// not remember (after a restart, or on another instance with the same secret) is its own: open tabs
// re-bootstrap in it without a reload. A session is remembered only once it is used (a live tab, or
// data set on it): a page load, or a request that is refused, leaves nothing behind.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { newId } from "./ids.ts";
import { type RateLimit, TokenBucket } from "./rate-limit.ts";

export const SESSION_COOKIE = "via_session";

export interface SessionOptions {
  /** Per-session action rate limit across all its tabs. */
  rateLimit: RateLimit;
  /** A session with no tabs is forgotten after this long without requests (ms). */
  idleTtlMs: number;
}

// Every page load of a new browser makes one, so what most sessions never use (app data, the rate
// limiter) is made on first use.
export class Session {
  #data: Map<string, unknown> | undefined;
  #limiter: TokenBucket | undefined;
  /** Live tabs of this session: a session with any is never swept. */
  liveTabs = 0;
  lastSeen = Date.now();

  constructor(
    readonly id: string,
    private readonly store: SessionStore,
    /**
     * Made here for a request that brought no session cookie: nothing can be stored under it yet, so
     * an app can skip looking (the chat's identity lookup, for every first page load of a browser).
     */
    readonly isNew = false,
  ) {}

  get limiter(): TokenBucket {
    this.#limiter ??= new TokenBucket(this.store.rateLimit);
    return this.#limiter;
  }

  /** App data for this browser session (e.g. a chosen nickname). In memory: lost on restart. */
  get<T = unknown>(key: string): T | undefined {
    return this.#data?.get(key) as T | undefined;
  }
  set(key: string, value: unknown): void {
    // Data makes a session worth keeping; if a parallel request kept another record of this id
    // first, the data goes there.
    const kept = this.store.remember(this);
    if (kept !== this) {
      kept.set(key, value);
      return;
    }
    this.#data ??= new Map();
    this.#data.set(key, value);
  }
  delete(key: string): void {
    this.#data?.delete(key);
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
  private readonly sweeper: NodeJS.Timeout;
  private readonly key: Buffer;
  readonly rateLimit: RateLimit;

  constructor(
    secret: Buffer,
    private readonly opts: SessionOptions,
  ) {
    // A key of its own, so a session MAC can never stand in for a tab id MAC made with the secret.
    this.key = createHmac("sha256", secret).update("via session cookie").digest();
    this.rateLimit = opts.rateLimit;
    this.sweeper = setInterval(() => this.sweep(), Math.min(opts.idleTtlMs, 60_000));
    this.sweeper.unref();
  }

  /** Sessions remembered now (in use: with a live tab or data). */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * The request's session if its cookie carries an id this server signed, else undefined. Nothing is
   * remembered for it yet: call `remember` once the request has passed every check.
   */
  fromRequest(req: IncomingMessage): Session | undefined {
    const id = this.verify(readCookie(req, SESSION_COOKIE));
    if (id === undefined) return undefined;
    const known = this.sessions.get(id);
    if (known) {
      known.lastSeen = Date.now();
      return known;
    }
    return new Session(id, this);
  }

  /** A fresh session for a request without a (valid) cookie; `cookie(session)` is what to set. */
  create(): Session {
    return new Session(newId(), this, true);
  }

  /** Keeps `session` (a live tab or data makes it worth keeping); the one already kept under its id wins. */
  remember(session: Session): Session {
    const known = this.sessions.get(session.id);
    if (known) return known;
    this.sessions.set(session.id, session);
    return session;
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
      if (s.liveTabs === 0 && s.lastSeen < cutoff) this.sessions.delete(id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sessions.clear();
  }
}
