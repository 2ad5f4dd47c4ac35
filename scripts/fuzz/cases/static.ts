// Static file cases: real assets with odd suffixes, long names and path traversal in every encoding,
// whose responses must not leak files from outside the static folder.
import type { Rng } from "../prng.ts";
import { longString } from "./builders.ts";
import { expectForTarget } from "./expect.ts";
import type { Case, Fixture } from "./types.ts";

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

export function staticCase(index: number, rng: Rng, fx: Fixture): Case {
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
