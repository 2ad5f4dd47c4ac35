// What a page's `init` declares on its tab: signals, actions, streamed lists, channel memberships,
// dispose callbacks and connection listeners. Tab (tab.ts) extends this with the tab's life: its
// event stream, its pushes and its end, which walk these lists.
//
// Tabs are counted in thousands per process, so the lists are made on first use and hold exactly
// their items.
import type { Logger } from "../log.ts";
import { Action, type ActionFn } from "./action.ts";
import { type Json, Signal, type SignalOptions, type SignalOwner } from "./signal.ts";
import type { ClientStreamState, InsertAt, PageList } from "./stream-protocol.ts";

/** Action ids: `a1`, `a2`, ... by default, or a name the page gives (stable across tabs and restarts). */
export const ACTION_ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** A streamed list as its tab sees it (stream.ts): rendered into the view, told of the tab's stream. */
export interface TabList extends PageList {
  /** `n` items were sent to the browser's list: count them, apply the limit. */
  inserted(n: number, at: InsertAt): void;
  /** The tab's event stream attached; `state` is what the browser reported for this list. */
  attached(state: ClientStreamState | undefined): void;
  /** The tab's event stream dropped. */
  detached(): void;
  /** The tab is gone. */
  disposed(): void;
}

/**
 * `list` with `item` added, as a new array of exactly that length. Tabs hold several short lists made
 * once (signals, actions, listeners): pushing onto an empty array would reserve room for 17 items.
 */
export function withItem<T>(list: readonly T[] | undefined, item: T): T[] {
  return list === undefined ? [item] : [...list, item];
}

export abstract class TabDeclarations<Member> implements SignalOwner {
  /** Streamed lists declared in init. */
  streams: TabList[] | undefined;
  /** Channels this tab joined (left on dispose). */
  channels: Member[] | undefined;
  protected disposers: Array<() => void> | undefined;
  protected connectionListeners: Array<(connected: boolean) => void> | undefined;
  protected signals: ReadonlyArray<Signal<Json>> = [];
  private actions: readonly Action[] = [];

  abstract readonly live: boolean;
  abstract get log(): Logger;
  abstract signalChanged(name: string): void;

  addSignal<T extends Json>(initial: T, opts: SignalOptions<T>): Signal<T> {
    const name = opts.name ?? `s${this.signals.length + 1}`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`signal name ${JSON.stringify(name)} is invalid`);
    if (this.signalNamed(name)) throw new Error(`signal ${name} is declared twice`);
    const sig = new Signal<T>(name, initial, this, opts.parse);
    this.signals = withItem(this.signals, sig as unknown as Signal<Json>);
    return sig;
  }

  protected signalNamed(name: string): Signal<Json> | undefined {
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

  protected actionNamed(id: string): Action | undefined {
    for (const action of this.actions) if (action.id === id) return action;
    return undefined;
  }

  hasAction(id: string): boolean {
    return this.actionNamed(id) !== undefined;
  }

  addStream(stream: TabList): void {
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
  addChannel(channel: Member): void {
    this.channels = withItem(this.channels, channel);
  }

  /** @internal */
  removeChannel(channel: Member): void {
    const rest = this.channels?.filter((c) => c !== channel);
    this.channels = rest && rest.length > 0 ? rest : undefined;
  }

  /** Signal values to embed in the page (the browser's initial store). */
  signalValues(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const sig of this.signals) out[sig.name] = sig.value;
    return out;
  }

  /** Tells the connection listeners; one that throws is logged and the others still run. */
  protected notifyConnection(connected: boolean): void {
    for (const fn of this.connectionListeners ?? []) {
      try {
        fn(connected);
      } catch (err) {
        this.log.error({ err }, "connection listener failed");
      }
    }
  }

  /** Runs the dispose callbacks once; one that throws is logged and the others still run. */
  protected runDisposers(): void {
    for (const fn of this.disposers?.splice(0) ?? []) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, "onDispose callback failed");
      }
    }
  }
}
