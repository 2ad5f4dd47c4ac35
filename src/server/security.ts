// Default response headers, and the checks that keep other sites out: the Host a request names, and
// the origin an event stream or an action comes from.
import type { IncomingMessage, ServerResponse } from "node:http";
import { networkInterfaces, hostname as osHostname } from "node:os";
import { HttpError } from "./http-error.ts";

export const DEFAULT_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // The runtime's shared worker (one event stream for a browser's tabs) is a script of ours too.
  "worker-src 'self'",
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
 * The event stream and actions act for the browser's session, so only our own pages may start them:
 * a same-origin Sec-Fetch-Site where the browser sends one (another port of the same host is
 * "same-site", and refused), and an Origin, if present, that matches the Host.
 */
export function checkSameOrigin(req: IncomingMessage, trustProxy: boolean, what: string): void {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin")
    throw new HttpError(403, `cross-site ${what} refused (Sec-Fetch-Site: ${site})`);
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const host = requestHost(req);
    const proto = isHttps(req, trustProxy) ? "https" : "http";
    if (!host || origin !== `${proto}://${host}`)
      throw new HttpError(403, `cross-origin ${what} refused (Origin does not match Host)`);
  }
}

/**
 * Actions change server state, so they must also come from our runtime: its request header cannot be
 * set by a cross-site form without a CORS preflight, which we never grant.
 */
export function checkActionOrigin(req: IncomingMessage, trustProxy: boolean): void {
  if (req.headers["via-request"] !== "1")
    throw new HttpError(403, "missing Via-Request header: actions come from the via runtime");
  checkSameOrigin(req, trustProxy, "action");
}

/**
 * The host names this server answers to. A page served under a name we do not know is the shape of
 * DNS rebinding (an attacker's name resolving to us, so their page is "same-origin" with ours), so
 * requests naming another Host are refused. Names are compared without the port, case-insensitively;
 * an entry starting with "." also allows every subdomain (".example.com").
 */
export class HostAllowList {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];

  constructor(names: Iterable<string>) {
    this.add(names);
  }

  add(names: Iterable<string>): void {
    for (const raw of names) {
      const name = raw
        .trim()
        .toLowerCase()
        .replace(/^\[|\]$/g, "");
      if (name === "") continue;
      if (name.startsWith(".")) this.suffixes.push(name);
      else this.exact.add(name);
    }
  }

  /** localhost, the loopback addresses, this machine's interface addresses and host name. */
  static local(): string[] {
    const names = ["localhost", ".localhost", "127.0.0.1", "::1", osHostname()];
    for (const list of Object.values(networkInterfaces())) {
      for (const iface of list ?? []) names.push(iface.address.split("%")[0]!);
    }
    return names;
  }

  allows(hostHeader: string | undefined): boolean {
    // Only HTTP/1.0 may omit Host (Node refuses an HTTP/1.1 request without one), and a browser never
    // does: a rebinding attack always names its own host.
    if (hostHeader === undefined) return true;
    const name = hostName(hostHeader);
    if (this.exact.has(name)) return true;
    return this.suffixes.some((suffix) => name.endsWith(suffix) || name === suffix.slice(1));
  }

  check(req: IncomingMessage): void {
    const host = requestHost(req);
    if (!this.allows(host)) {
      throw new HttpError(
        403,
        `host not allowed: ${JSON.stringify((host ?? "").slice(0, 100))} (add it to the app's allowedHosts)`,
      );
    }
  }
}

/**
 * The host a request names: its Host header, or over HTTP/2 its `:authority` (browsers send no Host
 * there; node's compatibility API does not make one up).
 */
export function requestHost(req: IncomingMessage): string | undefined {
  if (req.httpVersionMajor !== 2) return req.headers.host;
  const authority = req.headers[":authority"];
  return typeof authority === "string" ? authority : req.headers.host;
}

/**
 * RFC 9112 §3.2: a request with more than one Host is a 400. Node keeps the first, while a proxy in
 * front may route on the last: the app and the proxy would disagree about whose request it is. Over
 * HTTP/2 a Host beside `:authority` must name the same (RFC 9113 §8.3.1), for the same reason.
 */
export function checkSingleHost(req: IncomingMessage): void {
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === "host") hosts++;
  }
  if (hosts > 1) throw new HttpError(400, "more than one Host header");
  if (hosts === 1 && req.httpVersionMajor === 2) {
    const authority = req.headers[":authority"];
    if (typeof authority === "string" && authority.toLowerCase() !== req.headers.host?.toLowerCase())
      throw new HttpError(400, "Host and :authority differ");
  }
}

/** "Example.COM:8080" → "example.com", "[::1]:80" → "::1". */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.indexOf(":");
  // More than one colon without brackets is not a valid Host; keep it whole so nothing matches it.
  const name = colon >= 0 && h.indexOf(":", colon + 1) < 0 ? h.slice(0, colon) : h;
  // "example.com." is the same name, fully qualified.
  return name.endsWith(".") ? name.slice(0, -1) : name;
}
