// Method cases: PUT, DELETE, PATCH, TRACE, WebDAV and other methods on every endpoint, judged by the
// route rules (mostly 405).
import type { Rng } from "../prng.ts";
import { pickTab } from "./builders.ts";
import { expectForTarget } from "./expect.ts";
import type { Case, Fixture } from "./types.ts";

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

export function methodCase(index: number, rng: Rng, fx: Fixture): Case {
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
