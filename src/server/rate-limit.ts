// Token bucket: allows bursts of up to `burst` requests, then a steady `ratePerSec`. Used to cap how
// fast one tab/session may fire actions, so a stuck key or a hostile script cannot monopolise the
// server. Refusals say when the next token will be there, for the 429 response's Retry-After.

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
