// The chat message on the wire (JSON in the CHAT stream) and its validation. Anything read from the
// stream is checked before it is shown: another instance, an older version or a stray publisher may
// have written it.

export const MAX_MESSAGE_CHARS = 2000;

export interface Author {
  name: string;
  emoji: string;
}

export interface ChatMessage {
  v: 1;
  /** Also the stream msg id: a retried publish is deduplicated, never shown twice. */
  id: string;
  user: Author;
  /** The author's identity id (not shown; marks one's own messages). */
  from: string;
  text: string;
  /** When the sender's instance accepted it (ms). The stream's own time is shown when known. */
  time: number;
}

function isString(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= max;
}

/** Throws on anything that is not a well-formed chat message (subscribeJson logs and skips it). */
export function decodeChatMessage(value: unknown): ChatMessage {
  const m = value as Partial<ChatMessage> | null;
  if (typeof m !== "object" || m === null) throw new Error("not an object");
  if (m.v !== 1) throw new Error("unknown message version");
  if (!isString(m.id, 64)) throw new Error("bad id");
  const user = m.user as Partial<Author> | undefined;
  if (!user || !isString(user.name, 64) || !isString(user.emoji, 16)) throw new Error("bad author");
  if (!isString(m.from, 64)) throw new Error("bad sender");
  if (typeof m.text !== "string" || [...m.text].length > MAX_MESSAGE_CHARS) throw new Error("bad text");
  if (typeof m.time !== "number" || !Number.isFinite(m.time)) throw new Error("bad time");
  return { v: 1, id: m.id, user: { name: user.name, emoji: user.emoji }, from: m.from, text: m.text, time: m.time };
}

/** Length as a person counts it: code points, so an emoji is one character. */
export function charCount(text: string): number {
  return [...text].length;
}

// The seed's canned developer quotes: an empty message sends the next one.
export const DEV_QUOTES = [
  "Just use NATS.",
  "Pub/sub all the things!",
  "Messages are the new API.",
  "JetStream for durability.",
  "No more polling.",
  "Event-driven architecture FTW.",
  "Decouple everything.",
  "NATS is fast.",
  "Subjects are like topics.",
  "Request-reply is cool.",
];

let quoteIndex = Math.floor(Math.random() * DEV_QUOTES.length);

export function nextQuote(): string {
  const quote = DEV_QUOTES[quoteIndex % DEV_QUOTES.length]!;
  quoteIndex++;
  return quote;
}
