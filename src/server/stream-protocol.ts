// How streamed lists (stream.ts) appear in the page and on the wire: the marker a rendered view holds
// in a list's place, the position an item carries (`data-via-pos`), and what the browser reports of its
// lists when its event stream attaches (docs/PROTOCOL.md §4). Both a tab, which renders its view, and
// its lists use these, so they sit apart from either.

/** What the browser reports about one of its streamed lists when its event stream attaches. */
export interface ClientStreamState {
  /** The newest item position in the list (0 if no item has one). */
  pos: number;
  /** Items in the list. */
  count: number;
  /** The list's `data-via-more`: older items exist that it does not show. */
  more: boolean;
}

export type InsertAt = "end" | "start";

/** A list as a view render needs it: its element id and the items the page render puts in. */
export interface PageList {
  readonly id: string;
  pageItems(): string;
}

// Where a list's items go in the page render: a comment, which escaped user text cannot contain. It is
// part of a view's hash, which must be the same on every instance and after a restart, so it is fixed.
const MARKER_START = "<!--via-stream:";

/** The marker a list element holds in a rendered view, in place of its items. */
export function listMarker(id: string): string {
  return `${MARKER_START}${id}-->`;
}

/**
 * The view's markup with each list's marker replaced: "page" puts the list's items in, "patch" leaves
 * the list element empty (the browser keeps its items on a re-render).
 */
export function renderStreams(html: string, streams: readonly PageList[] | undefined, mode: "page" | "patch"): string {
  let at = html.indexOf(MARKER_START);
  if (at < 0) return html;
  let out = "";
  let from = 0;
  while (at >= 0) {
    const end = html.indexOf("-->", at);
    if (end < 0) break;
    const id = html.slice(at + MARKER_START.length, end);
    out += html.slice(from, at);
    if (mode === "page") out += streams?.find((s) => s.id === id)?.pageItems() ?? "";
    from = end + 3;
    at = html.indexOf(MARKER_START, from);
  }
  return out + html.slice(from);
}

/** An item's markup with its position as `data-via-pos` on its outermost element. */
export function withPosition(html: string, pos: number): string {
  return html.replace(/^(\s*<[A-Za-z][^\s/>]*)/, `$1 data-via-pos="${pos}"`);
}

/** Parses the `streams` query of an event stream request: `id:pos:count:more` entries, comma-separated. */
export function parseClientStreams(value: string | null): Map<string, ClientStreamState> {
  const out = new Map<string, ClientStreamState>();
  if (!value) return out;
  for (const entry of value.split(",").slice(0, 32)) {
    const m = /^([A-Za-z][A-Za-z0-9_-]{0,63}):(\d{1,15}):(\d{1,9}):([01])$/.exec(entry);
    if (!m) continue;
    out.set(m[1]!, { pos: Number(m[2]), count: Number(m[3]), more: m[4] === "1" });
  }
  return out;
}
