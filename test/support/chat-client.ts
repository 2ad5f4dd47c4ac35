// A protocol-level chat tab for drills and tests: loads a room page, keeps the event stream open, and
// maintains what a browser would show in #messages by applying the same patches the runtime applies
// (a full view render replaces the list, an `append` into #messages adds, an `outer` on #m-<id>
// replaces one). It sends like the Send button does, and reconnects like the runtime does (same tab
// id, `last` = the last event id seen), so a server restart or a dropped stream is recovered the way
// a real tab recovers it.
import { unescapeHtml } from "../../src/server/html.ts";
import { actionIn, Browser, type EventStream, type HttpResult, type SseEvent, type TabClient } from "./sse-client.ts";

export type MessageState = "sending" | "failed" | "sent";

export interface ShownMessage {
  /** The message id (the element is #m-<id>). */
  id: string;
  /** Stream sequence, once stored. */
  seq?: number;
  author: string;
  text: string;
  state: MessageState;
}

const LI = /<li class="chat-message([^"]*)" id="m-([^"]+)"(?: data-seq="(\d+)")?>([\s\S]*?)<\/li>/g;
const AUTHOR = /<strong class="author">([\s\S]*?)<\/strong>/;
const TEXT = /<p class="text">([\s\S]*?)<\/p>/;

/** Every chat message element in an HTML fragment, in document order. */
export function parseMessages(html: string): ShownMessage[] {
  const out: ShownMessage[] = [];
  for (const m of html.matchAll(LI)) {
    const classes = m[1]!.split(" ");
    const state: MessageState = classes.includes("sending")
      ? "sending"
      : classes.includes("failed")
        ? "failed"
        : "sent";
    out.push({
      id: m[2]!,
      ...(m[3] ? { seq: Number(m[3]) } : {}),
      author: unescapeHtml(AUTHOR.exec(m[4]!)?.[1] ?? ""),
      text: unescapeHtml(TEXT.exec(m[4]!)?.[1] ?? ""),
      state,
    });
  }
  return out;
}

export class ChatTab {
  /** What #messages shows, in order. */
  messages: ShownMessage[] = [];
  /** When each message id first arrived on this tab's stream (ms, performance.timeOrigin + now). */
  readonly arrivals = new Map<string, number>();
  /** Called after each event that changed `messages`. */
  onChange: (() => void) | undefined;
  /** Streams opened so far (1 + reconnects). */
  connects = 0;
  /** The server told this tab to reload (its page is gone): the drill must load a new tab. */
  reloadAsked = false;
  private stream: EventStream | undefined;
  private lastEventId = "";
  /** The list starts after older stored messages ("Load older" is shown). */
  hasOlder: boolean;
  /** The latest whole view (the page, then each full render): where the action ids are read. */
  private view: string;

  private constructor(readonly client: TabClient) {
    this.view = client.html;
    this.messages = parseMessages(client.html);
    this.hasOlder = client.html.includes('id="load-older"');
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

  /** Opens the stream (again), as the runtime does: same tab id, and the last event id once there is one. */
  async connect(): Promise<void> {
    this.disconnect();
    const s = await this.client.connect(this.lastEventId ? `&last=${encodeURIComponent(this.lastEventId)}` : "");
    this.stream = s;
    this.connects++;
    if (s.status !== 200) {
      s.close();
      throw new Error(`stream → ${s.status}: ${s.raw}`);
    }
    // Events can be parsed before this line runs: apply those, then every later one as it comes.
    for (const e of s.events) this.apply(e);
    s.onEvent = (e) => this.apply(e);
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
      if (!s || s.ended) await new Promise((r) => setTimeout(r, Math.min(left, 20)));
      else await s.waitFor(() => true, left, s.events.length).catch(() => undefined);
    }
  }

  /** Presses "Load older" until the start of the room shows: the list then holds the whole history. */
  async loadAll(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.hasOlder) {
      const before = this.messages.length;
      const res = await this.client.action(actionIn(this.view, "load-older"), this.client.signals);
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
    if (e.id) this.lastEventId = e.id;
    if (this.patch(e)) {
      const now = performance.timeOrigin + performance.now();
      for (const m of this.messages) if (!this.arrivals.has(m.id)) this.arrivals.set(m.id, now);
      this.onChange?.();
    }
  }

  /** Applies one event to `messages`; true if it was a patch of the message list. */
  private patch(e: SseEvent): boolean {
    if (e.event === "via-reload") {
      this.reloadAsked = true;
      return false;
    }
    if (e.event !== "datastar-patch-elements") return false;
    const html = e.data.elements ?? "";
    const selector = e.data.selector;
    const mode = e.data.mode ?? "outer";
    if (selector === undefined) {
      // A full render (first attach after a drop, resync, or re-bootstrap after a restart).
      if (html.includes('<ol id="messages">')) {
        this.view = html;
        this.hasOlder = html.includes('id="load-older"');
        const ol = html.slice(html.indexOf('<ol id="messages">'));
        this.messages = parseMessages(ol.slice(0, ol.indexOf("</ol>")));
        return true;
      }
      return false;
    }
    if (selector === "#messages" && mode === "append") {
      this.messages.push(...parseMessages(html));
      return true;
    }
    const one = /^#m-(.+)$/.exec(selector);
    if (one && mode === "outer") {
      const i = this.messages.findIndex((m) => m.id === one[1]);
      const [replacement] = parseMessages(html);
      if (i >= 0 && replacement) this.messages[i] = replacement;
      return i >= 0;
    }
    return false;
  }
}
