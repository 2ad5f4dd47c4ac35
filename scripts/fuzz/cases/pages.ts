// Page cases: GET/HEAD of room names and odd paths with every cookie kind, and whether a 200 must set
// a fresh session cookie. The stream's `path` parameter draws from its room names too.
import type { Rng } from "../prng.ts";
import { headersWith, longString, pickTab } from "./builders.ts";
import { type CookieKind, cookieHeader, hasSession } from "./cookies.ts";
import { expectForTarget } from "./expect.ts";
import type { Case, Fixture } from "./types.ts";

export const ROOM_NAMES = [
  "Go",
  "Rust",
  "Python",
  "JavaScript",
  "Clojure",
  "%47o",
  "go",
  "GO",
  "*",
  ">",
  "chat.>",
  "Go.>",
  "Go.*",
  "chat.room.*",
  "..",
  ".",
  "%2e%2e",
  "%2E",
  ".%2e",
  "Go%2F..",
  "Go%2f%2e%2e%2fRust",
  "Go%20",
  "%20Go",
  "Go%00",
  "%00",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "<script>alert(1)</script>",
  "Rust%3F",
  "Rust?x=1",
  "Rust#frag",
  "R%C3%BCst",
  "%FF",
  "%C0%AE",
  "%E0%A4%A",
  "%",
  "%%",
  "%zz",
  "Go;Rust",
  "Go,Rust",
  "Go%09",
  "%F0%9F%92%A9",
  "%ED%A0%80",
  "Go/extra",
  "",
  "Go/",
  "Go\\..\\Rust",
];

const PATHS = [
  "/",
  "//",
  "///",
  "///room/Go",
  "//evil.example/room/Go",
  "/room",
  "/room/",
  "/rooms/Go",
  "/ROOM/Go",
  "/%72oom/Go",
  "/%ZZ/Go",
  "/foo/%ZZ",
  "/index.html",
  "/package.json",
  "/.env",
  "/../../../../etc/passwd",
  "/%2e%2e/%2e%2e/etc/passwd",
  "/_via",
  "/_via/",
  "/_via/unknown",
  "/_via/../room/Go",
  "/healthz",
  "/readyz",
  "/healthz/../room/Rust",
  "/?a=1&a=2",
  "/?%ZZ",
  "/?%FF",
  "/#x",
];

export function pageCase(index: number, rng: Rng, fx: Fixture): Case {
  let path: string;
  let name: string;
  const r = rng.next();
  if (r < 0.55) {
    const room = rng.chance(0.15) ? longString(rng, rng.pick([1024, 10 * 1024, 12 * 1024])) : rng.pick(ROOM_NAMES);
    path = `/room/${room}`;
    name = `room ${room.length > 40 ? `<${room.length} chars of ${JSON.stringify(room.slice(0, 4))}>` : JSON.stringify(room)}`;
  } else {
    path = rng.pick(PATHS);
    name = `path ${JSON.stringify(path)}`;
  }
  if (rng.chance(0.25)) {
    const q = rng.pick([
      "?x=1",
      "?%ZZ=%",
      "?tab=../../",
      `?q=${"%00".repeat(50)}`,
      `?${"a=b&".repeat(500)}`,
      "?%C3%A9=%FF",
    ]);
    path += q;
    name += ` +query`;
  }
  const method = rng.chance(0.15) ? "HEAD" : "GET";
  const { session, other } = pickTab(rng, fx);
  const kind = rng.pick<CookieKind>(["own", "own", "none", "garbage", "forged", "planted", "altered", "ownFirst"]);
  const headers = headersWith({}, { Cookie: cookieHeader(kind, session.cookie, other.cookie, rng) });
  const expect = expectForTarget(method, path, fx);
  return {
    index,
    category: "page",
    name: `${method} ${name} cookie=${kind}`,
    req: { kind: "http", method, path, headers },
    expect,
    ...pageCookie(path, expect, kind),
  };
}

/** What a page answered 200 must do about the session cookie (see Case.setCookie). */
function pageCookie(path: string, expect: number[], kind: CookieKind): Pick<Case, "setCookie"> {
  // Only a 200 page (a target that parses; not a health check or framework path) sets the cookie.
  if (expect.length !== 1 || expect[0] !== 200) return {};
  const p = new URL(path, "http://localhost").pathname;
  if (p === "/healthz" || p === "/readyz" || p.startsWith("/_via/")) return {};
  return { setCookie: hasSession(kind) ? "none" : "fresh" };
}
