// An error that maps to an HTTP response with a reason. Request handlers throw it for bad input;
// the app turns it into `status` with a one-line text/plain body (`answerError`), never a 5xx or a
// crash.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.ts";

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Refuses `method` with a 405 (naming the allowed ones) unless it is one of `methods`. */
export function allowMethods(method: string, methods: string[]): void {
  if (!methods.includes(method))
    throw new HttpError(405, `method ${method} not allowed here`, { Allow: methods.join(", ") });
}

/**
 * Answers a request that failed: an HttpError with its status and message, anything else (page code
 * that threw: bad input is always an HttpError) logged and answered 500. A response already under
 * way is cut instead.
 */
export function answerError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  let httpErr: HttpError;
  if (err instanceof HttpError) httpErr = err;
  else {
    logger.error({ err, url: req.url }, "request failed");
    httpErr = new HttpError(500, "internal error");
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...httpErr.headers,
  };
  // HTTP/2 has no connection-level headers (node drops them with a warning): the stream ends alone.
  if (req.httpVersionMajor === 2) delete headers.Connection;
  res.writeHead(httpErr.status, headers);
  res.end(`${httpErr.message}\n`);
  // Drain (bounded) what the client still sends, so it sees our reply instead of a reset.
  if (!req.complete) req.resume();
}
