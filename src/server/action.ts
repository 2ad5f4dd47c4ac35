// An action is a server function the browser triggers by an event. Its trigger helpers return the
// declarative attributes the client runtime understands (docs/PROTOCOL.md §2): no expressions, so the
// page runs under a CSP without 'unsafe-eval'.
import type { Json } from "./signal.ts";

/** Thrown from an action to show its message to the user (other errors show a generic message). */
export class ActionError extends Error {
  override name = "ActionError";
}

/**
 * What an action runs. `cursor` is only set for a list's "Load older" action (the oldest position the
 * browser's list shows); page actions take no argument.
 */
export type ActionFn = (cursor?: string) => void | Promise<void>;

export interface TriggerOptions {
  /** Set these signals in the browser before the action fires, e.g. `set: [[room, "Rust"]]`. */
  set?: ReadonlyArray<readonly [{ readonly name: string }, Json]>;
  /** Fire once the event has been quiet this long (ms). */
  debounce?: number;
  /** Call preventDefault() on the event. */
  prevent?: boolean;
}

interface Spec {
  action: string;
  key?: string;
  debounce?: number;
  set?: Record<string, Json>;
  prevent?: boolean;
  page?: string;
}

export class Action {
  constructor(
    readonly id: string,
    readonly fn: ActionFn,
    /** A list's "Load older": the runtime sends the list's oldest position as the cursor. */
    readonly page?: string,
  ) {}

  onClick(opts?: TriggerOptions): Record<string, string> {
    return this.trigger("click", opts);
  }
  /** Fires on keydown of one key, e.g. `onKeyDown("Enter")`. */
  onKeyDown(key: string, opts?: TriggerOptions): Record<string, string> {
    return this.trigger("keydown", opts, key);
  }
  /** Fires while typing, debounced (300 ms unless `debounce` says otherwise). */
  onInput(opts?: TriggerOptions): Record<string, string> {
    return this.trigger("input", { debounce: 300, ...opts });
  }
  onChange(opts?: TriggerOptions): Record<string, string> {
    return this.trigger("change", opts);
  }
  onSubmit(opts?: TriggerOptions): Record<string, string> {
    return this.trigger("submit", opts);
  }

  private trigger(event: string, opts: TriggerOptions = {}, key?: string): Record<string, string> {
    const spec: Spec = { action: this.id };
    if (key !== undefined) spec.key = key;
    if (opts.debounce) spec.debounce = opts.debounce;
    if (opts.prevent) spec.prevent = true;
    if (opts.set?.length) spec.set = Object.fromEntries(opts.set.map(([sig, v]) => [sig.name, v]));
    if (this.page !== undefined) spec.page = this.page;
    const simple = Object.keys(spec).length === 1;
    return { [`data-on-${event}`]: simple ? this.id : JSON.stringify(spec) };
  }
}
