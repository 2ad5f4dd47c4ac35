// Forwarded cases: other generators' cases with X-Forwarded-* and Forwarded garbage added, which the
// app trusts none of, so every status stays the case's own.
import type { Rng } from "../prng.ts";
import { baseCase } from "./base-case.ts";
import type { Case, Fixture } from "./types.ts";

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
export function forwardedCase(index: number, rng: Rng, fx: Fixture): Case {
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
