// Transports for fuzz cases: node:http for requests it is willing to send, raw node:net sockets for
// the ones it refuses (invalid header bytes, bad request lines, Content-Length lies). Both return the
// first response (status, headers, body) or say how the connection ended without one.
import { request } from "node:http";
import { connect } from "node:net";

export interface HttpReq {
  kind: "http";
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface RawReq {
  kind: "raw";
  /** The exact bytes written to the socket. */
  bytes: Buffer;
  /** Half-close the socket after writing (the server sees EOF). */
  halfClose?: boolean;
  /** The request is a HEAD (the response has no body). */
  head?: boolean;
}

export type Req = HttpReq | RawReq;

export interface Outcome {
  /** 0 when no response arrived. */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** How the exchange ended without a (complete) response: "reset", "closed", "timeout", a client error… */
  error?: string;
  ms: number;
}

/** For an event stream we only need the status and headers: read them, then hang up. */
function isStream(headers: Record<string, string | string[] | undefined>): boolean {
  return String(headers["content-type"] ?? "").startsWith("text/event-stream");
}

const MAX_KEEP = 64 * 1024;

/**
 * The first outcome of an exchange wins: `end` hangs up, and the send resolves with it and the time since
 * the exchange began. Whatever the connection does after that is ignored.
 */
function firstOutcome(resolve: (o: Outcome) => void, end: () => void): (o: Omit<Outcome, "ms">) => void {
  const started = performance.now();
  let done = false;
  return (o) => {
    if (done) return;
    done = true;
    end();
    resolve({ ...o, ms: Math.round(performance.now() - started) });
  };
}

export function sendHttp(port: number, req: HttpReq, timeoutMs: number): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const finish = firstOutcome(resolve, () => {
      clearTimeout(timer);
      r.destroy();
    });
    const r = request(
      { host: "127.0.0.1", port, method: req.method, path: req.path, headers: req.headers, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        const headers = res.headers;
        if (isStream(headers)) {
          // Take what is already there (a via-reload ends at once), then hang up.
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          setTimeout(() => finish({ status, headers, body: Buffer.concat(chunks).toString() }), 20);
          return;
        }
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on("data", (c: Buffer) => {
          if (kept < MAX_KEEP) chunks.push(c);
          kept += c.length;
        });
        res.on("end", () => finish({ status, headers, body: Buffer.concat(chunks).toString() }));
        res.on("error", (err) =>
          finish({ status, headers, body: Buffer.concat(chunks).toString(), error: errName(err) }),
        );
        res.on("aborted", () => finish({ status, headers, body: Buffer.concat(chunks).toString(), error: "aborted" }));
      },
    );
    const timer = setTimeout(() => finish({ status: 0, headers: {}, body: "", error: "timeout" }), timeoutMs);
    r.on("error", (err) => finish({ status: 0, headers: {}, body: "", error: errName(err) }));
    if (req.body) {
      // Write in pieces so a refusal mid-body is seen as the server sees it.
      const piece = 256 * 1024;
      for (let off = 0; off < req.body.length; off += piece) r.write(req.body.subarray(off, off + piece));
    }
    r.end();
  });
}

function errName(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ?? (err as Error).message ?? String(err);
}

interface Parsed {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bodyStart: number;
}

function parseHead(buf: Buffer, from = 0): Parsed | undefined {
  const end = buf.indexOf("\r\n\r\n", from);
  if (end < 0) return undefined;
  const lines = buf.subarray(from, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!m) return { status: -1, headers: {}, bodyStart: end + 4 };
  // Skip interim responses (100 Continue): the final one follows.
  const code = Number(m[1]);
  if (code >= 100 && code < 200 && code !== 101) return parseHead(buf, end + 4);
  const headers: Record<string, string | string[] | undefined> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return { status: Number(m[1]), headers, bodyStart: end + 4 };
}

/** Decodes a complete chunked body, or undefined while incomplete. */
function dechunk(buf: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", pos);
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.subarray(pos, eol).toString("latin1"), 16);
    if (!Number.isFinite(size)) return Buffer.concat(out);
    if (size === 0) return Buffer.concat(out);
    if (buf.length < eol + 2 + size + 2) return undefined;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}

export function sendRaw(port: number, req: RawReq, timeoutMs: number): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let buf = Buffer.alloc(0);
    let socketError: string | undefined;
    const finish = firstOutcome(resolve, () => {
      clearTimeout(timer);
      sock.destroy();
    });
    const sock = connect({ host: "127.0.0.1", port });
    // Is the first response complete in `buf`? (At EOF we take whatever there is.)
    const tryComplete = (eof: boolean): void => {
      const head = parseHead(buf);
      if (!head) {
        if (eof) finish({ status: 0, headers: {}, body: buf.toString(), error: socketError ?? "closed" });
        return;
      }
      const rest = buf.subarray(head.bodyStart);
      const { status, headers } = head;
      if (req.head || status === 204 || status === 304 || isStream(headers)) {
        finish({ status, headers, body: isStream(headers) ? rest.toString() : "" });
        return;
      }
      const cl = headers["content-length"];
      if (typeof cl === "string") {
        const n = Number(cl);
        if (rest.length >= n) finish({ status, headers, body: rest.subarray(0, n).toString() });
        else if (eof) finish({ status, headers, body: rest.toString(), error: "truncated body" });
        return;
      }
      if (String(headers["transfer-encoding"] ?? "").toLowerCase() === "chunked") {
        const body = dechunk(rest);
        if (body) finish({ status, headers, body: body.toString() });
        else if (eof) finish({ status, headers, body: rest.toString(), error: "truncated body" });
        return;
      }
      if (eof) finish({ status, headers, body: rest.toString() });
    };
    const timer = setTimeout(() => {
      const head = parseHead(buf);
      if (head) finish({ status: head.status, headers: head.headers, body: "", error: "timeout after headers" });
      else finish({ status: 0, headers: {}, body: "", error: "timeout" });
    }, timeoutMs);
    sock.on("data", (c: Buffer) => {
      if (buf.length < MAX_KEEP * 4) buf = Buffer.concat([buf, c]);
      tryComplete(false);
    });
    sock.on("end", () => tryComplete(true));
    sock.on("error", (err) => {
      socketError = errName(err);
      // Writing into a socket the server already answered and closed: the answer may be in `buf`.
      tryComplete(true);
    });
    sock.on("close", () => tryComplete(true));
    sock.on("connect", () => {
      const piece = 256 * 1024;
      for (let off = 0; off < req.bytes.length; off += piece) sock.write(req.bytes.subarray(off, off + piece));
      if (req.halfClose) sock.end();
    });
  });
}
