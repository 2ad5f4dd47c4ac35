// The fuzz case generator. Case `i` of a run is a pure function of (seed, i) and the fixture (the
// legitimate sessions and tabs created before the run), so `--seed S --case i` replays it exactly.
// Every case carries the statuses it may get: an expectation derived from docs/PROTOCOL.md, the
// route/method rules and the tab lifecycle, never "anything 4xx".
//
// Categories (generateCase): page, static, stream, action, method, raw (what node:http will not send),
// session (cookies the server did not sign), host (foreign and tricky Host headers over the other
// categories' cases), forwarded (X-Forwarded-* garbage that must change nothing) and proto (prototype
// keys in bodies, query parameters, header and cookie names).
//
// Tabs of the fixture come in two kinds (see run.ts):
// - live tabs (`FuzzSession.tabs`): their event stream is attached (the run keeps one open for each and
//   reopens it whenever a case takes it over), so their actions run;
// - spare tabs (`FuzzSession.spares`): ids the server issued with a page, whose stream never attached.
//   Their actions get 410; their stream requests only ever use paths no page matches (a via-reload) or
//   probe=1, so they never become live either;
// - expired ids (`FuzzSession.expired`): signed for the session with an issue time past the app's
//   tabIdMaxAgeMs. They can no longer start a context (stream 403); an action gets 410 like any tab
//   of the session that is not live.
import { DEFAULT_ROOMS } from "../../apps/chat/rooms.ts";
import { caseRng, type Rng } from "./prng.ts";
import type { HttpReq, RawReq, Req } from "./send.ts";

export interface FuzzTab {
  tab: string;
  path: string;
  say: string;
  saveNick: string;
  /** The message list's "Load older" action (a feed's `<list id>-older`). */
  older: string;
}

export interface FuzzSession {
  cookie: string;
  /** Tabs whose stream is attached for the whole run. */
  tabs: FuzzTab[];
  /** Tabs the server issued (page loaded) whose stream never attaches. */
  spares: FuzzTab[];
  /** Tab ids signed for this session, issued longer ago than tabIdMaxAgeMs. */
  expired: string[];
}

export interface Fixture {
  port: number;
  /** The runtime bundle hash (the stream's `v`). */
  version: string;
  sessions: FuzzSession[];
  /** Static asset URLs the server really serves. */
  assets: string[];
  /**
   * This machine's host name and interface addresses (lower case, IPv6 without brackets or zone): the
   * app answers to them besides localhost, *.localhost, 127.0.0.1 and [::1].
   */
  hostNames: string[];
}

export interface Case {
  index: number;
  category: string;
  name: string;
  req: Req;
  /** Acceptable statuses. */
  expect: number[];
  /** Node's own bodyless 400/413/431 (from its HTTP parser, before the app runs) is fine. */
  nodeParser?: boolean;
  /** Node may close the connection without a response (e.g. CONNECT with no listener, EOF mid-body). */
  mayClose?: boolean;
  /** A response body must not contain these (path traversal). */
  mustNotContain?: string[];
  /** For a 200 on the event stream: a `via-reload` and nothing else, or a live stream (no via-reload). */
  sse?: "reload" | "stream";
  /** A tab id this case forged from a real one (one character changed). */
  forged?: { tab: string; nonCanonical: boolean };
  /**
   * For a 200 page: `fresh`, the request carried no cookie the server signed, so it must set a new
   * signed session cookie (not naming the id the request sent, not `Secure` on plain http); `none`, it
   * carried its own session's cookie, so no `Set-Cookie`.
   */
  setCookie?: "fresh" | "none";
  /** When the status is `status`, the reason body must contain `text` (refused for this reason, not another). */
  reason?: { status: number; text: string };
}

const ROOMS = DEFAULT_ROOMS;
const MAX_BODY = 64 * 1024;
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** A well-formed tab id (src/server/tab-id.ts): 43 base64url characters. */
const TAB_ID = /^[A-Za-z0-9_-]{43}$/;

// ---------- expectations shared by several generators ----------

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Status of a page GET for a normalized pathname (routes "/" and "/room/:name"). */
function pageStatus(pathname: string): number {
  const segs = pathname.split("/").filter((s) => s !== "");
  if (segs.length === 0) return 200;
  if (segs.length !== 2) return 404;
  const first = safeDecode(segs[0]!);
  if (first === undefined) return 400;
  if (first !== "room") return 404;
  const name = safeDecode(segs[1]!);
  if (name === undefined) return 400;
  return ROOMS.includes(name) ? 200 : 404;
}

/**
 * Whether the app answers to this Host header (the allow-list's documented rule, security.ts): the
 * name without its port (after the one colon, or after `[v6]`), any case, one trailing dot dropped, is
 * localhost, 127.0.0.1, ::1, a name under .localhost, or this machine's host name or an interface
 * address. A Host with more than one colon outside brackets is kept whole (so only a bare "::1"-like
 * string could match).
 */
export function hostAllowed(host: string, fx: Fixture): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end >= 0) h = h.slice(1, end);
  } else if (h.indexOf(":") >= 0 && h.indexOf(":") === h.lastIndexOf(":")) h = h.slice(0, h.indexOf(":"));
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h === "") return false;
  return ["localhost", "127.0.0.1", "::1", ...fx.hostNames].includes(h) || h.endsWith(".localhost");
}

/**
 * Expected statuses for a request target that is not a stream or action with real credentials. `host`:
 * the Host header the request names when it is not the fixture's own `127.0.0.1:<port>` (health checks
 * answer any Host; everything else under a Host the app does not answer to is a 403, before the
 * route's method and path rules).
 */
export function expectForTarget(method: string, target: string, fx: Fixture, host?: string): number[] {
  let url: URL;
  try {
    url = new URL(target, "http://localhost");
  } catch {
    return [400];
  }
  const p = url.pathname;
  const getHead = method === "GET" || method === "HEAD";
  if (p === "/healthz" || p === "/readyz") return [200];
  if (host !== undefined && !hostAllowed(host, fx)) return [403];
  if (p.startsWith("/_via/static/")) return getHead ? [fx.assets.includes(p) ? 200 : 404] : [405];
  if (p === "/_via/sse") {
    if (method !== "GET") return [405];
    // Only streamCase sends a GET with a well-formed tab id (and judges it exactly).
    const tab = url.searchParams.get("tab");
    if (tab === null || !TAB_ID.test(tab)) return [400];
    throw new Error(`expectForTarget: a stream GET with a tab id belongs in streamCase: ${target}`);
  }
  if (p.startsWith("/_via/action/")) return method === "POST" ? [400, 403, 404, 410, 415] : [405];
  if (p.startsWith("/_via/")) return [404];
  if (!getHead) return [405];
  return [pageStatus(p)];
}

// ---------- little builders ----------

/**
 * The items of a weighted pick: each key as many times as its weight, in the order given. The order is
 * part of the replay (a case's draw picks an index), so a list keeps it.
 */
function weighted<K extends string>(weights: Partial<Record<K, number>>): K[] {
  return (Object.entries(weights) as Array<[K, number]>).flatMap(([k, n]) => Array<K>(n).fill(k));
}

/** A session id's shape: 22 base64url chars. */
function randomId(rng: Rng): string {
  let s = "";
  for (let i = 0; i < 22; i++) s += B64URL[rng.int(64)];
  return s;
}

/** A tab id's shape (43 base64url chars) the server never issued. */
function randomTabId(rng: Rng): string {
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
function flipId(rng: Rng, id: string): { id: string; where: string; nonCanonical: boolean } {
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

function longString(rng: Rng, n: number): string {
  const alphabet = rng.pick(["a", "%", ".", "*", ">", "/", "%C3%A9", "%00", "x.", "%2e"]);
  return alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
}

function pickTab(rng: Rng, fx: Fixture): { session: FuzzSession; tab: FuzzTab; other: FuzzSession } {
  const si = rng.int(fx.sessions.length);
  const session = fx.sessions[si]!;
  const other = fx.sessions[(si + 1 + rng.int(fx.sessions.length - 1)) % fx.sessions.length]!;
  return { session, tab: rng.pick(session.tabs), other };
}

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
type CookieKind = "own" | "ownFirst" | "none" | "garbage" | "forged" | "planted" | "altered" | "double";

/** The weights of the cookies that name no session (none, or values the server did not sign first). */
const NO_SESSION_COOKIES = { none: 1, garbage: 1, forged: 1, planted: 1, altered: 2, double: 1 };
/** The cookies of a stream case: mostly the session's own. */
const STREAM_COOKIE_KINDS = weighted<CookieKind>({ own: 5, ownFirst: 1, ...NO_SESSION_COOKIES });
/** The cookies of an action case whose cookie is what breaks it (or the control, ownFirst). */
const BROKEN_COOKIE_KINDS = weighted<CookieKind>({ ...NO_SESSION_COOKIES, ownFirst: 1 });
/** The cookies of a session case: mostly ones the server did not sign, the session's own as the control. */
const SESSION_COOKIE_KINDS = weighted<CookieKind>({
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
function hasSession(kind: CookieKind): boolean {
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

function cookieHeader(kind: CookieKind, own: string, other: string, rng: Rng): string | undefined {
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

function headersWith(base: Record<string, string>, extra: Record<string, string | undefined>): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out;
}

// ---------- page and room names ----------

const ROOM_NAMES = [
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

function pageCase(index: number, rng: Rng, fx: Fixture): Case {
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

// ---------- static files and traversal ----------

const TRAVERSALS = [
  "/_via/static/../../package.json",
  "/_via/static/..%2f..%2fpackage.json",
  "/_via/static/%2e%2e/%2e%2e/package.json",
  "/_via/static/%2e%2e%2f%2e%2e%2fpackage.json",
  "/_via/static/.%2e/.%2e/package.json",
  "/_via/static/%252e%252e/%252e%252e/package.json",
  "/_via/static/....//....//package.json",
  "/_via/static/..\\..\\package.json",
  "/_via/static/%5c..%5c..%5cpackage.json",
  "/_via/static/..;/..;/package.json",
  "/_via/static//etc/passwd",
  "/_via/static/../../../../../../../../etc/passwd",
  "/_via/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
  "/_via/static/%c0%ae%c0%ae/%c0%ae%c0%ae/package.json",
  "/_via/static/%00",
  "/_via/static/",
  "/_via/static",
  "/_via/static/runtime.js",
  "/_via/static/pico.css",
  "/_via/static/*",
  "/_via/static/%ZZ",
  "/_via/static/../../src/server/app.ts",
  "/_via/static/../../apps/chat/app.tsx",
  "/_via/static/node_modules/.bin/tsx",
];

function staticCase(index: number, rng: Rng, fx: Fixture): Case {
  const asset = rng.pick(fx.assets);
  let path: string;
  const r = rng.next();
  if (r < 0.25) path = asset + rng.pick(["", "", "?v=1", "?%ZZ", "#x"]);
  else if (r < 0.35) path = rng.pick([`${asset}%00`, `${asset}/`, asset.toUpperCase(), `${asset}.map`, `${asset}/..`]);
  else if (r < 0.45) path = `/_via/static/${longString(rng, rng.pick([256, 10 * 1024]))}`;
  else path = rng.pick(TRAVERSALS);
  const method = rng.chance(0.8) ? rng.pick(["GET", "HEAD"]) : rng.pick(["POST", "PUT", "DELETE", "OPTIONS"]);
  return {
    index,
    category: "static",
    name: `${method} ${path.length > 80 ? `${path.slice(0, 60)}…<${path.length}>` : path}`,
    req: { kind: "http", method, path, headers: {} },
    expect: expectForTarget(method, path, fx),
    mustNotContain: ['"name": "via-ts"', "root:x:0:0", "export async function createChat"],
  };
}

// ---------- same-origin headers (event stream and actions) ----------

/** Sec-Fetch-Site values other than "same-origin": refused on the event stream and on actions. */
const REFUSED_SITES = ["cross-site", "same-site", "none", "", "SAME-ORIGIN", "same-origin, cross-site"];

/** Origin headers that do not match `http://<Host>` for the fixture's Host (`127.0.0.1:<port>`). */
function refusedOrigin(rng: Rng, port: number): string {
  return rng.pick([
    "null",
    "http://evil.example",
    `https://127.0.0.1:${port}`,
    `http://127.0.0.1:${port}/`,
    `http://localhost:${port}`,
    `http://127.0.0.1:${port}.evil.example`,
    `http://127.0.0.1:${port + 1 > 65535 ? port - 1 : port + 1}`,
    "http://127.0.0.1",
    "",
    "x".repeat(8000),
  ]);
}

/** Whether these headers make a stream or action cross-site (security.ts checkSameOrigin): a 403. */
function crossSite(secFetchSite: string | undefined, origin: string | undefined, port: number): boolean {
  if (secFetchSite !== undefined && secFetchSite !== "same-origin") return true;
  return origin !== undefined && origin !== `http://127.0.0.1:${port}`;
}

// ---------- the event stream ----------

/**
 * Whose tab id a request carries: `own` a live tab of the request's session, `spare` an id issued to
 * the session whose stream never attached, `other`/`otherSpare` the same of another session, `random`
 * 43 base64url characters the server never issued, `flip` a real id with one character changed,
 * `expired` an id signed for the session but issued longer ago than tabIdMaxAgeMs.
 */
type TabKind = "own" | "spare" | "expired" | "other" | "otherSpare" | "random" | "flip" | "malformed" | "missing";

/** The weights of the tab kinds other than the session's own tabs (live or spare). */
const FOREIGN_TABS = { expired: 1, other: 1, otherSpare: 1, random: 1, flip: 2, malformed: 1, missing: 1 };
/** The tabs a stream case asks for: mostly its own live tab. */
const STREAM_TAB_KINDS = weighted<TabKind>({ own: 4, spare: 3, ...FOREIGN_TABS });
/** The tabs of an action case whose tab is what breaks it: never its own live tab. */
const REFUSED_TAB_KINDS = weighted<TabKind>({ spare: 2, ...FOREIGN_TABS });

/** Tab ids that are not 43 base64url characters (as a query value and as a header value alike). */
function malformedId(rng: Rng, real: string): string {
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

/**
 * What a stream request for a tab with no live context does with `path` (app.ts startTab, and the
 * chat's pages "/" and "/room/:name"): build the tab ("page"), answer via-reload (not a path of this
 * origin, no page matches, or the room page refuses a room that does not exist), or 400 (a route
 * segment with broken percent-encoding).
 */
function startOutcome(path: string): "page" | "reload" | "400" {
  if (!/^\/(?![/\\])/.test(path)) return "reload";
  let url: URL;
  try {
    url = new URL(path, "http://localhost");
  } catch {
    return "reload";
  }
  const segs = url.pathname.split("/").filter((x) => x !== "");
  if (segs.length === 0) return "page";
  if (segs.length !== 2) return "reload";
  const first = safeDecode(segs[0]!);
  if (first === undefined) return "400";
  if (first !== "room") return "reload";
  const name = safeDecode(segs[1]!);
  if (name === undefined) return "400";
  return ROOMS.includes(name.normalize("NFC")) ? "page" : "reload";
}

const STREAM_PATHS = [
  "/",
  "/room/Rust",
  "/room/*",
  "/room/%ZZ",
  "/%ZZ/Go",
  "/foo/%ZZ",
  "//",
  "///",
  "//evil.example/",
  "//evil.example/room/Go",
  "/\\evil.example/room/Go",
  "\\\\evil.example\\room\\Go",
  "/room\\Go",
  "",
  "room/Go",
  "javascript:alert(1)",
  "http://127.0.0.1/room/Go",
  "https://evil.example/",
  "/%00",
  "/room",
  "/room/",
  "/rooms/Go",
  "/ROOM/Go",
  "/room/Go/extra",
  "/room/Go/..",
  "/room/%2e%2e",
  "/room/go",
  "/room/Go?x=1",
  "/room/Go#frag",
  "/index.html",
  "/_via/sse",
  "/healthz",
  "/a/b/c",
  "/?x=1",
];

/** A path for a stream of a spare tab: never one a page matches (the spare must stay unattached). */
function noPagePath(rng: Rng): string {
  const r = rng.next();
  let path: string;
  if (r < 0.5) path = rng.pick(STREAM_PATHS);
  else if (r < 0.85) path = `/room/${rng.pick(ROOM_NAMES)}`;
  else path = longString(rng, rng.pick([100, 2000]));
  if (startOutcome(path) === "page") path = `/no-page${path.startsWith("/") ? "" : "/"}${path}`;
  if (startOutcome(path) === "page") path = "/no-page";
  return path;
}

const GARBAGE_H = [
  "",
  "x",
  "%00",
  "0000000000000000",
  "ffffffffffffffff",
  "AAAAAAAAAAAAAAAA",
  "%3Cscript%3E",
  "%ZZ",
  "a,b",
  "h".repeat(17),
  "h".repeat(2000),
  "%C3%A9".repeat(16),
];

function digits(rng: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String(rng.int(10));
  return s;
}

/** A `streams=` value: broken entries the server must ignore, and odd but well-formed positions. */
function streamsValue(rng: Rng): string {
  if (rng.chance(0.25)) {
    // Well-formed (`id:newestPos:count:more`), any numbers.
    return `messages:${digits(rng, 1 + rng.int(15))}:${digits(rng, 1 + rng.int(9))}:${rng.int(2)}`;
  }
  return rng.pick([
    "",
    ",",
    ",,,",
    ":",
    ":::",
    "messages",
    "messages:",
    "messages:1",
    "messages:1:50",
    "messages:1:50:1:extra",
    "messages:-1:50:1",
    "messages:1:-50:1",
    "messages:1:50:2",
    "messages:a:b:c",
    "messages:1.5:50:1",
    "messages:1e3:50:1",
    "messages:1234567890123456:50:1",
    "messages:1:1234567890:1",
    "messages:%EF%BC%91:1:1",
    "messages%00:1:1:1",
    "MESSAGES:1:1:1",
    "__proto__:1:1:1",
    "constructor:1:50:0",
    "toString:0:0:0",
    "1messages:1:1:1",
    "nosuchlist:5:5:1",
    "messages:0:0:0",
    "messages:0:50:1",
    "messages:1:0:1",
    "messages:999999999999999:999999999:1",
    "messages:1:50:1,messages:999:1:0",
    "messages:5:5:1,".repeat(40),
    "messages:1:50:1;x",
    "x".repeat(3000),
    "%2C".repeat(500),
  ]);
}

function streamCase(index: number, rng: Rng, fx: Fixture): Case {
  const { session, tab, other } = pickTab(rng, fx);
  const kind = rng.pick(STREAM_TAB_KINDS);
  const cookieKind = rng.pick(STREAM_COOKIE_KINDS);
  let tabId: string | undefined;
  let kindName: string = kind;
  let forged: Case["forged"];
  switch (kind) {
    case "own":
      tabId = tab.tab;
      break;
    case "spare":
      tabId = rng.pick(session.spares).tab;
      break;
    case "expired":
      tabId = rng.pick(session.expired);
      break;
    case "other":
      tabId = rng.pick(other.tabs).tab;
      break;
    case "otherSpare":
      tabId = rng.pick(other.spares).tab;
      break;
    case "random":
      tabId = randomTabId(rng);
      break;
    case "flip": {
      const fromSpare = rng.chance(0.5);
      const f = flipId(rng, fromSpare ? rng.pick(session.spares).tab : tab.tab);
      tabId = f.id;
      forged = { tab: f.id, nonCanonical: f.nonCanonical };
      kindName = `flip(${fromSpare ? "spare" : "live"} id, ${f.where}${f.nonCanonical ? ", non-canonical" : ""})`;
      break;
    }
    case "malformed":
      tabId = malformedId(rng, tab.tab);
      break;
  }
  // A live tab ignores `path`; a spare one only ever gets a path no page matches.
  const pathParam =
    kind === "spare"
      ? noPagePath(rng)
      : rng.chance(0.5)
        ? tab.path
        : rng.chance(0.8)
          ? rng.pick(STREAM_PATHS)
          : longString(rng, 2000);
  const vParam = rng.pick([fx.version, fx.version, fx.version, "", "old", "%00", undefined]);
  const q: string[] = [];
  const extras: string[] = [];
  if (tabId !== undefined) q.push(`tab=${tabId}`);
  const withPath = rng.chance(0.9);
  if (withPath) q.push(`path=${encodeURIComponent(pathParam)}`);
  if (vParam !== undefined) q.push(`v=${vParam}`);
  if (rng.chance(0.3)) {
    const h = rng.chance(0.2) ? randomId(rng).slice(0, 16) : rng.pick(GARBAGE_H);
    q.push(`h=${h}`);
    extras.push(`h=${JSON.stringify(h.length > 20 ? `${h.slice(0, 12)}…<${h.length}>` : h)}`);
  }
  if (rng.chance(0.3)) {
    const st = streamsValue(rng);
    q.push(`streams=${st}`);
    extras.push(`streams=${JSON.stringify(st.length > 40 ? `${st.slice(0, 30)}…<${st.length}>` : st)}`);
  }
  if (rng.chance(0.3)) {
    const p = rng.pick(["1", "1", "1", "0", "true", "", "%31", "2", "1%00", "01"]);
    q.push(`probe=${p}`);
    extras.push(`probe=${JSON.stringify(p)}`);
  }
  if (rng.chance(0.1)) q.push(`last=${rng.pick(["0", "-1", "999999999999999999999", "abc", "%00", "1e9"])}`);
  // A second tab param: the first one counts.
  if (tabId !== undefined && rng.chance(0.05)) q.push(`tab=${rng.chance(0.5) ? randomTabId(rng) : tab.tab}`);
  const path = `/_via/sse?${q.join("&")}`;
  const method = rng.chance(0.9) ? "GET" : rng.pick(["POST", "PUT", "DELETE", "HEAD"]);
  // What a browser sends: mostly nothing or our own origin; now and then another site or origin.
  let secFetchSite: string | undefined;
  let origin: string | undefined;
  const o = rng.next();
  if (o < 0.25) {
    secFetchSite = rng.pick([undefined, "same-origin"]);
    origin = rng.pick([undefined, `http://127.0.0.1:${fx.port}`]);
  } else if (o < 0.4) {
    if (rng.chance(0.5)) secFetchSite = rng.pick(REFUSED_SITES);
    else origin = refusedOrigin(rng, fx.port);
    if (rng.chance(0.3)) secFetchSite ??= "same-origin";
  }
  if (secFetchSite !== undefined) extras.push(`sec-fetch-site=${JSON.stringify(secFetchSite)}`);
  if (origin !== undefined) extras.push(`origin=${JSON.stringify(origin.slice(0, 40))}`);
  const headers = headersWith(
    { Accept: "text/event-stream" },
    {
      Cookie: cookieHeader(cookieKind, session.cookie, other.cookie, rng),
      "Last-Event-ID": rng.chance(0.2) ? rng.pick(["5", "-1", "x", "\u00ff\u00fe", "9".repeat(400)]) : undefined,
      "Sec-Fetch-Site": secFetchSite,
      Origin: origin,
    },
  );

  // The expectation follows app.ts serveStream: method, same-origin headers, shape, session, whose tab,
  // probe, runtime version, then the live context (attach) or a start from `path`. Parameters are read
  // as the server reads them.
  const sp = new URL(path, "http://localhost").searchParams;
  const sentTab = sp.get("tab");
  const v = sp.get("v");
  let expect: number[];
  let sse: Case["sse"];
  let reason: Case["reason"];
  if (method !== "GET") expect = [405];
  else if (crossSite(secFetchSite, origin, fx.port)) {
    expect = [403];
    reason = { status: 403, text: "event stream refused" };
  } else if (sentTab === null || !TAB_ID.test(sentTab)) expect = [400];
  else if (!hasSession(cookieKind)) {
    expect = [403];
    reason = { status: 403, text: "no session cookie this server issued" };
  }
  // Not issued to this session, or (expired) too long ago to start a context: even a probe says so.
  else if (kind !== "own" && kind !== "spare") expect = [403];
  else if (sp.get("probe") === "1") expect = [204];
  else if (v && v !== fx.version) {
    expect = [200];
    sse = "reload";
  } else if (kind === "own") {
    expect = [200];
    sse = "stream";
  } else {
    const outcome = startOutcome(sp.get("path") ?? "");
    if (outcome === "page") throw new Error(`fuzz: a spare tab would attach at ${JSON.stringify(sp.get("path"))}`);
    if (outcome === "400") expect = [400];
    else {
      expect = [200];
      sse = "reload";
    }
  }
  const shownPath = !withPath
    ? "<none>"
    : JSON.stringify(pathParam.length > 40 ? `${pathParam.slice(0, 12)}…<${pathParam.length}>` : pathParam);
  return {
    index,
    category: "stream",
    name: `${method} stream tab=${kindName} cookie=${cookieKind} path=${shownPath} v=${JSON.stringify(vParam === fx.version ? "<current>" : vParam)}${extras.length ? ` ${extras.join(" ")}` : ""}`,
    req: { kind: "http", method, path, headers },
    expect,
    ...(sse ? { sse } : {}),
    ...(forged ? { forged } : {}),
    ...(reason ? { reason } : {}),
  };
}

// ---------- actions ----------

type BodyVerdict = "ok" | "decode400" | "type400" | "413" | "okOrDecode400";
/** Which action a body is meant for. */
type ActionTarget = "say" | "saveNick" | "older";

interface BodyCase {
  name: string;
  body: Buffer;
  verdict: BodyVerdict;
  /** Send with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
  /** Which action this body is meant for. */
  action?: ActionTarget;
}

const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const s = (text: string): Buffer => Buffer.from(text);

function nested(open: string, close: string, depth: number, inner = "0"): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

const GOOD_SIGNALS = { statement: "hello from the fuzzer", nick: "Fuzzy", retry: "" };
const WRONG_VALUES: unknown[] = [1, 0, -1, 1.5, true, false, null, [], ["x"], {}, { a: 1 }];

/** A body with raw bytes between two pieces of JSON text. */
const spliced = (before: string, bytes: number[], after: string): Buffer =>
  Buffer.concat([s(before), Buffer.from(bytes), s(after)]);

/** A body that needs no draw of its own: name, verdict, the body (made when picked: some are MiBs), more. */
type FixedBody = [name: string, verdict: BodyVerdict, body: () => Buffer, more?: Partial<BodyCase>];

const VALID: FixedBody = ["valid signals", "ok", () => j({ signals: GOOD_SIGNALS })];
const DEEP_ARRAY = (depth: number) => () => s(`{"signals":{"x":${nested("[", "]", depth)}}}`);

/** The bodies of bodyCase's draws that pick no more, by the draw (0-44). */
const FIXED_BODIES: Record<number, FixedBody> = {
  0: VALID,
  1: VALID,
  2: VALID,
  3: ["valid, extra unknown signals", "ok", () => j({ signals: { ...GOOD_SIGNALS, zzz: [1, 2], _x: 1 } })],
  4: ["empty signals", "ok", () => j({ signals: {} })],
  5: ["extra top-level keys", "ok", () => j({ signals: GOOD_SIGNALS, extra: { a: [1] }, more: null })],
  6: [
    "10 KB statement",
    "ok",
    () => j({ signals: { ...GOOD_SIGNALS, statement: "x".repeat(10 * 1024) } }),
    { action: "say" },
  ],
  7: ["lone surrogate", "ok", () => s('{"signals":{"statement":"\\ud800","nick":"\\udfff"}}')],
  8: ["escaped NUL in string", "ok", () => s('{"signals":{"statement":"a\\u0000b","nick":"\\u0000"}}')],
  11: ["number 1e999 (Infinity)", "type400", () => s('{"signals":{"nick":1e999}}')],
  12: ["unknown signal 1e999", "ok", () => s('{"signals":{"zz":1e999,"statement":"x"}}')],
  13: ["duplicate keys", "ok", () => s('{"signals":{"statement":1,"statement":"x"}}')],
  16: ["invalid UTF-8 in a string", "decode400", () => spliced('{"signals":{"statement":"', [0xff, 0xfe, 0xc3], '"}}')],
  17: [
    "overlong UTF-8",
    "decode400",
    () => spliced('{"signals":{"statement":"', [0xc0, 0xaf, 0xe0, 0x80, 0xaf], '"}}'),
  ],
  18: ["UTF-8 encoded surrogate", "decode400", () => spliced('{"signals":{"statement":"', [0xed, 0xa0, 0x80], '"}}')],
  19: ["raw NUL byte", "decode400", () => spliced('{"signals":{"statement":"a', [0], 'b"}}')],
  20: ["NUL between tokens", "decode400", () => spliced('{"signals":', [0], "{}}")],
  21: [
    "UTF-8 BOM",
    "okOrDecode400",
    () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), j({ signals: GOOD_SIGNALS })]),
  ],
  22: ["UTF-16 body", "decode400", () => Buffer.from(JSON.stringify({ signals: GOOD_SIGNALS }), "utf16le")],
  25: ["__proto__ signal", "decode400", () => s('{"signals":{"__proto__":{"polluted":1}}}')],
  26: ["__proto__ deep", "decode400", () => s('{"signals":{"x":[{"a":{"__proto__":{"polluted":1}}}]}}')],
  27: ["constructor.prototype", "decode400", () => s('{"signals":{"constructor":{"prototype":{"polluted":1}}}}')],
  28: ["top-level __proto__", "decode400", () => s('{"__proto__":{"polluted":1},"signals":{}}')],
  30: [
    "300 signals",
    "decode400",
    () => j({ signals: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`s${i}`, i])) }),
  ],
  31: [
    "256 signals",
    "ok",
    () => j({ signals: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`s${i}`, i])) }),
  ],
  32: ["10k nested arrays in a signal", "decode400", DEEP_ARRAY(10_000)],
  33: ["10k nested objects in a signal", "decode400", () => s(`{"signals":{"x":${nested('{"a":', "}", 10_000)}}}`)],
  34: ["10k nested arrays top-level", "decode400", () => s(nested("[", "]", 10_000))],
  35: ["10k nested objects top-level (120 KB)", "413", () => s(nested('{"signals":', "}", 10_000, "{}"))],
  36: ["depth 32 (the limit)", "ok", DEEP_ARRAY(30)],
  37: ["depth 33", "decode400", DEEP_ARRAY(31)],
  38: ["1 MiB body (Content-Length)", "413", () => j({ signals: { statement: "x".repeat(1024 * 1024) } })],
  39: ["1 MiB body (chunked)", "413", () => j({ signals: { statement: "y".repeat(1024 * 1024) } }), { chunked: true }],
  40: ["just over the cap", "413", () => j({ signals: { statement: "z".repeat(MAX_BODY) } })],
  41: ["2 MiB of nested brackets", "413", () => s(nested("[", "]", 1024 * 1024))],
  42: ["60 KB padding array", "ok", () => s(`{"signals":{"statement":"x"},"pad":[${"0,".repeat(29_000)}0]}`)],
  43: ["5k nested objects top-level", "decode400", () => s(nested('{"signals":', "}", 5_000, "{}"))],
  44: ["whitespace-wrapped valid", "ok", () => s(`  \n\t${JSON.stringify({ signals: GOOD_SIGNALS })}\r\n `)],
};

function bodyCase(rng: Rng): BodyCase {
  const k = rng.int(52);
  if (k >= 45) return cursorBody(rng, GOOD_SIGNALS);
  const fixed = FIXED_BODIES[k];
  if (fixed) {
    const [name, verdict, body, more] = fixed;
    return { name, body: body(), verdict, ...more };
  }
  switch (k) {
    case 9:
    case 10: {
      const sig = rng.pick(["statement", "nick", "retry"]);
      const value = rng.pick(WRONG_VALUES);
      return {
        name: `wrong type ${sig}=${JSON.stringify(value)}`,
        body: j({ signals: { ...GOOD_SIGNALS, [sig]: value } }),
        verdict: "type400",
      };
    }
    case 14:
      return {
        name: "not JSON",
        body: s(
          rng.pick([
            "",
            "{",
            "signals",
            "{'signals':{}}",
            "{signals:{}}",
            "}{",
            "[",
            '"',
            '{"signals":{}} trailing',
            "undefined",
            "NaN",
          ]),
        ),
        verdict: "decode400",
      };
    case 15:
      return { name: "random bytes", body: rng.bytes(1 + rng.int(2048)), verdict: "decode400" };
    case 23:
      return {
        name: "top-level not an object",
        body: s(rng.pick(["null", "[]", "1", '"x"', "true", '[{"signals":{}}]'])),
        verdict: "decode400",
      };
    case 24:
      return {
        name: "signals not an object",
        body: s(
          rng.pick([
            '{"signals":null}',
            '{"signals":[]}',
            '{"signals":"x"}',
            '{"signals":1}',
            "{}",
            '{"Signals":{}}',
            '{"signals":[{"statement":"x"}]}',
          ]),
        ),
        verdict: "decode400",
      };
    default: {
      const bad = rng.pick(["a-b", "", "1x", "x".repeat(65), "é", "a b", "a.b", "$x", "a\u0000", "\ud800", "<script>"]);
      return {
        name: `bad signal name ${JSON.stringify(bad)}`,
        body: j({ signals: { ...GOOD_SIGNALS, [bad]: 1 } }),
        verdict: "decode400",
      };
    }
  }
}

/** Bodies with a `cursor` ("Load older"): a string of 1-15 ASCII digits, anything else is a 400. */
function cursorBody(rng: Rng, good: Record<string, string>): BodyCase {
  const withCursor = (raw: string): Buffer => s(`{"signals":${JSON.stringify(good)},"cursor":${raw}}`);
  const action = (): ActionTarget | undefined => (rng.chance(0.7) ? "older" : undefined);
  switch (rng.int(7)) {
    case 0:
    case 1: {
      const c = rng.chance(0.3)
        ? rng.pick(["0", "1", "2", "00", "000000000000000", "999999999999999", "000000000000001"])
        : digits(rng, 1 + rng.int(15));
      return {
        name: `cursor ${JSON.stringify(c)}`,
        body: j({ signals: good, cursor: c }),
        verdict: "ok",
        action: action(),
      };
    }
    case 2: {
      const v = rng.pick([
        "0",
        "1",
        "123",
        "-1",
        "1.5",
        "1e15",
        "1e999",
        "null",
        "true",
        "false",
        "[]",
        '["12"]',
        "{}",
        '{"pos":"12"}',
      ]);
      return { name: `cursor of the wrong type ${v}`, body: withCursor(v), verdict: "decode400", action: action() };
    }
    case 3: {
      const n = rng.pick([0, 16, 17, 20, 100, 20_000]);
      return {
        name: `cursor of ${n} digits`,
        body: j({ signals: good, cursor: n === 0 ? "" : `1${digits(rng, n - 1)}` }),
        verdict: "decode400",
        action: action(),
      };
    }
    case 4: {
      const c = rng.pick([
        "-1",
        "+1",
        "1.5",
        "1e3",
        " 1",
        "1 ",
        "1\n",
        "0x1F",
        "12a",
        "a12",
        "NaN",
        "Infinity",
        "1_000",
        "1,000",
        "\u0661\u0662",
        "\uff11\uff12",
        "\u0000",
        "1\u0000",
        "\ud800",
        "%31",
        "..",
        "*",
      ]);
      return { name: `cursor not digits "${c}"`, body: withCursor(`"${c}"`), verdict: "decode400", action: action() };
    }
    case 5:
      return rng.chance(0.5)
        ? {
            name: "two cursors, the last valid",
            body: s(`{"signals":${JSON.stringify(good)},"cursor":"x","cursor":"12"}`),
            verdict: "ok",
            action: action(),
          }
        : {
            name: "two cursors, the last invalid",
            body: s(`{"signals":${JSON.stringify(good)},"cursor":"12","cursor":"x"}`),
            verdict: "decode400",
            action: action(),
          };
    default:
      // Not the top-level cursor: a signal named cursor, a differently cased key.
      return rng.chance(0.5)
        ? {
            name: "signal named cursor",
            body: j({ signals: { ...good, cursor: [1] }, cursor: "7" }),
            verdict: "ok",
            action: action(),
          }
        : { name: "key Cursor (not cursor)", body: j({ signals: good, Cursor: [] }), verdict: "ok", action: action() };
  }
}

interface ActionShape {
  viaRequest: string | undefined;
  secFetchSite: string | undefined;
  origin: string | undefined;
  tabKind: TabKind;
  cookieKind: CookieKind;
  contentType: string | undefined;
  actionKind: "valid" | "unknown" | "malformed";
  body: BodyCase;
}

const GOOD_CT = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  'application/json;charset="UTF-8"',
];
const BAD_CT = [
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/json; charset=latin1",
  "application/jsonx",
  "application/json, text/plain",
  "application/json; boundary=1",
  "*/*",
  "",
  "json",
  "application/json".repeat(600),
];

/**
 * The statuses an action with this shape may get, in the order app.ts serveAction checks them (see
 * docs/PROTOCOL.md §3): origin headers, tab id shape, session, whose tab and whether it is live (a tab
 * of this session whose stream never attached: 410), content type, rate limit, body, action id.
 */
function expectAction(a: ActionShape, port: number): number[] {
  if (a.viaRequest !== "1") return [403];
  if (crossSite(a.secFetchSite, a.origin, port)) return [403];
  if (a.tabKind === "malformed" || a.tabKind === "missing") return [400];
  // No cookie the server signed: refused before any tab is looked at.
  if (!hasSession(a.cookieKind)) return [403];
  if (a.tabKind !== "own" && a.tabKind !== "spare" && a.tabKind !== "expired") return [403];
  // Issued to this session but not live: an expired id too (actions never start a context).
  if (a.tabKind === "spare" || a.tabKind === "expired") return [410];
  if (a.contentType === undefined || !GOOD_CT.includes(a.contentType)) return [415];
  const v = a.body.verdict;
  let final: number[];
  if (v === "413") final = [413];
  else if (v === "decode400") final = [400];
  else if (a.actionKind !== "valid") final = [404];
  else if (v === "type400") final = [400];
  else if (v === "okOrDecode400") final = [204, 400];
  else final = [204];
  return [...final, 429];
}

/**
 * An action's headers and body. `only`: a body generator whose bodies are the point of the case (the
 * prototype-key bodies): valid headers, a live tab and a real action id, so the body reaches the decoder.
 */
function actionShape(rng: Rng, port: number, only?: (rng: Rng) => BodyCase): ActionShape {
  // Most cases get valid headers so the body is exercised; the rest break one or more headers.
  const breakHeaders = !only && rng.chance(0.45);
  const shape: ActionShape = {
    viaRequest: "1",
    secFetchSite: rng.pick([undefined, "same-origin"]),
    origin: rng.pick([undefined, `http://127.0.0.1:${port}`]),
    // Now and then a tab whose stream never attached: 410 once the headers pass.
    tabKind: !only && rng.chance(0.06) ? "spare" : "own",
    cookieKind: "own",
    contentType: rng.pick(GOOD_CT),
    actionKind: only || rng.chance(0.9) ? "valid" : rng.pick(["unknown", "malformed"]),
    body: (only ?? bodyCase)(rng),
  };
  if (breakHeaders) {
    const n = 1 + rng.int(2);
    for (let i = 0; i < n; i++) {
      switch (rng.int(7)) {
        case 0:
          shape.viaRequest = rng.pick([undefined, "0", "true", "", "1, 1", "1 1", "01", "2", "yes"]);
          break;
        case 1:
          shape.secFetchSite = rng.pick(REFUSED_SITES);
          break;
        case 2:
          shape.origin = refusedOrigin(rng, port);
          break;
        case 3:
          shape.tabKind = rng.pick(REFUSED_TAB_KINDS);
          break;
        case 4:
          shape.cookieKind = rng.pick(BROKEN_COOKIE_KINDS);
          break;
        case 5:
          shape.contentType = rng.pick([undefined, ...BAD_CT]);
          break;
        default:
          shape.actionKind = rng.pick(["unknown", "malformed"]);
      }
    }
  }
  return shape;
}

function actionIdFor(shape: ActionShape, tab: FuzzTab, rng: Rng): string {
  if (shape.actionKind === "valid") {
    const target =
      shape.body.action ?? rng.pick<ActionTarget>(["say", "say", "saveNick", "saveNick", "saveNick", "older"]);
    return target === "say" ? tab.say : target === "older" ? tab.older : tab.saveNick;
  }
  if (shape.actionKind === "unknown") return rng.pick(["a999999", "a0", "a99", "a1000000", "b1"]);
  return rng.pick([
    "",
    "..",
    "..%2F..%2Fhealthz",
    "%00",
    "a1%00",
    "a1/",
    "*",
    ">",
    "a-1",
    "A1",
    longString(rng, 8000),
    "a%ZZ",
  ]);
}

function actionHeaders(
  shape: ActionShape,
  fx: Fixture,
  rng: Rng,
): { headers: Record<string, string>; tab: FuzzTab; kindName: string; forged?: Case["forged"] } {
  const { session, tab: live, other } = pickTab(rng, fx);
  // A spare tab's action ids are the live tab's (same page, same declarations).
  const tab = shape.tabKind === "spare" ? rng.pick(session.spares) : live;
  let tabId: string | undefined;
  let kindName: string = shape.tabKind;
  let forged: Case["forged"];
  if (shape.tabKind === "own" || shape.tabKind === "spare") tabId = tab.tab;
  else if (shape.tabKind === "other") tabId = rng.pick(other.tabs).tab;
  else if (shape.tabKind === "otherSpare") tabId = rng.pick(other.spares).tab;
  else if (shape.tabKind === "expired") tabId = rng.pick(session.expired);
  else if (shape.tabKind === "random") tabId = randomTabId(rng);
  else if (shape.tabKind === "flip") {
    const fromSpare = rng.chance(0.5);
    const f = flipId(rng, fromSpare ? rng.pick(session.spares).tab : tab.tab);
    tabId = f.id;
    forged = { tab: f.id, nonCanonical: f.nonCanonical };
    kindName = `flip(${fromSpare ? "spare" : "live"} id, ${f.where}${f.nonCanonical ? ", non-canonical" : ""})`;
  } else if (shape.tabKind === "malformed") tabId = malformedId(rng, tab.tab);
  const headers = headersWith(
    {},
    {
      "Via-Request": shape.viaRequest,
      "Sec-Fetch-Site": shape.secFetchSite,
      Origin: shape.origin,
      "Via-Tab": tabId,
      Cookie: cookieHeader(shape.cookieKind, session.cookie, other.cookie, rng),
      "Content-Type": shape.contentType,
    },
  );
  return { headers, tab, kindName, ...(forged ? { forged } : {}) };
}

function actionCase(index: number, rng: Rng, fx: Fixture, only?: (rng: Rng) => BodyCase): Case {
  const shape = actionShape(rng, fx.port, only);
  const { headers, tab, kindName, forged } = actionHeaders(shape, fx, rng);
  const id = actionIdFor(shape, tab, rng);
  const b = shape.body;
  if (b.chunked) headers["Transfer-Encoding"] = "chunked";
  else headers["Content-Length"] = String(b.body.length);
  const req: HttpReq = { kind: "http", method: "POST", path: `/_via/action/${id}`, headers, body: b.body };
  // An id containing "/.." may be normalized out of the action prefix by URL parsing.
  const target = new URL(req.path, "http://localhost").pathname;
  const expect = target.startsWith("/_via/action/")
    ? expectAction(shape, fx.port)
    : expectForTarget("POST", req.path, fx);
  const hdr = [
    shape.viaRequest !== "1" ? `via-request=${JSON.stringify(shape.viaRequest)}` : "",
    shape.secFetchSite ? `sec-fetch-site=${shape.secFetchSite}` : "",
    shape.origin ? `origin=${shape.origin.slice(0, 40)}` : "",
    `tab=${kindName}`,
    `cookie=${shape.cookieKind}`,
    `ct=${JSON.stringify(shape.contentType?.slice(0, 40))}`,
    `action=${shape.actionKind}`,
  ]
    .filter(Boolean)
    .join(" ");
  return {
    index,
    category: only ? "proto" : "action",
    name: `POST action ${hdr} body=${b.name}`,
    req,
    expect,
    ...(forged ? { forged } : {}),
  };
}

// ---------- prototype keys ----------

/** Bodies whose signals (or body) carry prototype keys: refused (400) or dropped (204), never merged. */
function protoBody(rng: Rng): BodyCase {
  const good = JSON.stringify({ statement: "hello from the fuzzer", nick: "Fuzzy", retry: "" }).slice(1, -1);
  const polluting: Array<[string, string]> = [
    ["signals.__proto__", '{"signals":{"__proto__":{"polluted":"yes"}}}'],
    ["valid + signals.__proto__", `{"signals":{${good},"__proto__":{"polluted":1,"statement":"injected"}}}`],
    ["signals.constructor.prototype", '{"signals":{"constructor":{"prototype":{"polluted":1}}}}'],
    ["signals.prototype", '{"signals":{"prototype":{"polluted":1}}}'],
    ["signal constructor=string", '{"signals":{"nick":"x","constructor":"y"}}'],
    ["signal prototype=1", '{"signals":{"prototype":1}}'],
    ["escaped __proto__ key", '{"signals":{"__pro\\u0074o__":{"polluted":1}}}'],
    ["nested __proto__", '{"signals":{"a":{"__proto__":{"polluted":1}}}}'],
    ["__proto__ in an array", '{"signals":{"a":[{"constructor":{"prototype":{"polluted":1}}}]}}'],
    ["__proto__ null", '{"signals":{"__proto__":null}}'],
    ["__proto__ array", '{"signals":{"__proto__":[{"polluted":1}]}}'],
    ["__proto__ string", `{"signals":{${good},"__proto__":"polluted"}}`],
    ["__proto__ of __proto__", '{"signals":{"__proto__":{"__proto__":{"polluted":1}}}}'],
    ["two __proto__ keys", '{"signals":{"__proto__":{"polluted":1},"__proto__":{"polluted":2}}}'],
    ["top-level __proto__ then signals", `{"__proto__":{"polluted":1},"signals":{${good}}}`],
    ["top-level constructor.prototype", `{"constructor":{"prototype":{"polluted":1}},"signals":{${good}}}`],
    ["cursor.__proto__", `{"signals":{${good}},"cursor":{"__proto__":{"polluted":1}}}`],
    ["statement.__proto__", '{"signals":{"statement":{"__proto__":{"polluted":1}},"nick":"x"}}'],
    ["deep __proto__ at depth 30", `{"signals":{"x":${nested('{"a":', "}", 28, '{"__proto__":{"polluted":1}}')}}}`],
  ];
  // Names the protocol allows (`[A-Za-z_][A-Za-z0-9_]*`) that shadow Object.prototype members, and
  // prototype words as values: accepted like any other signal.
  const allowed: Array<[string, string]> = [
    [
      "signals toString/valueOf/hasOwnProperty",
      `{"signals":{${good},"toString":"x","valueOf":1,"hasOwnProperty":null}}`,
    ],
    ["signals __defineGetter__/__lookupGetter__", `{"signals":{${good},"__defineGetter__":1,"__lookupGetter__":{}}}`],
    [
      "signals isPrototypeOf/toLocaleString",
      `{"signals":{${good},"isPrototypeOf":"x","toLocaleString":{"polluted":1}}}`,
    ],
    ["signals _proto_/__proto/proto__", `{"signals":{${good},"_proto_":1,"__proto":{"polluted":1},"proto__":1}}`],
    ["nick __proto__", '{"signals":{"statement":"constructor","nick":"__proto__","retry":""}}'],
    ["nick constructor", '{"signals":{"statement":"__proto__","nick":"constructor","retry":"prototype"}}'],
    ["nick hasOwnProperty", '{"signals":{"statement":"toString","nick":"hasOwnProperty","retry":""}}'],
    ["a value with key polluted", `{"signals":{${good},"x":{"polluted":1}}}`],
  ];
  if (rng.chance(0.7)) {
    const [name, text] = rng.pick(polluting);
    return { name: `prototype key: ${name}`, body: s(text), verdict: "okOrDecode400" };
  }
  const [name, text] = rng.pick(allowed);
  return { name: `prototype name: ${name}`, body: s(text), verdict: "ok" };
}

/**
 * Prototype keys where a server might merge them into an object: action bodies (most), and query
 * parameters, header names and cookie names of a page or a stream probe with real credentials (those
 * answer as without them). run.ts checks afterwards that Object.prototype gained nothing.
 */
function protoCase(index: number, rng: Rng, fx: Fixture): Case {
  if (rng.chance(0.7)) return actionCase(index, rng, fx, protoBody);
  const { session, tab } = pickTab(rng, fx);
  const query = rng.pick([
    "__proto__[polluted]=1",
    "__proto__.polluted=1",
    "constructor[prototype][polluted]=1",
    "constructor.prototype.polluted=1",
    "prototype[polluted]=1",
    "__proto__=%7B%22polluted%22%3A1%7D",
    "a[__proto__][polluted]=1",
    "__proto__=1&__proto__=2&constructor=3",
  ]);
  const headers: Record<string, string> = {
    Cookie: rng.chance(0.5) ? `__proto__=polluted; constructor=1; ${session.cookie}` : session.cookie,
  };
  const names = ["__proto__", "constructor", "prototype", "hasOwnProperty", "toString"];
  for (const n of names) if (rng.chance(0.3)) headers[n] = "polluted";
  const shown = `query ${query} headers ${Object.keys(headers).join(",")}`;
  if (rng.chance(0.5)) {
    const method = rng.chance(0.2) ? "HEAD" : "GET";
    const path = `${rng.pick(["/", "/room/Rust", "/room/Go"])}?${query}`;
    return {
      index,
      category: "proto",
      name: `${method} page ${shown}`,
      req: { kind: "http", method, path, headers },
      expect: [200],
      setCookie: "none",
    };
  }
  const q = new URLSearchParams({ tab: tab.tab, path: tab.path, v: fx.version, probe: "1" });
  return {
    index,
    category: "proto",
    name: `GET stream probe ${shown}`,
    req: {
      kind: "http",
      method: "GET",
      path: `/_via/sse?${q}&${query}`,
      headers: { ...headers, Accept: "text/event-stream" },
    },
    expect: [204],
  };
}

// ---------- session cookies ----------

const NO_SESSION = { status: 403, text: "no session cookie this server issued" };

/**
 * Cookies the server did not sign against the three endpoints that read the session, each with the
 * session's own live (or spare) tab, so only the cookie decides: a page answers 200 with a fresh signed
 * cookie, a stream or action 403 and allocates nothing (run.ts counts tabs and sessions afterwards).
 * The session's own cookie (plain, or first before a planted one) is the control.
 */
function sessionCase(index: number, rng: Rng, fx: Fixture): Case {
  const { session, tab: live, other } = pickTab(rng, fx);
  const kind = rng.pick(SESSION_COOKIE_KINDS);
  const valid = hasSession(kind);
  const cookie = cookieHeader(kind, session.cookie, other.cookie, rng);
  const spare = rng.chance(0.25);
  const tab = spare ? rng.pick(session.spares) : live;
  const sameOrigin = {
    "Sec-Fetch-Site": rng.pick([undefined, "same-origin"]),
    Origin: rng.pick([undefined, `http://127.0.0.1:${fx.port}`]),
    Cookie: cookie,
  };
  const what = rng.int(3);
  if (what === 0) {
    const method = rng.chance(0.15) ? "HEAD" : "GET";
    const path = rng.pick(["/", "/room/Rust", "/room/Go", tab.path, "/?x=1"]);
    return {
      index,
      category: "session",
      name: `${method} page ${path} cookie=${kind}`,
      req: { kind: "http", method, path, headers: headersWith({}, { Cookie: cookie }) },
      expect: [200],
      setCookie: valid ? "none" : "fresh",
    };
  }
  if (what === 1) {
    // A spare tab only ever probes (a full stream would start its context and make it live).
    const probe = spare || rng.chance(0.5);
    const q = new URLSearchParams({ tab: tab.tab, path: tab.path, v: fx.version });
    if (probe) q.set("probe", "1");
    return {
      index,
      category: "session",
      name: `GET stream${probe ? " probe" : ""} ${spare ? "spare" : "live"} tab cookie=${kind}`,
      req: {
        kind: "http",
        method: "GET",
        path: `/_via/sse?${q}`,
        headers: headersWith({ Accept: "text/event-stream" }, sameOrigin),
      },
      expect: valid ? [probe ? 204 : 200] : [403],
      ...(valid && !probe ? { sse: "stream" as const } : {}),
      ...(valid ? {} : { reason: NO_SESSION }),
    };
  }
  const body = j({ signals: { statement: "hello from the fuzzer", nick: "Fuzzy", retry: "" } });
  const headers = headersWith(
    {
      "Via-Request": "1",
      "Via-Tab": tab.tab,
      "Content-Type": "application/json",
      "Content-Length": String(body.length),
    },
    sameOrigin,
  );
  return {
    index,
    category: "session",
    name: `POST action ${spare ? "spare" : "live"} tab cookie=${kind}`,
    req: { kind: "http", method: "POST", path: `/_via/action/${tab.saveNick}`, headers, body },
    // A tab of this session whose stream never attached: 410; a live one runs (or is rate limited).
    expect: valid ? (spare ? [410] : [204, 429]) : [403],
    ...(valid ? {} : { reason: NO_SESSION }),
  };
}

// ---------- Host names and forwarding headers ----------

/** Host headers to try: names of others (rebinding, look-alikes of ours) and spellings of our own. */
function hostCandidates(fx: Fixture): { foreign: string[]; ours: string[] } {
  const port = fx.port;
  const foreign = [
    "evil.example",
    `evil.example:${port}`,
    "EVIL.EXAMPLE",
    "localhost.evil.example",
    `localhost.evil.example:${port}`,
    "127.0.0.1.nip.io",
    `127.0.0.1.nip.io:${port}`,
    "localhost..",
    "localhostx",
    "xlocalhost",
    `notlocalhost:${port}`,
    "localhost.example",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    `[::ffff:7f00:1]:${port}`,
    `localhost:${port}:80`,
    "localhost@evil.example",
    "evil.example@localhost",
    "localhost evil.example",
    "evil.example/localhost",
    "localhost%2eevil.example",
    "local%68ost",
    "[::1",
    "evil.example:localhost",
    `${"a".repeat(300)}.example`,
  ];
  const ours = [
    "localhost",
    `localhost:${port}`,
    `LOCALHOST:${port}`,
    "LocalHost",
    "localhost.",
    `localhost.:${port}`,
    "localhost:",
    "localhost:1",
    "localhost:99999",
    "127.0.0.1",
    `127.0.0.1:${port}`,
    "127.0.0.1.",
    "[::1]",
    `[::1]:${port}`,
    "[::1].",
    "app.localhost",
    `a.b.localhost:${port}`,
    "evil.example.localhost",
    "EVIL.LOCALHOST.",
    ...fx.hostNames.flatMap((h) => {
      const b = h.includes(":") ? `[${h}]` : h;
      return [b, `${b}:${port}`];
    }),
  ];
  return { foreign, ours };
}

/** A page, static, stream, action or method case as its own generator makes it (all over node:http). */
function baseCase(index: number, rng: Rng, fx: Fixture): Case & { req: HttpReq } {
  const gen = rng.pick([pageCase, pageCase, staticCase, streamCase, actionCase, actionCase, methodCase]);
  return gen(index, rng, fx) as Case & { req: HttpReq };
}

/**
 * Another generator's case sent under another Host. A name the app does not answer to gets 403 "host
 * not allowed" before anything else is looked at (method, path, cookie, tab), except /healthz and
 * /readyz; for stream and action cases often with the matching Origin and Sec-Fetch-Site: same-origin
 * (DNS rebinding: the attacker's page is same-origin with its own name), and an X-Forwarded-Host naming
 * us. A spelling of our own name answers as the case would under 127.0.0.1 (its Origin, if it was ours,
 * follows the Host).
 */
function hostCase(index: number, rng: Rng, fx: Fixture): Case {
  if (rng.chance(0.15)) return rawHostCase(index, rng, fx);
  const base = baseCase(index, rng, fx);
  const { foreign, ours } = hostCandidates(fx);
  const host = rng.chance(0.6) ? rng.pick(foreign) : rng.pick(ours);
  const headers: Record<string, string> = { ...base.req.headers, Host: host };
  const ourOrigin = `http://127.0.0.1:${fx.port}`;
  const name = `Host ${JSON.stringify(host.length > 40 ? `${host.slice(0, 20)}…<${host.length}>` : host)}: ${base.name}`;
  if (hostAllowed(host, fx)) {
    if (headers.Origin === ourOrigin) headers.Origin = `http://${host}`;
    else if (headers.Origin === `http://${host}`) headers.Origin = "http://evil.example";
    return { ...base, category: "host", name: `${name} (ours)`, req: { ...base.req, headers } };
  }
  const expect = expectForTarget(base.req.method, base.req.path, fx, host);
  // /healthz, /readyz and an unparsable target answer as they would under any Host.
  if (expect.length !== 1 || expect[0] !== 403)
    return { ...base, category: "host", name, req: { ...base.req, headers } };
  if (base.req.path.startsWith("/_via/") && rng.chance(0.6)) {
    headers.Origin = `http://${host}`;
    headers["Sec-Fetch-Site"] = "same-origin";
    if (rng.chance(0.3)) headers["X-Forwarded-Host"] = `127.0.0.1:${fx.port}`;
  }
  const { sse: _sse, setCookie: _setCookie, reason: _reason, ...rest } = base;
  return {
    ...rest,
    category: "host",
    name: `${name} (not ours)`,
    req: { ...base.req, headers },
    expect,
    reason: { status: 403, text: "host not allowed" },
  };
}

/** Host headers node:http would not send: two of them, none, empty, odd bytes, absolute-form targets. */
function rawHostCase(index: number, rng: Rng, fx: Fixture): Case {
  const { session, tab } = pickTab(rng, fx);
  const ours = `127.0.0.1:${fx.port}`;
  const mk = (name: string, bytes: string, expect: number[], more: Partial<Case> = {}): Case => ({
    index,
    category: "host",
    name: `raw ${name}`,
    req: raw([bytes]),
    expect,
    ...more,
  });
  const refused = { reason: { status: 403, text: "host not allowed" } };
  switch (rng.int(10)) {
    case 0:
      return mk(
        "two Hosts, a foreign one first",
        `GET / HTTP/1.1\r\nHost: evil.example\r\nHost: ${ours}\r\n\r\n`,
        [400],
        { nodeParser: true },
      );
    case 1:
      // RFC 9112 §3.2: more than one Host is a 400, whichever is ours.
      return mk("two Hosts, ours first", `GET / HTTP/1.1\r\nHost: ${ours}\r\nHost: evil.example\r\n\r\n`, [400], {
        nodeParser: true,
      });
    case 2:
      return mk("HTTP/1.0 with a foreign Host", "GET / HTTP/1.0\r\nHost: evil.example\r\n\r\n", [403], refused);
    case 3:
      return mk("HTTP/1.0 without Host", "GET /room/Rust HTTP/1.0\r\n\r\n", [200]);
    case 4:
      return mk(
        "absolute-form naming us, foreign Host",
        `GET http://${ours}/room/Go HTTP/1.1\r\nHost: evil.example\r\n\r\n`,
        [403],
        { nodeParser: true, ...refused },
      );
    case 5:
      return mk("Host with a latin1 byte", "GET / HTTP/1.1\r\nHost: local\xe9host\r\n\r\n", [403], {
        nodeParser: true,
        ...refused,
      });
    case 6:
      return mk("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", [403], { nodeParser: true, ...refused });
    case 7:
      return mk("Host padded with tabs and spaces", "GET / HTTP/1.1\r\nHost: \t localhost \t\r\n\r\n", [200], {
        nodeParser: true,
      });
    case 8: {
      const path = rng.pick(["/healthz", "/readyz"]);
      return mk(`${path} under a foreign Host`, `GET ${path} HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n\r\n`, [200]);
    }
    default: {
      const q = new URLSearchParams({ tab: tab.tab, path: tab.path, v: fx.version, probe: "1" });
      return mk(
        "stream probe with real credentials under a foreign Host",
        `GET /_via/sse?${q} HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\nSec-Fetch-Site: same-origin\r\nCookie: ${session.cookie}\r\n\r\n`,
        [403],
        refused,
      );
    }
  }
}

const FORWARDED: Record<string, (port: number) => string[]> = {
  "X-Forwarded-For": () => [
    "203.0.113.7",
    "127.0.0.1",
    "::1",
    "unknown",
    "",
    "1.1.1.1, 2.2.2.2",
    "999.999.999.999",
    "[::1]:80",
    "<script>",
    "127.0.0.1, evil",
    "a,".repeat(500),
    "2001:db8::1%eth0",
    "%00",
    "x".repeat(4000),
  ],
  "X-Forwarded-Host": (port) => [
    "evil.example",
    "localhost",
    `127.0.0.1:${port}`,
    "",
    "evil.example, localhost",
    "x".repeat(2000),
  ],
  "X-Forwarded-Proto": () => ["https", "HTTPS", "http", "ftp", "", "https, http", "javascript"],
  "X-Forwarded-Port": () => ["443", "0", "-1", "x"],
  Forwarded: (port) => [
    "for=203.0.113.7;proto=https;host=evil.example",
    `for="[::1]";host=127.0.0.1:${port}`,
    "garbage",
  ],
  "X-Real-IP": () => ["203.0.113.9", "garbage"],
};

/**
 * Another generator's case with forwarding headers added: the app trusts none of them (no trustProxy),
 * so every status is the case's own; a fresh session cookie must not turn `Secure` over plain http.
 */
function forwardedCase(index: number, rng: Rng, fx: Fixture): Case {
  const base = baseCase(index, rng, fx);
  const names = Object.keys(FORWARDED);
  const added: Record<string, string> = {};
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    const h = rng.pick(names);
    added[h] = rng.pick(FORWARDED[h]!(fx.port));
  }
  const shown = Object.entries(added)
    .map(([k, v]) => `${k}=${JSON.stringify(v.length > 30 ? `${v.slice(0, 20)}…<${v.length}>` : v)}`)
    .join(" ");
  return {
    ...base,
    category: "forwarded",
    name: `${shown}: ${base.name}`,
    req: { ...base.req, headers: { ...base.req.headers, ...added } },
  };
}

// ---------- methods ----------

const METHODS = [
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "TRACE",
  "POST",
  "GET",
  "HEAD",
  "PROPFIND",
  "MKCOL",
  "SEARCH",
  "PURGE",
  "LOCK",
  "COPY",
  "REPORT",
];

function methodCase(index: number, rng: Rng, fx: Fixture): Case {
  const { session, tab } = pickTab(rng, fx);
  const target = rng.pick([
    "/",
    "/room/Rust",
    `/_via/sse?tab=${tab.tab}&path=%2F&v=${fx.version}`,
    `/_via/action/${tab.saveNick}`,
    rng.pick(fx.assets),
    "/healthz",
    "/readyz",
    "/_via/nothing",
  ]);
  let method = rng.pick(METHODS);
  // GET/POST on a route that allows them is not a method case; those are covered elsewhere.
  if ((method === "GET" || method === "HEAD") && !target.startsWith("/_via/action/")) method = "PATCH";
  if (method === "POST" && target.startsWith("/_via/action/")) method = "PUT";
  const headers: Record<string, string> = { Cookie: session.cookie };
  let body: Buffer | undefined;
  if (rng.chance(0.3)) {
    body = Buffer.from(JSON.stringify({ signals: {} }));
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(body.length);
  }
  return {
    index,
    category: "method",
    name: `${method} ${target.split("?")[0]}${body ? " with body" : ""}`,
    req: { kind: "http", method, path: target, headers, ...(body ? { body } : {}) },
    expect: expectForTarget(method, target, fx),
  };
}

// ---------- raw sockets: what node:http will not send ----------

function raw(parts: Array<string | Buffer>, opts: Partial<RawReq> = {}): RawReq {
  return {
    kind: "raw",
    bytes: Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p))),
    ...opts,
  };
}

function rawCase(index: number, rng: Rng, fx: Fixture): Case {
  const host = `Host: 127.0.0.1:${fx.port}\r\n`;
  const { session, tab } = pickTab(rng, fx);
  const actionHead = (extra = ""): string =>
    `POST /_via/action/${tab.saveNick} HTTP/1.1\r\n${host}Via-Request: 1\r\nVia-Tab: ${tab.tab}\r\nCookie: ${session.cookie}\r\nContent-Type: application/json\r\n${extra}`;
  const validBody = JSON.stringify({ signals: { nick: "Raw" } });
  /** The action with its valid body, `extra` (header text and bytes, each line ended) before its Content-Length. */
  const validAction = (...extra: Array<string | Buffer>): RawReq =>
    raw([actionHead(), ...extra, `Content-Length: ${validBody.length}\r\n\r\n`, validBody]);
  const k = rng.int(36);
  const mk = (name: string, req: RawReq, expect: number[], more: Partial<Case> = {}): Case => ({
    index,
    category: "raw",
    name,
    req,
    expect,
    ...more,
  });
  switch (k) {
    case 0:
      return mk("HTTP/1.1 without Host", raw(["GET / HTTP/1.1\r\n\r\n"]), [], { nodeParser: true });
    case 1:
      return mk("HTTP/1.0 without Host", raw(["GET / HTTP/1.0\r\n\r\n"]), [200]);
    case 2:
      return mk("NUL in path", raw([`GET /room/Go\x00 HTTP/1.1\r\n${host}\r\n`]), [], { nodeParser: true });
    case 3:
      return mk(
        "invalid UTF-8 in path",
        raw([`GET /room/`, Buffer.from([0xff, 0xfe, 0xc3]), ` HTTP/1.1\r\n${host}\r\n`]),
        [404],
        { nodeParser: true },
      );
    case 4:
      return mk(
        "invalid UTF-8 in query",
        raw([`GET /?q=`, Buffer.from([0xff, 0xc0]), ` HTTP/1.1\r\n${host}\r\n`]),
        [200],
        { nodeParser: true },
      );
    case 5:
      return mk("NUL in query", raw([`GET /?q=\x00 HTTP/1.1\r\n${host}\r\n`]), [], { nodeParser: true });
    case 6:
      return mk("header without colon", raw([`GET / HTTP/1.1\r\n${host}BadHeader\r\n\r\n`]), [], { nodeParser: true });
    case 7:
      return mk("space in header name", raw([`GET / HTTP/1.1\r\n${host}Bad Header: x\r\n\r\n`]), [], {
        nodeParser: true,
      });
    case 8:
      return mk("NUL in header value", raw([`GET / HTTP/1.1\r\n${host}X-A: a\x00b\r\n\r\n`]), [], { nodeParser: true });
    case 9:
      return mk(
        "invalid UTF-8 in Cookie",
        raw([`GET / HTTP/1.1\r\n${host}Cookie: via_session=`, Buffer.from([0xff, 0xfe]), "\r\n\r\n"]),
        [200],
        { nodeParser: true },
      );
    case 10:
      return mk("obs-fold header", raw([`GET / HTTP/1.1\r\n${host}X-A: a\r\n b\r\n\r\n`]), [200], { nodeParser: true });
    case 11:
      return mk("bare LF line endings", raw([`GET / HTTP/1.1\n${host.replace("\r\n", "\n")}\n`]), [200], {
        nodeParser: true,
      });
    case 12:
      return mk("HTTP/9.9", raw([`GET / HTTP/9.9\r\n${host}\r\n`]), [200], { nodeParser: true });
    case 13:
      return mk("HTTP/0.9 request line", raw(["GET /\r\n\r\n"], { halfClose: true }), [200], {
        nodeParser: true,
        mayClose: true,
      });
    case 14:
      return mk("random bytes", raw([rng.bytes(64 + rng.int(2048))], { halfClose: true }), [], {
        nodeParser: true,
        mayClose: true,
      });
    case 15: {
      const m = rng.pick(["FOO", "get", "G\x01T", "A".repeat(5000), "HTTP/1.1", "-", "GET\x00"]);
      return mk(`garbage method ${JSON.stringify(m.slice(0, 20))}`, raw([`${m} / HTTP/1.1\r\n${host}\r\n`]), [], {
        nodeParser: true,
      });
    }
    case 16:
      return mk("CONNECT", raw([`CONNECT 127.0.0.1:${fx.port} HTTP/1.1\r\n${host}\r\n`], { halfClose: true }), [405], {
        nodeParser: true,
        mayClose: true,
      });
    case 17:
      return mk(
        "Content-Length and Transfer-Encoding",
        raw([actionHead(`Content-Length: ${validBody.length}\r\nTransfer-Encoding: chunked\r\n\r\n`), validBody]),
        [],
        { nodeParser: true },
      );
    case 18:
      return mk(
        "two different Content-Lengths",
        raw([actionHead(`Content-Length: ${validBody.length}\r\nContent-Length: 3\r\n\r\n`), validBody]),
        [],
        { nodeParser: true },
      );
    case 19: {
      const cl = rng.pick(["-1", "abc", "1e3", " ", "0x10", "99999999999999999999999"]);
      return mk(
        `Content-Length ${JSON.stringify(cl)}`,
        raw([actionHead(`Content-Length: ${cl}\r\n\r\n`), validBody], { halfClose: true }),
        [413, 429],
        { nodeParser: true },
      );
    }
    case 20:
      return mk(
        "bad chunk size",
        raw([actionHead("Transfer-Encoding: chunked\r\n\r\n"), "zz\r\nabc\r\n0\r\n\r\n"], { halfClose: true }),
        [400, 429],
        { nodeParser: true, mayClose: true },
      );
    case 21:
      return mk(
        "Content-Length longer than the body, then EOF",
        raw([actionHead(`Content-Length: ${validBody.length + 100}\r\n\r\n`), validBody], { halfClose: true }),
        [400, 429],
        { nodeParser: true, mayClose: true },
      );
    case 22:
      return mk(
        "Content-Length shorter than the body",
        raw([actionHead(`Content-Length: ${validBody.length - 5}\r\n\r\n`), validBody], { halfClose: true }),
        [400, 429],
        { nodeParser: true },
      );
    case 23:
      return mk("Content-Length 0 on an action", raw([actionHead("Content-Length: 0\r\n\r\n")]), [400, 429]);
    case 24:
      return mk("20 KB header", raw([`GET / HTTP/1.1\r\n${host}X-Big: ${"a".repeat(20 * 1024)}\r\n\r\n`]), [], {
        nodeParser: true,
      });
    case 25:
      return mk("20 KB URL", raw([`GET /room/${"a".repeat(20 * 1024)} HTTP/1.1\r\n${host}\r\n`]), [], {
        nodeParser: true,
      });
    case 26:
      return mk(
        "500 small headers",
        raw([`GET / HTTP/1.1\r\n${host}${Array.from({ length: 500 }, (_, i) => `X-${i}: ${i}\r\n`).join("")}\r\n`]),
        [200],
        { nodeParser: true },
      );
    case 27: {
      const target = rng.pick([
        `http://127.0.0.1:${fx.port}/room/Go`,
        "http://evil.example/room/Rust",
        "http://x/_via/static/../../package.json",
        "*",
        "room/Go",
        "?x",
        "http://[::1/",
      ]);
      return mk(
        `request target ${JSON.stringify(target)}`,
        raw([`GET ${target} HTTP/1.1\r\n${host}\r\n`]),
        expectForTarget("GET", target, fx),
        { nodeParser: true, mustNotContain: ['"name": "via-ts"'] },
      );
    }
    case 28:
      return mk(
        "Via-Tab with invalid UTF-8",
        validAction("Via-Tab: ", Buffer.from([0xff, 0xfe]), "\r\n"),
        [400], // "ÿþ" is no tab id
        { nodeParser: true },
      );
    case 29:
      return mk("Origin with latin1 bytes", validAction("Origin: http://", Buffer.from([0xe9, 0xff]), "\r\n"), [403]);
    case 30:
      return mk("Via-Request with NUL", validAction("Via-Request: 1\x00\r\n"), [], { nodeParser: true });
    case 31:
      return mk("Expect: 100-continue action", validAction("Expect: 100-continue\r\n"), [204, 429]);
    case 32:
      return mk(
        "Upgrade: websocket on the stream",
        raw([
          `GET /_via/sse?tab=${tab.tab}&path=%2F&v=${fx.version} HTTP/1.1\r\n${host}Cookie: ${session.cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        ]),
        [200],
        { nodeParser: true, mayClose: true },
      );
    case 33:
      return mk(
        "pipelined garbage after a valid request",
        raw([`GET /healthz HTTP/1.1\r\n${host}\r\nGARBAGE\x00\r\n\r\n`]),
        [200],
      );
    case 34:
      return mk("leading empty lines", raw([`\r\n\r\nGET / HTTP/1.1\r\n${host}\r\n`]), [200], { nodeParser: true });
    default:
      return mk(
        "HEAD with a body",
        raw([`HEAD / HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhello`], { head: true }),
        [200],
      );
  }
}

// ---------- the mix ----------

export function generateCase(seed: number, index: number, fx: Fixture): Case {
  const rng = caseRng(seed, index);
  const r = rng.next();
  if (r < 0.12) return pageCase(index, rng, fx);
  if (r < 0.18) return staticCase(index, rng, fx);
  if (r < 0.36) return streamCase(index, rng, fx);
  if (r < 0.63) return actionCase(index, rng, fx);
  if (r < 0.69) return methodCase(index, rng, fx);
  if (r < 0.8) return rawCase(index, rng, fx);
  if (r < 0.87) return sessionCase(index, rng, fx);
  if (r < 0.94) return hostCase(index, rng, fx);
  if (r < 0.97) return forwardedCase(index, rng, fx);
  return protoCase(index, rng, fx);
}
