// Browser sessions: a random id in an HttpOnly cookie, and a small in-memory record per session.
// Tabs (contexts) are pinned to the session that created them, so a tab id leaked to another
// browser is useless there (403).
import type { IncomingMessage } from "node:http";
import { isWellFormedId, newId } from "./ids.ts";
import { TokenBucket } from "./rate-limit.ts";

export const SESSION_COOKIE = "via_session";

export interface SessionOptions {
  /** Per-session action rate limit across all its tabs. */
  ratePerSec: number;
  burst: number;
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
    private readonly opts: SessionOptions,
    /**
     * Made here for a request that brought no session cookie: nothing can be stored under it yet, so
     * an app can skip looking (the chat's identity lookup, for every first page load of a browser).
     */
    readonly isNew = false,
  ) {}

  get limiter(): TokenBucket {
    this.#limiter ??= new TokenBucket({ ratePerSec: this.opts.ratePerSec, burst: this.opts.burst });
    return this.#limiter;
  }

  /** App data for this browser session (e.g. a chosen nickname). In memory: lost on restart. */
  get<T = unknown>(key: string): T | undefined {
    return this.#data?.get(key) as T | undefined;
  }
  set(key: string, value: unknown): void {
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

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: SessionOptions) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(opts.idleTtlMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The request's session, if its cookie names one. Unknown but well-formed ids are adopted (see below). */
  fromRequest(req: IncomingMessage): Session | undefined {
    const id = readCookie(req, SESSION_COOKIE);
    if (!isWellFormedId(id)) return undefined;
    // Why adopt unknown ids: after a server restart every open tab still holds its cookie; adopting it
    // lets those tabs re-bootstrap in "their" session without a reload. Sessions carry no credentials
    // here, so adopting a cookie value grants nothing a fresh session would not.
    return this.getOrAdopt(id);
  }

  create(): Session {
    const s = new Session(newId(), this.opts, true);
    this.sessions.set(s.id, s);
    return s;
  }

  private getOrAdopt(id: string): Session {
    let s = this.sessions.get(id);
    if (!s) {
      s = new Session(id, this.opts);
      this.sessions.set(id, s);
    }
    s.lastSeen = Date.now();
    return s;
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

export function sessionCookie(session: Session, secure: boolean): string {
  // A session cookie (no Max-Age): it ends with the browser session, as its name says.
  return `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`;
}
