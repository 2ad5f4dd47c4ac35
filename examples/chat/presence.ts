// Who is in each room right now, across every instance. Each instance knows its own connected tabs
// and announces, per room, a snapshot of them on a core subject when they change and every few
// seconds; it keeps the latest snapshot of every other instance until it stops hearing from it. A
// crashed instance's users therefore disappear after SILENCE_MS, a closed tab's at once (after a
// short grace for blips).
//
// Built to stay cheap with thousands of tabs in a room (bench:chat): changes are coalesced, so a burst
// of N joins costs a few roster updates instead of N (each going to every tab: N² patches); a snapshot
// lists at most SNAPSHOT_MEMBERS people of a room (plus its full count), so it stays far below NATS's
// 1 MB payload limit; and watchers of a room all get the same Roster object, so a view can render it
// once for every tab.
import { randomBytes } from "node:crypto";
import type { Logger } from "../../src/log.ts";
import type { PubSub, Unsubscribe } from "../../src/pubsub/types.ts";

export interface Member {
  /** Identity id: one entry per person even with several tabs open. */
  id: string;
  name: string;
  emoji: string;
}

/** A room's people: how many, and who (sorted by name; at most SHOWN_MEMBERS when the room is big). */
export interface Roster {
  count: number;
  members: Member[];
}

/** One instance's people in one room. */
interface Snapshot {
  instance: string;
  room: string;
  /** Distinct people of this instance in the room. */
  count: number;
  /** Up to SNAPSHOT_MEMBERS of them. */
  members: Member[];
}

const SNAPSHOT_SUBJECT = "presence.snapshot";
const HELLO_SUBJECT = "presence.hello";
const HEARTBEAT_MS = 5_000;
const SILENCE_MS = 3 * HEARTBEAT_MS + 1_000;
/** Changes within this window are announced (and shown) together. */
const COALESCE_MS = 100;
const SNAPSHOT_MEMBERS = 200;
/** The roster a page shows names this many people at most; the count is always complete. */
export const SHOWN_MEMBERS = 50;

export class Presence {
  readonly instance = randomBytes(8).toString("hex");
  /** room → tab id → member */
  private readonly local = new Map<string, Map<string, Member>>();
  /** instance → room → its snapshot; heardAt per instance. */
  private readonly remote = new Map<string, { rooms: Map<string, Snapshot>; heardAt: number }>();
  private readonly listeners = new Map<string, Set<(roster: Roster) => void>>();
  private readonly lastShown = new Map<string, string>();
  private readonly unsubscribes: Unsubscribe[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** Rooms whose roster may have changed / whose local members changed, since the last flush. */
  private readonly dirtyShown = new Set<string>();
  private readonly dirtyLocal = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pubsub: PubSub,
    private readonly log: Logger,
  ) {
    this.unsubscribes.push(
      pubsub.subscribe(SNAPSHOT_SUBJECT, (msg) => this.onSnapshot(msg.data)),
      pubsub.subscribe(HELLO_SUBJECT, (msg) => {
        if (new TextDecoder().decode(msg.data) !== this.instance) this.announceAll();
      }),
    );
    const heartbeat = setInterval(() => this.announceAll(), HEARTBEAT_MS);
    const sweep = setInterval(() => this.sweep(), 1_000);
    heartbeat.unref();
    sweep.unref();
    this.timers.push(heartbeat, sweep);
    // Ask the others for their snapshots now rather than waiting for their next heartbeat.
    void this.send(HELLO_SUBJECT, this.instance);
  }

  /** Add a tab's member to a room; returns the function that removes it. */
  join(room: string, tabId: string, member: Member): () => void {
    let tabs = this.local.get(room);
    if (!tabs) {
      tabs = new Map();
      this.local.set(room, tabs);
    }
    tabs.set(tabId, member);
    this.changed(room, true);
    return () => {
      const current = this.local.get(room);
      if (current?.get(tabId) !== member) return;
      current.delete(tabId);
      if (current.size === 0) this.local.delete(room);
      this.changed(room, true);
    };
  }

  /** The room's people on every instance, one entry per person. */
  roster(room: string): Roster {
    const byId = new Map<string, Member>();
    for (const m of this.local.get(room)?.values() ?? []) byId.set(m.id, m);
    let count = byId.size;
    for (const snap of this.remote.values()) {
      const s = snap.rooms.get(room);
      if (!s) continue;
      // People this instance listed that we already counted (the same person on two instances)
      // are not counted twice; past SNAPSHOT_MEMBERS the count can only be approximate.
      let alreadyCounted = 0;
      for (const m of s.members) {
        if (byId.has(m.id)) alreadyCounted++;
        else byId.set(m.id, m);
      }
      count += Math.max(0, s.count - alreadyCounted);
    }
    const members = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    return { count: Math.max(count, members.length), members: members.slice(0, SHOWN_MEMBERS) };
  }

  /** Call `fn` with the room's roster whenever it changes (every watcher of a room gets the same object). */
  watch(room: string, fn: (roster: Roster) => void): () => void {
    let set = this.listeners.get(room);
    if (!set) {
      set = new Set();
      this.listeners.set(room, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.listeners.get(room) === set) {
        this.listeners.delete(room);
        this.lastShown.delete(room);
      }
    };
  }

  private changed(room: string, local: boolean): void {
    this.dirtyShown.add(room);
    if (local) this.dirtyLocal.add(room);
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => this.flush(), COALESCE_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const room of this.dirtyShown) this.notify(room);
    for (const room of this.dirtyLocal) this.announce(room);
    this.dirtyShown.clear();
    this.dirtyLocal.clear();
  }

  private notify(room: string): void {
    const listeners = this.listeners.get(room);
    if (!listeners || listeners.size === 0) return;
    const roster = this.roster(room);
    const key = `${roster.count}|${roster.members.map((m) => `${m.id}:${m.name}:${m.emoji}`).join("|")}`;
    if (this.lastShown.get(room) === key) return;
    this.lastShown.set(room, key);
    for (const fn of listeners) {
      try {
        fn(roster);
      } catch (err) {
        this.log.error({ err }, "presence listener failed");
      }
    }
  }

  private snapshot(room: string): Snapshot {
    const byId = new Map<string, Member>();
    for (const m of this.local.get(room)?.values() ?? []) byId.set(m.id, m);
    return { instance: this.instance, room, count: byId.size, members: [...byId.values()].slice(0, SNAPSHOT_MEMBERS) };
  }

  /** Announce one room (also when it just became empty, so the others drop its people at once). */
  private announce(room: string): void {
    if (!this.closed) void this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot(room)));
  }

  private announceAll(): void {
    for (const room of this.local.keys()) this.announce(room);
  }

  private async send(subject: string, data: string): Promise<void> {
    try {
      await this.pubsub.publish(subject, data);
    } catch (err) {
      // Presence is best effort: the next heartbeat repeats every snapshot.
      this.log.debug({ err }, "presence announce failed");
    }
  }

  private onSnapshot(data: Uint8Array): void {
    let snap: Snapshot;
    try {
      snap = JSON.parse(new TextDecoder().decode(data)) as Snapshot;
      if (
        typeof snap.instance !== "string" ||
        typeof snap.room !== "string" ||
        typeof snap.count !== "number" ||
        !Array.isArray(snap.members)
      ) {
        return;
      }
    } catch {
      return;
    }
    if (snap.instance === this.instance) return;
    let entry = this.remote.get(snap.instance);
    if (!entry) {
      entry = { rooms: new Map(), heardAt: 0 };
      this.remote.set(snap.instance, entry);
    }
    entry.heardAt = Date.now();
    if (snap.count === 0) entry.rooms.delete(snap.room);
    else entry.rooms.set(snap.room, snap);
    this.changed(snap.room, false);
  }

  private sweep(): void {
    const cutoff = Date.now() - SILENCE_MS;
    for (const [instance, entry] of this.remote) {
      if (entry.heardAt >= cutoff) continue;
      this.remote.delete(instance);
      for (const room of entry.rooms.keys()) this.changed(room, false);
    }
  }

  /** Tell the others we are gone (so they drop our members at once) and stop. */
  async close(): Promise<void> {
    if (this.closed) return;
    const rooms = [...this.local.keys()];
    this.local.clear();
    await Promise.all(rooms.map((room) => this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot(room)))));
    this.closed = true;
    clearTimeout(this.flushTimer);
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unsubscribes) u();
  }
}
