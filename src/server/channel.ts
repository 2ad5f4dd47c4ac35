// A Channel is a group of tabs that get the same patches: one call renders and encodes the patch
// once and writes the same bytes to every member's stream (a room's roster to every tab in it).
// Membership ends when the tab is disposed. A member whose stream is detached gets nothing; it
// catches up when it attaches, by re-rendering its view.
//
// A channel also knows who is present: each member may carry data (who the tab's user is), and
// `present()` lists the data of the members whose stream is attached, or dropped less than `grace`
// ago (a network blip does not make someone leave). `onChange` is told when that may have changed.
// This is presence without a closure or a timer per tab: the tabs report their stream's attach and
// detach to their channels, and one timer per channel ends the grace periods.
import type { Context } from "./context.ts";
import { renderHtml } from "./html.ts";
import { type PatchMode, patchElements } from "./sse/encoder.ts";
import type { InsertAt } from "./stream.ts";
import type { Tab } from "./tab.ts";
import type { Html } from "./types.ts";

export interface ChannelOptions<D> {
  /** How long a member whose stream dropped still counts as present (ms, default 5 s). */
  grace?: number;
  /** Called (synchronously) when the present members may have changed; coalesce expensive work. */
  onChange?: (channel: Channel<D>) => void;
}

/**
 * A member's stream: attached, never attached yet, released by a hidden tab that is still open
 * (parked: present), or dropped at this time (ms).
 */
const ATTACHED = 0;
const NOT_YET = -1;
const PARKED = -2;

interface Member<D> {
  data: D | undefined;
  since: number;
}

export class Channel<D = unknown> {
  private readonly members = new Map<Tab, Member<D>>();
  private readonly grace: number;
  private readonly onChange: ((channel: Channel<D>) => void) | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  /** @internal Made by `app.channel(name, options)`. */
  constructor(
    readonly name: string,
    private readonly onEmpty: (channel: Channel<D>) => void,
    options: ChannelOptions<D> = {},
  ) {
    this.grace = options.grace ?? 5_000;
    this.onChange = options.onChange;
  }

  /** Tabs in the channel (attached or not). */
  get size(): number {
    return this.members.size;
  }

  /**
   * Add the live tab of `c` (the page render's static context is never a member), with `data` for
   * `present()`. It stays a member until it is disposed or `leave(c)`.
   */
  join(c: Context, data?: D): void {
    const tab = c._tab;
    if (!tab.live || tab.disposed) return;
    const member = this.members.get(tab);
    if (member) member.data = data;
    else {
      this.members.set(tab, { data, since: tab.connected ? ATTACHED : NOT_YET });
      tab.addChannel(this);
    }
    this.changed();
  }

  /** Take the tab of `c` out of the channel. */
  leave(c: Context): void {
    this.memberGone(c._tab);
  }

  /** Replace the data a member tab carries (a rename). */
  update(c: Context, data: D): void {
    const member = this.members.get(c._tab);
    if (!member) return;
    member.data = data;
    this.changed();
  }

  /** The data of the members that are present: attached, parked, or dropped less than `grace` ago. */
  present(): D[] {
    const out: D[] = [];
    const cutoff = Date.now() - this.grace;
    for (const m of this.members.values()) {
      if (m.data !== undefined && (m.since === ATTACHED || m.since === PARKED || m.since > cutoff)) out.push(m.data);
    }
    return out;
  }

  /** @internal The tab is gone (or left). */
  memberGone(tab: Tab): void {
    if (!this.members.delete(tab)) return;
    tab.removeChannel(this);
    this.changed();
    if (this.members.size === 0) {
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
      this.onEmpty(this);
    }
  }

  /** @internal The member's stream attached. */
  attached(tab: Tab): void {
    const member = this.members.get(tab);
    if (!member || member.since === ATTACHED) return;
    member.since = ATTACHED;
    this.changed();
  }

  /** @internal The member's stream dropped: it stays present for the grace period. */
  detached(tab: Tab): void {
    const member = this.members.get(tab);
    if (!member || member.since !== ATTACHED) return;
    member.since = Date.now();
    this.graceTimer ??= setTimeout(() => this.graceEnded(), this.grace + 10);
  }

  /** @internal The member's tab is hidden and released its stream, but it is open: still present. */
  parked(tab: Tab): void {
    const member = this.members.get(tab);
    if (!member || member.since === PARKED) return;
    const wasPresent = member.since === ATTACHED || member.since > Date.now() - this.grace;
    member.since = PARKED;
    if (!wasPresent) this.changed();
  }

  private graceEnded(): void {
    this.graceTimer = undefined;
    const cutoff = Date.now() - this.grace;
    let waiting = 0;
    for (const m of this.members.values()) if (m.since > cutoff) waiting = Math.max(waiting, m.since);
    this.changed();
    // Members whose grace runs on: one timer for the latest of them.
    if (waiting > 0) this.graceTimer = setTimeout(() => this.graceEnded(), waiting - cutoff + 10);
  }

  private changed(): void {
    try {
      this.onChange?.(this);
    } catch {
      // A listener's failure must not break membership bookkeeping; the listener logs its own errors.
    }
  }

  /** Patch every member's page: rendered and encoded once, the same bytes written to each. */
  patch(selector: string, html: Html | null, mode: PatchMode = "outer"): void {
    if (this.members.size === 0) return;
    const elements = mode === "remove" || html === null ? undefined : renderHtml(html);
    const frame = Buffer.from(patchElements(elements, { selector, mode }), "utf8");
    for (const tab of this.members.keys()) tab.push(frame, "patch", frame.length);
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
    for (const tab of this.members.keys()) {
      tab.push(frame, "patch", frame.length);
      tab.streams?.find((s) => s.id === listId)?.inserted(list.length, at);
    }
  }

  /** Remove every element matching `selector` from every member's page. */
  remove(selector: string): void {
    this.patch(selector, null, "remove");
  }
}
