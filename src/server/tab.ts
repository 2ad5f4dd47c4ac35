// The server side of one browser tab. A tab exists in two forms:
//
// - static: the page GET runs `init(c)` to render the HTML, then the tab is thrown away. Nothing of it
//   stays on the server; subscriptions, intervals and pushes are inert. The page carries a tab id the
//   server can verify later (tab-id.ts).
// - live: built when the tab's event stream attaches (init runs again, like LiveView's connected
//   mount). It owns the outgoing queue, the attached stream and the lifecycle: a TTL while detached,
//   dispose.
//
// A live tab queues only while its stream is attached and its socket is backed up; a detached tab
// drops what is pushed to it and resyncs when it attaches again (view by hash, lists by position).
//
// What `init` declares on a tab (signals, actions, lists, channels, callbacks) is in
// tab-declarations.ts; the one flush all tabs share is in tab-flush.ts; the page-facing API over a tab
// is its Context (context.ts).
import type { Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import { ActionError } from "./action.ts";
import { hashView, renderHtml, toastHtml, viewHtml } from "./html.ts";
import { HttpError } from "./http-error.ts";
import { TokenBucket } from "./rate-limit.ts";
import type { Session } from "./session.ts";
import type { Json, Signal } from "./signal.ts";
import { customEvent, patchElements, patchSignals } from "./sse/encoder.ts";
import { type Chunk, chunkBytes, type QueuedKind } from "./sse/queue.ts";
import type { EventSink } from "./sse/sink.ts";
import { type ClientStreamState, renderStreams } from "./stream-protocol.ts";
import { TabDeclarations } from "./tab-declarations.ts";
import { scheduleFlush } from "./tab-flush.ts";
import type { Html } from "./types.ts";

/** What every tab of an app shares: settings and the app's bookkeeping (one object for all tabs). */
export interface TabHost {
  readonly queueCapBytes: number;
  readonly ttlMs: number;
  readonly rateLimit: { ratePerSec: number; burst: number };
  readonly logger: Logger;
  readonly pubsub: PubSub | undefined;
  attached(tab: Tab): void;
  detached(tab: Tab): void;
  disposed(tab: Tab): void;
  /** The tab's stream was cut for going over its queue cap. */
  overflowed(tab: Tab): void;
}

/** A channel as its member tabs see it: told of their stream's attach and detach, and of their end. */
export interface Membership {
  attached(tab: Tab): void;
  detached(tab: Tab): void;
  parked(tab: Tab): void;
  memberGone(tab: Tab): void;
}

/** What the browser says it shows when its stream attaches (docs/PROTOCOL.md §4). */
export interface ClientReport {
  /** Hash of the view the page shows (`data-via-hash` of #via-view), if any. */
  viewHash: string | undefined;
  /** Per streamed list (by element id): the newest position, how many items, whether older exist. */
  streams: ReadonlyMap<string, ClientStreamState>;
}

export const NO_REPORT: ClientReport = { viewHash: undefined, streams: new Map() };

// Tabs are counted in thousands per process, so whatever most tabs never use (a logger with the
// tab's id, the rate limiter, the queue) is made on first use.
export class Tab extends TabDeclarations<Membership> {
  disposed = false;
  render: (() => Html) | undefined;
  /** What the browser reported when the stream attached; streams declared in init read their part. */
  report: ClientReport = NO_REPORT;
  private pendingSignals: Set<string> | undefined;
  /** The attached event stream and what waits to be written to it (nothing while detached). */
  private sink: EventSink | undefined;
  /** Hash of the view the browser has (as far as we know); a render with the same hash is not sent. */
  private viewHash: string | undefined;
  #log: Logger | undefined;
  #limiter: TokenBucket | undefined;
  private ttlTimer: NodeJS.Timeout | undefined;
  private actionChain: Promise<void> | undefined;
  /** The client address (limit key) of the request this tab last served: its page, stream or action. */
  clientAddress = "";

  constructor(
    readonly id: string,
    readonly session: Session,
    readonly live: boolean,
    private readonly host: TabHost,
  ) {
    super();
    // A live tab keeps its session from being swept while it lives.
    if (live) session.liveTabs++;
  }

  get log(): Logger {
    this.#log ??= this.host.logger.child({ tab: this.id.slice(0, 8) });
    return this.#log;
  }

  get limiter(): TokenBucket {
    this.#limiter ??= new TokenBucket(this.host.rateLimit);
    return this.#limiter;
  }

  pubsub(): PubSub {
    if (!this.host.pubsub) throw new Error("no pub/sub engine: pass createApp({ pubsub })");
    return this.host.pubsub;
  }

  get connected(): boolean {
    return this.sink !== undefined;
  }

  /** Most bytes its queue may hold (AppOptions.queueCapBytes). */
  get queueCapBytes(): number {
    return this.host.queueCapBytes;
  }

  /** Bytes the server holds for this tab: its queue plus what its socket still buffers. */
  get pendingBytes(): number {
    return this.sink?.pendingBytes ?? 0;
  }

  /** The socket refused the last write: events queue until it drains (a slow or stalled reader). */
  get backedUp(): boolean {
    return this.sink?.backedUp ?? false;
  }

  /**
   * The view as the page embeds it: streamed lists with their first items. Its hash (without the
   * lists' items) lets the stream skip re-sending an unchanged view when it attaches.
   */
  pageView(): string {
    const { html, hash } = this.renderView();
    this.viewHash = hash;
    return viewHtml(renderStreams(html, this.streams, "page"), hash);
  }

  /**
   * The view with each streamed list's marker in place of its items, and its hash: the markers are the
   * same in every render of the tab, so the hash says whether anything but the lists' items changed.
   */
  private renderView(): { html: string; hash: string } {
    const html = this.render ? renderHtmlView(this.render()) : "";
    return { html, hash: hashView(html) };
  }

  // ---- actions ----

  /**
   * Validate the browser's signal values now (so a bad value is a 400 for this request), then run the
   * action after every earlier action of this tab: one at a time, in arrival order.
   */
  runAction(actionId: string, browserSignals: Record<string, unknown>, cursor?: string): Promise<void> {
    const action = this.actionNamed(actionId);
    if (!action) throw new Error(`unknown action ${actionId}`);
    const accepted: Array<[Signal<Json>, Json]> = [];
    for (const [name, value] of Object.entries(browserSignals)) {
      const sig = this.signalNamed(name);
      if (sig) accepted.push([sig, sig.parseFromBrowser(value)]);
    }
    const run = async () => {
      if (this.disposed) return;
      for (const [sig, value] of accepted) sig.acceptFromBrowser(value);
      await this.guard(`action ${actionId}`, () => action.fn(cursor), true);
    };
    const done = this.actionChain ? this.actionChain.then(run) : run();
    // An action that answered with an HttpError must not stop the ones queued behind it.
    const settled = done.catch(() => {});
    this.actionChain = settled;
    // The chain is dropped once it is idle, so an idle tab holds no promise.
    void settled.finally(() => {
      if (this.actionChain === settled) this.actionChain = undefined;
    });
    return done;
  }

  /**
   * Run page code; an exception is logged and shown to the tab, and the tab keeps working. With
   * `answers`, an HttpError below 500 is the request's answer instead (an action refusing with a 429,
   * say): it is passed on for the response, and the runtime shows its message.
   */
  async guard(what: string, fn: () => void | Promise<void>, answers = false): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (answers && err instanceof HttpError && err.status < 500) throw err;
      this.log.error({ err, what }, "page code failed");
      const message = err instanceof ActionError ? err.message : "Something went wrong. Please try again.";
      if (!this.disposed) this.notify(message, "error");
    }
  }

  /** Show a short message to this tab (`c.notify`). */
  notify(message: string, level: "info" | "error"): void {
    if (!this.connected) return;
    this.push(patchElements(renderHtml(toastHtml(message, level)), { selector: "#via-toasts", mode: "append" }));
  }

  // ---- pushes ----

  /** Re-render the view and push it, unless the browser already shows exactly this view. */
  pushRender(): void {
    // Detached: nothing to send; attach compares the view with the hash the browser reports.
    if (!this.render || !this.live || this.disposed || !this.sink) return;
    const { html, hash } = this.renderView();
    if (hash === this.viewHash) return;
    this.viewHash = hash;
    this.push(patchElements(viewHtml(renderStreams(html, this.streams, "patch"), hash)), "render");
  }

  setSignals(values: Record<string, Json>): void {
    for (const [name, value] of Object.entries(values)) {
      const sig = this.signalNamed(name);
      if (sig) sig.set(value);
      // An undeclared signal: push it as is, nothing to mirror on the server.
      else this.push(patchSignals({ [name]: value }));
    }
  }

  /** @internal A signal was set on the server: push it with the next flush. */
  signalChanged(name: string): void {
    if (!this.live) return;
    this.pendingSignals ??= new Set();
    this.pendingSignals.add(name);
    scheduleFlush(this);
  }

  /**
   * Queue one encoded event (a string for this tab, or a frame shared with other tabs). Dropped while
   * the stream is detached: the tab resyncs when it attaches.
   */
  push(chunk: Chunk, kind: QueuedKind = "patch", size = chunkBytes(chunk)): void {
    if (this.disposed || !this.sink) return;
    if (!this.sink.push(chunk, kind, size)) {
      this.cut("tab queue over its cap: cutting the stream; the tab re-bootstraps when it reconnects");
      this.host.overflowed(this);
      return;
    }
    scheduleFlush(this);
  }

  private flushSignals(): void {
    if (!this.pendingSignals || this.pendingSignals.size === 0) return;
    const patch: Record<string, Json> = {};
    for (const name of this.pendingSignals) patch[name] = this.signalNamed(name)!.value;
    this.pendingSignals.clear();
    this.push(patchSignals(patch));
  }

  /** Write what waits (called from the shared setImmediate flush, and when a backed-up socket drains). */
  flush(): void {
    this.flushSignals();
    const sink = this.sink;
    sink?.flush(() => {
      if (this.sink === sink) this.flush();
    });
  }

  /**
   * Cut the stream (over the cap, or over the app's byte budget) and end the tab: its lifetime is not
   * extended; when it reconnects it re-bootstraps, its lists resuming from their positions.
   */
  cut(reason: string): void {
    const sink = this.sink;
    this.log.warn({ capBytes: this.host.queueCapBytes }, reason);
    this.sink = undefined;
    sink?.cut();
    if (sink) this.notifyConnection(false);
    this.dispose("cut");
  }

  // ---- the event stream ----

  /**
   * Attach an event stream. `fresh`: the context was just built for it (page load or re-bootstrap),
   * so the browser's signals win; otherwise the signals the server set meanwhile are re-sent.
   */
  attach(sink: EventSink, report: ClientReport, fresh: boolean): void {
    if (this.sink) this.detach(true);
    this.sink = sink;
    this.report = report;
    this.clearTtl();
    this.host.attached(this);
    this.viewHash = report.viewHash;
    this.pushRender();
    // A fresh context's signals fill in what a page from another render lacks (onlyIfMissing: the
    // browser's values win); a page whose view is exactly this render has them all.
    const pageIsCurrent = this.viewHash === report.viewHash;
    const signals: Record<string, Json> = {};
    for (const sig of this.signals) {
      if (fresh ? !pageIsCurrent : sig.serverSet) signals[sig.name] = sig.value;
    }
    if (Object.keys(signals).length > 0) this.push(patchSignals(signals, { onlyIfMissing: fresh }));
    for (const stream of this.streams ?? []) stream.attached(report.streams.get(stream.id));
    for (const channel of this.channels ?? []) channel.attached(this);
    // Read by the lists; a list declared later starts from nothing.
    this.report = NO_REPORT;
    sink.onClose(() => {
      if (this.sink === sink) this.detach(false);
    });
    scheduleFlush(this);
    this.notifyConnection(true);
  }

  /** Write a keepalive comment unless the socket is backed up (then the reader is not idle anyway). */
  keepalive(comment: Buffer): void {
    this.sink?.writeIdle(comment);
  }

  /** End the stream with a final event (server shutdown). */
  sayGoodbye(reason: string): void {
    const sink = this.sink;
    if (!sink) return;
    // Signals set but not yet pushed go out before the goodbye (the sink writes what waits first).
    this.flushSignals();
    sink.end(customEvent("via-bye", [["reason", reason]]));
    this.detach(false);
  }

  /** The stream is gone (`end`: we end it, e.g. another stream of the same tab took over). */
  private detach(end: boolean): void {
    const sink = this.sink;
    this.sink = undefined;
    if (end) sink?.end();
    else sink?.release();
    if (this.disposed) return;
    for (const stream of this.streams ?? []) stream.detached();
    for (const channel of this.channels ?? []) channel.detached(this);
    this.armTtl();
    this.host.detached(this);
    if (sink) this.notifyConnection(false);
  }

  /**
   * The browser hid the tab and released its stream (docs/PROTOCOL.md §6): it is open, so it stays
   * present in its channels, for `ttlMs` from now; the tab says so again before that runs out.
   */
  park(ttlMs: number): void {
    if (this.disposed) return;
    if (this.sink) this.detach(true);
    for (const channel of this.channels ?? []) channel.parked(this);
    this.armTtl(ttlMs);
  }

  // ---- lifecycle ----

  private armTtl(ttlMs = this.host.ttlMs): void {
    this.clearTtl();
    this.ttlTimer = setTimeout(() => this.dispose("ttl"), ttlMs);
    this.ttlTimer.unref();
  }

  private clearTtl(): void {
    if (this.ttlTimer) clearTimeout(this.ttlTimer);
    this.ttlTimer = undefined;
  }

  dispose(reason: string): void {
    if (this.disposed) return;
    this.disposed = true;
    this.clearTtl();
    const sink = this.sink;
    this.sink = undefined;
    sink?.end();
    if (sink) this.notifyConnection(false);
    for (const channel of this.channels ?? []) channel.memberGone(this);
    for (const stream of this.streams ?? []) stream.disposed();
    this.runDisposers();
    if (this.live) {
      this.session.liveTabs--;
      this.log.debug({ reason }, "tab disposed");
      this.host.disposed(this);
    }
  }
}

function renderHtmlView(node: Html): string {
  const out: unknown = node.toString();
  if (typeof out !== "string") throw new Error("views must render synchronously: async components are not supported");
  return out;
}
