// Who is in each room right now, across every instance. Each instance knows its own connected tabs
// and announces a snapshot of them on a core subject when they change and every few seconds; it keeps
// the latest snapshot of every other instance until it stops hearing from it. A crashed instance's
// users therefore disappear after SILENCE_MS, a closed tab's at once (after a short grace for blips).
import { randomBytes } from "node:crypto";
import type { Logger } from "../../src/log.ts";
import type { PubSub, Unsubscribe } from "../../src/pubsub/types.ts";

export interface Member {
  /** Identity id: one entry per person even with several tabs open. */
  id: string;
  name: string;
  emoji: string;
}

interface Snapshot {
  instance: string;
  rooms: Record<string, Member[]>;
}

const SNAPSHOT_SUBJECT = "presence.snapshot";
const HELLO_SUBJECT = "presence.hello";
const HEARTBEAT_MS = 5_000;
const SILENCE_MS = 3 * HEARTBEAT_MS + 1_000;
const ANNOUNCE_DEBOUNCE_MS = 50;

export class Presence {
  readonly instance = randomBytes(8).toString("hex");
  /** room → tab id → member */
  private readonly local = new Map<string, Map<string, Member>>();
  private readonly remote = new Map<string, { rooms: Record<string, Member[]>; heardAt: number }>();
  private readonly listeners = new Map<string, Set<(members: Member[]) => void>>();
  private readonly lastShown = new Map<string, string>();
  private readonly unsubscribes: Unsubscribe[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private announceTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pubsub: PubSub,
    private readonly log: Logger,
  ) {
    this.unsubscribes.push(
      pubsub.subscribe(SNAPSHOT_SUBJECT, (msg) => this.onSnapshot(msg.data)),
      pubsub.subscribe(HELLO_SUBJECT, (msg) => {
        if (new TextDecoder().decode(msg.data) !== this.instance) this.scheduleAnnounce();
      }),
    );
    const heartbeat = setInterval(() => this.announce(), HEARTBEAT_MS);
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
    this.changed(room);
    return () => {
      if (this.local.get(room)?.get(tabId) === member && this.local.get(room)?.delete(tabId)) this.changed(room);
    };
  }

  /** Members of a room on every instance, one per person, sorted by name. */
  members(room: string): Member[] {
    const byId = new Map<string, Member>();
    for (const m of this.local.get(room)?.values() ?? []) byId.set(m.id, m);
    for (const snap of this.remote.values())
      for (const m of snap.rooms[room] ?? []) if (!byId.has(m.id)) byId.set(m.id, m);
    return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** Call `fn` with the room's members whenever they change. */
  watch(room: string, fn: (members: Member[]) => void): () => void {
    let set = this.listeners.get(room);
    if (!set) {
      set = new Set();
      this.listeners.set(room, set);
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  private changed(room: string): void {
    this.notify(room);
    this.scheduleAnnounce();
  }

  private notify(room: string): void {
    const members = this.members(room);
    const key = JSON.stringify(members);
    if (this.lastShown.get(room) === key) return;
    this.lastShown.set(room, key);
    for (const fn of this.listeners.get(room) ?? []) {
      try {
        fn(members);
      } catch (err) {
        this.log.error({ err }, "presence listener failed");
      }
    }
  }

  private scheduleAnnounce(): void {
    if (this.announceTimer || this.closed) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = undefined;
      this.announce();
    }, ANNOUNCE_DEBOUNCE_MS);
  }

  private snapshot(): Snapshot {
    const rooms: Record<string, Member[]> = {};
    for (const [room, tabs] of this.local) {
      const byId = new Map<string, Member>();
      for (const m of tabs.values()) byId.set(m.id, m);
      if (byId.size > 0) rooms[room] = [...byId.values()];
    }
    return { instance: this.instance, rooms };
  }

  private announce(): void {
    if (!this.closed) void this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot()));
  }

  private async send(subject: string, data: string): Promise<void> {
    try {
      await this.pubsub.publish(subject, data);
    } catch (err) {
      // Presence is best effort: the next heartbeat repeats the whole snapshot.
      this.log.debug({ err }, "presence announce failed");
    }
  }

  private onSnapshot(data: Uint8Array): void {
    let snap: Snapshot;
    try {
      snap = JSON.parse(new TextDecoder().decode(data)) as Snapshot;
      if (typeof snap.instance !== "string" || typeof snap.rooms !== "object" || snap.rooms === null) return;
    } catch {
      return;
    }
    if (snap.instance === this.instance) return;
    const before = this.remote.get(snap.instance)?.rooms ?? {};
    this.remote.set(snap.instance, { rooms: snap.rooms, heardAt: Date.now() });
    for (const room of new Set([...Object.keys(before), ...Object.keys(snap.rooms)])) this.notify(room);
  }

  private sweep(): void {
    const cutoff = Date.now() - SILENCE_MS;
    for (const [instance, snap] of this.remote) {
      if (snap.heardAt >= cutoff) continue;
      this.remote.delete(instance);
      for (const room of Object.keys(snap.rooms)) this.notify(room);
    }
  }

  /** Tell the others we are gone (so they drop our members at once) and stop. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.local.clear();
    await this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot()));
    this.closed = true;
    clearTimeout(this.announceTimer);
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unsubscribes) u();
  }
}
