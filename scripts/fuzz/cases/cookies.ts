// What a request's Cookie header carries (the session's own signed cookie, or values the server did
// not sign) and how it is written. Pages, streams, actions and session cases all draw from it.
import type { Rng } from "../prng.ts";
import { flipId, randomId, weighted } from "./builders.ts";

/**
 * What a request's Cookie header carries. Only `own` (the session's signed cookie, maybe among other
 * cookies) and `ownFirst` (it, then a planted one: the first via_session counts) name a session; every
 * other kind is a value the server did not sign, which it never adopts (a page gets a fresh session, a
 * stream or action a 403): `garbage` is no session id at all, `forged` an unsigned random id (the old
 * cookie format, once adopted as a new session), `planted` a value an attacker fixed in advance,
 * `altered` the session's own cookie changed (its id alone, a flipped or non-canonical MAC, another
 * session's MAC; the tab ids of the session are bound to that id, so a server that trusted the id would
 * let them through), `double` a garbage or planted via_session before the real one.
 */
export type CookieKind = "own" | "ownFirst" | "none" | "garbage" | "forged" | "planted" | "altered" | "double";

/** The weights of the cookies that name no session (none, or values the server did not sign first). */
const NO_SESSION_COOKIES = { none: 1, garbage: 1, forged: 1, planted: 1, altered: 2, double: 1 };
/** The cookies of a stream case: mostly the session's own. */
export const STREAM_COOKIE_KINDS = weighted<CookieKind>({ own: 5, ownFirst: 1, ...NO_SESSION_COOKIES });
/** The cookies of an action case whose cookie is what breaks it (or the control, ownFirst). */
export const BROKEN_COOKIE_KINDS = weighted<CookieKind>({ ...NO_SESSION_COOKIES, ownFirst: 1 });
/** The cookies of a session case: mostly ones the server did not sign, the session's own as the control. */
export const SESSION_COOKIE_KINDS = weighted<CookieKind>({
  planted: 2,
  forged: 1,
  altered: 4,
  garbage: 1,
  none: 1,
  double: 1,
  own: 1,
  ownFirst: 1,
});

/** Whether the server finds its own signed session in a Cookie header of this kind. */
export function hasSession(kind: CookieKind): boolean {
  return kind === "own" || kind === "ownFirst";
}

const PLANTED = [
  "FixedByAttacker0000000000",
  "FixedByAttacker0000000",
  `${"A".repeat(22)}.${"A".repeat(22)}`,
  `FixedByAttacker0000000.${"A".repeat(22)}`,
  `${"0".repeat(22)}.${"_".repeat(22)}`,
  "admin",
];

/** The session's own cookie value (`<id>.<mac>`) changed the ways a forger or an old client would. */
function alteredCookie(rng: Rng, own: string, other: string): string {
  const value = (c: string) => c.slice(c.indexOf("=") + 1);
  const [id, mac] = value(own).split(".") as [string, string];
  const [otherId, otherMac] = value(other).split(".") as [string, string];
  const std = (x: string) => x.replace(/-/g, "+").replace(/_/g, "/");
  const variants = [
    id, // the old unsigned cookie of this very session
    `${id}.`,
    `.${mac}`,
    `${id}.${flipId(rng, mac).id}`,
    `${id}.${flipId(rng, mac).id}`,
    `${flipId(rng, id).id}.${mac}`,
    `${id}.${otherMac}`,
    `${otherId}.${mac}`,
    `${mac}.${id}`,
    `${id}.${mac}.`,
    `${id}.${mac}=`,
    `${id}.${mac}A`,
    `${id}.${mac.slice(0, 21)}`,
    `${id}..${mac}`,
    `${id}%2E${mac}`,
    `"${id}.${mac}"`,
    `${std(id)}.${std(mac)}`,
    `${id}.${mac.toUpperCase()}`,
  ];
  const v = rng.pick(variants);
  const out = rng.chance(0.1) ? `Via_Session=${id}.${mac}` : `via_session=${v}`;
  // A variant that happens to spell the original (no - or _ to swap, an upper-case MAC): change the
  // MAC's first character instead (without a PRNG draw, so the rest of the case does not depend on
  // what the fixture's cookie looks like).
  return out === own ? `via_session=${id}.${mac[0] === "A" ? "B" : "A"}${mac.slice(1)}` : out;
}

export function cookieHeader(kind: CookieKind, own: string, other: string, rng: Rng): string | undefined {
  switch (kind) {
    case "own":
      return rng.chance(0.2) ? `theme=dark; ${own}; x=1` : own;
    case "ownFirst":
      return `${own}; via_session=${rng.pick(PLANTED)}`;
    case "none":
      return undefined;
    case "garbage":
      return rng.pick([
        "via_session=",
        "via_session=../../etc/passwd",
        "via_session=short",
        `via_session=${"A".repeat(23)}`,
        `via_session=${"A".repeat(4000)}`,
        "via_session",
        ";;;;=;=",
        "via_session=%00%00%00%00%00%00%00%00%00%00%00",
        `via_session="${"B".repeat(22)}"`,
        `via_session=${"A".repeat(22)}.${"A".repeat(21)}`,
        `via_session=${"A".repeat(22)}.${"A".repeat(22)}.${"A".repeat(22)}`,
        `via_session=${"*".repeat(22)}.${"*".repeat(22)}`,
        "=".repeat(100),
      ]);
    case "forged":
      return `via_session=${randomId(rng)}${rng.chance(0.5) ? `.${randomId(rng)}` : ""}`;
    case "planted":
      return `via_session=${rng.pick(PLANTED)}`;
    case "altered":
      return alteredCookie(rng, own, other);
    case "double":
      // The first via_session wins (readCookie): a first one the server did not sign means no session.
      return `via_session=${rng.chance(0.5) ? "garbage" : rng.pick(PLANTED)}; ${own}`;
  }
}
