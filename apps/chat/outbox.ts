// A tab's sends the stream has not confirmed yet, kept by the browser: the `outbox` signal. The server
// sets it (every send adds an entry, every confirmed store removes one), the runtime keeps it, and it
// comes back with every action. So a send survives the instance that took it: if that instance dies
// between answering Send (204) and the stream's ack, the tab re-bootstraps on any instance, the
// runtime fires the resend action when its stream is back (`data-on-reconnect`), and the new context
// publishes every entry it does not know again, with the same message id. The stream's dedupe (2
// minutes, by `Nats-Msg-Id` or the embedded engine's msg id) keeps that to one stored copy.
//
// Message ids carry the time they were made and are bound to the browser session, so the server can tell
// how old an entry is without trusting the browser's clock or word: an entry is published again blindly
// only within REPUBLISH_WINDOW_MS of its id's time (inside the dedupe window, with room for clocks of
// different instances to disagree); an older one is looked up in the room and otherwise shown "not sent"
// with Retry. Another session's id (taken from the page, say) is ignored: it cannot overwrite someone
// else's message.
import { createHmac, randomBytes } from "node:crypto";
import { charCount, MAX_MESSAGE_CHARS } from "./messages.ts";

/** One pending send as the browser keeps it (a type, not an interface: it must be a JSON signal value). */
export type OutboxEntry = { id: string; text: string };

/** The stream's dedupe window is 2 minutes (ensureChatStream); a blind re-publish stays well inside it. */
export const REPUBLISH_WINDOW_MS = 100_000;
/**
 * The outbox goes with every action of the tab, whose body is capped at 64 KiB: a send that would take
 * it past this is refused (with the draft kept) until earlier ones are stored.
 */
export const OUTBOX_MAX_BYTES = 40 * 1024;

const ID_BYTES = 24;
const TAG_BYTES = 8;

function tag(sessionId: string, body: Buffer): Buffer {
  return createHmac("sha256", `via-chat-message\n${sessionId}`).update(body).digest().subarray(0, TAG_BYTES);
}

/** A new message id: the time (6 bytes, ms), 10 random bytes and a tag binding both to the session; 32 characters. */
export function newMessageId(sessionId: string, now = Date.now()): string {
  const body = Buffer.alloc(ID_BYTES - TAG_BYTES);
  body.writeUIntBE(now, 0, 6);
  randomBytes(10).copy(body, 6);
  return Buffer.concat([body, tag(sessionId, body)]).toString("base64url");
}

/** When a message id of this session was made (ms), or undefined if it is not one. */
export function messageIdTime(id: string, sessionId: string): number | undefined {
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{32}$/.test(id)) return undefined;
  const raw = Buffer.from(id, "base64url");
  if (raw.length !== ID_BYTES) return undefined;
  const body = raw.subarray(0, ID_BYTES - TAG_BYTES);
  const expected = tag(sessionId, body);
  if (!expected.equals(raw.subarray(ID_BYTES - TAG_BYTES))) return undefined;
  return body.readUIntBE(0, 6);
}

/**
 * The outbox as the browser sent it. Lenient: it is only ever what a server set, so anything else (an
 * older format, a tampered value) is dropped, entry by entry, rather than refusing the tab's action.
 */
export function parseOutbox(value: unknown): OutboxEntry[] {
  if (!Array.isArray(value)) return [];
  const out: OutboxEntry[] = [];
  for (const e of value.slice(0, 100)) {
    if (typeof e !== "object" || e === null) continue;
    const { id, text } = e as { id?: unknown; text?: unknown };
    if (typeof id !== "string" || id.length > 64 || typeof text !== "string") continue;
    if (charCount(text) > MAX_MESSAGE_CHARS) continue;
    out.push({ id, text });
  }
  return out;
}

/** The outbox's size as it travels in an action body. */
export function outboxBytes(entries: readonly OutboxEntry[]): number {
  return Buffer.byteLength(JSON.stringify(entries));
}

/** Two outboxes hold the same entries in the same order. */
export function sameOutbox(a: readonly OutboxEntry[], b: readonly OutboxEntry[]): boolean {
  return a.length === b.length && a.every((e, i) => e.id === b[i]!.id && e.text === b[i]!.text);
}
