// Subject grammar shared by both engines (docs/reference/nats-facts.md §5). NATS itself is lenient in dangerous ways:
// it silently drops publishes with empty tokens, stores `*` literally, and splits a subject at a
// space into subject + reply. So we validate before anything reaches an engine and fail loudly,
// with the subject and the broken rule in the error.
import { SubjectError } from "./errors.ts";

/** UTF-8 bytes. Well under NATS's 4096-byte control line (`PUB <subject> <reply> <len>`). */
export const MAX_SUBJECT_BYTES = 1024;

/** Max UTF-8 bytes of a user-facing name turned into a token (96 bytes -> at most 128 base64url chars). */
export const MAX_NAME_BYTES = 96;

// Rules, named once so error messages (and tests) stay stable.
export const RULE_EMPTY = "must not be empty";
export const RULE_TOO_LONG = `must be at most ${MAX_SUBJECT_BYTES} UTF-8 bytes`;
export const RULE_EMPTY_TOKEN = "tokens must not be empty (no leading, trailing or double dots)";
export const RULE_WHITESPACE = "must not contain whitespace or control characters";
export const RULE_UNPAIRED_SURROGATE = "must be well-formed Unicode (unpaired surrogate)";
export const RULE_WILDCARD_IN_PUBLISH = "a publish subject must not contain a `*` or `>` token";
export const RULE_GT_NOT_LAST = "`>` is only allowed as the last token";

// \s covers Unicode whitespace (incl. NBSP, U+2028/9, BOM); \p{Cc} covers C0/C1 controls.
const BAD_CHARS = /[\s\p{Cc}]/u;
// With the u flag a proper surrogate pair is one code point, so this only matches unpaired halves,
// which would become U+FFFD on the wire and silently alias other subjects.
const LONE_SURROGATE = /\p{Cs}/u;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Checks shared by subjects and patterns; returns the tokens. */
function tokenize(subject: string): string[] {
  if (typeof subject !== "string" || subject.length === 0) throw new SubjectError(String(subject), RULE_EMPTY);
  // Skip counting bytes when it cannot exceed the cap (a UTF-16 unit is at most 3 UTF-8 bytes).
  if (subject.length * 3 > MAX_SUBJECT_BYTES && utf8Length(subject) > MAX_SUBJECT_BYTES) {
    throw new SubjectError(subject, RULE_TOO_LONG);
  }
  if (BAD_CHARS.test(subject)) throw new SubjectError(subject, RULE_WHITESPACE);
  if (LONE_SURROGATE.test(subject)) throw new SubjectError(subject, RULE_UNPAIRED_SURROGATE);
  const tokens = subject.split(".");
  for (const t of tokens) if (t.length === 0) throw new SubjectError(subject, RULE_EMPTY_TOKEN);
  return tokens;
}

/** Validates a subject to publish to (literal: no `*`/`>` tokens; `a*b` is a literal token). Returns its tokens. */
export function parsePublishSubject(subject: string): string[] {
  const tokens = tokenize(subject);
  for (const t of tokens) if (t === "*" || t === ">") throw new SubjectError(subject, RULE_WILDCARD_IN_PUBLISH);
  return tokens;
}

/** Validates a subscription pattern: `*` as a whole token anywhere, `>` only as the last token. Returns its tokens. */
export function parsePattern(pattern: string): string[] {
  const tokens = tokenize(pattern);
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === ">") throw new SubjectError(pattern, RULE_GT_NOT_LAST);
  }
  return tokens;
}

/** True when the (valid) subject or pattern has no wildcard token. */
export function isLiteral(subject: string): boolean {
  for (const t of subject.split(".")) if (t === "*" || t === ">") return false;
  return true;
}

/** Does `pattern` match the literal `subject`? Both must already be valid. */
export function matchesPattern(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === ">") return s.length > i; // `>` needs at least one token
    if (i >= s.length) return false;
    if (pt !== "*" && pt !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Can some literal subject match both (valid) patterns? Used to refuse streams with overlapping subjects. */
export function patternsOverlap(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; ; i++) {
    const xe = i >= x.length;
    const ye = i >= y.length;
    if (xe || ye) return xe && ye;
    const xt = x[i];
    const yt = y[i];
    // `>` swallows one or more tokens; the other side has a token here, and whatever follows
    // in it (literals, `*`, `>`) can be satisfied by some literal tail.
    if (xt === ">" || yt === ">") return true;
    if (xt !== "*" && yt !== "*" && xt !== yt) return false;
  }
}

/**
 * Is every subject matching `p` also matched by `s`? (`p` ⊆ `s`, both valid patterns.) Tells whether a
 * stream captures everything a subscription can receive.
 */
export function patternCovers(s: string, p: string): boolean {
  const st = s.split(".");
  const pt = p.split(".");
  for (let i = 0; ; i++) {
    if (i === st.length) return i === pt.length;
    if (st[i] === ">") return i < pt.length;
    if (i === pt.length) return false;
    if (pt[i] === ">") return false;
    if (st[i] === "*") continue;
    if (pt[i] !== st[i]) return false;
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Encodes a user-facing name (room name, ...) as one safe token: base64url without padding of the
 * NFC-normalised UTF-8 bytes. The alphabet is within NATS's restricted-term, and a non-empty name never
 * gives an empty token, so user text can never add tokens, inject wildcards, or break the protocol.
 * Not for stream names: base64url differs by case only, which collides on case-insensitive file systems.
 */
export function nameToToken(name: string): string {
  if (typeof name !== "string" || name.length === 0) throw new SubjectError(String(name), "a name must not be empty");
  if (LONE_SURROGATE.test(name)) throw new SubjectError(name, RULE_UNPAIRED_SURROGATE);
  const bytes = Buffer.from(name.normalize("NFC"), "utf8");
  if (bytes.length > MAX_NAME_BYTES) {
    throw new SubjectError(name, `a name must be at most ${MAX_NAME_BYTES} UTF-8 bytes after NFC normalisation`);
  }
  return bytes.toString("base64url"); // Node's base64url never pads
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Inverse of nameToToken. Refuses anything nameToToken could not have produced (bad alphabet, padding,
 * non-zero trailing bits, invalid UTF-8, non-NFC text, too long), so `nameToToken(tokenToName(t)) === t`
 * always holds and two different tokens never decode to the same name.
 */
export function tokenToName(token: string): string {
  const rule = "not a canonical base64url token of a valid UTF-8 name";
  if (typeof token !== "string" || !BASE64URL.test(token) || token.length % 4 === 1) {
    throw new SubjectError(String(token), rule);
  }
  const bytes = Buffer.from(token, "base64url");
  if (bytes.length > MAX_NAME_BYTES || bytes.toString("base64url") !== token) throw new SubjectError(token, rule);
  let name: string;
  try {
    name = strictUtf8.decode(bytes);
  } catch {
    throw new SubjectError(token, rule);
  }
  if (name.normalize("NFC") !== name) throw new SubjectError(token, rule);
  return name;
}
