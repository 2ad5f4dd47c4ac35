// The chat's rooms and the subjects they live on (docs/MESSAGES.md). Room names are user-visible text;
// a room's subject is `chat.room.<token>`, where the token is the name itself when the name is a plain
// NATS token ("Go" → chat.room.Go, as in the original chat) and an escaped form of it otherwise (see
// roomToken), never the raw name: a name with a ".", "*", ">" or whitespace can never address another
// room or every room.
import type { Delivery, Logger, PubSub } from "via-ts";
import { pubsub } from "via-ts";
import { decodeChatMessage } from "./messages.ts";

/** The seed's rooms: the default set. The first one is where "/" lands. */
export const DEFAULT_ROOMS: readonly string[] = ["Go", "Rust", "Python", "JavaScript", "Clojure"];
export type Room = string;

export const CHAT_STREAM = "CHAT";
export const CHAT_SUBJECTS = "chat.>";

/** At most this many rooms: every page lists them all. */
export const MAX_ROOMS = 200;
const MAX_ROOM_CHARS = 40;

/**
 * Checks a configured room list (from `--rooms` or ChatOptions): 1 to 200 distinct names of 1-40
 * printable characters. Any name is safe as a room (its subject is a token of it); the limits keep
 * the room bar usable. Throws an error that names the bad entry.
 */
export function validateRooms(names: readonly string[]): string[] {
  if (names.length === 0) throw new Error("rooms: at least one room is needed");
  if (names.length > MAX_ROOMS) throw new Error(`rooms: at most ${MAX_ROOMS} rooms, got ${names.length}`);
  const seen = new Set<string>();
  for (const raw of names) {
    const name = raw.normalize("NFC");
    const chars = [...name].length;
    if (chars === 0 || chars > MAX_ROOM_CHARS || name.trim() !== name || /[\p{Cc}\p{Cs}]/u.test(name)) {
      throw new Error(
        `rooms: ${JSON.stringify(raw.slice(0, 64))} is not a room name (1-${MAX_ROOM_CHARS} printable characters, no leading or trailing space)`,
      );
    }
    if (seen.has(name)) throw new Error(`rooms: ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
  }
  return [...seen];
}

// ---- room names as subject tokens ----

/** The plain names: a NATS token anyone can type, and the token of such a room. */
const PLAIN = /^[A-Za-z0-9_-]+$/;
/** Every token roomToken makes: plain characters and `~` + two upper-case hex digits. */
const TOKEN = /^(?:[A-Za-z0-9_-]|~[0-9A-F]{2})+$/;
const LONE_SURROGATE = /\p{Cs}/u;
const utf8Encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A UTF-8 byte that is a plain character (A-Z, a-z, 0-9, "-", "_"). */
function plainByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;
}

/**
 * The one subject token of a room (its subject is `chat.room.<token>`).
 *
 * - A plain name, one of `[A-Za-z0-9_-]+`, is its own token: "Go" → `Go`, "Rust-2024" → `Rust-2024`.
 * - Any other name is taken as the UTF-8 bytes of its NFC form; plain bytes stay, every other byte
 *   becomes `~` and two upper-case hex digits: "C++" → `C~2B~2B`, "Go Team" → `Go~20Team`,
 *   "Café" → `Caf~C3~A9`, "a.b" → `a~2Eb`, "*" → `~2A`, "~" → `~7E`.
 *
 * Why this is injective (tested in test/unit/chat-rooms.test.ts, both ways):
 * - Two different plain names give two different tokens (each is its own).
 * - Two different (NFC) names that are not plain give different byte strings, and the escaping is
 *   undone byte by byte (`~` is never a kept byte and is always followed by exactly two hex digits), so
 *   their tokens differ too. Names that differ only by Unicode normalisation are the same room
 *   (validateRooms keeps the NFC form).
 * - A plain name's token has no `~`; a name that is not plain has a character outside the plain set,
 *   whose bytes are all escaped, so its token has a `~`. No encoded token is ever a plain name.
 *
 * Every token is a valid NATS token on both engines: at least one character, all of them printable
 * ASCII, none of them ".", "*", ">" or whitespace. A room of 40 characters (validateRooms' limit) has at
 * most 160 UTF-8 bytes, so its token has at most 480 characters, well under the 1,024-byte subject cap.
 */
export function roomToken(room: Room): string {
  const name = room.normalize("NFC");
  if (name.length === 0) throw new Error("a room name must not be empty");
  // TextEncoder would turn an unpaired surrogate into U+FFFD, so two names would share a token.
  if (LONE_SURROGATE.test(name)) throw new Error(`room name ${JSON.stringify(name)} has an unpaired surrogate`);
  if (PLAIN.test(name)) return name;
  let token = "";
  for (const b of utf8Encoder.encode(name)) {
    token += plainByte(b) ? String.fromCharCode(b) : `~${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return token;
}

/**
 * The room name of a token: the inverse of roomToken. Refuses anything roomToken cannot make (lower-case
 * hex, an escaped plain byte, a truncated escape, bytes that are not UTF-8, text that is not NFC), so
 * `roomToken(tokenRoom(t)) === t` for every token it accepts.
 */
export function tokenRoom(token: string): Room {
  const bad = () => new Error(`${JSON.stringify(String(token).slice(0, 64))} is not a room token`);
  if (typeof token !== "string" || !TOKEN.test(token)) throw bad();
  if (PLAIN.test(token)) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    if (token[i] === "~") {
      const b = Number.parseInt(token.slice(i + 1, i + 3), 16);
      if (plainByte(b)) throw bad();
      bytes.push(b);
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i++;
    }
  }
  let name: string;
  try {
    name = strictUtf8.decode(new Uint8Array(bytes));
  } catch {
    throw bad();
  }
  if (name.normalize("NFC") !== name) throw bad();
  return name;
}

export function roomSubject(room: Room): string {
  return `chat.room.${roomToken(room)}`;
}

// ---- history stored under the old subjects ----

/**
 * The subject a room had before readable subjects: base64url of its name ("Go" was `chat.room.R28`), or
 * undefined for a name that could not have one (over 96 UTF-8 bytes).
 */
export function oldRoomSubject(room: Room): string | undefined {
  try {
    return `chat.room.${pubsub.nameToToken(room)}`;
  } catch {
    return undefined;
  }
}

/** On a copy that moveOldHistory made: when the original was stored (ms since the Unix epoch). */
export const ORIGINAL_TIME_HEADER = "Chat-Original-Time";
/** On a copy that moveOldHistory made: the subject of the original. */
export const MOVED_FROM_HEADER = "Chat-Moved-From";
/** `chat.moved.<token>`: how far a room's old subject has been copied (`{"from", "through": seq}`). */
const MOVED_MARK = "chat.moved.";
const MAX_STORED_PER_ROOM = 1000;

/** The time a stored message shows: its original's for a copy that moveOldHistory made (never later). */
export function originalTime(msg: Delivery): number | undefined {
  const raw = msg.headers[ORIGINAL_TIME_HEADER];
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return undefined;
  const t = Number(raw);
  return msg.time === undefined || t <= msg.time ? t : undefined;
}

export interface MovedHistory {
  room: Room;
  from: string;
  to: string;
  /** Messages copied now (0 when everything was copied before). */
  moved: number;
}

/**
 * Copies each room's history from its old subject (oldRoomSubject) to its readable subject, once, so an
 * upgrade keeps what the rooms showed. Called by createChat before it serves; cheap when there is
 * nothing left to copy (one stream info).
 *
 * - Copies keep their order and JSON (the `id` too) and carry ORIGINAL_TIME_HEADER, so they show the
 *   original time; messages the chat would skip (not a valid chat message) are not copied.
 * - Once: a mark on `chat.moved.<token>` records the last old seq copied, and a message whose id the
 *   room already has is not copied again (a copy interrupted before its mark). Instances starting at the
 *   same time publish the same msg ids, which the stream's duplicate window drops.
 * - The old messages stay where they are and expire with the stream's 24 h; the mark, written after
 *   them, outlives them. An old instance still writing to an old subject (a rolling upgrade) has its
 *   later messages copied at the next start of a new one: stop old instances before starting new ones.
 * - A room whose old subject is another room's readable subject (rooms "Go" and "R28" together: "R28"
 *   is a plain name) cannot be told apart from that room's messages: it is left alone, with a warning.
 */
export async function moveOldHistory(ps: PubSub, rooms: readonly Room[], log?: Logger): Promise<MovedHistory[]> {
  const stored = (await ps.info(CHAT_STREAM)).subjects;
  const now = new Set(rooms.map(roomSubject));
  const done: MovedHistory[] = [];
  for (const room of rooms) {
    const from = oldRoomSubject(room);
    const to = roomSubject(room);
    if (from === undefined || from === to || !stored[from]) continue;
    if (now.has(from)) {
      log?.warn(
        { room, from },
        "chat history under a room's old subject left alone: that is another room's subject now",
      );
      continue;
    }
    const mark = `${MOVED_MARK}${roomToken(room)}`;
    const [last] = await ps.history(mark, { last: 1 });
    let through = 0;
    if (last) {
      try {
        const seq = (JSON.parse(new TextDecoder().decode(last.data)) as { through?: unknown }).through;
        if (typeof seq === "number" && Number.isSafeInteger(seq)) through = seq;
      } catch {
        // an unreadable mark: copy again (ids already in the room are skipped)
      }
    }
    const present = new Set<string>();
    for (const msg of await ps.history(to, { last: MAX_STORED_PER_ROOM })) {
      const id = chatMessageId(msg);
      if (id !== undefined) present.add(id);
    }
    let moved = 0;
    let seq = through;
    for (;;) {
      const page = await ps.history(from, { afterSeq: seq, limit: MAX_STORED_PER_ROOM });
      if (page.length === 0) break;
      for (const msg of page) {
        seq = msg.seq;
        const id = chatMessageId(msg);
        if (id === undefined || present.has(id)) continue;
        present.add(id);
        await ps.publish(to, msg.data, {
          msgId: `moved:${from}:${msg.seq}`,
          headers: { [MOVED_FROM_HEADER]: from, [ORIGINAL_TIME_HEADER]: String(originalTime(msg) ?? msg.time) },
        });
        moved++;
      }
    }
    if (seq > through) {
      await ps.publish(mark, JSON.stringify({ from, through: seq }), { msgId: `moved:${from}:through:${seq}` });
    }
    if (moved > 0) log?.info({ room, from, to, moved }, "chat history moved to the room's readable subject");
    done.push({ room, from, to, moved });
  }
  return done;
}

/** The id of a stored chat message, or undefined when the chat would skip it. */
function chatMessageId(msg: Delivery): string | undefined {
  try {
    return decodeChatMessage(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(msg.data))).id;
  } catch {
    return undefined;
  }
}

export function roomPath(room: Room): string {
  return `/room/${encodeURIComponent(room)}`;
}
