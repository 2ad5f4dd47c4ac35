import { isObject, type Json, parseJson } from "./json.ts";
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
  watchReconnects();
}

/**
 * `data-on-reconnect` (docs/PROTOCOL.md §2): an element with it fires its action each time the tab's
 * event stream comes back (online again after connecting or offline; not the first open). The spec is
 * an action id or `{"action":"a1","if":"name"}`: with `if`, only while that signal holds something (a
 * non-empty string, array or object, true, a number other than 0). A context the server rebuilt (a
 * restart, another instance) knows nothing of the page's signals until an action brings them: this is
 * how an app hands it what the browser kept (the chat: sends not yet confirmed stored).
 *
 * The stream's state is read from `data-connection` on <html>, which the connection sets (§5).
 */
function watchReconnects(): void {
  const root = document.documentElement;
  let seenOnline = root.getAttribute("data-connection") === "online";
  let online = seenOnline;
  new MutationObserver(() => {
    const now = root.getAttribute("data-connection") === "online";
    if (now === online) return;
    online = now;
    if (!now) return;
    if (seenOnline) fireReconnectTriggers();
    seenOnline = true;
  }).observe(root, { attributes: true, attributeFilter: ["data-connection"] });
}

function fireReconnectTriggers(): void {
  const fired = new Set<string>();
  const signals = snapshot();
  for (const el of document.querySelectorAll("[data-on-reconnect]")) {
    const raw = (el.getAttribute("data-on-reconnect") ?? "").trim();
    let action: unknown = raw;
    let when: unknown;
    if (raw.startsWith("{")) {
      try {
        const spec = parseJson(raw);
        if (!isObject(spec)) continue;
        action = spec.action;
        when = spec.if;
      } catch {
        continue;
      }
    }
    if (typeof action !== "string" || action === "" || fired.has(action)) continue;
    if (typeof when === "string" && !holdsSomething(Object.hasOwn(signals, when) ? signals[when] : undefined)) continue;
    fired.add(action);
    sendAction(action);
  }
}

function holdsSomething(v: Json | undefined): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== "";
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
