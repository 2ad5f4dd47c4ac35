// A tab's two plain requests: its page load, rendered by a context that is thrown away with the
// response, and its actions, run in its live context one at a time.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody, requireJsonContentType } from "./body.ts";
import { Context } from "./context.ts";
import { documentHtml } from "./html.ts";
import { HttpError } from "./http-error.ts";
import { tooManyRequests } from "./rate-limit.ts";
import { checkActionOrigin, isHttps } from "./security.ts";
import type { Session, SessionStore } from "./session.ts";
import { decodeActionRequest } from "./signals-codec.ts";
import { Tab } from "./tab.ts";
import { ACTION_ID } from "./tab-declarations.ts";
import { isWellFormedTabId } from "./tab-id.ts";
import type { TabStreamsHost } from "./tab-streams.ts";

/** What pages and actions use of their app, beyond what the streams use. */
export interface TabRequestsHost extends TabStreamsHost {
  readonly opts: TabStreamsHost["opts"] & {
    readonly title: string;
    readonly lang: string;
    readonly maxBodyBytes: number;
    readonly parkHiddenTabsAfterMs: number | false;
  };
  readonly serverLimits: { readonly requestTimeoutMs: number };
  readonly runtime: Promise<{ url: string; workerUrl: string; version: string }>;
  readonly stylesheets: readonly string[];
}

export class TabRequests {
  constructor(private readonly host: TabRequestsHost) {}

  /**
   * The browser's session: the one its cookie proves, or a fresh one (and its cookie) when the request
   * has no cookie this server signed. Fresh sessions count against the address's limit.
   */
  private sessionFor(req: IncomingMessage, res: ServerResponse, sessions: SessionStore, client: string): Session {
    const existing = sessions.fromRequest(req);
    if (existing) return existing;
    this.host.limits?.newSession(client);
    const session = sessions.create();
    res.setHeader("Set-Cookie", sessions.cookie(session, isHttps(req, this.host.opts.trustProxy)));
    return session;
  }

  /**
   * A page: `init` renders it in a static context that is thrown away with the response, so a page
   * load that never opens its stream costs the server nothing after it was sent.
   */
  async servePage(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.host.ready) throw new HttpError(503, "server is shutting down");
    const client = this.host.clientOf(req);
    this.host.limits?.pageLoad(client);
    const match = this.host.pages.match(url.pathname);
    if (!match) throw new HttpError(404, "page not found");
    const [runtime, { tabIds, sessions }] = await Promise.all([this.host.runtime, this.host.keys]);
    // A signed cookie of a session this process does not hold: its data is read before init runs.
    const session = await sessions.load(this.sessionFor(req, res, sessions, client));
    const tab = new Tab(tabIds.issue(session.id), session, false, this.host.tabs);
    const context = new Context(tab, match.params, url.pathname + url.search);
    tab.clientAddress = client;
    let html: string | undefined;
    try {
      // init runs for a HEAD too, so HEAD answers as GET would (init may refuse the route with a 4xx).
      await match.value.init(context);
      if (req.method !== "HEAD") {
        html = documentHtml({
          title: this.host.opts.title,
          lang: this.host.opts.lang,
          boot: {
            tab: tab.id,
            signals: tab.signalValues(),
            v: runtime.version,
            w: runtime.workerUrl,
            p: this.host.opts.parkHiddenTabsAfterMs || 0,
          },
          runtimeUrl: runtime.url,
          stylesheets: this.host.stylesheets,
          view: tab.pageView(),
        });
      }
    } finally {
      tab.dispose("page rendered");
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html);
  }

  async serveAction(req: IncomingMessage, res: ServerResponse, actionId: string): Promise<void> {
    checkActionOrigin(req, this.host.opts.trustProxy);
    const tabId = req.headers["via-tab"];
    if (!isWellFormedTabId(tabId)) throw new HttpError(400, "missing or malformed Via-Tab header");
    const { tabIds, sessions } = await this.host.keys;
    const session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued");
    const tab = this.host.tabs.get(tabId);
    if (!tab) {
      const verdict = tabIds.verify(tabId, session.id, { fresh: false });
      if (!verdict.ok) throw new HttpError(verdict.status, verdict.reason);
      throw new HttpError(410, "unknown tab: it expired or the server restarted; reconnecting");
    }
    if (tab.session.id !== session.id) throw new HttpError(403, "this tab belongs to another session");
    requireJsonContentType(req);
    const client = this.host.clientOf(req);
    this.host.limits?.action(client);
    for (const limiter of [tab.limiter, tab.session.limiter]) {
      const verdict = limiter.take();
      if (!verdict.ok)
        throw tooManyRequests("too many actions: slow down (try again in {seconds} s)", verdict.retryAfterMs);
    }
    const body = await readBody(req, {
      maxBytes: this.host.opts.maxBodyBytes,
      timeoutMs: this.host.serverLimits.requestTimeoutMs,
    });
    const { signals, cursor } = decodeActionRequest(body);
    if (!ACTION_ID.test(actionId) || !tab.hasAction(actionId)) throw new HttpError(404, "unknown action");
    tab.clientAddress = client;
    await tab.runAction(actionId, signals, cursor);
    res.writeHead(204, { "Cache-Control": "no-store" });
    res.end();
  }
}
