// Little builders every generator uses: weighted picks, random and flipped ids, long strings, a
// fixture tab with another session, header maps and digit strings. They know no endpoint's rules.
import type { Rng } from "../prng.ts";
import type { Fixture, FuzzSession, FuzzTab } from "./types.ts";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * The items of a weighted pick: each key as many times as its weight, in the order given. The order is
 * part of the replay (a case's draw picks an index), so a list keeps it.
 */
export function weighted<K extends string>(weights: Partial<Record<K, number>>): K[] {
  return (Object.entries(weights) as Array<[K, number]>).flatMap(([k, n]) => Array<K>(n).fill(k));
}

/** A session id's shape: 22 base64url chars. */
export function randomId(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 22; i++) s += B64URL[rng.int(64)];
  return s;
}

/** A tab id's shape (43 base64url chars) the server never issued. */
export function randomTabId(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 43; i++) s += B64URL[rng.int(64)];
  return s;
}

/**
 * A real id (a tab id, or either half of a session cookie) with one character changed: the last one
 * (its low bits are unused by the bytes it encodes: two of a tab id's 43 characters, four of a cookie
 * half's 22), the first, or any. `nonCanonical`: the new string still decodes to the same bytes, so
 * only a server that compares the id as issued (not its decoded bytes) refuses it.
 */
export function flipId(rng: Rng, id: string): { id: string; where: string; nonCanonical: boolean } {
  const r = rng.next();
  const last = id.length - 1;
  let pos: number;
  let c: string;
  let where: string;
  if (r < 0.15) {
    // Only the unused low bits of the last character.
    pos = last;
    const i = B64URL.indexOf(id[last]!);
    c = B64URL[(i & ~3) | (((i & 3) + 1 + rng.int(3)) % 4)]!;
    where = "last char's unused bits";
  } else {
    pos = r < 0.4 ? last : r < 0.55 ? 0 : rng.int(id.length);
    const i = B64URL.indexOf(id[pos]!);
    c = B64URL[(i + 1 + rng.int(63)) % 64]!;
    where = `char ${pos}`;
  }
  const flipped = id.slice(0, pos) + c + id.slice(pos + 1);
  const nonCanonical = Buffer.from(flipped, "base64url").equals(Buffer.from(id, "base64url"));
  return { id: flipped, where, nonCanonical };
}

export function longString(rng: Rng, n: number): string {
  const alphabet = rng.pick(["a", "%", ".", "*", ">", "/", "%C3%A9", "%00", "x.", "%2e"]);
  return alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
}

export function pickTab(rng: Rng, fx: Fixture): { session: FuzzSession; tab: FuzzTab; other: FuzzSession } {
  const si = rng.int(fx.sessions.length);
  const session = fx.sessions[si]!;
  const other = fx.sessions[(si + 1 + rng.int(fx.sessions.length - 1)) % fx.sessions.length]!;
  return { session, tab: rng.pick(session.tabs), other };
}

export function headersWith(
  base: Record<string, string>,
  extra: Record<string, string | undefined>,
): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out;
}

export function digits(rng: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String(rng.int(10));
  return s;
}
