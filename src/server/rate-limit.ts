// Token bucket: allows bursts of up to `burst` requests, then a steady `ratePerSec`. Used to cap how
// fast one tab/session may fire actions, so a stuck key or a hostile script cannot monopolise the
// server. Refusals say when the next token will be there, for the 429 response's Retry-After.
import { HttpError } from "./http-error.ts";

/** A steady rate with bursts, as options take it. */
export interface RateLimit {
  ratePerSec: number;
  burst: number;
}

export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSec: number;
  /** Bucket size: the most tokens that can be spent at once. The bucket starts full. */
  burst: number;
  /** Clock in ms. Defaults to a monotonic clock, so wall-clock jumps neither mint nor freeze tokens. */
  now?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

// Refill arithmetic is floating point; without a little slack, 100 ms at 10/s could leave
// 0.9999999 tokens and refuse a request the caller was told to retry at exactly that moment.
const EPSILON = 1e-9;

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSec > 0) || !Number.isFinite(opts.ratePerSec)) {
      throw new RangeError(`TokenBucket ratePerSec must be a positive number, got ${opts.ratePerSec}`);
    }
    if (!(opts.burst >= 1) || !Number.isFinite(opts.burst)) {
      throw new RangeError(`TokenBucket burst must be at least 1, got ${opts.burst}`);
    }
    this.#ratePerMs = opts.ratePerSec / 1000;
    this.#burst = opts.burst;
    this.#now = opts.now ?? (() => performance.now());
    this.#tokens = opts.burst;
    this.#last = this.#now();
  }

  /** Spends `n` tokens if there are enough; otherwise spends nothing and says how long to wait. */
  take(n = 1): TakeResult {
    if (!(n > 0) || n > this.#burst) {
      // More than the bucket can ever hold would be refused forever; that is a configuration bug.
      throw new RangeError(`TokenBucket.take(${n}): n must be in (0, ${this.#burst}]`);
    }
    this.#refill();
    if (this.#tokens + EPSILON >= n) {
      this.#tokens = Math.max(0, this.#tokens - n);
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil((n - this.#tokens) / this.#ratePerMs - EPSILON)) };
  }

  /** The most tokens the bucket holds. */
  get burst(): number {
    return this.#burst;
  }

  /** Tokens available now (fractional). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  #refill(): void {
    const now = this.#now();
    // A clock that goes backwards (an injected one, or a bug) neither drains the bucket nor, once it
    // moves forward again, mints tokens for time already credited: keep the latest instant seen.
    if (!(now > this.#last)) return;
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#ratePerMs);
    this.#last = now;
  }
}

/** A 429 whose Retry-After says when the refused request would pass, and whose text says why. */
export function tooManyRequests(message: string, retryAfterMs: number): HttpError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new HttpError(429, message.replaceAll("{seconds}", String(seconds)), { "Retry-After": String(seconds) });
}

export interface RateLimiterOptions extends TokenBucketOptions {
  /**
   * Most keys remembered at once (default 100,000). Keys whose bucket has refilled are forgotten
   * first (they would start full anyway); past the cap the longest-known key is forgotten.
   */
  maxKeys?: number;
}

/**
 * One token bucket per key (a client address, a room and an address, ...), made on first use and
 * forgotten once it has refilled, so the memory it holds is bounded by the keys active recently and
 * by `maxKeys`, whatever keys clients send.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #opts: TokenBucketOptions;
  readonly #maxKeys: number;
  #takesSinceSweep = 0;

  constructor(opts: RateLimiterOptions) {
    const { maxKeys = 100_000, ...bucket } = opts;
    // Validates the rate and burst once, here, rather than on a request's first take.
    new TokenBucket(bucket);
    if (!Number.isInteger(maxKeys) || maxKeys < 1)
      throw new RangeError(`RateLimiter maxKeys must be a positive integer`);
    this.#opts = bucket;
    this.#maxKeys = maxKeys;
  }

  /** Spends one token of `key`'s bucket, or says how long to wait. */
  take(key: string): TakeResult {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxKeys) this.#sweep(true);
      bucket = new TokenBucket(this.#opts);
      this.#buckets.set(key, bucket);
    }
    // Amortised: one pass over the keys per as many takes as there are keys.
    if (++this.#takesSinceSweep > Math.max(1_000, this.#buckets.size)) this.#sweep(false);
    return bucket.take();
  }

  /** Like `take`, but refuses with a 429 (`{seconds}` in the message becomes the wait). */
  check(key: string, message: string): void {
    const verdict = this.take(key);
    if (!verdict.ok) throw tooManyRequests(message, verdict.retryAfterMs);
  }

  /** Keys remembered now. */
  get size(): number {
    return this.#buckets.size;
  }

  #sweep(full: boolean): void {
    this.#takesSinceSweep = 0;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens >= bucket.burst) this.#buckets.delete(key);
    }
    // Still full: forget the oldest keys (their clients start over with a full bucket).
    if (full) {
      for (const key of this.#buckets.keys()) {
        if (this.#buckets.size < this.#maxKeys) break;
        this.#buckets.delete(key);
      }
    }
  }
}
