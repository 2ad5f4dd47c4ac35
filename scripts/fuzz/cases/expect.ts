// The expectations several generators share: the status of a page path, whether the app answers to a
// Host header, the statuses of any request target that is not a stream or action with real credentials,
// and the room list and tab id shape they read. Pages, static files, streams, methods, raw requests,
// actions and Host cases all judge by them.
import { DEFAULT_ROOMS } from "../../../apps/chat/rooms.ts";
import type { Fixture } from "./types.ts";

export const ROOMS = DEFAULT_ROOMS;

/** A well-formed tab id (src/server/tab-id.ts): 43 base64url characters. */
export const TAB_ID = /^[A-Za-z0-9_-]{43}$/;

export function safeDecode(s: string): string | undefined {
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
