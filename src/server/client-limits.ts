// Limits per client address, beside the per-session and per-tab ones. A session costs one page load,
// so anything counted per session alone resets with a new cookie; an address is what a client cannot
// renew for free. Every limit here is keyed by `clientAddress` (see client-address.ts for the proxy
// rules) and holds memory only for addresses seen recently.
import { type RateLimit, RateLimiter, tooManyRequests } from "./rate-limit.ts";

export interface ClientLimitOptions {
  /** New sessions (fresh cookies) issued to one address (default 0.5/s, i.e. 30 a minute, burst 30). */
  newSessions?: RateLimit;
  /** Page loads from one address (default 20/s, burst 100). */
  pageLoads?: RateLimit;
  /** Actions from one address over all its sessions and tabs (default 60/s, burst 120). */
  actions?: RateLimit;
  /** Event streams one address may hold open at once (default 256). */
  openStreams?: number;
}

export const DEFAULT_CLIENT_LIMITS = {
  newSessions: { ratePerSec: 0.5, burst: 30 },
  pageLoads: { ratePerSec: 20, burst: 100 },
  actions: { ratePerSec: 60, burst: 120 },
  openStreams: 256,
} as const satisfies Required<ClientLimitOptions>;

export class ClientLimits {
  private readonly newSessions: RateLimiter;
  private readonly pageLoads: RateLimiter;
  private readonly actions: RateLimiter;
  private readonly maxStreams: number;
  /** Open event streams per address; an address leaves the map when its last stream closes. */
  private readonly streams = new Map<string, number>();

  constructor(options: ClientLimitOptions = {}) {
    const o = { ...DEFAULT_CLIENT_LIMITS, ...options };
    this.newSessions = new RateLimiter(o.newSessions);
    this.pageLoads = new RateLimiter(o.pageLoads);
    this.actions = new RateLimiter(o.actions);
    if (!Number.isInteger(o.openStreams) || o.openStreams < 1)
      throw new RangeError(`clientLimits.openStreams must be a positive integer, got ${o.openStreams}`);
    this.maxStreams = o.openStreams;
  }

  pageLoad(address: string): void {
    this.pageLoads.check(address, "too many page loads from your network: try again in {seconds} s");
  }

  newSession(address: string): void {
    this.newSessions.check(address, "too many new sessions from your network: try again in {seconds} s");
  }

  action(address: string): void {
    this.actions.check(address, "too many actions from your network: slow down (try again in {seconds} s)");
  }

  /** Counts an event stream of `address` open; the returned function counts it closed (call once). */
  openStream(address: string): () => void {
    const open = this.streams.get(address) ?? 0;
    if (open >= this.maxStreams) {
      throw tooManyRequests(
        `too many open event streams from your network (${this.maxStreams}): close some tabs; retrying in {seconds} s`,
        5_000,
      );
    }
    this.streams.set(address, open + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = (this.streams.get(address) ?? 1) - 1;
      if (left > 0) this.streams.set(address, left);
      else this.streams.delete(address);
    };
  }

  /** Open event streams of `address` now. */
  streamsOf(address: string): number {
    return this.streams.get(address) ?? 0;
  }
}
