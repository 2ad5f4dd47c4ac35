// Decoding the signals the browser sends with every action (`{"signals":{…}}`), and encoding signals
// for the page. The body is attacker-controlled, so every check below turns hostile input into a 400
// with a one-line reason, never a crash, a hang or a polluted prototype:
// - strict UTF-8 (no silent U+FFFD replacement that would change what the user typed);
// - bounded nesting, checked with an explicit stack (no recursion that deep input could overflow);
// - signal names from a small alphabet, bounded in length and count;
// - no `__proto__` / `constructor` / `prototype` keys at any depth, so code that later merges these
//   values naively cannot be steered into Object.prototype, and the result has a null prototype.
import { HttpError } from "./http-error.ts";

/** Deepest nesting of the whole body: the body object is level 1, `signals` level 2, and so on. */
export const MAX_DEPTH = 32;
/** Most signals one action body may carry. */
export const MAX_SIGNALS = 256;
export const SIGNAL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

function bad(reason: string): HttpError {
  return new HttpError(400, reason);
}

/** A name fit for a one-line error reason: truncated and JSON-quoted, so control characters stay escaped. */
function quoteName(name: string): string {
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Walks the parsed body without recursion: enforces MAX_DEPTH and refuses prototype-sensitive keys
 * anywhere. Linear in the size of the body, which readBody has already capped.
 */
function checkStructure(root: unknown): void {
  const stack: Array<[value: unknown, depth: number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    if (depth > MAX_DEPTH) throw bad(`body nests deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "object" && item !== null) stack.push([item, depth + 1]);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw bad(`body uses the reserved key ${quoteName(key)}`);
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
}

/**
 * Decodes an action request body into its signals. Throws HttpError 400 with a one-line reason for
 * anything other than a UTF-8 JSON object with a `signals` object of well-named signals.
 * Returns a null-prototype copy of the signals object (values are as parsed).
 */
export function decodeActionBody(buf: Buffer): Record<string, unknown> {
  return decodeActionRequest(buf).signals;
}

/** A "Load older" cursor: the position the runtime read from the list (digits only). */
const CURSOR = /^\d{1,15}$/;

/**
 * The whole action body: its signals and, for a list's "Load older" action, the optional `cursor`
 * (a string of at most 15 digits; anything else is a 400).
 */
export function decodeActionRequest(buf: Buffer): { signals: Record<string, unknown>; cursor: string | undefined } {
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    throw bad("body is not valid UTF-8");
  }
  // JSON.parse would refuse raw NUL too; saying so is clearer than its "unexpected token" message.
  if (text.includes("\u0000")) throw bad("body contains NUL bytes");

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // V8's message quotes part of the input: keep it to one short line.
    const reason = (err instanceof Error ? err.message : String(err)).replace(/\p{Cc}+/gu, " ");
    throw bad(`body is not valid JSON: ${reason.length > 100 ? `${reason.slice(0, 100)}…` : reason}`);
  }
  if (!isObject(parsed)) throw bad("body must be a JSON object");
  checkStructure(parsed);

  if (!Object.hasOwn(parsed, "signals")) throw bad("body has no signals object");
  const signals = parsed.signals;
  if (!isObject(signals)) throw bad("body.signals must be an object");

  const names = Object.keys(signals);
  if (names.length > MAX_SIGNALS) throw bad(`body has ${names.length} signals, at most ${MAX_SIGNALS} allowed`);
  const out: Record<string, unknown> = Object.create(null);
  for (const name of names) {
    if (!SIGNAL_NAME.test(name)) throw bad(`invalid signal name ${quoteName(name)}`);
    out[name] = signals[name];
  }
  let cursor: string | undefined;
  if (Object.hasOwn(parsed, "cursor")) {
    const value = parsed.cursor;
    if (typeof value !== "string" || !CURSOR.test(value)) throw bad("body.cursor must be a string of 1-15 digits");
    cursor = value;
  }
  return { signals: out, cursor };
}

const UNSAFE_IN_HTML = /[<>&\u2028\u2029]/g;

/**
 * Signals as JSON for the page's `via-boot` meta. `<`, `>`, `&`, U+2028 and U+2029 are written as
 * \u escapes (still the same JSON) so the text cannot close a tag or start an entity in whatever HTML
 * context it lands in; the page still HTML-escapes it as an attribute value.
 */
export function encodeSignalsForPage(signals: Record<string, unknown>): string {
  return JSON.stringify(signals).replace(
    UNSAFE_IN_HTML,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
