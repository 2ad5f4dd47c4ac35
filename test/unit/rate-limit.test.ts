import assert from "node:assert/strict";
import { test } from "node:test";
import { TokenBucket } from "../../src/server/rate-limit.ts";

function clock(start = 1_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}

test("rate limiter starts full and allows a whole burst at once", () => {
  const c = clock();
  const bucket = new TokenBucket({ ratePerSec: 10, burst: 20, now: c.now });
  for (let i = 0; i < 20; i++) assert.deepEqual(bucket.take(), { ok: true }, `request ${i + 1}`);
});

test("rate limiter refuses the 21st burst request and says when to retry", () => {
  const c = clock();
  const bucket = new TokenBucket({ ratePerSec: 10, burst: 20, now: c.now });
  for (let i = 0; i < 20; i++) bucket.take();
  assert.deepEqual(bucket.take(), { ok: false, retryAfterMs: 100 });
  c.advance(99);
  const early = bucket.take();
  assert.equal(early.ok, false);
  assert.equal(!early.ok && early.retryAfterMs, 1);
  c.advance(1);
  assert.deepEqual(bucket.take(), { ok: true }, "retrying when told to succeeds");
  assert.equal(bucket.take().ok, false);
});

test("refused requests spend nothing", () => {
  const c = clock();
  const bucket = new TokenBucket({ ratePerSec: 1, burst: 1, now: c.now });
  assert.equal(bucket.take().ok, true);
  for (let i = 0; i < 5; i++) assert.equal(bucket.take().ok, false);
  c.advance(1000);
  assert.equal(bucket.take().ok, true);
});

test("rate limiter refills at the steady rate but never beyond the burst", () => {
  const c = clock();
  const bucket = new TokenBucket({ ratePerSec: 5, burst: 3, now: c.now });
  for (let i = 0; i < 3; i++) bucket.take();
  c.advance(400); // 2 tokens
  assert.equal(bucket.take().ok, true);
  assert.equal(bucket.take().ok, true);
  assert.equal(bucket.take().ok, false);
  c.advance(3_600_000); // an hour idle still only refills to the burst
  assert.equal(bucket.tokens, 3);
  for (let i = 0; i < 3; i++) assert.equal(bucket.take().ok, true);
  assert.equal(bucket.take().ok, false);
});

test("taking several tokens at once waits for all of them", () => {
  const c = clock();
  const bucket = new TokenBucket({ ratePerSec: 2, burst: 4, now: c.now });
  assert.equal(bucket.take(3).ok, true);
  assert.deepEqual(bucket.take(3), { ok: false, retryAfterMs: 1000 });
  c.advance(1000);
  assert.equal(bucket.take(3).ok, true);
  assert.throws(() => bucket.take(5), RangeError, "more than the burst can never succeed");
  assert.throws(() => bucket.take(0), RangeError);
});

test("a clock going backwards neither drains nor later double-credits the bucket", () => {
  const c = clock(10_000);
  const bucket = new TokenBucket({ ratePerSec: 1, burst: 2, now: c.now });
  bucket.take();
  bucket.take();
  c.set(5_000);
  assert.equal(bucket.take().ok, false);
  c.set(10_000); // back to where we were: no time has really passed since the last refill
  assert.equal(bucket.take().ok, false);
  c.set(11_000);
  assert.equal(bucket.take().ok, true);
});

test("rate limiter rejects nonsensical settings", () => {
  assert.throws(() => new TokenBucket({ ratePerSec: 0, burst: 1 }), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: 1, burst: 0 }), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: Number.NaN, burst: 1 }), RangeError);
});

test("rate limiter works with the default monotonic clock", () => {
  const bucket = new TokenBucket({ ratePerSec: 1, burst: 1 });
  assert.equal(bucket.take().ok, true);
  const refused = bucket.take();
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.retryAfterMs > 0 && refused.retryAfterMs <= 1000);
});
