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

const LRE = 0x202a;
const RLE = 0x202b;
const PDF = 0x202c;
const LRO = 0x202d;
const RLO = 0x202e;
const LRI = 0x2066;
const RLI = 0x2067;
const FSI = 0x2068;
const PDI = 0x2069;
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/;
/** Paragraph separators (bidi class B: LF, CR, U+001C-U+001E, NEL, U+2029) end whatever is still open. */
function endsParagraph(c: number): boolean {
  return c === 0x0a || c === 0x0d || (c >= 0x1c && c <= 0x1e) || c === 0x85 || c === 0x2029;
}

/**
 * `text` without the bidi controls that could make it display as something else: the overrides
 * LRO and RLO (U+202D, U+202E: "transfer \u202Egnp.exe\u202C" shows as "transfer exe.png"), with
 * the PDF that closes each, and every embedding (U+202A, U+202B) or isolate (U+2066-U+2068) that is
 * not closed by its PDF (U+202C) or PDI (U+2069) before the text or its paragraph ends, and every
 * PDF or PDI that closes nothing. Paired embeddings and isolates stay: they are how mixed-direction
 * text is written, and they cannot reach past their pair. Pairing follows UAX #9 (BD9, BD16): a PDI
 * closes the innermost open isolate and whatever embeddings were opened inside it; a PDF closes the
 * innermost embedding or override, never across an open isolate. Text without any bidi control is
 * returned as is. The page shows the result in an isolating element as well (view.tsx).
 */
export function stripBidiControls(text: string): string {
  if (!BIDI_CONTROL.test(text)) return text;
  /** Open initiators: index in `text` and kind. */
  const open: Array<{ at: number; kind: "embed" | "override" | "isolate" }> = [];
  const drop = new Set<number>();
  const closeAll = () => {
    for (const o of open) drop.add(o.at);
    open.length = 0;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LRE || c === RLE) open.push({ at: i, kind: "embed" });
    else if (c === LRO || c === RLO) {
      drop.add(i);
      open.push({ at: i, kind: "override" });
    } else if (c === LRI || c === RLI || c === FSI) open.push({ at: i, kind: "isolate" });
    else if (c === PDF) {
      const top = open.at(-1);
      if (top === undefined || top.kind === "isolate") drop.add(i);
      else {
        open.pop();
        if (top.kind === "override") drop.add(i);
      }
    } else if (c === PDI) {
      const at = open.findLastIndex((o) => o.kind === "isolate");
      if (at < 0) drop.add(i);
      else for (const o of open.splice(at).slice(1)) drop.add(o.at);
    } else if (endsParagraph(c)) closeAll();
  }
  closeAll();
  if (drop.size === 0) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) if (!drop.has(i)) out += text[i];
  return out;
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
