// Default response headers and the checks every action request must pass.
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./http-error.ts";

export const DEFAULT_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

export function setSecurityHeaders(res: ServerResponse, csp: string | false): void {
  if (csp) res.setHeader("Content-Security-Policy", csp);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "same-origin");
  res.setHeader("X-Frame-Options", "DENY");
}

/** True when the request reached us over TLS (or, only if configured, a trusted proxy says so). */
export function isHttps(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  return trustProxy && req.headers["x-forwarded-proto"] === "https";
}

/**
 * Actions change server state, so they must come from our runtime on our own origin:
 * the runtime's request header (a cross-site form cannot set it without a CORS preflight we never
 * grant), a same-origin Sec-Fetch-Site where the browser sends one, and a matching Origin if present.
 */
export function checkActionOrigin(req: IncomingMessage, trustProxy: boolean): void {
  if (req.headers["via-request"] !== "1")
    throw new HttpError(403, "missing Via-Request header: actions come from the via runtime");
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin")
    throw new HttpError(403, `cross-site action refused (Sec-Fetch-Site: ${site})`);
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const host = req.headers.host;
    const proto = isHttps(req, trustProxy) ? "https" : "http";
    if (!host || origin !== `${proto}://${host}`)
      throw new HttpError(403, "cross-origin action refused (Origin does not match Host)");
  }
}
