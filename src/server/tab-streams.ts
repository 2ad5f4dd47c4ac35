// The endpoints that carry a tab's events (docs/PROTOCOL.md §4 and §6): a tab's own event stream, the
// shared stream of a browser's tabs and a tab's attach to it, and a tab's goodbye and parking. Each
// checks the tab id against the request's session before it builds anything, and builds a tab's live
// context (its page's `init` again) when the tab has none.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { PageInit } from "./app-options.ts";
import type { ClientLimits } from "./client-limits.ts";
import { Context } from "./context.ts";
import { allowMethods, HttpError } from "./http-error.ts";
import { MuxRegistry, MuxStream } from "./mux.ts";
import type { RouteTable } from "./routes.ts";
import { checkActionOrigin, checkSameOrigin } from "./security.ts";
import type { Session, SessionStore } from "./session.ts";
import { customEvent } from "./sse/encoder.ts";
import { EVENT_STREAM_HEADERS, EventSink } from "./sse/sink.ts";
import { parseClientStreams } from "./stream-protocol.ts";
import { type ClientReport, Tab } from "./tab.ts";
import { isWellFormedTabId, type TabIds } from "./tab-id.ts";
import type { TabRegistry } from "./tabs.ts";

export const SSE_PATH = "/_via/sse";
export const MUX_PATH = "/_via/mux";
const ENDPOINTS: Record<string, "stream" | "mux" | "attach" | "bye" | "park" | undefined> = {
  [SSE_PATH]: "stream",
  [MUX_PATH]: "mux",
  "/_via/attach": "attach",
  "/_via/bye": "bye",
  "/_via/park": "park",
};
/** A parked tab (hidden, stream released) stays this long after it last said it is open. */
const PARKED_TTL_MS = 180_000;
const LANE_REFUSALS = {
  "bad slot": "malformed slot",
  "slot taken": "the slot is taken on this shared stream",
  full: "too many tabs on one shared stream",
  closed: "the shared stream closed",
} as const;

/** How a tab's events reach it: its own response, or a lane of a shared stream. */
interface StreamCarrier {
  /** Answer a probe (the checks passed) instead of attaching. */
  probe?: () => void;
  /** Count the stream against its client address's limit (throws 429 over it). */
  holdStream(): void;
  /** The sink, once every check passed; undefined if the client is gone. */
  open(): EventSink | undefined;
  /** Tell the page to reload instead (its runtime is outdated, or its route is gone). */
  reload(reason: string): void;
}

export type PageEntry = { pattern: string; init: PageInit };

/** What the endpoints use of their app. */
export interface TabStreamsHost {
  /** False once the app is shutting down: nothing new starts. */
  readonly ready: boolean;
  readonly opts: { readonly trustProxy: boolean };
  readonly tabs: TabRegistry;
  readonly pages: RouteTable<PageEntry>;
  /** Per-address limits; undefined when turned off. */
  readonly limits: ClientLimits | undefined;
  readonly keys: Promise<{ tabIds: TabIds; sessions: SessionStore }>;
  /** The runtime's version: a page with another reloads. */
  readonly runtime: Promise<{ version: string }>;
  clientOf(req: IncomingMessage): string;
}

export class TabStreams {
  readonly muxes = new MuxRegistry();
  /** Tabs whose context is being built for a stream right now (a second stream for one waits for it). */
  private readonly starting = new Map<string, Promise<Tab | undefined>>();

  constructor(private readonly host: TabStreamsHost) {}

  /** Serves `path` if it is one of these endpoints (else false). */
  serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | false {
    const endpoint = ENDPOINTS[url.pathname];
    if (!endpoint) return false;
    allowMethods(req.method ?? "GET", [endpoint === "stream" || endpoint === "mux" ? "GET" : "POST"]);
    switch (endpoint) {
      case "stream":
        return this.serveStream(req, res, url);
      case "mux":
        return this.serveMux(req, res);
      case "attach":
        return this.serveAttach(req, res, url);
      case "bye":
        return this.serveBye(req, res, url);
      case "park":
        return this.servePark(req, res, url);
    }
  }

  /**
   * A tab's own event stream. A tab id names a live context, or (first attach, after the TTL, after a
   * restart) is verified and gets a new live context built from the tab's route: `init` runs again in
   * the same session. An id the server did not issue to this session gets a 4xx and allocates nothing.
   */
  private async serveStream(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    checkSameOrigin(req, this.host.opts.trustProxy, "event stream");
    const client = this.host.clientOf(req);
    await this.attachTab(req, url, {
      // The runtime asks this (same URL plus probe=1) after a stream failed to open, to learn whether
      // it was refused: the same checks, no stream, nothing built.
      probe: url.searchParams.get("probe") === "1" ? () => this.answer(res, 204) : undefined,
      holdStream: () => {
        const release = this.host.limits?.openStream(client);
        if (release) res.once("close", release);
      },
      open: () => EventSink.open(res, this.host.tabs),
      reload: (reason) => {
        res.writeHead(200, EVENT_STREAM_HEADERS);
        res.end(customEvent("via-reload", [["reason", reason]]));
      },
    });
  }

  /**
   * A shared event stream, for the browser's shared worker (src/server/mux.ts): it carries the events
   * of the tabs that attach to it. It counts as one stream of its client address.
   */
  private async serveMux(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.host.ready) throw new HttpError(503, "server is shutting down");
    checkSameOrigin(req, this.host.opts.trustProxy, "event stream");
    const { sessions } = await this.host.keys;
    const session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued: load the page first");
    const release = this.host.limits?.openStream(this.host.clientOf(req));
    if (release) res.once("close", release);
    MuxStream.open(res, session.id, this.muxes);
  }

  /** Attaches a tab to a shared stream of its session, in the slot its worker gave it; answers 204. */
  private async serveAttach(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    checkActionOrigin(req, this.host.opts.trustProxy);
    const mux = this.muxes.get(url.searchParams.get("mux") ?? "");
    if (!mux) throw new HttpError(404, "no such shared stream: it closed; the worker opens another");
    const { sessions } = await this.host.keys;
    if (sessions.fromRequest(req)?.id !== mux.sessionId) {
      throw new HttpError(409, "the shared stream belongs to another session: use a stream of the tab's own");
    }
    const client = this.host.clientOf(req);
    const slot = url.searchParams.get("slot") ?? "";
    let release: (() => void) | undefined;
    let laneOpened = false;
    const lane = () => {
      const sink = mux.lane(slot, this.host.tabs);
      if (typeof sink === "string") {
        throw new HttpError(sink === "closed" ? 404 : sink === "full" ? 429 : 409, LANE_REFUSALS[sink]);
      }
      laneOpened = true;
      if (release) sink.onClose(release);
      return sink;
    };
    try {
      await this.attachTab(req, url, {
        holdStream: () => {
          release = this.host.limits?.openStream(client);
        },
        open: lane,
        reload: (reason) => lane().end(customEvent("via-reload", [["reason", reason]])),
      });
    } catch (err) {
      // A lane gives its stream back when it closes; without one, give it back now.
      if (!laneOpened) release?.();
      throw err;
    }
    this.answer(res, 204);
  }

  /**
   * The checks of a tab's stream and its attach, whatever carries it: `open` makes the sink once every
   * check passed (and the context, if the tab had none, was built).
   */
  private async attachTab(req: IncomingMessage, url: URL, carrier: StreamCarrier): Promise<void> {
    if (!this.host.ready) throw new HttpError(503, "server is shutting down");
    const tabId = url.searchParams.get("tab");
    if (!isWellFormedTabId(tabId)) throw new HttpError(400, "missing or malformed tab id");
    const [runtime, { tabIds, sessions }] = await Promise.all([this.host.runtime, this.host.keys]);
    let session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued: load the page first");
    let tab = this.host.tabs.get(tabId);
    if (tab && tab.session.id !== session.id) throw new HttpError(403, "this tab belongs to another session");
    if (!tab) {
      const verdict = tabIds.verify(tabId, session.id, { fresh: true });
      if (!verdict.ok) throw new HttpError(verdict.status, verdict.reason);
    }
    if (carrier.probe) return carrier.probe();
    const clientVersion = url.searchParams.get("v");
    if (clientVersion && clientVersion !== runtime.version) return carrier.reload("the client runtime was updated");
    const report: ClientReport = {
      viewHash: url.searchParams.get("h") ?? undefined,
      streams: parseClientStreams(url.searchParams.get("streams")),
    };
    carrier.holdStream();
    let fresh = false;
    if (!tab) {
      // Every check passed: from here on the session is worth keeping (its live tab holds it).
      session = sessions.remember(await sessions.load(session));
      const built = await this.startTab(tabId, session, url.searchParams.get("path") ?? "", report);
      if (built === "reload") return carrier.reload("no page for this tab");
      if (!built) throw new HttpError(503, "the tab could not start; retry");
      tab = built;
      fresh = true;
    }
    const sink = carrier.open();
    if (!sink || tab.disposed) {
      if (fresh && !tab.disposed) tab.dispose("stream closed while the tab started");
      return;
    }
    tab.clientAddress = this.host.clientOf(req);
    tab.attach(sink, report, fresh);
  }

  /**
   * A tab that is going away (its page's `pagehide`, or its shared worker saw it close): it leaves at
   * once instead of after the TTL. Sent as a beacon, so it carries no Via-Request header; the session
   * cookie (SameSite) and the origin checks keep other sites out.
   */
  private async serveBye(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const tab = await this.ownTab(req, url, "goodbye");
    tab?.dispose("closed");
    this.answer(res, 204);
  }

  /** A hidden tab released its stream (docs/PROTOCOL.md §6): it stays, present, while it says so. */
  private async servePark(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    checkActionOrigin(req, this.host.opts.trustProxy);
    // Counted as an action of the address: a parked tab asks once a minute.
    this.host.limits?.action(this.host.clientOf(req));
    const tab = await this.ownTab(req, url, "park");
    if (!tab) throw new HttpError(410, "unknown tab: it re-bootstraps when it is shown");
    tab.park(PARKED_TTL_MS);
    this.answer(res, 204);
  }

  /** The live tab named by `?tab=` if the request's session owns it. */
  private async ownTab(req: IncomingMessage, url: URL, what: string): Promise<Tab | undefined> {
    checkSameOrigin(req, this.host.opts.trustProxy, what);
    const tabId = url.searchParams.get("tab");
    if (!isWellFormedTabId(tabId)) throw new HttpError(400, "missing or malformed tab id");
    const { sessions } = await this.host.keys;
    const session = sessions.fromRequest(req);
    if (!session) throw new HttpError(403, "no session cookie this server issued");
    const tab = this.host.tabs.get(tabId);
    if (tab && tab.session.id !== session.id) throw new HttpError(403, "this tab belongs to another session");
    return tab;
  }

  private answer(res: ServerResponse, status: number): void {
    res.writeHead(status, { "Cache-Control": "no-store" });
    res.end();
  }

  /**
   * Builds the live context of a tab from its route. One at a time per tab id: a second stream request
   * for the same tab while the first builds waits for it instead of building another context.
   */
  private async startTab(
    tabId: string,
    session: Session,
    path: string,
    report: ClientReport,
  ): Promise<Tab | "reload" | undefined> {
    const pending = this.starting.get(tabId);
    if (pending) {
      const tab = await pending;
      return tab && !tab.disposed ? tab : undefined;
    }
    // Only a path of this origin: "//host/x" or "/\\host" would parse as another host's URL.
    if (!/^\/(?![/\\])/.test(path)) return "reload";
    let target: URL;
    try {
      target = new URL(path, "http://localhost");
    } catch {
      return "reload";
    }
    // A malformed percent-encoding is a client bug: match() answers it with a 400.
    const match = this.host.pages.match(target.pathname);
    if (!match) return "reload";
    const tab = new Tab(tabId, session, true, this.host.tabs);
    const context = new Context(tab, match.params, target.pathname + target.search);
    tab.report = report;
    this.host.tabs.add(tab);
    const built = (async () => {
      try {
        await match.value.init(context);
        return tab;
      } catch (err) {
        tab.dispose("init failed");
        throw err;
      }
    })();
    this.starting.set(
      tabId,
      built.catch(() => undefined),
    );
    try {
      return await built;
    } catch (err) {
      // The page refused the route (e.g. a room that no longer exists): a reload shows its answer.
      if (err instanceof HttpError && err.status < 500) return "reload";
      throw err;
    } finally {
      this.starting.delete(tabId);
    }
  }
}
