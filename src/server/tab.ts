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
import type { Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import { Action, type ActionFn } from "./action.ts";
import { ActionError, Context } from "./context.ts";
import { hashView, viewHtml } from "./html.ts";
import { HttpError } from "./http-error.ts";
import { TokenBucket } from "./rate-limit.ts";
import type { Session } from "./session.ts";
import { type Json, Signal, type SignalOptions, type SignalOwner } from "./signal.ts";
import { customEvent, patchElements, patchSignals } from "./sse/encoder.ts";
import { type Chunk, chunkBytes, type QueuedKind } from "./sse/queue.ts";
import type { EventSink } from "./sse/sink.ts";
import { type ClientStreamState, renderStreams, type Stream } from "./stream.ts";
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

// One setImmediate flushes every tab with pending output: a broadcast to 1,000 tabs costs one
// scheduling, not 1,000. setImmediate, not a microtask: it runs once the event loop has handled every
// request and message that arrived together, so a tab gets what they all pushed in one socket write.
const tabsToFlush = new Set<Tab>();
let flushQueued = false;

function flushTabs(): void {
  flushQueued = false;
  // A flush may queue more (signals → an event); tabs added while iterating are flushed in this pass.
  for (const tab of tabsToFlush) {
    tabsToFlush.delete(tab);
    tab.flush();
  }
}

/**
 * `list` with `item` added, as a new array of exactly that length. Tabs hold several short lists made
 * once (signals, actions, listeners): pushing onto an empty array would reserve room for 17 items.
 */
function withItem<T>(list: readonly T[] | undefined, item: T): T[] {
  return list === undefined ? [item] : [...list, item];
}

// Tabs are counted in thousands per process, so whatever most tabs never use (a logger with the
// tab's id, the rate limiter, listener lists, the queue) is made on first use, and lists are exact.
export class Tab implements SignalOwner {
  readonly ctx: Context;
  render: (() => Html) | undefined;
  disposed = false;
  /** What the browser reported when the stream attached; streams declared in init read their part. */
  report: ClientReport = NO_REPORT;
  streams: Stream[] | undefined;
  channels: Membership[] | undefined;
  private disposers: Array<() => void> | undefined;
  private connectionListeners: Array<(connected: boolean) => void> | undefined;
  private signals: ReadonlyArray<Signal<Json>> = [];
  private actions: readonly Action[] = [];
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
    params: Record<string, string>,
    path: string,
    private readonly host: TabHost,
  ) {
    this.ctx = new Context(this, params, path);
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

  // ---- declarations (from init) ----

  addSignal<T extends Json>(initial: T, opts: SignalOptions<T>): Signal<T> {
    const name = opts.name ?? `s${this.signals.length + 1}`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`signal name ${JSON.stringify(name)} is invalid`);
    if (this.signalNamed(name)) throw new Error(`signal ${name} is declared twice`);
    const sig = new Signal<T>(name, initial, this, opts.parse);
    this.signals = withItem(this.signals, sig as unknown as Signal<Json>);
    return sig;
  }

  private signalNamed(name: string): Signal<Json> | undefined {
    for (const sig of this.signals) if (sig.name === name) return sig;
    return undefined;
  }

  addAction(fn: ActionFn, opts: { name?: string; page?: string } = {}): Action {
    const id = opts.name ?? `a${this.actions.length + 1}`;
    if (!ACTION_ID.test(id)) throw new Error(`action name ${JSON.stringify(id)} is invalid`);
    if (this.actionNamed(id)) throw new Error(`action ${id} is declared twice`);
    const action = new Action(id, fn, opts.page);
    this.actions = withItem(this.actions, action);
    return action;
  }

  private actionNamed(id: string): Action | undefined {
    for (const action of this.actions) if (action.id === id) return action;
    return undefined;
  }

  hasAction(id: string): boolean {
    return this.actionNamed(id) !== undefined;
  }

  addStream(stream: Stream): void {
    if (this.streams?.some((s) => s.id === stream.id)) throw new Error(`stream #${stream.id} is declared twice`);
    this.streams = withItem(this.streams, stream);
  }

  onDispose(fn: () => void): void {
    this.disposers = withItem(this.disposers, fn);
  }

  onConnectionChange(fn: (connected: boolean) => void): void {
    if (this.live) this.connectionListeners = withItem(this.connectionListeners, fn);
  }

  /** @internal A channel this tab joined (left on dispose). */
  addChannel(channel: Membership): void {
    this.channels = withItem(this.channels, channel);
  }

  /** @internal */
  removeChannel(channel: Membership): void {
    const rest = this.channels?.filter((c) => c !== channel);
    this.channels = rest && rest.length > 0 ? rest : undefined;
  }

  /** Signal values to embed in the page (the browser's initial store). */
  signalValues(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const sig of this.signals) out[sig.name] = sig.value;
    return out;
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
      if (!this.disposed) this.ctx.notify(message, "error");
    }
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
    this.scheduleFlush();
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
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    tabsToFlush.add(this);
    if (flushQueued) return;
    flushQueued = true;
    setImmediate(flushTabs);
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
    this.scheduleFlush();
    this.notifyConnection(true);
  }

  private notifyConnection(connected: boolean): void {
    for (const fn of this.connectionListeners ?? []) {
      try {
        fn(connected);
      } catch (err) {
        this.log.error({ err }, "connection listener failed");
      }
    }
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
    for (const fn of this.disposers?.splice(0) ?? []) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, "onDispose callback failed");
      }
    }
    if (this.live) {
      this.session.liveTabs--;
      this.log.debug({ reason }, "tab disposed");
      this.host.disposed(this);
    }
  }
}

/** Action ids: `a1`, `a2`, ... by default, or a name the page gives (stable across tabs and restarts). */
export const ACTION_ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function renderHtmlView(node: Html): string {
  const out: unknown = node.toString();
  if (typeof out !== "string") throw new Error("views must render synchronously: async components are not supported");
  return out;
}
