// What an app reports of itself (`app.stats()`): its tabs, their streams, and the memory their
// outgoing events hold. Counted over every tab, so meant to be read now and then (a metrics scrape),
// not per event.
import type { MuxRegistry } from "./mux.ts";
import type { SessionStore } from "./session.ts";
import type { TabRegistry } from "./tabs.ts";

/** A snapshot of the app's tabs and of the memory their outgoing events hold (`app.stats()`). */
export interface AppStats {
  /** Live tab contexts: connected, or disconnected within their TTL. (A page load that never opened its stream is none.) */
  tabs: number;
  /** Tabs with an open event stream (their own, or a lane of a shared stream). */
  connected: number;
  /** Shared streams open (one per browser whose tabs share one through the runtime's worker). */
  sharedStreams: number;
  /** Tabs attached to a shared stream (counted in `connected` too). */
  sharedTabs: number;
  /**
   * Browser sessions kept in memory: those with a live tab or with data set. A page load, or a refused
   * request, keeps none.
   */
  sessions: number;
  /** Tabs whose stream dropped, waiting for it within their TTL. */
  detached: number;
  /** Streams whose socket refused the last write: their events queue until it drains. */
  backedUp: number;
  /**
   * Bytes held for tabs' event streams: per tab its queue plus its response's `writableLength` (written,
   * not yet taken by the kernel). `max` is the largest single tab; it stays under `queueCapBytes`, or
   * under the tab's largest single event if that alone is bigger (one event always gets through).
   */
  queuedBytes: { total: number; max: number };
  /** The per-tab cap (`AppOptions.queueCapBytes`). */
  queueCapBytes: number;
  /** Streams cut since start because their tab went over the cap (each such tab resyncs when it reconnects). */
  overflows: number;
  /** The app-wide budget over all tabs' held bytes, and the streams cut since start for going over it. */
  budget: { bytes: number; cuts: number };
  /** Detached tabs disposed since start because there were more than `maxDetachedTabs`. */
  detachedDropped: number;
}

/** What `app.stats()` counts over. */
export interface StatsSource {
  readonly tabs: TabRegistry;
  readonly muxes: MuxRegistry;
  /** Undefined until the app secret is loaded. */
  readonly sessions: SessionStore | undefined;
  readonly queueCapBytes: number;
  readonly budgetBytes: number;
}

/** A snapshot of `source`: O(tabs). */
export function collectStats(source: StatsSource): AppStats {
  let connected = 0;
  let backedUp = 0;
  let total = 0;
  let max = 0;
  for (const tab of source.tabs.values()) {
    if (tab.connected) connected++;
    if (tab.backedUp) backedUp++;
    const bytes = tab.pendingBytes;
    total += bytes;
    if (bytes > max) max = bytes;
  }
  return {
    tabs: source.tabs.size,
    connected,
    sharedStreams: source.muxes.size,
    sharedTabs: source.muxes.lanes,
    sessions: source.sessions?.size ?? 0,
    detached: source.tabs.detachedCount,
    backedUp,
    queuedBytes: { total, max },
    queueCapBytes: source.queueCapBytes,
    overflows: source.tabs.overflows,
    budget: { bytes: source.budgetBytes, cuts: source.tabs.budgetCuts },
    detachedDropped: source.tabs.detachedDropped,
  };
}
