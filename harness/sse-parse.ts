// Reading event streams off the wire, for clients that speak HTTP/1.1 on raw sockets (the benchmarks'
// load clients hold thousands of streams; node:http would cost more than the server under test) and
// for the test client (sse-client.ts), which splits what node:http decoded the same way. One splitter,
// one chunked decoder, one response-head check. The state lives in the caller's own object (a tab of
// the load clients is one), so holding a stream costs no allocation beyond its buffers.

/** What reading one event stream keeps: HTTP chunked decoding, the undelivered rest, and where events go. */
export interface SseParse {
  chunked: boolean;
  /** > 0: chunk data bytes left; 0: reading a chunk-size line; < 0: CRLF characters left to skip. */
  chunkLeft: number;
  sizeLine: string;
  buf: string;
  scanFrom: number;
  /** One complete event (without its terminating blank line). */
  emit: (ev: string) => void;
}

/** The fields of a fresh SseParse (spread into the object that holds the stream). */
export function sseParseState(emit: (ev: string) => void): SseParse {
  return { chunked: false, chunkLeft: 0, sizeLine: "", buf: "", scanFrom: 0, emit };
}

/** Decoded body text: split into events on blank lines. */
export function feedEvents(p: SseParse, text: string): void {
  p.buf += text;
  let start = 0;
  let idx = p.buf.indexOf("\n\n", p.scanFrom);
  while (idx >= 0) {
    p.emit(p.buf.slice(start, idx));
    start = idx + 2;
    idx = p.buf.indexOf("\n\n", start);
  }
  if (start > 0) p.buf = p.buf.slice(start);
  p.scanFrom = Math.max(0, p.buf.length - 1);
}

/** Raw body bytes (latin1: one char per byte): undo chunked transfer coding if the response uses it, then split. */
export function feedBody(p: SseParse, data: string): void {
  if (!p.chunked) {
    feedEvents(p, data);
    return;
  }
  let i = 0;
  const n = data.length;
  while (i < n) {
    if (p.chunkLeft > 0) {
      const end = Math.min(n, i + p.chunkLeft);
      feedEvents(p, data.slice(i, end));
      p.chunkLeft -= end - i;
      i = end;
      if (p.chunkLeft === 0) p.chunkLeft = -2;
    } else if (p.chunkLeft < 0) {
      i++;
      p.chunkLeft++;
    } else {
      const nl = data.indexOf("\n", i);
      if (nl < 0) {
        p.sizeLine += data.slice(i);
        break;
      }
      const size = Number.parseInt(p.sizeLine + data.slice(i, nl), 16);
      p.sizeLine = "";
      i = nl + 1;
      // The last chunk ("0") is followed by one more CRLF; the stream ends there.
      p.chunkLeft = size > 0 ? size : -2;
    }
  }
}

/** The value of an event's first line that starts with `prefix` (e.g. "data: selector "), if any. */
export function lineValue(ev: string, prefix: string): string | undefined {
  const at = ev.startsWith(prefix) ? 0 : ev.indexOf(`\n${prefix}`);
  if (at < 0) return undefined;
  const from = at === 0 ? prefix.length : at + 1 + prefix.length;
  const end = ev.indexOf("\n", from);
  return ev.slice(from, end < 0 ? undefined : end);
}

/** Whether an event is a comment (the server's keepalive). */
export function isComment(ev: string): boolean {
  return ev.charCodeAt(0) === 58; /* ":" */
}

/** A GET request's bytes, with the session cookie if there is one. */
export function getRequest(host: string, path: string, accept: string, cookie = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: ${accept}\r\n${cookie ? `Cookie: ${cookie}\r\n` : ""}\r\n`;
}

/**
 * An event stream's response head at the start of `buf`: undefined while it is incomplete; throws for
 * anything but a 200; otherwise whether the body is chunked and the body bytes that came with the head.
 */
export function takeStreamHead(buf: string): { chunked: boolean; rest: string } | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) {
    if (buf.length > 16_384) throw new Error("response head too large");
    return undefined;
  }
  if (!buf.startsWith("HTTP/1.1 200")) {
    throw new Error(`stream: ${buf.slice(0, buf.indexOf("\r\n"))} ${buf.slice(end + 4, end + 304)}`);
  }
  return { chunked: /\r\ntransfer-encoding:\s*chunked/i.test(buf.slice(0, end)), rest: buf.slice(end + 4) };
}

export interface RawResponse {
  status: number;
  /** The first Set-Cookie's name=value, or "". */
  cookie: string;
  /** The body, decoded as UTF-8. */
  body: string;
  /** Bytes of the whole response (head and body). */
  bytes: number;
  /** The server will close the connection. */
  close: boolean;
  /** What came after the response on the connection. */
  rest: string;
}

/**
 * A whole HTTP/1.1 response in `raw` (latin1, one char per byte), or undefined while it is incomplete:
 * a body by Content-Length or chunked coding.
 */
export function parseResponse(raw: string): RawResponse | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = raw.slice(0, end);
  const status = Number(head.slice(9, 12));
  const cookie = /\r\nset-cookie:\s*([^;\r]*)/i.exec(head)?.[1] ?? "";
  const close = /\r\nconnection:\s*close/i.test(head);
  let i = end + 4;
  let body = "";
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    for (;;) {
      const nl = raw.indexOf("\r\n", i);
      if (nl < 0) return undefined;
      const size = Number.parseInt(raw.slice(i, nl), 16);
      if (raw.length < nl + 2 + size + 2) return undefined;
      body += raw.slice(nl + 2, nl + 2 + size);
      i = nl + 2 + size + 2;
      if (size === 0) break;
    }
  } else {
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (raw.length < i + length) return undefined;
    body = raw.slice(i, i + length);
    i += length;
  }
  return {
    status,
    cookie,
    body: Buffer.from(body, "latin1").toString("utf8"),
    bytes: i,
    close,
    rest: raw.slice(i),
  };
}
