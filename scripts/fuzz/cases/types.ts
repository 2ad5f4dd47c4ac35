// The shapes the case generator shares with the run: the fixture (the legitimate sessions, tabs and
// assets made before the run) and a case with the statuses it may get. run.ts and most generators use
// them, and they import nothing of the generator, so any module can.
import type { Req } from "../send.ts";

export interface FuzzTab {
  tab: string;
  path: string;
  say: string;
  saveNick: string;
  /** The message list's "Load older" action (a feed's `<list id>-older`). */
  older: string;
}

export interface FuzzSession {
  cookie: string;
  /** Tabs whose stream is attached for the whole run. */
  tabs: FuzzTab[];
  /** Tabs the server issued (page loaded) whose stream never attaches. */
  spares: FuzzTab[];
  /** Tab ids signed for this session, issued longer ago than tabIdMaxAgeMs. */
  expired: string[];
}

export interface Fixture {
  port: number;
  /** The runtime bundle hash (the stream's `v`). */
  version: string;
  sessions: FuzzSession[];
  /** Static asset URLs the server really serves. */
  assets: string[];
  /**
   * This machine's host name and interface addresses (lower case, IPv6 without brackets or zone): the
   * app answers to them besides localhost, *.localhost, 127.0.0.1 and [::1].
   */
  hostNames: string[];
}

export interface Case {
  index: number;
  category: string;
  name: string;
  req: Req;
  /** Acceptable statuses. */
  expect: number[];
  /** Node's own bodyless 400/413/431 (from its HTTP parser, before the app runs) is fine. */
  nodeParser?: boolean;
  /** Node may close the connection without a response (e.g. CONNECT with no listener, EOF mid-body). */
  mayClose?: boolean;
  /** A response body must not contain these (path traversal). */
  mustNotContain?: string[];
  /** For a 200 on the event stream: a `via-reload` and nothing else, or a live stream (no via-reload). */
  sse?: "reload" | "stream";
  /** A tab id this case forged from a real one (one character changed). */
  forged?: { tab: string; nonCanonical: boolean };
  /**
   * For a 200 page: `fresh`, the request carried no cookie the server signed, so it must set a new
   * signed session cookie (not naming the id the request sent, not `Secure` on plain http); `none`, it
   * carried its own session's cookie, so no `Set-Cookie`.
   */
  setCookie?: "fresh" | "none";
  /** When the status is `status`, the reason body must contain `text` (refused for this reason, not another). */
  reason?: { status: number; text: string };
}
