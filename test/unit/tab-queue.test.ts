import assert from "node:assert/strict";
import { test } from "node:test";
import { TabQueue } from "../../src/server/sse/queue.ts";

test("queue replays patches in the order they were pushed", () => {
  const q = new TabQueue({ capBytes: 1024 });
  assert.equal(q.push("a"), true);
  assert.equal(q.push("b", "patch"), true);
  assert.equal(q.push("c"), true);
  assert.equal(q.length, 3);
  assert.equal(q.takeAll().join(""), "abc");
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.takeAll().join(""), "");
});

test("queue coalesces full renders so the newest wins", () => {
  const q = new TabQueue({ capBytes: 1024 });
  q.push("R1", "render");
  q.push("R2", "render");
  q.push("R3", "render");
  assert.equal(q.length, 1);
  assert.equal(q.bytes, 2);
  assert.equal(q.takeAll().join(""), "R3");
});

test("a newer render goes to the end, after patches queued since the older render", () => {
  const q = new TabQueue({ capBytes: 1024 });
  q.push("p1 ");
  q.push("R1 ", "render");
  q.push("p2 ");
  q.push("R2 ", "render");
  q.push("p3 ");
  // p2 was computed after R1; replaying it after R2 would overwrite newer state, so R2 must follow it.
  assert.equal(q.takeAll().join(""), "p1 p2 R2 p3 ");
});

test("queue counts UTF-8 bytes, not UTF-16 code units", () => {
  const q = new TabQueue({ capBytes: 1024 });
  q.push("é"); // 2 bytes
  q.push("😀"); // 4 bytes, 2 code units
  assert.equal(q.bytes, 6);
  q.push("€€", "render"); // 6 bytes
  assert.equal(q.bytes, 12);
  q.push("x", "render"); // replaces the 6-byte render
  assert.equal(q.bytes, 7);
});

test("queue over its byte cap drops everything and reports overflow", () => {
  const q = new TabQueue({ capBytes: 10 });
  assert.equal(q.push("12345"), true);
  assert.equal(q.push("67890"), true);
  assert.equal(q.bytes, 10);
  assert.equal(q.overflowed, false);
  assert.equal(q.push("x"), false);
  assert.equal(q.overflowed, true);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.takeAll().join(""), "");
});

test("bytes the socket still buffers count against the cap", () => {
  const q = new TabQueue({ capBytes: 10 });
  assert.equal(q.push("abcd", "patch", 6), true, "4 queued + 6 held = 10: at the cap, not over");
  assert.equal(q.push("e", "patch", 6), false, "5 queued + 6 held is over");
  assert.equal(q.overflowed, true);
  assert.equal(q.bytes, 0);
  q.clear();
  assert.equal(q.push("abcde", "patch", 0), true, "with the socket drained the same bytes fit");
});

test("one event alone always fits, even bigger than the cap (a resync's full render must get through)", () => {
  const q = new TabQueue({ capBytes: 4 });
  assert.equal(q.push("RRRRRRRR", "render"), true, "alone in an empty queue, nothing held");
  assert.equal(q.push("p"), false, "anything more is over the cap");
  q.clear();
  assert.equal(q.push("RRRRRRRR", "render", 1), false, "not alone: the socket still holds a byte");
  q.clear();
  q.push("RRRRRRRR", "render");
  assert.equal(q.push("SSSSSSSS", "render"), true, "a newer render replacing it is alone again");
  assert.equal(q.takeAll().join(""), "SSSSSSSS");
});

test("the cap is checked after coalescing, so a replacing render can fit", () => {
  const q = new TabQueue({ capBytes: 10 });
  q.push("RRRRRRRR", "render"); // 8 bytes
  assert.equal(q.push("SSSSSSSSS", "render"), true); // 9 bytes once the older render is gone
  assert.equal(q.bytes, 9);
  assert.equal(q.overflowed, false);
});

test("an overflowed queue refuses pushes until it is cleared", () => {
  const q = new TabQueue({ capBytes: 4 });
  assert.equal(q.push("abc"), true);
  assert.equal(q.push("de"), false);
  assert.equal(q.push("ok"), false);
  assert.equal(q.push("R", "render"), false);
  assert.equal(q.length, 0);
  q.clear();
  assert.equal(q.overflowed, false);
  assert.equal(q.push("ok"), true);
  assert.equal(q.takeAll().join(""), "ok");
});

test("clear empties the queue and forgets the queued render", () => {
  const q = new TabQueue({ capBytes: 100 });
  q.push("R1", "render");
  q.push("p");
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  q.push("p2");
  q.push("R2", "render");
  assert.equal(q.takeAll().join(""), "p2R2");
});

test("many renders interleaved with patches keep order and bounded bookkeeping", () => {
  const q = new TabQueue({ capBytes: 10_000_000 });
  const expected: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    q.push(`p${i};`);
    expected.push(`p${i};`);
    if (i % 3 === 0) q.push(`R${i};`, "render");
  }
  // Only the last render (R9999) survives, at its own (final) position.
  expected.push("R9999;");
  assert.equal(q.length, expected.length);
  assert.equal(q.bytes, Buffer.byteLength(expected.join("")));
  assert.equal(q.takeAll().join(""), expected.join(""));
});

test("render after takeAll is not confused with a render that was already sent", () => {
  const q = new TabQueue({ capBytes: 100 });
  q.push("R1", "render");
  assert.equal(q.takeAll().join(""), "R1");
  q.push("p");
  q.push("R2", "render");
  assert.equal(q.takeAll().join(""), "pR2");
});

test("queue rejects a nonsensical cap", () => {
  assert.throws(() => new TabQueue({ capBytes: 0 }), RangeError);
  assert.throws(() => new TabQueue({ capBytes: Number.NaN }), RangeError);
});

test("a shared Buffer frame is queued by reference and counted by its byte length", () => {
  const q = new TabQueue({ capBytes: 100 });
  const frame = Buffer.from("event: x\ndata: é\n\n");
  assert.ok(q.push("own ", "patch"));
  assert.ok(q.push(frame, "patch"));
  assert.equal(q.bytes, 4 + frame.length);
  const out = q.takeAll();
  assert.equal(out[1], frame, "the same Buffer, not a copy");
});
