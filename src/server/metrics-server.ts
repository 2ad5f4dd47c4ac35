// The metrics' own HTTP server (`metrics: { port }`): a plain node:http server on a port apart from
// the app's, which answers the metrics path and nothing else. Kept apart from the app's server so a
// scraper reaches it on an internal interface while the app's port faces the world.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.ts";
import { listenOn } from "./listen.ts";

export class MetricsServer {
  private server: Server | undefined;
  /** Resolves once the server listens; rejects if it cannot. */
  listening: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly portOption: number,
    private readonly host: string,
    /** Answers a scrape (GET or HEAD; the method is checked here). */
    private readonly serve: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** The port it listens on, once `listening` resolved. */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  /** Starts listening (once); `listening` says when it is up. */
  start(): void {
    if (!this.server) this.listening = this.listen(this.portOption, this.host);
  }

  private async listen(port: number, host: string): Promise<void> {
    const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path !== this.path) return plain(res, 404, "not found");
      if (req.method !== "GET" && req.method !== "HEAD") return plain(res, 405, "method not allowed", "GET, HEAD");
      this.serve(req, res).catch((err: unknown) => {
        this.logger.error({ err }, "metrics scrape failed");
        if (res.headersSent) res.destroy();
        else plain(res, 500, "internal error");
      });
    });
    this.server = server;
    await listenOn(server, port, host);
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${this.port}${this.path}`;
    this.logger.info({ url }, `metrics on ${url}`);
  }

  /** Closes the server and its connections, if it was started. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await this.listening.catch(() => {});
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

function plain(res: ServerResponse, status: number, body: string, allow?: string): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-store",
    ...(allow ? { Allow: allow } : {}),
  });
  res.end(`${body}\n`);
}
