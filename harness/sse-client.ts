// A protocol-level test client: loads a page like a browser would (cookie jar, boot data), opens the
// event stream with node:http, parses Datastar events, and posts actions like the runtime does.

import type { IncomingMessage } from "node:http";
import { request } from "node:http";
import { actionIn, bootOf, viewHashOf } from "./chat-markup.ts";
import { sleep } from "./cleanup.ts";
import { feedEvents, sseParseState } from "./sse-parse.ts";

export { actionIn };

export interface SseEvent {
  event: string;
  id?: string;
  /** data lines grouped by their first word, joined with "\n" (as the runtime parses them). */
  data: Record<string, string>;
}

export interface HttpResult {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

export function parseEvents(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split("\n\n")) {
    if (block.trim() === "") continue;
    let ev: SseEvent | undefined;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^ /, "");
      ev ??= { event: "message", data: {} };
      if (field === "event") ev.event = value;
      else if (field === "id") ev.id = value;
      else if (field === "data") {
        const sp = value.indexOf(" ");
        const key = sp < 0 ? value : value.slice(0, sp);
        const val = sp < 0 ? "" : value.slice(sp + 1);
        ev.data[key] = key in ev.data ? `${ev.data[key]}\n${val}` : val;
      }
    }
    if (ev) out.push(ev);
  }
  return out;
}

export class EventStream {
  readonly events: SseEvent[] = [];
  raw = "";
  status = 0;
  headers: IncomingMessage["headers"] = {};
  ended = false;
  /** Called with each event as it is parsed (before waiters wake). */
  onEvent: ((e: SseEvent) => void) | undefined;
  /** Splits the stream into events; each becomes an SseEvent as it completes. */
  private readonly parse = sseParseState((block) => {
    for (const e of parseEvents(block)) {
      this.events.push(e);
      this.onEvent?.(e);
    }
  });
  private waiters: Array<() => void> = [];
  private res: IncomingMessage | undefined;
  private req: ReturnType<typeof request> | undefined;

  static open(url: string, headers: Record<string, string>): Promise<EventStream> {
    const s = new EventStream();
    return new Promise((resolve, reject) => {
      s.req = request(url, { headers: { Accept: "text/event-stream", ...headers } }, (res) => {
        s.res = res;
        s.status = res.statusCode ?? 0;
        s.headers = res.headers;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => s.onData(chunk));
        const done = () => {
          s.ended = true;
          s.wake();
        };
        res.on("end", done);
        res.on("close", done);
        res.on("error", done);
        resolve(s);
      });
      s.req.on("error", (err) => {
        s.ended = true;
        s.wake();
        reject(err);
      });
      s.req.end();
    });
  }

  private onData(chunk: string): void {
    this.raw += chunk;
    feedEvents(this.parse, chunk);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the first event (after `from`) matching `pred`; rejects after `timeoutMs`. */
  async waitFor(pred: (e: SseEvent) => boolean, timeoutMs = 3000, from = 0): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(pred);
      if (found) return found;
      if (this.ended) throw new Error(`stream ended before the expected event; got: ${JSON.stringify(this.events)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for event; got: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitForEnd(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error("stream did not end");
      await sleep(10);
    }
  }

  /**
   * Stops reading the stream, like a tab whose reader stalled: the socket is no longer read, so TCP
   * backpressure builds up to the server (its writes start returning false once the kernel buffers are
   * full). Events already parsed stay; nothing new is parsed until resume().
   */
  pause(): void {
    this.res?.pause();
  }

  /** Reads again after pause(): what the kernel buffered arrives, then whatever the server does next. */
  resume(): void {
    this.res?.resume();
  }

  get paused(): boolean {
    return this.res?.isPaused() ?? false;
  }

  close(): void {
    this.req?.destroy();
    this.res?.destroy();
  }
}

/** A browser stand-in: one cookie jar, any number of tabs. */
export class Browser {
  cookie = "";
  constructor(readonly base: string) {}

  async load(path = "/"): Promise<TabClient> {
    const res = await httpRequest(this.base + path, { headers: this.cookie ? { Cookie: this.cookie } : {} });
    if (res.status !== 200) throw new Error(`page ${path} → ${res.status} ${res.body}`);
    const setCookie = res.headers["set-cookie"]?.[0];
    if (setCookie) this.cookie = setCookie.split(";")[0]!;
    const boot = bootOf(res.body);
    if (!boot) throw new Error("page has no via-boot meta");
    return new TabClient(this, path, boot.tab, boot.signals, boot.v, res.body);
  }
}

export class TabClient {
  stream: EventStream | undefined;
  constructor(
    readonly browser: Browser,
    readonly path: string,
    readonly tab: string,
    public signals: Record<string, unknown>,
    readonly version: string,
    readonly html: string,
  ) {}

  /** The view hash the page carries (`data-via-hash` of #via-view), as the runtime reports it. */
  get viewHash(): string | undefined {
    return viewHashOf(this.html);
  }

  /** The stream URL the runtime would open for this page: tab, path, version, the view's hash. */
  streamUrl(extra = ""): string {
    const q = new URLSearchParams({ tab: this.tab, path: this.path, v: this.version });
    const hash = this.viewHash;
    if (hash) q.set("h", hash);
    return `${this.browser.base}/_via/sse?${q}${extra}`;
  }

  async connect(extra = "", headers: Record<string, string> = {}): Promise<EventStream> {
    return this.connectTo(this.streamUrl(extra), headers);
  }

  /** Opens the event stream at `url` (a stream URL of this tab) with the browser's cookie. */
  async connectTo(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
    this.stream = await EventStream.open(url, { Cookie: this.browser.cookie, ...headers });
    return this.stream;
  }

  /** Find an action id in the page HTML by the element id it is attached to. */
  actionOf(elementId: string, event = "click"): string {
    return actionIn(this.html, elementId, event);
  }

  /** Posts an action like the runtime; `cursor` is what the runtime sends for a list's "Load older". */
  action(
    actionId: string,
    signals: Record<string, unknown> = this.signals,
    headers: Record<string, string> = {},
    cursor?: string,
  ): Promise<HttpResult> {
    return httpRequest(`${this.browser.base}/_via/action/${actionId}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Via-Request": "1",
        "Via-Tab": this.tab,
        Cookie: this.browser.cookie,
        ...headers,
      },
      body: JSON.stringify(cursor === undefined ? { signals } : { signals, cursor }),
    });
  }
}
