// Whose tab id a request carries (the session's own, spare, expired, another session's, forged,
// malformed): the kinds and weights the stream and action generators share.
import type { Rng } from "../prng.ts";
import { weighted } from "./builders.ts";

/**
 * Whose tab id a request carries: `own` a live tab of the request's session, `spare` an id issued to
 * the session whose stream never attached, `other`/`otherSpare` the same of another session, `random`
 * 43 base64url characters the server never issued, `flip` a real id with one character changed,
 * `expired` an id signed for the session but issued longer ago than tabIdMaxAgeMs.
 */
export type TabKind =
  | "own"
  | "spare"
  | "expired"
  | "other"
  | "otherSpare"
  | "random"
  | "flip"
  | "malformed"
  | "missing";

/** The weights of the tab kinds other than the session's own tabs (live or spare). */
const FOREIGN_TABS = { expired: 1, other: 1, otherSpare: 1, random: 1, flip: 2, malformed: 1, missing: 1 };
/** The tabs a stream case asks for: mostly its own live tab. */
export const STREAM_TAB_KINDS = weighted<TabKind>({ own: 4, spare: 3, ...FOREIGN_TABS });
/** The tabs of an action case whose tab is what breaks it: never its own live tab. */
export const REFUSED_TAB_KINDS = weighted<TabKind>({ spare: 2, ...FOREIGN_TABS });

/** Tab ids that are not 43 base64url characters (as a query value and as a header value alike). */
export function malformedId(rng: Rng, real: string): string {
  return rng.pick([
    "",
    "short",
    "A".repeat(22), // a session id's length (and the old tab id's)
    "A".repeat(42),
    "A".repeat(44),
    real.slice(0, 42),
    `${real}A`,
    `${real}=`,
    `${"A".repeat(42)}=`,
    `${"A".repeat(42)}.`,
    `${"A".repeat(42)}/`,
    `${"A".repeat(42)}%00`,
    `${"A".repeat(41)}%C3%A9`,
    "%20".repeat(43),
    "*".repeat(43),
    ">".repeat(43),
    "..%2F..%2F..%2F..%2F..%2F..",
    "A".repeat(10 * 1024),
  ]);
}
