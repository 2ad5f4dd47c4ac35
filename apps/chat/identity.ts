// Who a browser is in the chat: a random "Adjective Animal" with the animal's emoji (as in the seed),
// kept per browser session and editable. Stored as the last message of one subject per session in a
// small stream, so it survives restarts and is shared by every instance on the same engine; but only
// once the person posts or renames: a page load that never says anything writes nothing.
//
// Names people can trust: a nickname has no invisible, blank or control characters and no stacked
// marks (validateNickname), and a rename to a name that looks like the name of someone present in
// the room (same UTS #39 skeleton, any case) is refused, as is a random default that would (app.tsx).
import { createHash } from "node:crypto";
import unhomoglyph from "unhomoglyph";
import type { PubSub } from "via-ts";
import type { Author } from "./messages.ts";

const ADJECTIVES = ["Happy", "Clever", "Brave", "Swift", "Gentle", "Wise", "Bold", "Calm", "Eager", "Fierce"];
const ANIMALS = ["Panda", "Tiger", "Eagle", "Dolphin", "Fox", "Wolf", "Bear", "Hawk", "Otter", "Lion"];
// By the animal's index, as in the seed (Eagle and Hawk share 🦅).
const EMOJI = ["🐼", "🐯", "🦅", "🐬", "🦊", "🐺", "🐻", "🦅", "🦦", "🦁"];

export const IDENTITY_STREAM = "CHAT_IDENTITY";
export const MAX_NICK_CHARS = 32;

export interface Identity extends Author {
  /** A stable, non-secret id for this browser session (a hash of the session id). */
  id: string;
  /** Written to the identity stream already (else it is written on the first post or rename). */
  stored: boolean;
}

/** Draws a whole number in [0, n). */
export type Draw = (n: number) => number;

const randomDraw: Draw = (n) => Math.floor(Math.random() * n);

/**
 * The same draws for the same seed: a session's default name is a function of its id, so the page
 * render and the live tab show the same name without keeping it anywhere (a page load keeps nothing).
 */
export function seededDraw(seed: string): Draw {
  // One hash for the seed, then mulberry32: a join in a full room draws dozens of numbers, and a
  // hash per draw would be a measurable share of a join's CPU.
  let state = createHash("sha256").update(seed).digest().readUInt32BE(0);
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

export function randomAuthor(pick: Draw = randomDraw): Author {
  const animal = pick(ANIMALS.length);
  return { name: `${ADJECTIVES[pick(ADJECTIVES.length)]} ${ANIMALS[animal]}`, emoji: EMOJI[animal]! };
}

/** Every default name (the 100 adjective × animal combinations), with its emoji. */
export const DEFAULT_AUTHORS: readonly Author[] = ADJECTIVES.flatMap((adjective) =>
  ANIMALS.map((animal, i) => ({ name: `${adjective} ${animal}`, emoji: EMOJI[i]! })),
);

/**
 * A random default name for which `taken` is false (`taken`: someone in the room already looks like
 * that). Kept simple: one random pick, which nearly always does; if it is taken, a random one of the
 * 100 combinations nobody has (100 cheap checks, so a free one is never missed by bad luck); if all
 * of them are taken (a big room), a random one with a number from 2 to 99 appended, a few tries, then
 * a 4-digit number. No loop is unbounded, and nothing is reserved: two people joining within the
 * same moment can still draw the same name, as they could pick it by hand (a rename checks again).
 */
export function freeRandomAuthor(taken: (name: string) => boolean, pick: Draw = randomDraw): Author {
  const first = randomAuthor(pick);
  if (!taken(first.name)) return first;
  const free = DEFAULT_AUTHORS.filter((a) => !taken(a.name));
  if (free.length > 0) return free[pick(free.length)]!;
  for (let i = 0; i < 10; i++) {
    const a = randomAuthor(pick);
    const name = `${a.name} ${2 + pick(98)}`;
    if (!taken(name)) return { ...a, name };
  }
  const a = randomAuthor(pick);
  return { ...a, name: `${a.name} ${1000 + pick(9000)}` };
}

// ---- Nickname rules ----

/**
 * Characters a nickname refuses because they show nothing (or nothing that tells names apart), so
 * that "Wise Tiger" and "Wise\u3164Tiger" cannot both be in a roster:
 * - Default_Ignorable_Code_Point (zero-width spaces and joiners, the Hangul fillers U+115F, U+1160,
 *   U+3164, U+FFA0, variation selectors, tags, soft hyphen, ...); emoji presentation selectors get
 *   an exception below;
 * - Cc controls, Cf format characters (bidi controls, U+180E, ...), Co private use, Cn unassigned,
 *   Cs lone surrogates;
 * - Zl/Zp line and paragraph separators and every space but U+0020 (whitespace is normalised to
 *   U+0020 first, so this only catches what that normalisation does not);
 * - BLANKS: characters that are letters, symbols or marks by category and not default-ignorable,
 *   but have an empty glyph. Found by reading the Unicode names (BLANK, FILLER, NULL, SPACE) of
 *   every code point outside the classes above, checked with the editors' invisible-character lists.
 */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Zs}]/u;
const BLANKS = new Set([
  0x115f, // HANGUL CHOSEONG FILLER (also default-ignorable: kept for older Unicode data)
  0x1160, // HANGUL JUNGSEONG FILLER (idem)
  0x2800, // BRAILLE PATTERN BLANK (So)
  0x3164, // HANGUL FILLER (idem)
  0xfffc, // OBJECT REPLACEMENT CHARACTER (So: an empty box or nothing)
  0xffa0, // HALFWIDTH HANGUL FILLER (idem)
  0x16fe4, // KHITAN SMALL SCRIPT FILLER (Mn)
  0x1d159, // MUSICAL SYMBOL NULL NOTEHEAD (So)
]);
/** Emoji presentation selectors: allowed right after an emoji ("❤️" is U+2764 U+FE0F), not elsewhere. */
const PRESENTATION_SELECTOR = /^[\uFE0E\uFE0F]$/;
const EMOJI_CHAR = /^\p{Emoji}$/u;
const MARK = /^\p{M}$/u;
/** Marks in a row on one letter, after NFC: Vietnamese, Hindi, Thai and Arabic names need up to 2. */
export const MAX_STACKED_MARKS = 2;

function hex(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Returns the cleaned nickname, or throws an Error whose message is shown to the user. */
export function validateNickname(input: string): string {
  const nick = input.normalize("NFC").replace(/\s+/g, " ").trim();
  if (nick === "") throw new Error("A nickname cannot be empty: type a name.");
  const chars = [...nick];
  if (chars.length > MAX_NICK_CHARS) {
    throw new Error(`A nickname has at most ${MAX_NICK_CHARS} characters; yours has ${chars.length}. Shorten it.`);
  }
  let marks = 0;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const prev = chars[i - 1];
    const selectorAfterEmoji = PRESENTATION_SELECTOR.test(c) && prev !== undefined && EMOJI_CHAR.test(prev);
    if (c !== " " && (BLANKS.has(c.codePointAt(0)!) || (INVISIBLE.test(c) && !selectorAfterEmoji))) {
      throw new Error(
        `Your nickname contains an invisible, blank or control character (${hex(c)}). Remove it and use visible characters.`,
      );
    }
    if (!MARK.test(c)) {
      marks = 0;
      continue;
    }
    // A mark with no letter under it floats over the space or the name next to it.
    if (prev === undefined || prev === " ") {
      throw new Error(
        `A nickname cannot start a word with an accent or combining mark (${hex(c)}). Put it on a letter or remove it.`,
      );
    }
    if (++marks > MAX_STACKED_MARKS) {
      throw new Error(
        `A nickname cannot stack more than ${MAX_STACKED_MARKS} accents or marks on one letter. Remove the extra ones.`,
      );
    }
  }
  return nick;
}

// ---- Look-alike names ----

const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
const SKELETONS_CACHED = 50_000;
const skeletons = new Map<string, string>();

/**
 * The UTS #39 skeleton of `name`, case-folded: two names with the same skeleton look alike.
 * NFD → remove default-ignorable code points (UTS #39 since Unicode 15.1; a nickname has none but
 * an emoji presentation selector) → each character to its prototype in Unicode's confusables data
 * (the `unhomoglyph` package: Cyrillic "Т" → "T", "і" → "i", "0" → "O", "m" → "rn")
 * → NFD again → lower case (JavaScript has no case folding; lower-casing is its simple form).
 */
export function skeleton(name: string): string {
  let s = skeletons.get(name);
  if (s === undefined) {
    s = unhomoglyph(name.normalize("NFD").replace(DEFAULT_IGNORABLE, "")).normalize("NFD").toLowerCase();
    if (skeletons.size >= SKELETONS_CACHED) skeletons.clear();
    skeletons.set(name, s);
  }
  return s;
}

/**
 * The keys under which a name is compared: the skeletons of the name, of its lower case and of its
 * upper case; two names look alike if they share a key. One skeleton is not enough because the
 * confusables data maps by look, not by case: capital "I" maps to "l" (they look alike), so
 * "WISE TIGER" has the skeleton "wlse tlger" and "wise tiger" has "wise tiger"; lower-casing first
 * loses the capitals that only look alike as capitals (Cyrillic "Т" lower-cases to "т", which looks
 * like no Latin letter), and upper-casing first loses the small letters that only look alike small
 * (Greek "ν" and "v"). Upper-casing is also full case folding's "ß" = "ss".
 */
export function nameKeys(name: string): readonly string[] {
  // Cached whole: a roster index rebuilds from every name present on each roster change.
  let keys = keyCache.get(name);
  if (keys === undefined) {
    const found = [skeleton(name)];
    for (const variant of [name.toLowerCase(), name.toUpperCase()]) {
      const key = skeleton(variant);
      if (!found.includes(key)) found.push(key);
    }
    keys = found;
    if (keyCache.size >= SKELETONS_CACHED) keyCache.clear();
    keyCache.set(name, keys);
  }
  return keys;
}
const keyCache = new Map<string, readonly string[]>();

/** Who among `people` (other than `exceptId`, the renaming person) has a name that looks like `name`. */
export function lookalikeOf<P extends { id: string; name: string }>(
  name: string,
  people: Iterable<P>,
  exceptId: string,
): P | undefined {
  const keys = nameKeys(name);
  for (const p of people) {
    // Snapshots of other instances are JSON from the wire: a malformed entry is nobody.
    if (p.id === exceptId || typeof p.name !== "string") continue;
    if (nameKeys(p.name).some((key) => keys.includes(key))) return p;
  }
  return undefined;
}

/** Name keys → the id of the one person who has them, or "" when several do. */
export type NameIndex = ReadonlyMap<string, string>;
const indexes = new WeakMap<ReadonlyMap<string, { id: string; name: string }>, NameIndex>();

/**
 * Whether someone in `people` (a map by id that does not change) other than `exceptId` has a name
 * that looks like `name`. O(1) after the first call for a given map, which indexes it once.
 */
export function nameTaken(
  name: string,
  people: ReadonlyMap<string, { id: string; name: string }>,
  exceptId: string,
): boolean {
  let index = indexes.get(people);
  if (!index) {
    const built = new Map<string, string>();
    for (const p of people.values()) {
      if (typeof p.name !== "string") continue;
      for (const key of nameKeys(p.name)) {
        const holder = built.get(key);
        built.set(key, holder === undefined || holder === p.id ? p.id : "");
      }
    }
    indexes.set(people, built);
    index = built;
  }
  for (const key of nameKeys(name)) {
    const holder = index.get(key);
    if (holder !== undefined && holder !== exceptId) return true;
  }
  return false;
}

export class IdentityStore {
  constructor(private readonly pubsub: PubSub) {}

  static async open(pubsub: PubSub, replicas?: number): Promise<IdentityStore> {
    await pubsub.ensureStream({
      name: IDENTITY_STREAM,
      subjects: ["identity.>"],
      maxMsgsPerSubject: 1,
      maxAge: 30 * 24 * 3600_000,
      ...(replicas ? { replicas } : {}),
    });
    return new IdentityStore(pubsub);
  }

  static idFor(sessionId: string): string {
    return createHash("sha256").update(sessionId).digest("hex").slice(0, 32);
  }

  /** The session's stored identity, or a fresh random one that is not stored yet. */
  async load(sessionId: string): Promise<Identity> {
    const id = IdentityStore.idFor(sessionId);
    const [last] = await this.pubsub.history(`identity.${id}`, { last: 1 });
    if (last) {
      try {
        const a = JSON.parse(new TextDecoder().decode(last.data)) as Author;
        // A name stored before today's nickname rules (or by a stray publisher) must meet them too.
        if (typeof a.name === "string" && typeof a.emoji === "string" && validateNickname(a.name) === a.name) {
          return { id, name: a.name, emoji: a.emoji, stored: true };
        }
      } catch {
        // An unreadable record, or a name the rules refuse, is replaced by a fresh identity below.
      }
    }
    return this.fresh(sessionId);
  }

  /** The session's default identity (random, but the same every time for one session), not stored yet. */
  fresh(sessionId: string): Identity {
    const id = IdentityStore.idFor(sessionId);
    return { id, ...randomAuthor(seededDraw(id)), stored: false };
  }

  /** Stores the identity; resolves with it marked as stored. */
  async save(identity: Identity): Promise<Identity> {
    await this.pubsub.publish(
      `identity.${identity.id}`,
      JSON.stringify({ name: identity.name, emoji: identity.emoji }),
    );
    return { ...identity, stored: true };
  }
}
