// A protocol-level chat tab for drills and tests: loads a room page, keeps the event stream open, and
// maintains what a browser would show in #messages by applying the same patches the runtime applies
// to a streamed list (docs/PROTOCOL.md): an `append` adds items or updates one in place (same id), a
// `prepend` adds older items, an `inner` replaces the list, a `remove` trims it; a re-render of the
// view leaves the list alone. It sends like the Send button does, and reconnects like the runtime
// does (same tab id, the view's hash and the list's newest position), so a server restart or a
// dropped stream is recovered the way a real tab recovers it. Like the runtime it keeps the signals
// the server patches (`client.signals`, sent with every action: the chat's outbox of unconfirmed sends)
// and, after a reconnect, fires the view's `data-on-reconnect` action when its signal holds something.
import {
  actionIn,
  actionOn,
  listTrim,
  type MessageState,
  messageItems,
  messageList,
  showsLoadOlder,
  viewRenderHash,
} from "./chat-markup.ts";
import { sleep } from "./cleanup.ts";
import { Browser, type EventStream, type HttpResult, type SseEvent, type TabClient } from "./sse-client.ts";

export type { MessageState };

export interface ShownMessage {
  /** The message id (the element is #m-<id>). */
  id: string;
  /** Stream sequence, once the list got the stored copy. */
  seq?: number;
  author: string;
  text: string;
  state: MessageState;
}

/** Every chat message element in an HTML fragment, in document order. */
export function parseMessages(html: string): ShownMessage[] {
  return messageItems(html, true).map((m) => ({
    id: m.id,
    ...(m.pos ? { seq: m.pos } : {}),
    author: m.author!,
    text: m.text,
    state: m.state,
  }));
}

/** The items of the #messages list in a page (or a view render). */
function listItems(html: string): ShownMessage[] {
  const list = messageList(html);
  return list ? parseMessages(list.items) : [];
}

export class ChatTab {
  /** What #messages shows, in order. */
  messages: ShownMessage[] = [];
  /** When each message id first arrived on this tab's stream (ms, performance.timeOrigin + now). */
  readonly arrivals = new Map<string, number>();
  /** Called after each event that changed `messages`. */
  onChange: (() => void) | undefined;
  /**
   * The items that event inserted or updated (all of them after a reset, none after a trim): what a
   * listener needs to look at, instead of the whole list on every event.
   */
  lastChanged: readonly ShownMessage[] = [];
  /** Bumped on every change of `messages` (a cache key for what is computed from the list). */
  version = 0;
  /** Streams opened so far (1 + reconnects). */
  connects = 0;
  /** The server told this tab to reload (its page is gone): the drill must load a new tab. */
  reloadAsked = false;
  private stream: EventStream | undefined;
  /** The list starts after older stored messages ("Load older" is shown). */
  hasOlder: boolean;
  /** The latest whole view (the page, then each view render): where the action ids are read. */
  private view: string;
  private viewHash: string | undefined;

  private constructor(readonly client: TabClient) {
    this.view = client.html;
    this.viewHash = client.viewHash;
    this.messages = listItems(client.html);
    this.lastChanged = this.messages;
    this.hasOlder = showsLoadOlder(client.html);
  }

  /** Loads `/room/<room>` in `browser` (a new browser session by default) and opens its stream. */
  static async open(base: string, room = "Go", browser = new Browser(base)): Promise<ChatTab> {
    const tab = new ChatTab(await browser.load(`/room/${encodeURIComponent(room)}`));
    await tab.connect();
    return tab;
  }

  get tabId(): string {
    return this.client.tab;
  }

  get connected(): boolean {
    return this.stream !== undefined && !this.stream.ended;
  }

  /** The newest stream position the list holds (0 if none). */
  get position(): number {
    let pos = 0;
    for (const m of this.messages) if (m.seq !== undefined && m.seq > pos) pos = m.seq;
    return pos;
  }

  /** What the runtime reports on connect: the view's hash and the list's position, size and "more". */
  private resumeQuery(): string {
    const list = `messages:${this.position}:${this.messages.length}:${this.hasOlder ? 1 : 0}`;
    return `&streams=${encodeURIComponent(list)}`;
  }

  /** Opens the stream (again), as the runtime does: same tab id, the view's hash and the list's position. */
  async connect(): Promise<void> {
    this.disconnect();
    const hash = this.viewHash;
    const base = this.client.streamUrl().replace(/&h=[^&]*/, "");
    const url = `${base}${hash ? `&h=${encodeURIComponent(hash)}` : ""}${this.resumeQuery()}`;
    const s = await this.client.connectTo(url);
    this.stream = s;
    this.connects++;
    if (s.status !== 200) {
      s.close();
      throw new Error(`stream → ${s.status}: ${s.raw}`);
    }
    // Events can be parsed before this line runs: apply those, then every later one as it comes.
    for (const e of s.events) this.apply(e);
    s.onEvent = (e) => this.apply(e);
    if (this.connects > 1) this.fireReconnectTrigger();
  }

  /** Resolves when the last `data-on-reconnect` action fired (if any) was answered. */
  reconnectAction: Promise<HttpResult | undefined> = Promise.resolve(undefined);

  /** What src/client/actions.ts does when the stream is back: the view's `data-on-reconnect` action. */
  private fireReconnectTrigger(): void {
    const spec = actionOn(this.view, "reconnect");
    if (!spec) return;
    const { action, if: when } = spec;
    if (typeof when === "string" && !holdsSomething(this.client.signals[when])) return;
    this.reconnectAction = this.client.action(action, this.client.signals).catch(() => undefined);
  }

  /** Drops the stream from the client side (a network blip). */
  disconnect(): void {
    if (this.stream) this.stream.onEvent = undefined;
    this.stream?.close();
    this.stream = undefined;
  }

  /** Posts a message like the Send button (the statement signal carries the text). */
  send(text: string): Promise<HttpResult> {
    return this.client.action(actionIn(this.view, "send"), { ...this.client.signals, statement: text });
  }

  /** Waits until `pred` holds for the shown messages (re-checked on every event); throws after `timeoutMs`. */
  async waitUntil(pred: (messages: ShownMessage[]) => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred(this.messages)) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `chat tab ${this.tabId}: timed out waiting for ${what}; shows ${this.messages.length} messages`,
        );
      }
      const s = this.stream;
      if (!s || s.ended) await sleep(Math.min(left, 20));
      else await s.waitFor(() => true, left, s.events.length).catch(() => undefined);
    }
  }

  /** The oldest position the list shows: the cursor the runtime sends with "Load older". */
  get oldestPosition(): string | undefined {
    let oldest: number | undefined;
    for (const m of this.messages) if (m.seq !== undefined && (oldest === undefined || m.seq < oldest)) oldest = m.seq;
    return oldest === undefined ? undefined : String(oldest);
  }

  /** Presses "Load older" once, as the runtime does (with the list's oldest position as the cursor). */
  loadOlder(): Promise<HttpResult> {
    return this.client.action(actionIn(this.view, "load-older"), this.client.signals, {}, this.oldestPosition);
  }

  /** Presses "Load older" until the start of the room shows: the list then holds the whole history. */
  async loadAll(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.hasOlder) {
      const before = this.messages.length;
      const res = await this.loadOlder();
      if (res.status >= 300) throw new Error(`load older → ${res.status} ${res.body}`);
      await this.waitUntil(
        (m) => m.length > before || !this.hasOlder,
        Math.max(1, deadline - Date.now()),
        "older messages",
      );
    }
  }

  close(): void {
    this.disconnect();
  }

  private apply(e: SseEvent): void {
    if (e.event === "datastar-patch-signals") {
      const patch = JSON.parse(e.data.signals ?? "{}") as Record<string, unknown>;
      mergeSignals(this.client.signals, patch, e.data.onlyIfMissing === "true");
      return;
    }
    const changed = this.patch(e);
    if (changed) {
      const now = performance.timeOrigin + performance.now();
      for (const m of changed) if (!this.arrivals.has(m.id)) this.arrivals.set(m.id, now);
      this.lastChanged = changed;
      this.version++;
      this.onChange?.();
    }
  }

  /**
   * Applies one event; the items it inserted or updated if it changed the message list (or whether
   * older messages exist), else undefined.
   */
  private patch(e: SseEvent): ShownMessage[] | undefined {
    if (e.event === "via-reload") {
      this.reloadAsked = true;
      return undefined;
    }
    if (e.event !== "datastar-patch-elements") return undefined;
    const html = e.data.elements ?? "";
    const selector = e.data.selector;
    const mode = e.data.mode ?? "outer";
    if (selector === undefined) {
      // A view render: the list element comes empty and the browser keeps its items.
      const hash = viewRenderHash(html);
      if (!hash) return undefined;
      this.view = html;
      this.viewHash = hash;
      const hadOlder = this.hasOlder;
      this.hasOlder = showsLoadOlder(html);
      return hadOlder !== this.hasOlder ? [] : undefined;
    }
    if (selector === "#messages") {
      const items = parseMessages(html);
      if (mode === "inner") {
        this.messages = items;
        return items;
      }
      if (mode === "append") return items.map((item) => this.upsert(item, "end"));
      if (mode === "prepend") {
        const fresh = items.filter((i) => !this.messages.some((m) => m.id === i.id));
        this.messages.unshift(...fresh);
        return fresh;
      }
      return undefined;
    }
    const trim = listTrim(selector);
    if (trim && mode === "remove") {
      if (trim.fromEnd) this.messages.splice(Math.max(0, this.messages.length - trim.count), trim.count);
      else this.messages.splice(0, trim.count);
      return [];
    }
    return undefined;
  }

  /**
   * A list insert: an item whose id the list has replaces it in place (keeping a known position). Returns
   * the item as the list now holds it. Newest items are at the end, and an update is almost always of a
   * recent one, so the search starts there.
   */
  private upsert(item: ShownMessage, at: "end"): ShownMessage {
    let i = this.messages.length - 1;
    while (i >= 0 && this.messages[i]!.id !== item.id) i--;
    if (i < 0) {
      if (at === "end") this.messages.push(item);
      return item;
    }
    const seq = item.seq ?? this.messages[i]!.seq;
    const shown = seq === undefined ? item : { ...item, seq };
    this.messages[i] = shown;
    return shown;
  }
}

function holdsSomething(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object" && v !== null) return Object.keys(v).length > 0;
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== "";
}

/** The runtime's signal patch (RFC 7386 merge; with onlyIfMissing only absent keys are set). */
function mergeSignals(target: Record<string, unknown>, patch: Record<string, unknown>, onlyIfMissing: boolean): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    const isObj = (v: unknown): v is Record<string, unknown> =>
      typeof v === "object" && v !== null && !Array.isArray(v);
    if (value === null) {
      if (!onlyIfMissing) delete target[key];
    } else if (isObj(value) && isObj(current)) {
      mergeSignals(current, value, onlyIfMissing);
    } else if (!onlyIfMissing || current === undefined) {
      target[key] = isObj(value) ? structuredClone(value) : value;
    }
  }
}
