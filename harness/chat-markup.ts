// The chat's markup as the tools read it: message items, the #messages list, the presence count (all
// rendered by apps/chat/view.tsx) and the parts of a via page a tab needs (the via-boot meta, the
// view's hash, an element's action). The test tab (chat-client.ts), the test client (sse-client.ts)
// and the benchmark's load clients all read pages and patches through these, so a change to the
// markup is one change here. The scanners use indexOf where they can: the load clients run them on
// every delivery to every tab.
import { unescapeHtml } from "../src/server/html.ts";

export type MessageState = "sending" | "failed" | "sent";

export interface MessageItem {
  /** The message id (the element is #m-<id>). */
  id: string;
  /** The item's list position (`data-via-pos`); 0 when it has none (the sender's own patches). */
  pos: number;
  state: MessageState;
  /** The text, unescaped. */
  text: string;
  /** The author's name, unescaped; only when asked for (`withAuthor`). */
  author?: string;
}

/** A message item's opening tag: position, classes, id. */
const ITEM_OPEN = /<li(?: data-via-pos="(\d+)")? class="chat-message([^"]*)" id="m-([^"]+)">/g;
const ITEM_CLOSE = "</li>";
/** Where a message's text starts; its label is the first word in it. */
export const MESSAGE_TEXT_OPEN = '<p class="text">';
const AUTHOR_OPEN = '<strong class="author">';

/** The state a message item's classes (after "chat-message") give it. */
function stateOf(classes: string): MessageState {
  const list = classes.split(" ");
  return list.includes("sending") ? "sending" : list.includes("failed") ? "failed" : "sent";
}

/** The content between `open` and `close` after `from`, if it ends before `end` (-1: no end); else "". */
function inner(html: string, open: string, close: string, from: number, end: number): string {
  const at = html.indexOf(open, from);
  if (at < 0 || (end >= 0 && at > end)) return "";
  const stop = html.indexOf(close, at + open.length);
  if (stop < 0 || (end >= 0 && stop > end)) return "";
  return html.slice(at + open.length, stop);
}

/** Every chat message item in an HTML fragment, in document order. */
export function messageItems(html: string, withAuthor = false): MessageItem[] {
  const out: MessageItem[] = [];
  ITEM_OPEN.lastIndex = 0;
  for (let m = ITEM_OPEN.exec(html); m; m = ITEM_OPEN.exec(html)) {
    const from = m.index + m[0].length;
    const end = html.indexOf(ITEM_CLOSE, from);
    const item: MessageItem = {
      id: m[3]!,
      pos: m[1] ? Number(m[1]) : 0,
      state: stateOf(m[2]!),
      text: unescapeHtml(inner(html, MESSAGE_TEXT_OPEN, "</p>", from, end)),
    };
    if (withAuthor) item.author = unescapeHtml(inner(html, AUTHOR_OPEN, "</strong>", from, end));
    out.push(item);
  }
  return out;
}

/** Whether an HTML fragment holds any message item. */
export function hasMessageItems(html: string): boolean {
  return html.includes('class="chat-message');
}

const LIST_OPEN = /<ol id="messages" data-via-stream=""( data-via-more="")?>/;

/**
 * The #messages list of a page or a view render: the markup of its items, and whether the server said
 * older messages exist (`data-via-more`); undefined when the list is not there.
 */
export function messageList(html: string): { items: string; more: boolean } | undefined {
  const open = LIST_OPEN.exec(html);
  if (!open) return undefined;
  const rest = html.slice(open.index + open[0].length);
  return { items: rest.slice(0, rest.indexOf("</ol>")), more: open[1] !== undefined };
}

/** Whether the view shows "Load older" (older stored messages exist). */
export function showsLoadOlder(html: string): boolean {
  return html.includes('id="load-older"');
}

/** The selector of the patches that trim #messages, as the runtime applies them. */
export const LIST_TRIM_PREFIX = "#messages > ";
const LIST_TRIM = /^#messages > :nth-(last-)?child\(-n\+(\d+)\)$/;

/** A trim of #messages by its selector: how many items, from which end; undefined for any other selector. */
export function listTrim(selector: string): { count: number; fromEnd: boolean } | undefined {
  const m = LIST_TRIM.exec(selector);
  return m ? { count: Number(m[2]), fromEnd: m[1] !== undefined } : undefined;
}

const PRESENCE_COUNT = /<span class="count">([\d,]+) (?:person|people) here<\/span>/;

/** The room's presence count ("1,234 people here"), or undefined when the fragment has none. */
export function presenceCount(html: string): number | undefined {
  const m = PRESENCE_COUNT.exec(html);
  return m ? Number(m[1]!.replaceAll(",", "")) : undefined;
}

// ---- the via page ----

const VIEW_HASH = /<div id="via-view" data-via-hash="([^"]*)"/;
const VIEW_OPEN = '<div id="via-view"';

/** The view's hash (`data-via-hash` of #via-view) anywhere in a page or event, as the runtime reports it. */
export function viewHashOf(html: string): string | undefined {
  return VIEW_HASH.exec(html)?.[1];
}

/** The hash of a view render: a patch whose elements are the whole view; undefined for any other patch. */
export function viewRenderHash(elements: string): string | undefined {
  return elements.startsWith(VIEW_OPEN) ? viewHashOf(elements) : undefined;
}

/** What a page's via-boot meta carries: the tab id, the signals and the runtime version. */
export interface Boot {
  tab: string;
  signals: Record<string, unknown>;
  v: string;
}

const BOOT_META = /<meta name="via-boot" content="([^"]*)">/;

export function bootOf(html: string): Boot | undefined {
  const m = BOOT_META.exec(html);
  return m ? (JSON.parse(unescapeHtml(m[1]!)) as Boot) : undefined;
}

/** Whether a page has the via-boot meta (without reading it). */
export function hasBoot(html: string): boolean {
  return html.includes('<meta name="via-boot"');
}

/** An element's `data-on-<event>`: the action id, and the signal it is conditional on (`if`). */
export interface ActionSpec {
  action: string;
  if?: unknown;
}

/** `data-on-<event>`'s value: an action id, or JSON `{"action": …, "if": …}`. */
function actionSpec(raw: string): ActionSpec | undefined {
  const text = unescapeHtml(raw);
  if (!text.startsWith("{")) return { action: text };
  const spec = JSON.parse(text) as { action?: unknown; if?: unknown };
  return typeof spec.action === "string" ? { action: spec.action, if: spec.if } : undefined;
}

/** The action id that element #`elementId` in `html` fires on `event`. */
export function actionIn(html: string, elementId: string, event = "click"): string {
  const tag = new RegExp(`<[^>]*id="${elementId}"[^>]*>`).exec(html)?.[0];
  const raw = tag && new RegExp(`data-on-${event}="([^"]*)"`).exec(tag)?.[1];
  const spec = raw === undefined ? undefined : actionSpec(raw);
  if (!spec) throw new Error(`no data-on-${event} on #${elementId}`);
  return spec.action;
}

/** The action the first element with `data-on-<event>` fires (the view's reconnect trigger, say). */
export function actionOn(html: string, event: string): ActionSpec | undefined {
  const raw = new RegExp(`data-on-${event}="([^"]*)"`).exec(html)?.[1];
  return raw === undefined ? undefined : actionSpec(raw);
}
