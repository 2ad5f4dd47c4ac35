// The same-origin headers (Sec-Fetch-Site, Origin) the event stream and actions refuse, and the rule
// that makes them a 403: both generators use it.
import type { Rng } from "../prng.ts";

/** Sec-Fetch-Site values other than "same-origin": refused on the event stream and on actions. */
export const REFUSED_SITES = ["cross-site", "same-site", "none", "", "SAME-ORIGIN", "same-origin, cross-site"];

/** Origin headers that do not match `http://<Host>` for the fixture's Host (`127.0.0.1:<port>`). */
export function refusedOrigin(rng: Rng, port: number): string {
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
export function crossSite(secFetchSite: string | undefined, origin: string | undefined, port: number): boolean {
  if (secFetchSite !== undefined && secFetchSite !== "same-origin") return true;
  return origin !== undefined && origin !== `http://127.0.0.1:${port}`;
}
