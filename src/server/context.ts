// What a page's `init(c)` receives: the per-tab API of the Via model. `init` runs once to render the
// page (`c.live` false: nothing stays on the server) and again when the tab's event stream attaches
// (`c.live` true), like LiveView's disconnected and connected mounts. Subscriptions, intervals and
// connection listeners only run in the live context; pushes from the static one go nowhere.
import type { Logger } from "../log.ts";
import type { Delivery, PublishAck, PublishOptions, SubscribeOptions, Unsubscribe } from "../pubsub/types.ts";
import type { Action, ActionFn } from "./action.ts";
import { renderHtml } from "./html.ts";
import type { Session } from "./session.ts";
import type { Json, Signal, SignalOptions } from "./signal.ts";
import type { PatchMode } from "./sse/encoder.ts";
import { patchElements } from "./sse/encoder.ts";
import { Stream, type StreamOptions } from "./stream.ts";
import type { Tab } from "./tab.ts";
import type { Html } from "./types.ts";

// Part of the page-facing API, which src/index.ts takes from here; ActionError is defined with actions.
export { ActionError } from "./action.ts";
export type { Html };

const textDecoder = new TextDecoder("utf-8", { fatal: true });

// Every subscriber of a message gets the same payload bytes: parse and decode them once for all of
// them and share the value (keyed by the payload, so it goes when the message does). That is why
// subscribeJson's value must be treated as read-only.
const decodedPayloads = new WeakMap<Uint8Array, { decode: (value: unknown) => unknown; value: unknown }>();
function decodeShared<T>(data: Uint8Array, decode: (value: unknown) => T): T {
  const hit = decodedPayloads.get(data);
  if (hit && hit.decode === decode) return hit.value as T;
  const value = decode(JSON.parse(textDecoder.decode(data)));
  decodedPayloads.set(data, { decode, value });
  return value;
}

/** `c.signal(0)` is a number signal, not a signal of the literal 0. */
export type Widen<T> = T extends string ? string : T extends number ? number : T extends boolean ? boolean : T;

export interface ActionOptions {
  /**
   * A stable id (letters, digits, `-`, `_`; default a1, a2, ... in declaration order). Name an action
   * whose trigger appears in markup shared by many tabs (a Channel or Feed frame).
   */
  name?: string;
}

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

  /** @internal The tab behind this context (framework modules only). */
  get _tab(): Tab {
    return this.tab;
  }

  /**
   * True in the context that serves the tab's event stream; false while `init` only renders the page.
   * Side effects that should last (joining presence, timers) belong in the live context.
   */
  get live(): boolean {
    return this.tab.live;
  }

  /** This tab's id (issued by the server; also the key its stream and actions use). */
  get tabId(): string {
    return this.tab.id;
  }

  /**
   * Who is asking, for per-client limits of the app's own (`RateLimiter`): the address of the request
   * being served (the page load, the event stream, or the action), IPv6 by its /64, read from
   * X-Forwarded-For only with `trustProxy`.
   */
  get clientAddress(): string {
    return this.tab.clientAddress;
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
  action(fn: ActionFn, opts: ActionOptions = {}): Action {
    return this.tab.addAction(fn, opts);
  }

  /** What the tab shows. Rendered for the page and by every `sync()`. */
  view(render: () => Html): void {
    this.tab.render = render;
  }

  /**
   * A list whose items the server sends and forgets (`stream.insert`, `stream.remove`): put
   * `{...list.container()}` on the list element. A re-render of the view leaves its items alone.
   */
  stream(id: string, opts: StreamOptions = {}): Stream {
    return new Stream(this.tab, id, opts);
  }

  /** Re-render the view and morph it into the page (skipped if it did not change). Streamed lists are left alone. */
  sync(): void {
    this.tab.pushRender();
  }

  /** Push an incremental change: `mode` says how `html` lands relative to the element `selector` picks. */
  patch(selector: string, html: Html | null, mode: PatchMode = "outer"): void {
    if (!this.tab.connected) return;
    const elements = mode === "remove" || html === null ? undefined : renderHtml(html);
    this.tab.push(patchElements(elements, { selector, mode }));
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
    this.tab.notify(message, level);
  }

  /**
   * Run `fn(true)` when the tab's event stream opens and `fn(false)` when it drops (live context only).
   * A dropped tab may come back within the context TTL, so use this (not onDispose) for "who is online".
   */
  onConnectionChange(fn: (connected: boolean) => void): void {
    this.tab.onConnectionChange(fn);
  }

  /** Whether the tab's event stream is open right now. */
  get connected(): boolean {
    return this.tab.connected;
  }

  /** Run `fn` when the tab goes away (closed, expired, the server shuts down, or the page render is done). */
  onDispose(fn: () => void): void {
    this.tab.onDispose(fn);
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
   * Subscribe for as long as this tab lives (ended automatically on dispose; the page render's static
   * context does not subscribe). A handler that throws is logged; delivery to this tab and to others
   * continues. For a message every tab of a room shows, a Feed or a Channel does the work once.
   */
  subscribe(pattern: string, handler: (msg: Delivery) => void, opts?: SubscribeOptions): Unsubscribe {
    const tab = this.tab;
    if (!tab.live) return () => {};
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
    tab.onDispose(unsubscribe);
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

  /** Run `fn` every `ms` while the live tab lives. Returns a function that stops it. */
  interval(ms: number, fn: () => void | Promise<void>): () => void {
    if (!this.tab.live) return () => {};
    const timer = setInterval(() => {
      this.tab.guard("interval", fn);
    }, ms);
    const stop = () => clearInterval(timer);
    this.tab.onDispose(stop);
    return stop;
  }
}
