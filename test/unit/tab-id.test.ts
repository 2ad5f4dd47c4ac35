// Tab ids the server issues and verifies without keeping them (src/server/tab-id.ts).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { isWellFormedTabId, TabIds } from "../../src/server/tab-id.ts";

const secret = randomBytes(32);

test("a tab id verifies for the session it was issued to, and only there", () => {
  const ids = new TabIds(secret, 60_000);
  const id = ids.issue("session-a");
  assert.ok(isWellFormedTabId(id));
  assert.notEqual(ids.issue("session-a"), id, "every id is new");
  assert.deepEqual(ids.verify(id, "session-a", { fresh: true }).ok, true);
  const other = ids.verify(id, "session-b", { fresh: true });
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.status, 403);
});

test("an id the server did not issue is refused: a flipped character, random bytes, another secret", () => {
  const ids = new TabIds(secret, 60_000);
  const id = ids.issue("s");
  const flipped = `${id.slice(0, 30)}${id[30] === "A" ? "B" : "A"}${id.slice(31)}`;
  for (const forged of [
    flipped,
    randomBytes(32).toString("base64url"),
    new TabIds(randomBytes(32), 60_000).issue("s"),
  ]) {
    const verdict = ids.verify(forged, "s", { fresh: false });
    assert.equal(verdict.ok, false, forged);
    assert.equal(!verdict.ok && verdict.status, 403);
  }
});

test("another spelling of an issued id (the last character's two unused bits) is refused", () => {
  const ids = new TabIds(secret, 60_000);
  const id = ids.issue("s");
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (const bit of [1, 2, 3]) {
    const other = id.slice(0, 42) + alphabet[alphabet.indexOf(id[42]!) ^ bit];
    assert.deepEqual(Buffer.from(other, "base64url"), Buffer.from(id, "base64url"), "the same bytes");
    const verdict = ids.verify(other, "s", { fresh: true });
    assert.equal(!verdict.ok && verdict.status, 403);
  }
});

test("a malformed id is a 400 before any MAC work", () => {
  const ids = new TabIds(secret, 60_000);
  for (const bad of [undefined, "", "short", "x".repeat(43).replace(/x$/, "!"), 42]) {
    const verdict = ids.verify(bad, "s", { fresh: true });
    assert.equal(!verdict.ok && verdict.status, 400, String(bad));
  }
});

test("an old id can no longer start a context but still proves a live one", () => {
  let now = Date.UTC(2026, 0, 1);
  const ids = new TabIds(secret, 10_000, () => now);
  const id = ids.issue("s");
  now += 11_000;
  const fresh = ids.verify(id, "s", { fresh: true });
  assert.equal(fresh.ok, false);
  assert.match(!fresh.ok ? fresh.reason : "", /expired/);
  assert.equal(ids.verify(id, "s", { fresh: false }).ok, true);
});

test("the secret must be long enough to sign with", () => {
  assert.throws(() => new TabIds(Buffer.alloc(8), 1000), /32 bytes/);
});
