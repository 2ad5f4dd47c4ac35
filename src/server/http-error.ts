// An error that maps to an HTTP response with a reason. Request handlers throw it for bad input;
// the app turns it into `status` with a one-line text/plain body, never a 5xx or a crash.
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
