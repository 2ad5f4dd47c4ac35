// The chat's rooms and the subjects they live on. Room names are user-visible text; subjects are built
// from a safe token of the name (base64url of its UTF-8), never from the raw name, so a name with a
// ".", "*", ">" or whitespace can never address another room or every room.
import { pubsub } from "../../src/index.ts";

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
    if (chars === 0 || chars > MAX_ROOM_CHARS || name.trim() !== name || /\p{Cc}/u.test(name)) {
      throw new Error(
        `rooms: ${JSON.stringify(raw.slice(0, 64))} is not a room name (1-${MAX_ROOM_CHARS} printable characters, no leading or trailing space)`,
      );
    }
    if (seen.has(name)) throw new Error(`rooms: ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
  }
  return [...seen];
}

export function roomSubject(room: Room): string {
  return `chat.room.${pubsub.nameToToken(room)}`;
}

export function roomPath(room: Room): string {
  return `/room/${encodeURIComponent(room)}`;
}
