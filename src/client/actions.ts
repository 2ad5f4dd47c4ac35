import { oldestPosition } from "./lists.ts";
import { snapshot } from "./signals.ts";
import { toast } from "./toast.ts";

// A hung request would otherwise block every later action of the tab behind it.
const TIMEOUT_MS = 30_000;

let tab = "";
let onGone: () => Promise<void> = async () => {};
let queue: Promise<void> = Promise.resolve();

/**
 * `firstOpen` resolves when the event stream first opens: the server builds the tab's context then,
 * so an action fired before (a click right after the page appeared) waits for it rather than
 * meeting an unknown tab.
 */
export function initActions(tabId: string, tabGone: () => Promise<void>, firstOpen: Promise<void>): void {
  tab = tabId;
  onGone = tabGone;
  queue = firstOpen;
}

/**
 * Queues the action; the signals are captured now, when the user acted, not when it is sent. `page`
 * names a streamed list whose "Load older" this is: its oldest position goes along as the cursor.
 */
export function sendAction(id: string, page?: string): void {
  const signals = snapshot();
  // Names starting with "_" are client-only state.
  for (const name of Object.keys(signals)) if (name.startsWith("_")) delete signals[name];
  const cursor = page === undefined ? undefined : oldestPosition(page);
  const body = JSON.stringify(cursor === undefined ? { signals } : { signals, cursor });
  queue = queue.then(() => post(id, body));
}

async function post(id: string, body: string): Promise<void> {
  try {
    const res = await fetch(`/_via/action/${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { "Via-Tab": tab, "Via-Request": "1", "Content-Type": "application/json" },
      body,
      credentials: "same-origin",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (res.ok) return;
    const reason = (await res.text().catch(() => "")).trim().slice(0, 300);
    toast(reason || `Action failed (HTTP ${res.status})`);
    // 410: the server forgot this tab; a fresh stream re-bootstraps it. Later actions wait for
    // that, or they would all fail the same way. The failed action is not replayed: it was meant
    // for state that no longer exists.
    if (res.status === 410) await onGone();
  } catch {
    toast("Could not reach the server");
  }
}
