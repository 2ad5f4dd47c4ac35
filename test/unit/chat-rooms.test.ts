import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_ROOMS, roomSubject, validateRooms } from "../../apps/chat/rooms.ts";

test("validateRooms keeps a valid list in order and NFC-normalizes it", () => {
  assert.deepEqual(validateRooms(DEFAULT_ROOMS), [...DEFAULT_ROOMS]);
  assert.deepEqual(validateRooms(["Cafe\u0301", "r.*>"]), ["Caf\u00e9", "r.*>"]);
});

test("validateRooms rejects empty, padded, control-character, over-long, duplicate and too many names", () => {
  assert.throws(() => validateRooms([]), /at least one room/);
  assert.throws(() => validateRooms(["Go", ""]), /"" is not a room name/);
  assert.throws(() => validateRooms([" Go"]), /not a room name/);
  assert.throws(() => validateRooms(["a\u0000b"]), /not a room name/);
  assert.throws(() => validateRooms(["x".repeat(41)]), /not a room name/);
  assert.throws(() => validateRooms(["Go", "Go"]), /listed twice/);
  assert.throws(() => validateRooms(Array.from({ length: 201 }, (_, i) => `r${i}`)), /at most 200 rooms/);
});

test("roomSubject of a name with subject syntax stays one literal token", () => {
  const subject = roomSubject("a.*.>");
  assert.match(subject, /^chat\.room\.[A-Za-z0-9_-]+$/);
});
