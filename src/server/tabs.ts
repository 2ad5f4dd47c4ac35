// The live tabs of one app and the limits over all of them together:
// - detached tabs (stream dropped, context kept for the TTL so a reconnect resumes it) are capped,
//   the oldest going first: each one holds its context until its TTL;
// - one byte budget bounds what every tab's queue and socket buffer hold together; over it, the
//   streams holding the most are cut (their tabs re-bootstrap when they reconnect).
// Page loads are not here: a page render keeps nothing.
import type { Logger } from "../log.ts";
import type { PubSub } from "../pubsub/types.ts";
import type { Tab, TabHost } from "./tab.ts";

export interface TabLimits {
  queueCapBytes: number;
  ttlMs: number;
  rateLimit: { ratePerSec: number; burst: number };
  maxDetachedTabs: number;
  budgetBytes: number;
}

/** Log the first event of a flood and then every 1,000th, so the flood does not flood the log too. */
function sampled(count: number): boolean {
  return count % 1000 === 1;
}

export class TabRegistry implements TabHost {
  readonly queueCapBytes: number;
  readonly ttlMs: number;
  readonly rateLimit: { ratePerSec: number; burst: number };
  private readonly tabs = new Map<string, Tab>();
  /** Detached tabs, oldest first. */
  private readonly detachedTabs = new Set<Tab>();
  /** Bytes held for all tabs' streams (queues plus what their sockets buffered at the last write). */
  heldBytes = 0;
  overflows = 0;
  budgetCuts = 0;
  detachedDropped = 0;
  /** Events, and their bytes, written to tabs' event streams since start (keepalives and goodbyes not counted). */
  eventsWritten = 0;
  bytesWritten = 0;

  constructor(
    private readonly limits: TabLimits,
    readonly logger: Logger,
    readonly pubsub: PubSub | undefined,
  ) {
    this.queueCapBytes = limits.queueCapBytes;
    this.ttlMs = limits.ttlMs;
    this.rateLimit = limits.rateLimit;
  }

  get size(): number {
    return this.tabs.size;
  }

  get detachedCount(): number {
    return this.detachedTabs.size;
  }

  get(id: string): Tab | undefined {
    return this.tabs.get(id);
  }

  add(tab: Tab): void {
    this.tabs.set(tab.id, tab);
  }

  values(): IterableIterator<Tab> {
    return this.tabs.values();
  }

  attached(tab: Tab): void {
    this.detachedTabs.delete(tab);
  }

  detached(tab: Tab): void {
    this.detachedTabs.delete(tab);
    this.detachedTabs.add(tab);
    if (this.detachedTabs.size <= this.limits.maxDetachedTabs) return;
    const oldest = this.detachedTabs.values().next().value!;
    if (sampled(++this.detachedDropped)) {
      this.logger.warn(
        { cap: this.limits.maxDetachedTabs, dropped: this.detachedDropped },
        "too many detached tabs: disposing the oldest (it re-bootstraps if it comes back)",
      );
    }
    oldest.dispose("over maxDetachedTabs");
  }

  disposed(tab: Tab): void {
    if (this.tabs.get(tab.id) === tab) this.tabs.delete(tab.id);
    this.detachedTabs.delete(tab);
  }

  overflowed(): void {
    this.overflows++;
  }

  wrote(events: number, bytes: number): void {
    this.eventsWritten += events;
    this.bytesWritten += bytes;
  }

  held(delta: number): void {
    this.heldBytes += delta;
    if (delta > 0 && this.heldBytes > this.limits.budgetBytes) this.enforceBudget();
  }

  /** Cut the streams holding the most until the total is back under 90 % of the budget. Rare: O(tabs). */
  private enforceBudget(): void {
    const holders = [...this.tabs.values()].filter((t) => t.pendingBytes > 0 && t.connected);
    holders.sort((a, b) => b.pendingBytes - a.pendingBytes);
    const target = this.limits.budgetBytes * 0.9;
    for (const tab of holders) {
      if (this.heldBytes <= target) break;
      this.budgetCuts++;
      if (sampled(this.budgetCuts)) {
        this.logger.warn(
          { budgetBytes: this.limits.budgetBytes, heldBytes: this.heldBytes, cuts: this.budgetCuts },
          "tabs hold more than the app's byte budget: cutting the streams that hold the most",
        );
      }
      tab.cut("over the app's byte budget: cutting the stream; the tab re-bootstraps when it reconnects");
    }
  }

  /** Dispose every tab (shutdown). */
  disposeAll(reason: string): void {
    for (const tab of [...this.tabs.values()]) tab.dispose(reason);
  }
}
