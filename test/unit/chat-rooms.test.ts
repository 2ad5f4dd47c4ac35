import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_ROOMS,
  oldRoomSubject,
  roomSubject,
  roomToken,
  tokenRoom,
  validateRooms,
} from "../../apps/chat/rooms.ts";
import { pubsub } from "../../src/index.ts";

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

test("validateRooms rejects a name with an unpaired surrogate (it has no UTF-8 form)", () => {
  assert.throws(() => validateRooms(["a\ud800"]), /not a room name/);
});

test("roomSubject of a name with subject syntax stays one literal token", () => {
  const subject = roomSubject("a.*.>");
  assert.equal(subject, "chat.room.a~2E~2A~2E~3E");
  assert.deepEqual(pubsub.parsePublishSubject(subject), ["chat", "room", "a~2E~2A~2E~3E"]);
});

const PLAIN = /^[A-Za-z0-9_-]+$/;

test("a plain room name is its own token: chat.room.Go, as in the original chat", () => {
  for (const room of DEFAULT_ROOMS) assert.equal(roomSubject(room), `chat.room.${room}`);
  for (const name of ["Go", "go", "R28", "Rust-2024", "_", "-", "a_b-c", "0", "x".repeat(40)]) {
    assert.equal(roomToken(name), name);
    assert.equal(tokenRoom(name), name);
  }
});

test("any other name is escaped byte by byte with ~XX: documented examples", () => {
  const cases: Array<[string, string]> = [
    ["C++", "C~2B~2B"],
    ["Go Team", "Go~20Team"],
    ["Café", "Caf~C3~A9"],
    ["Cafe\u0301", "Caf~C3~A9"], // NFC first: the same room as "Café"
    ["a.b", "a~2Eb"],
    ["*", "~2A"],
    [">", "~3E"],
    ["~", "~7E"],
    ["~41", "~7E41"],
    ["Go~20Team", "Go~7E20Team"],
    ["日本", "~E6~97~A5~E6~9C~AC"],
    ["🦀", "~F0~9F~A6~80"],
  ];
  for (const [name, token] of cases) {
    assert.equal(roomToken(name), token, name);
    assert.equal(tokenRoom(token), name.normalize("NFC"), token);
  }
});

/** Names that stress the encoding: plain ones, look-alikes of escapes, NATS syntax, Unicode. */
function sampleNames(): string[] {
  const names = new Set<string>([
    ...DEFAULT_ROOMS,
    "R28", // "Go"'s old token, a plain name now
    "~",
    "~~",
    "~2",
    "~2B",
    "~7E",
    "a~",
    "%20",
    "a b",
    " ",
    "a.b",
    ".",
    "..",
    "*",
    ">",
    "a*b",
    "$JS",
    "chat.room.Go",
    "C++",
    "C#",
    "Ünïcödé",
    "Cafe\u0301",
    "\u00e9",
    "e\u0301",
    "日本語",
    "🦀🦀",
    "👩‍💻",
    "\ufeffGo",
    "\u200bGo",
    "Go\u00a0Team",
    "\u{10ffff}",
    "🦀".repeat(40),
  ]);
  // Every printable ASCII name of one or two characters.
  for (let a = 0x20; a < 0x7f; a++) {
    names.add(String.fromCharCode(a));
    for (let b = 0x20; b < 0x7f; b++) names.add(String.fromCharCode(a, b));
  }
  // Every BMP code point except surrogates, alone.
  for (let c = 0x80; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) names.add(String.fromCharCode(c));
  // Random mixes of plain characters, "~", hex digits, spaces, dots and multi-byte characters.
  const parts = ["a", "Z", "0", "9", "-", "_", "~", "2", "B", "E", "F", " ", ".", "*", ">", "é", "€", "🦀", "\u0301"];
  let seed = 42;
  // mulberry32: a small seeded generator, so a failure can be replayed.
  const next = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  for (let i = 0; i < 20_000; i++) {
    let name = "";
    const len = 1 + (next() % 12);
    for (let j = 0; j < len; j++) name += parts[next() % parts.length];
    names.add(name);
  }
  return [...names];
}

test("roomToken is injective: round trip, one token per room, no encoded token is a plain name", () => {
  const byToken = new Map<string, string>();
  for (const raw of sampleNames()) {
    const name = raw.normalize("NFC");
    const token = roomToken(raw);
    // Round trip: the token gives the (NFC) name back, and the name gives the same token.
    assert.equal(tokenRoom(token), name, JSON.stringify(raw));
    assert.equal(roomToken(tokenRoom(token)), token);
    // One token per room: no two different names share a token.
    const holder = byToken.get(token);
    assert.ok(holder === undefined || holder === name, `${JSON.stringify(holder)} and ${JSON.stringify(name)}`);
    byToken.set(token, name);
    // Plain names are their own token; any other name's token has a "~", so it is never a plain name.
    if (PLAIN.test(name)) assert.equal(token, name);
    else {
      assert.ok(token.includes("~") && !PLAIN.test(token), `${JSON.stringify(name)} → ${token}`);
      assert.notEqual(token, name);
    }
    // Always exactly one valid NATS token (both engines validate with this grammar).
    assert.match(token, /^[A-Za-z0-9_~-]+$/);
    assert.equal(pubsub.parsePublishSubject(roomSubject(raw)).length, 3);
  }
  assert.ok(byToken.size > 85_000, `${byToken.size} names checked`);
});

test("tokenRoom refuses every token roomToken cannot make", () => {
  const bad = [
    "", // empty
    "a.b", // a dot
    "a b",
    "*",
    ">",
    "~", // truncated escapes
    "~2",
    "a~",
    "~2b", // lower-case hex
    "~41", // an escaped plain byte ("A" is plain)
    "~5F", // "_"
    "~2D", // "-"
    "~C3", // not UTF-8 (a lead byte alone)
    "~80",
    "~C0~AF", // overlong "/"
    "~ED~A0~80", // an encoded surrogate
    "e~CC~81", // "e" + combining acute: not NFC (the room is "~C3~A9")
    "~GG",
    "%20",
    "Go\u00e9",
  ];
  for (const t of bad) assert.throws(() => tokenRoom(t), /is not a room token/, JSON.stringify(t));
  assert.throws(() => roomToken(""), /empty/);
  assert.throws(() => roomToken("a\ud800"), /unpaired surrogate/);
});

test("oldRoomSubject is the base64url subject rooms had before, which the upgrade copies from", () => {
  assert.equal(oldRoomSubject("Go"), "chat.room.R28");
  assert.equal(oldRoomSubject("Rust"), "chat.room.UnVzdA");
  assert.equal(oldRoomSubject("🦀".repeat(40)), undefined, "over 96 bytes: it never had one");
});
