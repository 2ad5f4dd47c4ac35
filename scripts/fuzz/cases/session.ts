// Session cases: cookies the server did not sign against a page, a stream and an action, each with a
// real tab of the session so that only the cookie decides.
import type { Rng } from "../prng.ts";
import { j } from "./bodies.ts";
import { headersWith, pickTab } from "./builders.ts";
import { cookieHeader, hasSession, SESSION_COOKIE_KINDS } from "./cookies.ts";
import type { Case, Fixture } from "./types.ts";

const NO_SESSION = { status: 403, text: "no session cookie this server issued" };

/**
 * Cookies the server did not sign against the three endpoints that read the session, each with the
 * session's own live (or spare) tab, so only the cookie decides: a page answers 200 with a fresh signed
 * cookie, a stream or action 403 and allocates nothing (run.ts counts tabs and sessions afterwards).
 * The session's own cookie (plain, or first before a planted one) is the control.
 */
export function sessionCase(index: number, rng: Rng, fx: Fixture): Case {
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
