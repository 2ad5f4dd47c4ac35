// Keeps one fixture tab's event stream attached for the whole fuzz run. Actions run only for a tab
// whose stream attached (otherwise 410), and a stream case for the same tab takes the stream over (the
// server ends the older one): the keeper then reattaches at once, so the tab stays live, attached or
// detached for a moment within its TTL. Whatever the stream carries is read and dropped.
import { type ClientRequest, request } from "node:http";

export class StreamKeeper {
  /** Streams that attached (the first one included). */
  attaches = 0;
  /** What went wrong (a refused stream, a via-reload): each is a finding of the run. */
  readonly problems: string[] = [];
  private req: ClientRequest | undefined;
  private stopped = false;

  constructor(
    private readonly port: number,
    readonly tab: string,
    private readonly path: string,
    private readonly version: string,
    private readonly cookie: string,
  ) {}

  /** Opens the stream: resolves once the server answered 200 (the tab is attached), or with a problem. */
  start(): Promise<void> {
    return this.open();
  }

  stop(): void {
    this.stopped = true;
    this.req?.destroy();
  }

  private fail(problem: string): void {
    if (this.stopped) return;
    this.problems.push(problem);
    // No retry loop on a refusal: the problem is reported and the tab's later actions will show it.
    this.stop();
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve) => {
      const q = new URLSearchParams({ tab: this.tab, path: this.path, v: this.version });
      const req = request(
        {
          host: "127.0.0.1",
          port: this.port,
          path: `/_via/sse?${q}`,
          headers: { Accept: "text/event-stream", Cookie: this.cookie },
          agent: false,
        },
        (res) => {
          const type = String(res.headers["content-type"] ?? "");
          if (res.statusCode !== 200 || !type.startsWith("text/event-stream")) {
            res.resume();
            this.fail(`the stream of fixture tab ${this.tab} → ${res.statusCode} ${type}`);
            resolve();
            return;
          }
          this.attaches++;
          resolve();
          let head = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            if (head.length >= 8192) return;
            head += chunk;
            if (/^event: via-reload$/m.test(head)) this.fail(`the stream of fixture tab ${this.tab} got a via-reload`);
          });
          // A stream cut (over its queue cap) is a reset: the tab was disposed and re-bootstraps on reopen.
          res.on("error", () => {});
          res.on("close", () => {
            if (!this.stopped) void this.open();
          });
        },
      );
      req.on("error", (err) => {
        this.fail(`the stream of fixture tab ${this.tab} failed: ${err.message}`);
        resolve();
      });
      req.end();
      this.req = req;
    });
  }
}
