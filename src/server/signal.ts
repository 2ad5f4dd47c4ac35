// A signal is a value held by the browser and mirrored on the server. The browser sends every
// signal with each action; the server can set values and push them.
import { jsx } from "hono/jsx";
import type { JSX } from "hono/jsx/jsx-runtime";
import { HttpError } from "./http-error.ts";

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface SignalOptions<T> {
  /** A stable name (default s1, s2, ... in declaration order, stable across re-bootstrap). */
  name?: string;
  /** Validates a value sent by the browser; throw to reject the action with 400. Default: same JSON type as the initial value. */
  parse?: (value: unknown) => T;
}

type Kind = "string" | "number" | "boolean" | "null" | "array" | "object";

function kindOf(v: unknown): Kind {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v as Kind;
}

/** Who is told when the server sets a signal (the tab, which pushes it). */
export interface SignalOwner {
  signalChanged(name: string): void;
}

// Thousands of tabs declare signals: a signal holds its owner and the default check's kind, not
// closures of its own.
export class Signal<T extends Json = Json> {
  #value: T;
  /** Set by the server since the browser last sent its values: re-sent on a resync. */
  serverSet = false;
  private readonly kind: Kind;

  constructor(
    readonly name: string,
    initial: T,
    private readonly owner: SignalOwner,
    private readonly parse?: (value: unknown) => T,
  ) {
    this.#value = initial;
    this.kind = kindOf(initial);
  }

  /** The default check: the same JSON type as the initial value (null accepts anything). */
  private check(v: unknown): T {
    const kind = this.kind;
    if (kind !== "null" && kindOf(v) !== kind) throw new Error(`must be of type ${kind}`);
    if (kind === "number" && !Number.isFinite(v)) throw new Error("must be a finite number");
    return v as T;
  }

  get value(): T {
    return this.#value;
  }

  /** Set on the server and push to the browser (batched with the tab's other changes in the shared setImmediate flush). */
  set(value: T): void {
    this.#value = value;
    this.serverSet = true;
    this.owner.signalChanged(this.name);
  }

  /** Attributes for an input: `<input {...draft.bind()} />` keeps the value in sync both ways. */
  bind(): { "data-bind": string } {
    return { "data-bind": this.name };
  }

  /** A `<span>` that shows the value and follows it: `<p>Count: {count.text()}</p>`. */
  text(): JSX.Element {
    return jsx(
      "span",
      { "data-text": this.name },
      this.#value === null ? "" : String(this.#value),
    ) as unknown as JSX.Element;
  }

  /** The same as attributes, for any element: `<output {...count.textAttrs()}>{count.value}</output>`. */
  textAttrs(): { "data-text": string } {
    return { "data-text": this.name };
  }

  /** Validate a value the browser sent (before the action is queued); throws HttpError(400). */
  parseFromBrowser(value: unknown): T {
    try {
      return this.parse ? this.parse(value) : this.check(value);
    } catch (err) {
      throw new HttpError(400, `signal ${this.name} ${(err as Error).message}`);
    }
  }

  /** Take the browser's (already validated) value without echoing it back. */
  acceptFromBrowser(value: T): void {
    this.#value = value;
    this.serverSet = false;
  }
}
