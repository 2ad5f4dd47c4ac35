// One setImmediate flushes every tab with pending output: a broadcast to 1,000 tabs costs one
// scheduling, not 1,000. setImmediate, not a microtask: it runs once the event loop has handled every
// request and message that arrived together, so a tab gets what they all pushed in one socket write.

/** What the shared flush calls: a tab writing what waits for it. */
export interface Flushable {
  flush(): void;
}

const toFlush = new Set<Flushable>();
let flushQueued = false;

function flushAll(): void {
  flushQueued = false;
  // A flush may queue more (signals → an event); tabs added while iterating are flushed in this pass.
  for (const tab of toFlush) {
    toFlush.delete(tab);
    tab.flush();
  }
}

/** Flush `tab` in the shared setImmediate (queued once for all tabs). */
export function scheduleFlush(tab: Flushable): void {
  toFlush.add(tab);
  if (flushQueued) return;
  flushQueued = true;
  setImmediate(flushAll);
}
