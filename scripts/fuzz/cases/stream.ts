// Event stream cases: tab ids of every kind with hostile `path`, `v`, `h`, `streams` and `probe`
// parameters and browser headers, judged in the order app.ts serveStream checks them.
import type { Rng } from "../prng.ts";
import { digits, flipId, headersWith, longString, pickTab, randomId, randomTabId } from "./builders.ts";
import { cookieHeader, hasSession, STREAM_COOKIE_KINDS } from "./cookies.ts";
import { ROOMS, safeDecode, TAB_ID } from "./expect.ts";
import { ROOM_NAMES } from "./pages.ts";
import { crossSite, REFUSED_SITES, refusedOrigin } from "./same-origin.ts";
import { malformedId, STREAM_TAB_KINDS } from "./tab-ids.ts";
import type { Case, Fixture } from "./types.ts";

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

export function streamCase(index: number, rng: Rng, fx: Fixture): Case {
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
