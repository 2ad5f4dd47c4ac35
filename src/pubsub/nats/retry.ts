// The NATS engine's one retry policy: how long to wait before trying again, and how long one attempt may
// take, for every request that can fail transiently (a server restart, a cluster electing a stream
// leader, a connection moving to another node). Publishes, reads, stream management and the feeds all
// use it, and the connection's reconnect schedule is set here too, so "how fast does the engine come
// back" has one answer, tuned here. Which errors are worth a retry is errors.ts's call.
//
// Why short attempts: during a stream-leader election a request is not refused, it is simply never
// answered; a long timeout then only delays the first attempt after the new leader is up (the election
// itself took 4.4-9.4 s on the 3-node test cluster, docs/reference/nats-facts.md §3). Why jitter: many
// processes (and many streams in one) failing at the same moment must not retry in lockstep.

import { isTransient } from "./errors.ts";

export interface RetryPolicy {
  /** The first wait (ms). */
  baseMs: number;
  /** The longest wait (ms). */
  maxMs: number;
  /** Each wait is the exponential step times a random factor in [1 - jitter, 1]. */
  jitter: number;
}

/** Waits between attempts: 100, 200, 400, 800, 1,000 ms (minus up to 50 % jitter). */
export const RETRY: RetryPolicy = { baseMs: 100, maxMs: 1_000, jitter: 0.5 };

/**
 * How long one attempt may wait for its answer. The first has room for a slow server; after a failure
 * they are short (an unanswered request during an election costs little), and they grow again if the
 * failures go on, so a server that is merely slow is not retried faster than it can answer.
 */
export const ATTEMPT = { firstMs: 2_000, retryMs: 500, maxMs: 2_000, minMs: 250 } as const;

/**
 * How long reads and stream management keep retrying through a failover (timeouts, no responders): no
 * stream can be created, read or updated without a stream (or meta) leader.
 */
export const API_RETRY_MS = 15_000;

/**
 * Default total time a stream publish is retried with the same msg id before PublishTimeoutError
 * (NatsEngineOptions.publishRetryMs): a stream-leader election after a node dies took 5.1-9.4 s here
 * (docs/reference/nats-facts.md §3), plus reconnect time.
 */
export const PUBLISH_RETRY_MS = 15_000;

/**
 * The connection's own reconnect schedule (the client library's options). It never gives up: with the
 * defaults the connection gave up for good after ~21 s of outage (docs/reference/nats-facts.md §7).
 */
export const RECONNECT = { maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 250 } as const;

/** The wait before retry number `attempt` (1 = the first retry). */
export function backoff(attempt: number, policy: RetryPolicy = RETRY): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return step * (1 - policy.jitter * Math.random());
}

/** The timeout for attempt number `attempt` (0 = the first try): 2 s, then 0.5, 0.5, 1, 2, 2 s ... */
export function attemptTimeout(attempt: number): number {
  if (attempt <= 0) return ATTEMPT.firstMs;
  return Math.min(ATTEMPT.maxMs, ATTEMPT.retryMs * 2 ** Math.max(0, attempt - 2));
}

/**
 * The timeout for an attempt that must also end before `deadline` (ms since the epoch): never less than
 * ATTEMPT.minMs, which is about the least a round trip to a busy server needs.
 */
export function attemptTimeoutBefore(attempt: number, deadline: number): number {
  return Math.max(ATTEMPT.minMs, Math.min(attemptTimeout(attempt), deadline - Date.now()));
}

/** Waits before retry number `attempt` (the policy's backoff), or less if `wake` resolves first. True if woken. */
export function pauseBeforeRetry(attempt: number, wake?: Promise<unknown>): Promise<boolean> {
  return sleepOrWake(backoff(attempt), wake);
}

export interface RetryOptions {
  /** Give up (rethrow the last error) once the next wait would end past this time (ms since the epoch). */
  deadline: number;
  /** Throws (e.g. PubSubClosedError) to stop retrying. */
  assertOpen?: () => void;
  /** Told before each wait. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** Cuts a wait short when it rings (a reconnect, a new stream leader). */
  wake?: Bell;
  policy?: RetryPolicy;
}

/** Runs `fn(attempt)` until it succeeds, fails for good, or the deadline; transient failures are retried. */
export async function retrying<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      opts.assertOpen?.();
      const wait = backoff(attempt + 1, opts.policy);
      if (!isTransient(err) || Date.now() + wait >= opts.deadline) throw err;
      opts.onRetry?.(err, attempt + 1, wait);
      await sleepOrWake(wait, opts.wake?.next());
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sleeps `ms`, or less if `wake` resolves first. True if woken. */
export async function sleepOrWake(ms: number, wake?: Promise<unknown>): Promise<boolean> {
  if (!wake) {
    await sleep(ms);
    return false;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
      wake.then(() => true),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Rings when waiting is no longer worth it: the connection came back, a stream got a new leader. Every
 * wait in progress ends (`next()` is one shared promise per ring, so an idle bell holds nothing per waiter).
 */
export class Bell {
  #ring!: () => void;
  #next: Promise<void>;
  constructor() {
    this.#next = this.#arm();
  }

  #arm(): Promise<void> {
    return new Promise<void>((r) => {
      this.#ring = r;
    });
  }

  /** Resolves at the next ring. */
  next(): Promise<void> {
    return this.#next;
  }

  ring(): void {
    const ring = this.#ring;
    this.#next = this.#arm();
    ring();
  }
}
