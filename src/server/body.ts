// Request body reading with a hard byte cap. The cap is enforced both on the declared Content-Length
// (refused before reading a byte) and on the bytes actually streamed (a chunked or lying client), and
// on refusal we stop reading at once instead of draining the rest into memory.
import type { IncomingMessage } from "node:http";
import { HttpError } from "./http-error.ts";

export interface ReadBodyOptions {
  /** Largest accepted body in bytes. */
  maxBytes: number;
  /**
   * Time the whole body may take to arrive (ms); a client trickling it is answered 408. The server
   * `listen` makes enforces the same bound; this one holds where the handler is mounted on another.
   */
  timeoutMs?: number;
}

// A 413 goes out while the client may still be sending; the rest of the body is unread, so the
// connection cannot be reused and must close after the response.
function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, `request body is larger than ${maxBytes} bytes`, { Connection: "close" });
}

/**
 * Reads the whole request body. Rejects with HttpError 413 when the body is (or says it is) over
 * `maxBytes`, and with HttpError 400 when the request stream fails or the client aborts mid-body.
 * After a 413 the request is left paused; respond (the error carries `Connection: close`) and the
 * server closes the socket instead of reading the rest.
 */
export function readBody(req: IncomingMessage, opts: ReadBodyOptions): Promise<Buffer> {
  const { maxBytes } = opts;
  return new Promise<Buffer>((resolve, reject) => {
    if (req.readableEnded) {
      // 'end' has already fired and will not fire again; waiting would hang forever.
      reject(new Error("readBody: the request body was already consumed"));
      return;
    }
    if (req.destroyed) {
      // Already aborted: 'close' has fired, so the listeners below would never hear about it.
      reject(new HttpError(400, "request aborted before the body was complete"));
      return;
    }

    const declared = req.headers["content-length"];
    if (declared !== undefined) {
      const length = Number(declared);
      if (Number.isFinite(length) && length > maxBytes) {
        req.pause();
        reject(tooLarge(maxBytes));
        return;
      }
    }

    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;

    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            req.pause();
            fail(new HttpError(408, "the request body did not arrive in time", { Connection: "close" }));
          }, opts.timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      chunks.length = 0;
      reject(err);
    };
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      received += buf.length;
      if (received > maxBytes) {
        // Stop the flow before anything else: no further chunks are read or buffered.
        req.pause();
        fail(tooLarge(maxBytes));
        return;
      }
      chunks.push(buf);
    };
    const onEnd = (): void => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (err: Error): void => {
      fail(new HttpError(400, `request body could not be read: ${err.message}`));
    };
    // 'close' before 'end' means the client went away mid-body (Node may or may not emit 'error' first).
    const onClose = (): void => {
      if (!req.complete) fail(new HttpError(400, "request aborted before the body was complete"));
    };

    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

// `application/json`, optionally with `charset=utf-8` (any case, optionally quoted), nothing else.
const JSON_CONTENT_TYPE = /^application\/json\s*(?:;\s*charset\s*=\s*(?:utf-8|"utf-8")\s*)?$/i;

/** Throws HttpError 415 unless the request declares a JSON body in UTF-8. */
export function requireJsonContentType(req: IncomingMessage): void {
  const type = req.headers["content-type"];
  if (type === undefined || type.trim() === "") {
    throw new HttpError(415, "Content-Type must be application/json (none given)");
  }
  if (!JSON_CONTENT_TYPE.test(type.trim())) {
    const shown = type.length > 60 ? `${type.slice(0, 60)}…` : type;
    throw new HttpError(415, `Content-Type must be application/json, got ${JSON.stringify(shown)}`);
  }
}
