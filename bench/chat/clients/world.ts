// A bench:chat client process's world: the tabs (and browsers) it holds, the system under test they
// talk to, every socket it opened (for the bytes on the wire), and the counters of what was unusual.
import { Agent, type ClientRequestArgs } from "node:http";
import { type NetConnectOpts, connect as netConnect, type Socket } from "node:net";
import type { Socket as IoSocket } from "socket.io-client";
import type { SseParse } from "../../../harness/sse-parse.ts";
import { type Counters, emptyCounters } from "../client-api.ts";
import type { Protocol } from "../shared.ts";

export const HOST = "127.0.0.1";

export interface Tab extends SseParse {
  index: number;
  room: number;
  // via
  path: string;
  cookie: string;
  tabId: string;
  actionId: string;
  signals: Record<string, unknown>;
  viewHash: string;
  /** Its own event stream's socket (or its page's, while it loads); none on a shared stream. */
  sock: Socket | undefined;
  // Socket.IO
  io: IoSocket | undefined;
  closed: boolean;
  /** Seqs delivered to this tab (others' messages), in arrival order, and the (interned) item id of each. */
  received: Uint32Array;
  receivedIds: Uint32Array;
  nReceived: number;
  /** Ids (interned) of the items the page came with. */
  pageIds: number[];
  /** Newest list position this tab holds. */
  maxPos: number;
  /** Presence count last shown; whether it has shown the target. */
  presence: number;
  presenceReached: boolean;
}

/**
 * A browser of the tabs scenario: one session (one cookie jar) and its tabs; with a shared stream, the
 * stream's socket and how its events are routed: a `via-tab` names the slot of the tab whose events
 * follow, as the runtime's shared worker reads it.
 */
export interface Browser extends SseParse {
  index: number;
  room: number;
  cookie: string;
  tabs: Tab[];
  sock: Socket | undefined;
  /** The shared stream's id (its `via-mux` event); empty until it came. */
  muxId: string;
  onMuxId: (() => void) | undefined;
  /** Tabs by the slot they were attached in (1, 2, …). */
  bySlot: Map<number, Tab>;
  /** The tab whose lane is being read (the last `via-tab`); undefined before the first. */
  lane: Tab | undefined;
  closed: boolean;
}

/** The browsers of the tabs scenario this process holds. */
export const browsers: Browser[] = [];

/** The system under test, and the run this process is part of (set by the connect commands). */
export const world = {
  protocol: "via" as Protocol,
  port: 0,
  rooms: [] as string[],
  /** Tabs of this process per room index. */
  localRoomCount: [] as number[],
  /** Cleared at "stop": streams that close after it are not counted as closed during the run. */
  running: true,
};
/** This process's tabs, and by their global index. */
export const tabs: Tab[] = [];
export const byIndex = new Map<number, Tab>();
/** Every socket this process opened (closed ones keep their bytesRead). */
export const sockets: Socket[] = [];

/** An http.Agent whose sockets are counted (page loads, actions, Socket.IO's WebSocket upgrade). */
export class CountingAgent extends Agent {
  override createConnection(options: ClientRequestArgs): Socket {
    const s = netConnect(options as NetConnectOpts);
    sockets.push(s);
    return s;
  }
}

export const counters: Counters = emptyCounters();

export function unexpected(sample: string): void {
  counters.unexpected++;
  if (!counters.unexpectedSample) counters.unexpectedSample = sample.slice(0, 300);
}

export function onClosed(t: Tab): void {
  if (t.closed) return;
  t.closed = true;
  if (world.running) counters.closed++;
}

/** Item ids as small integers (one entry per message, not per tab). */
const idIndex = new Map<string, number>();
export function intern(id: string): number {
  let i = idIndex.get(id);
  if (i === undefined) {
    i = idIndex.size + 1;
    idIndex.set(id, i);
  }
  return i;
}
