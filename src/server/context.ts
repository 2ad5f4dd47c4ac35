// The per-tab context (the Via model): `init(c)` runs once per page load and closes over that tab's
// state. The Context is what page code sees; the Tab behind it owns the event queue, the attached
// event stream and the lifecycle (TTL while disconnected, dispose).
import type { ServerResponse } from "node:http";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { Logger } from "../log.ts";
import type { Delivery, PublishAck, PublishOptions, PubSub, SubscribeOptions, Unsubscribe } from "../pubsub/types.ts";
import { Action, type ActionFn } from "./action.ts";
import { renderHtml, toastHtml, VIEW_ID, viewHtml } from "./html.ts";
import { TokenBucket } from "./rate-limit.ts";
import type { Session } from "./session.ts";
import { type Json, Signal, type SignalOptions } from "./signal.ts";
import { customEvent, type PatchMode, patchElements, patchSignals, withEventId } from "./sse/encoder.ts";
import { TabQueue } from "./sse/queue.ts";

export type Html = JSX.Element;

const textDecoder = new TextDecoder("utf-8", { fatal: true });

// Every subscriber of a message gets the same payload bytes: parse and decode them once for all of
// them (1,000 tabs in a room parsed each message 1,000 times before), and share the value. That is
// why subscribeJson's value must be treated as read-only.
const decodedPayloads = new WeakMap<Uint8Array, { decode: (value: unknown) => unknown; value: unknown }>();
function decodeShared<T>(data: Uint8Array, decode: (value: unknown) => T): T {
  const hit = decodedPayloads.get(data);
  if (hit && hit.decode === decode) return hit.value as T;
  const value = decode(JSON.parse(textDecoder.decode(data)));
  decodedPayloads.set(data, { decode, value });
  return value;
}

// A broadcast (one room message to 1,000 tabs) is the same patch pushed by every tab's context in a
// row: keep the last encoding and reuse it, so the event is encoded once and only the id differs.
let lastPatch: { elements: string | undefined; selector: string; mode: PatchMode; event: string } | undefined;
function encodedPatch(elements: string | undefined, selector: string, mode: PatchMode): string {
  const last = lastPatch;
  if (last && last.elements === elements && last.selector === selector && last.mode === mode) return last.event;
  const event = patchElements(elements, { selector, mode });
  lastPatch = { elements, selector, mode, event };
  return event;
}

/** `c.signal(0)` is a number signal, not a signal of the literal 0. */
export type Widen<T> = T extends string ? string : T extends number ? number : T extends boolean ? boolean : T;

export interface TabOptions {
  queueCapBytes: number;
  ttlMs: number;
  rateLimit: { ratePerSec: number; burst: number };
  logger: Logger;
  pubsub: PubSub | undefined;
  onDispose: (tab: Tab) => void;
  /** Called when the tab's stream is cut for going over `queueCapBytes` (counted by `app.stats()`). */
  onOverflow?: (tab: Tab) => void;
}

/** How a stream attaches: the first connect after the page load, a reconnect, or a fresh context after a restart. */
export type AttachMode = "first" | "resync" | "rebootstrap";

/** Thrown from an action to show its message to the user (other errors show a generic message). */
export class ActionError extends Error {
  override name = "ActionError";
}

/**
 * What a page's `init(c)` receives. Everything here is per tab: signals, actions, the view, pushes.
 */
export class Context {
  /** Route parameters, e.g. { name: "Rust" } for "/room/:name" at "/room/Rust". */
  readonly params: Readonly<Record<string, string>>;
  /** The page URL's path and query, as the browser asked for it. */
  readonly path: string;

  /** @internal */
  constructor(
    private readonly tab: Tab,
    params: Record<string, string>,
    path: string,
  ) {
    this.params = params;
    this.path = path;
  }

  /** This tab's id (unguessable; also the key its stream and actions use). */
  get tabId(): string {
    return this.tab.id;
  }

  /** The browser session this tab belongs to (shared by the session's tabs). */
  get session(): Session {
    return this.tab.session;
  }

  get disposed(): boolean {
    return this.tab.disposed;
  }

  get log(): Logger {
    return this.tab.log;
  }

  /** A client-held value, sent back with every action. Names default to s1, s2, ... in declaration order. */
  signal<T extends Json>(initial: T, opts: SignalOptions<Widen<T>> = {}): Signal<Widen<T>> {
    return this.tab.addSignal(initial as Widen<T>, opts);
  }

  /** A server function the browser triggers with `{...act.onClick()}` and friends. */
  action(fn: ActionFn): Action {
    return this.tab.addAction(fn);
  }

  /** What the tab shows. Rendered at page load and by every `sync()`. */
  view(render: () => Html): void {
    this.tab.render = render;
  }

  /** Re-render the whole view and morph it into the page. Renders queued for a slow tab coalesce. */
  sync(): void {
    this.tab.pushRender();
  }

  /** Push an incremental change: `mode` says how `html` lands relative to the element `selector` picks. */
  patch(selector: string, html: Html | null, mode: PatchMode = "outer"): void {
    const elements = mode === "remove" || html === null ? undefined : renderHtml(html);
    const event = encodedPatch(elements, selector, mode);
    this.tab.pushEvent((id) => withEventId(event, id));
  }

  /** Remove every element matching `selector`. */
  remove(selector: string): void {
    this.patch(selector, null, "remove");
  }

  /** Set signals by name (declared or not) and push them. */
  setSignals(values: Record<string, Json>): void {
    this.tab.setSignals(values);
  }

  /** Show a short message to this tab. */
  notify(message: string, level: "info" | "error" = "info"): void {
    this.patch("#via-toasts", toastHtml(message, level), "append");
  }

  /**
   * Run `fn(true)` when the tab's event stream opens and `fn(false)` when it drops. A dropped tab may
   * come back within the context TTL, so use this (not onDispose) for "who is online right now".
   */
  onConnectionChange(fn: (connected: boolean) => void): void {
    this.tab.connectionListeners.push(fn);
  }

  /** Whether the tab's event stream is open right now. */
  get connected(): boolean {
    return this.tab.connected;
  }

  /** Run `fn` when the tab goes away (closed, expired, or the server shuts down). */
  onDispose(fn: () => void): void {
    this.tab.disposers.push(fn);
  }

  // ---- pub/sub (needs createApp({ pubsub })) ----

  /** Publish through the app's pub/sub engine. Resolves with the stream ack once durable (null for core subjects). */
  publish(subject: string, data: Uint8Array | string, opts?: PublishOptions): Promise<PublishAck | null> {
    return this.tab.pubsub().publish(subject, data, opts);
  }

  /** Publish a value as JSON. */
  publishJson(subject: string, value: unknown, opts?: PublishOptions): Promise<PublishAck | null> {
    return this.publish(subject, JSON.stringify(value), opts);
  }

  /**
   * Subscribe for as long as this tab lives (ended automatically on dispose). A handler that throws is
   * logged; delivery to this tab and to others continues.
   */
  subscribe(pattern: string, handler: (msg: Delivery) => void, opts?: SubscribeOptions): Unsubscribe {
    const tab = this.tab;
    const unsubscribe = tab.pubsub().subscribe(
      pattern,
      (msg) => {
        if (tab.disposed) return;
        try {
          handler(msg);
        } catch (err) {
          tab.log.error({ err, subject: msg.subject, seq: msg.seq }, "subscription handler failed");
        }
      },
      opts,
    );
    tab.disposers.push(unsubscribe);
    return unsubscribe;
  }

  /**
   * Subscribe to JSON messages. `decode` validates the parsed value (throw to reject); a message that is
   * not JSON or fails `decode` is logged and skipped, never delivered and never fatal to the tab.
   * A message is parsed and decoded once for all the tabs that get it (per `decode` function), and
   * they all get the same value: treat it as read-only.
   */
  subscribeJson<T>(
    pattern: string,
    handler: (value: T, msg: Delivery) => void,
    opts: SubscribeOptions & { decode?: (value: unknown) => T } = {},
  ): Unsubscribe {
    const decode = opts.decode ?? ((v: unknown) => v as T);
    return this.subscribe(
      pattern,
      (msg) => {
        let value: T;
        try {
          value = decodeShared(msg.data, decode);
        } catch (err) {
          this.tab.log.warn(
            { subject: msg.subject, seq: msg.seq, reason: (err as Error).message },
            "skipped undecodable message",
          );
          return;
        }
        handler(value, msg);
      },
      opts,
    );
  }

  /** Run `fn` every `ms` while the tab lives. Returns a function that stops it. */
  interval(ms: number, fn: () => void | Promise<void>): () => void {
    const timer = setInterval(() => {
      this.tab.guard("interval", fn);
    }, ms);
    const stop = () => clearInterval(timer);
    this.tab.disposers.push(stop);
    return stop;
  }
}

/**
 * Ends a stream whose reader fell a whole queue cap behind. A TCP reset, not a close: what the kernel
 * still buffers for it (up to a few MiB on loopback) is stale, since the tab resyncs on reconnect, so it
 * is dropped at once instead of being held until the reader drains it; and a reader that stalled learns
 * of the cut as soon as it reads again (after a close it first reads that stale backlog, which the
 * sender's zero-window probing can stretch to seconds). Sockets that cannot reset (TLS) are destroyed.
 */
function cutStream(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && typeof socket.resetAndDestroy === "function") {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // not a TCP handle (TLS, a wrapped socket): destroy below
    }
  }
  res.destroy();
}

// One setImmediate flushes every tab with pending output: a broadcast to 1,000 tabs costs one
// scheduling, not 1,000. setImmediate, not a microtask: it runs once the event loop has handled every
// request and message that arrived together, so a tab gets what they all pushed in one socket write
// (under load, several messages per write: bench:chat measured 1.00 deliveries per write before, when
// each action's publish flushed on its own), for well under a millisecond of added latency.
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

// Tabs are counted in thousands per process, so the rarely used parts (a logger with the tab's id,
// the rate limiter, the pending-signal set) are made on first use rather than up front.
export class Tab {
  readonly ctx: Context;
  readonly disposers: Array<() => void> = [];
  readonly connectionListeners: Array<(connected: boolean) => void> = [];
  render: (() => Html) | undefined;
  disposed = false;
  /** The page's view was delivered at least once (by the page HTML or a resync). */
  private everConnected = false;
  /** Events were dropped while disconnected or over the cap: the next attach must resync. */
  private needsResync = false;
  private readonly signals = new Map<string, Signal<Json>>();
  private readonly actions = new Map<string, Action>();
  private readonly queue: TabQueue;
  private pendingSignals: Set<string> | undefined;
  private res: ServerResponse | undefined;
  private waitingForDrain = false;
  #log: Logger | undefined;
  #limiter: TokenBucket | undefined;
  private eventId = 0;
  private ttlTimer: NodeJS.Timeout | undefined;
  private actionChain: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly session: Session,
    readonly pattern: string,
    params: Record<string, string>,
    path: string,
    private readonly opts: TabOptions,
  ) {
    this.ctx = new Context(this, params, path);
    this.queue = new TabQueue({ capBytes: opts.queueCapBytes });
    session.tabs.add(id);
    this.armTtl();
  }

  get log(): Logger {
    this.#log ??= this.opts.logger.child({ tab: this.id.slice(0, 8) });
    return this.#log;
  }

  get limiter(): TokenBucket {
    this.#limiter ??= new TokenBucket(this.opts.rateLimit);
    return this.#limiter;
  }

  pubsub(): PubSub {
    if (!this.opts.pubsub) throw new Error("no pub/sub engine: pass createApp({ pubsub })");
    return this.opts.pubsub;
  }

  get connected(): boolean {
    return this.res !== undefined;
  }

  /**
   * Bytes the server holds for this tab right now: its queue plus what its response still buffers
   * (`writableLength`: written but not yet taken by the kernel). Bounded by `queueCapBytes`.
   */
  get pendingBytes(): number {
    return this.queue.bytes + (this.res?.writableLength ?? 0);
  }

  /** The socket refused the last write: events queue until it drains (a slow or stalled reader). */
  get backedUp(): boolean {
    return this.waitingForDrain;
  }

  // ---- declarations (from init) ----

  addSignal<T extends Json>(initial: T, opts: SignalOptions<T>): Signal<T> {
    const name = opts.name ?? `s${this.signals.size + 1}`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`signal name ${JSON.stringify(name)} is invalid`);
    if (this.signals.has(name)) throw new Error(`signal ${name} is declared twice`);
    const sig = new Signal<T>(name, initial, () => this.signalChanged(name), opts.parse);
    this.signals.set(name, sig as unknown as Signal<Json>);
    return sig;
  }

  addAction(fn: ActionFn): Action {
    const action = new Action(`a${this.actions.size + 1}`, fn);
    this.actions.set(action.id, action);
    return action;
  }

  hasAction(id: string): boolean {
    return this.actions.has(id);
  }

  /** Signal values to embed in the page (the browser's initial store). */
  signalValues(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const [name, sig] of this.signals) out[name] = sig.value;
    return out;
  }

  renderView(): string {
    return viewHtml(this.render ? renderHtml(this.render()) : "");
  }

  // ---- actions ----

  /**
   * Validate the browser's signal values now (so a bad value is a 400 for this request), then run the
   * action after every earlier action of this tab: one at a time, in arrival order.
   */
  runAction(actionId: string, browserSignals: Record<string, unknown>): Promise<void> {
    const action = this.actions.get(actionId);
    if (!action) throw new Error(`unknown action ${actionId}`);
    const accepted: Array<[Signal<Json>, Json]> = [];
    for (const [name, value] of Object.entries(browserSignals)) {
      const sig = this.signals.get(name);
      if (sig) accepted.push([sig, sig.parseFromBrowser(value)]);
    }
    const run = async () => {
      if (this.disposed) return;
      for (const [sig, value] of accepted) sig.acceptFromBrowser(value);
      await this.guard(`action ${actionId}`, action.fn);
    };
    const done = this.actionChain.then(run);
    this.actionChain = done;
    return done;
  }

  /** Run page code; an exception is logged and shown to the tab, and the tab keeps working. */
  async guard(what: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error({ err, what }, "page code failed");
      const message = err instanceof ActionError ? err.message : "Something went wrong. Please try again.";
      if (!this.disposed) this.ctx.notify(message, "error");
    }
  }

  // ---- pushes ----

  pushRender(): void {
    if (!this.render) return;
    this.pushEvent((id) => patchElements(this.renderView(), { eventId: id }), "render");
  }

  setSignals(values: Record<string, Json>): void {
    for (const [name, value] of Object.entries(values)) {
      const sig = this.signals.get(name);
      if (sig) sig.set(value);
      else {
        // An undeclared signal: push it as is, nothing to mirror on the server.
        this.pushEvent((id) => patchSignals({ [name]: value }, { eventId: id }));
      }
    }
  }

  private signalChanged(name: string): void {
    this.pendingSignals ??= new Set();
    this.pendingSignals.add(name);
    this.scheduleFlush();
  }

  /** Encode an event with the next id and queue it. Dropped (and a resync noted) while disconnected. */
  pushEvent(encode: (id: string) => string, kind: "render" | "patch" = "patch"): void {
    if (this.disposed) return;
    if (!this.res && this.everConnected) {
      // The tab will get a full resync when it reconnects; queueing for an absent reader only costs memory.
      this.needsResync = true;
      return;
    }
    const text = encode(String(++this.eventId));
    // What the response still buffers counts too: a stalled reader holds at most the cap in all.
    if (!this.queue.push(text, kind, this.res?.writableLength ?? 0)) {
      this.log.warn(
        { capBytes: this.opts.queueCapBytes },
        "tab queue over its cap: closing the stream, the tab will resync",
      );
      const res = this.res;
      this.detach(false);
      this.needsResync = true;
      this.queue.clear();
      if (res) cutStream(res);
      this.opts.onOverflow?.(this);
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
    for (const name of this.pendingSignals) patch[name] = this.signals.get(name)!.value;
    this.pendingSignals.clear();
    this.pushEvent((id) => patchSignals(patch, { eventId: id }));
  }

  /** Write what is queued (called from the shared microtask). */
  flush(): void {
    this.flushSignals();
    if (!this.res || this.waitingForDrain) return;
    const text = this.queue.takeAll();
    if (text === "") return;
    if (!this.res.write(text)) {
      // Respect backpressure: keep queueing (bounded, coalescing) until the socket drains.
      this.waitingForDrain = true;
      this.res.once("drain", () => {
        this.waitingForDrain = false;
        this.flush();
      });
    }
  }

  // ---- the event stream ----

  attach(res: ServerResponse, mode: AttachMode): void {
    if (this.res) this.detach(true);
    this.res = res;
    this.waitingForDrain = false;
    this.clearTtl();
    if (mode !== "first" || this.needsResync) {
      this.queue.clear();
      this.needsResync = false;
      const onlyIfMissing = mode === "rebootstrap";
      const signals: Record<string, Json> = {};
      for (const [name, sig] of this.signals) if (onlyIfMissing || sig.serverSet) signals[name] = sig.value;
      this.everConnected = true;
      this.pushRender();
      if (Object.keys(signals).length > 0) {
        this.pushEvent((id) => patchSignals(signals, { eventId: id, onlyIfMissing }));
      }
    }
    this.everConnected = true;
    res.on("close", () => {
      if (this.res === res) this.detach(false);
    });
    this.scheduleFlush();
    this.notifyConnection(true);
  }

  private notifyConnection(connected: boolean): void {
    for (const fn of this.connectionListeners) {
      try {
        fn(connected);
      } catch (err) {
        this.log.error({ err }, "connection listener failed");
      }
    }
  }

  /** Write a keepalive comment unless the socket is backed up (then the reader is not idle anyway). */
  keepalive(text: string): void {
    if (this.res && !this.waitingForDrain) this.res.write(text);
  }

  /** End the stream with a final event (server shutdown). */
  sayGoodbye(reason: string): void {
    if (!this.res) return;
    // What was pushed but not yet flushed goes out before the goodbye.
    this.flush();
    const res = this.res;
    this.detach(false);
    res.end(customEvent("via-bye", [["reason", reason]]));
  }

  private detach(end: boolean): void {
    const res = this.res;
    this.res = undefined;
    this.waitingForDrain = false;
    if (end && res && !res.writableEnded) res.end();
    this.armTtl();
    if (res) this.notifyConnection(false);
  }

  // ---- lifecycle ----

  private armTtl(): void {
    this.clearTtl();
    this.ttlTimer = setTimeout(() => this.dispose("ttl"), this.opts.ttlMs);
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
    const wasConnected = this.res !== undefined;
    if (this.res && !this.res.writableEnded) this.res.end();
    this.res = undefined;
    if (wasConnected) this.notifyConnection(false);
    this.queue.clear();
    for (const fn of this.disposers.splice(0)) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, "onDispose callback failed");
      }
    }
    this.session.tabs.delete(this.id);
    this.log.debug({ reason }, "tab disposed");
    this.opts.onDispose(this);
  }
}

export { VIEW_ID };
