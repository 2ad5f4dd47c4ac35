// The chat's rooms and the subjects they live on. Room names are user-visible text; subjects are built
// from a safe token of the name (base64url of its UTF-8), never from the raw name, so a name with a
// ".", "*", ">" or whitespace can never address another room or every room.
import { nameToToken } from "../../src/pubsub/subjects.ts";

export const ROOMS = ["Go", "Rust", "Python", "JavaScript", "Clojure"] as const;
export type Room = (typeof ROOMS)[number];
export const DEFAULT_ROOM: Room = "Go";

export const CHAT_STREAM = "CHAT";
export const CHAT_SUBJECTS = "chat.>";

export function isRoom(name: string): name is Room {
  return (ROOMS as readonly string[]).includes(name);
}

export function roomSubject(room: Room): string {
  return `chat.room.${nameToToken(room)}`;
}

export function roomPath(room: Room): string {
  return `/room/${encodeURIComponent(room)}`;
}
