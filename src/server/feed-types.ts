// The public shapes of a feed (feed.ts): what an app declares it with, what a tab joins it with, and
// what its callbacks are told.
import type { Delivery } from "../pubsub/types.ts";
import type { Html } from "./types.ts";

/** Where a list has a gap it cannot fill: messages the stream deleted before the list got them. */
export interface GapInfo {
  /** The message the list shows next, after the gap. */
  seq: number;
  /** When the stream stored it (ms since the Unix epoch). */
  time: number;
  /** When the stream stored the list's last message before the gap, if this process knows. */
  since?: number;
}

/** Why a list was reset to the last page. */
export interface ResetInfo {
  /** The list's newest message is not stored any more (and maybe some after it are gone too). */
  expired: boolean;
}

/** Where a message sits in its stream. */
export interface ItemMeta {
  subject: string;
  seq: number;
  /** When the stream stored it (ms since the Unix epoch). */
  time: number;
}

export interface FeedOptions<T, M> {
  /** The value a stored message shows (validate here; throw to skip the message). Runs once per message. */
  decode: (msg: Delivery) => T;
  /** One list item for a value. Runs once per message and variant, never per tab. */
  render: (value: T, meta: ItemMeta, variant: string) => Html;
  /** Which rendering a member gets (default ""). Runs per member and message: keep it a comparison. */
  variant?: (value: T, member: M) => string;
  /** Items on the page, and per "Load older" (default 50). */
  pageSize?: number;
  /** Items a tab keeps; past it the oldest leave the page and "Load older" brings them back (default 1,000). */
  limit?: number;
  /**
   * The list item that marks a gap the list cannot fill (messages the stream deleted before the list got
   * them). Default: `<li class="via-gap" role="note">` saying some messages expired. Escaped like any JSX.
   */
  gap?: (info: GapInfo) => Html;
  /** Most missed items a reattaching tab is sent one by one; a longer gap resets its list (default `limit`). */
  fillLimit?: number;
  /**
   * What the decoded and rendered messages kept for page renders, fills and new tabs may take, in bytes
   * of their markup and encoded frames (default 8 MiB; the least recently used go first).
   */
  cacheBytes?: number;
}

export interface JoinOptions {
  /** The list's element id (default "messages"). */
  id?: string;
  /** Called after the list was reset to the last page (e.g. to re-add this tab's unsent items). */
  onReset?: (info: ResetInfo) => void;
}
