// Streamed lists (the idea of LiveView's streams): the server sends inserts and removals of a list's
// items and keeps none of them. The list element carries `data-via-stream`; the browser runtime keeps
// its children when the view is re-rendered, and an inserted item whose id is already in the list
// replaces that item in place (an upsert). So a tab's server memory does not grow with the traffic
// its lists show.
//
// Items may carry a position (`data-via-pos`, e.g. a stream seq): the browser reports the newest one,
// how many items it holds and whether older ones exist when its event stream attaches, which is how a
// Feed resumes a list exactly where the page left it.

import { raw } from "hono/html";
import { renderHtml } from "./html.ts";
import { patchElements } from "./sse/encoder.ts";
import { type ClientStreamState, type InsertAt, listMarker } from "./stream-protocol.ts";
import type { Tab } from "./tab.ts";
import type { TabList } from "./tab-declarations.ts";
import type { Html } from "./types.ts";

export type { ClientStreamState, InsertAt } from "./stream-protocol.ts";

export interface StreamOptions {
  /**
   * Most items the browser keeps. Past it the oldest are removed from the page (from the end opposite
   * to where items are being inserted) and `more` turns true. Default: no limit.
   */
  limit?: number;
}

const STREAM_ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Removals are batched: the browser is trimmed once it holds this many items over the limit. */
function pruneSlack(limit: number): number {
  return Math.max(1, Math.min(100, Math.floor(limit / 10)));
}

export class Stream implements TabList {
  /** Items the page render puts into the list (set before the page is rendered). */
  protected initial = "";
  /** Items the browser holds, as far as the server knows (an upsert is counted as an insert). */
  count = 0;
  /** Older items exist that the browser does not show (rendered as `data-via-more`). */
  more = false;

  constructor(
    protected readonly tab: Tab,
    readonly id: string,
    protected readonly opts: StreamOptions = {},
  ) {
    if (!STREAM_ID.test(id))
      throw new Error(`stream id ${JSON.stringify(id)} is invalid (it is the list's element id)`);
    if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) {
      throw new RangeError(`stream ${id}: limit must be a positive integer, got ${opts.limit}`);
    }
    tab.addStream(this);
    const state = tab.report.streams.get(id);
    if (state) {
      this.count = state.count;
      this.more = state.more;
    }
  }

  /** Attributes (and the items) of the list element: `<ol class="log" {...messages.container()} />`. */
  container(): Record<string, string | Html> {
    const attrs: Record<string, string | Html> = {
      id: this.id,
      "data-via-stream": "",
      children: raw(listMarker(this.id)),
    };
    if (this.more) attrs["data-via-more"] = "";
    return attrs;
  }

  /** Insert items (rendered now) at the end (default) or the start of the list; one with an existing id replaces it. */
  insert(items: Html | Html[], opts: { at?: InsertAt } = {}): void {
    const list = Array.isArray(items) ? items : [items];
    if (list.length === 0) return;
    this.insertHtml(list.map((item) => renderHtml(item)).join(""), list.length, opts.at ?? "end");
  }

  /** Remove the item with element id `itemId`. */
  remove(itemId: string): void {
    if (!this.tab.live) return;
    this.tab.push(patchElements(undefined, { selector: `#${this.id} > #${cssIdent(itemId)}`, mode: "remove" }));
    if (this.count > 0) this.count--;
  }

  /** Replace every item of the list. */
  reset(items: Html[], more = this.more): void {
    this.resetHtml(items.map((item) => renderHtml(item)).join(""), items.length, more);
  }

  /** `trim`: apply the limit (not for a page of older items the user asked for). */
  protected insertHtml(html: string, n: number, at: InsertAt, trim = true): void {
    if (!this.tab.live) {
      this.initial = at === "end" ? this.initial + html : html + this.initial;
      this.count += n;
      return;
    }
    this.tab.push(patchElements(html, { selector: `#${this.id}`, mode: at === "end" ? "append" : "prepend" }));
    if (trim) this.inserted(n, at);
    else this.count += n;
  }

  /** @internal `n` items were sent to the browser's list (here or as a shared frame): count them, apply the limit. */
  inserted(n: number, at: InsertAt): void {
    if (!this.tab.connected) return;
    this.count += n;
    this.trim(at);
  }

  protected resetHtml(html: string, n: number, more: boolean): void {
    const moreChanged = more !== this.more;
    this.count = n;
    this.more = more;
    if (!this.tab.live) {
      this.initial = html;
      return;
    }
    this.tab.push(patchElements(html, { selector: `#${this.id}`, mode: "inner" }));
    if (moreChanged) this.tab.pushRender();
  }

  /** Past the limit, remove the oldest items (those at the other end from `at`). */
  protected trim(at: InsertAt): void {
    const limit = this.opts.limit;
    if (limit === undefined || this.count < limit + pruneSlack(limit)) return;
    const extra = this.count - limit;
    const pick = at === "end" ? "nth-child" : "nth-last-child";
    this.tab.push(patchElements(undefined, { selector: `#${this.id} > :${pick}(-n+${extra})`, mode: "remove" }));
    this.count = limit;
    if (at === "end" && !this.more) {
      this.more = true;
      this.tab.pushRender();
    }
  }

  /** The page render puts these items into the list. */
  pageItems(): string {
    return this.initial;
  }

  /** The tab's event stream attached; `state` is what the browser reported for this list. */
  attached(state: ClientStreamState | undefined): void {
    if (state) {
      this.count = state.count;
      this.more = state.more;
    }
  }

  /** The tab's event stream dropped (what it is sent meanwhile is dropped). */
  detached(): void {}

  /** The tab is gone. */
  disposed(): void {}
}

/** `id` as a CSS identifier for a selector (ids we generate are safe; others are escaped). */
function cssIdent(id: string): string {
  return /^[A-Za-z][A-Za-z0-9_-]*$/.test(id)
    ? id
    : id.replace(/[^A-Za-z0-9_-]/g, (c) => `\\${c.codePointAt(0)!.toString(16)} `);
}
