// A Channel is a group of tabs that get the same patches: one call renders and encodes the patch
// once and writes the same bytes to every member's stream (a room's roster to every tab in it).
// Membership ends when the tab is disposed. A member whose stream is detached gets nothing; it
// catches up when it attaches, by re-rendering its view.
import type { Context } from "./context.ts";
import { renderHtml } from "./html.ts";
import { type PatchMode, patchElements } from "./sse/encoder.ts";
import type { InsertAt } from "./stream.ts";
import type { Tab } from "./tab.ts";
import type { Html } from "./types.ts";

export class Channel {
  private readonly members = new Set<Tab>();

  /** @internal Made by `app.channel(name)`. */
  constructor(
    readonly name: string,
    private readonly onEmpty: (channel: Channel) => void,
  ) {}

  /** Tabs in the channel (attached or not). */
  get size(): number {
    return this.members.size;
  }

  /** Add the live tab of `c` (the page render's static context is never a member). Returns `leave`. */
  join(c: Context): () => void {
    const tab = c._tab;
    if (!tab.live || tab.disposed) return () => {};
    if (!this.members.has(tab)) {
      this.members.add(tab);
      tab.addChannel(this);
    }
    return () => this.leave(tab);
  }

  /** @internal */
  leave(tab: Tab): void {
    if (!this.members.delete(tab)) return;
    tab.removeChannel(this);
    if (this.members.size === 0) this.onEmpty(this);
  }

  /** Patch every member's page: rendered and encoded once, the same bytes written to each. */
  patch(selector: string, html: Html | null, mode: PatchMode = "outer"): void {
    if (this.members.size === 0) return;
    const elements = mode === "remove" || html === null ? undefined : renderHtml(html);
    const frame = Buffer.from(patchElements(elements, { selector, mode }), "utf8");
    for (const tab of this.members) tab.push(frame, "patch", frame.length);
  }

  /**
   * Insert items into every member's streamed list `listId` (see `c.stream`), encoded once. Each
   * member's list counts them against its limit.
   */
  insert(listId: string, items: Html | Html[], opts: { at?: InsertAt } = {}): void {
    if (this.members.size === 0) return;
    const list = Array.isArray(items) ? items : [items];
    if (list.length === 0) return;
    const at = opts.at ?? "end";
    const html = list.map((item) => renderHtml(item)).join("");
    const frame = Buffer.from(
      patchElements(html, { selector: `#${listId}`, mode: at === "end" ? "append" : "prepend" }),
      "utf8",
    );
    for (const tab of this.members) {
      tab.push(frame, "patch", frame.length);
      tab.streams?.find((s) => s.id === listId)?.inserted(list.length, at);
    }
  }

  /** Remove every element matching `selector` from every member's page. */
  remove(selector: string): void {
    this.patch(selector, null, "remove");
  }
}
