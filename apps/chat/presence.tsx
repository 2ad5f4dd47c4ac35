// Who is in each room right now, across every instance. Each instance knows its own tabs in a room
// from the room's Channel (a member is present while its stream is attached, and for a short grace
// after it drops), and announces, per room, a snapshot of them on a core subject when they change and
// every few seconds; it keeps the latest snapshot of every other instance until it stops hearing from
// it. A crashed instance's users therefore disappear after SILENCE_MS, a closed tab's at once (after
// the grace for blips).
//
// Built so a room of 10,000 tabs costs little: a room's changes are gathered for an interval that
// widens with the room's size (100 ms up to 2 s), then its roster is computed once, rendered once and
// sent to every tab of the room as one shared frame (a Channel), so the work per interval is one
// frame per tab however fast people come and go. Page renders read the last computed roster. A
// snapshot lists at most SNAPSHOT_MEMBERS people (plus the full count), far below NATS's 1 MB payload
// limit.
import { randomBytes } from "node:crypto";
import type { App, Channel, ChannelOptions, Context, Logger, PubSub, Unsubscribe } from "via-ts";
import { type Member, PresenceList, type Roster } from "./view.tsx";

export type { Member, Roster };

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
/** A room's changes within this interval are shown together; it widens by 1 ms per 10 tabs, up to MAX. */
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 2_000;
const SNAPSHOT_MEMBERS = 200;
/** The roster a page shows names this many people at most; the count is always complete. */
export const SHOWN_MEMBERS = 50;
/** A tab whose stream dropped stays "here" this long (by default), so a network blip does not flicker presence. */
export const PRESENCE_GRACE_MS = 5_000;

const EMPTY: Roster = Object.freeze({ count: 0, members: [] }) as Roster;

interface RoomState {
  /** The room's tabs on this instance; present() is who of them is here. */
  channel: Channel<Member> | undefined;
  channelOptions: ChannelOptions<Member>;
  /** Members that are not tabs of this instance (a bot, a test), by a key of the caller's. */
  external: Map<string, Member>;
  /** The last roster computed (what pages render and tabs were sent). */
  roster: Roster;
  /** Everyone in the room when `roster` was computed, by id (a new map each time: never changed). */
  everyone: ReadonlyMap<string, Member>;
  rosterKey: string;
  /** A change since the roster was computed; `timer` will recompute it. */
  timer: NodeJS.Timeout | undefined;
  localChanged: boolean;
}

export class Presence {
  readonly instance = randomBytes(8).toString("hex");
  private readonly rooms = new Map<string, RoomState>();
  /** instance → room → its snapshot; heardAt per instance. */
  private readonly remote = new Map<string, { rooms: Map<string, Snapshot>; heardAt: number }>();
  private readonly watchers = new Map<string, Set<(roster: Roster) => void>>();
  private readonly unsubscribes: Unsubscribe[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    private readonly app: App,
    private readonly pubsub: PubSub,
    private readonly log: Logger,
    /** How long a tab whose stream dropped stays "here". */
    private readonly graceMs = PRESENCE_GRACE_MS,
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

  /**
   * The live tab of `c` is in `room` (as `me`) while its stream is open, and for a short grace after it
   * drops; it gets the room's roster as it changes. Call again after a rename.
   */
  enter(c: Context, room: string, me: Member): void {
    if (!c.live) return;
    const state = this.state(room);
    // The same channel while it has members; a new one (same options) after it emptied.
    state.channel = this.app.channel<Member>(`presence:${room}`, state.channelOptions);
    state.channel.join(c, me);
  }

  /** Add a member that is not a tab of this instance (a bot, a test); returns the function that removes it. */
  join(room: string, key: string, member: Member): () => void {
    const state = this.state(room);
    state.external.set(key, member);
    this.changed(room, true);
    return () => {
      const current = this.rooms.get(room);
      if (current?.external.get(key) !== member) return;
      current.external.delete(key);
      this.changed(room, true);
    };
  }

  /** Call `fn` with the room's roster whenever it changes (after the room's interval). */
  watch(room: string, fn: (roster: Roster) => void): () => void {
    let set = this.watchers.get(room);
    if (!set) {
      set = new Set();
      this.watchers.set(room, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.watchers.get(room) === set) this.watchers.delete(room);
    };
  }

  /** The room's roster as last computed (a page render reads this; it is at most one interval old). */
  roster(room: string): Roster {
    const state = this.rooms.get(room);
    if (!state) return this.compute(room).roster;
    return state.roster;
  }

  /**
   * Everyone in the room by id, as of the last roster (at most one interval old; the same map until
   * the next, so a caller may index it once): this instance's people and up to SNAPSHOT_MEMBERS of
   * each other instance's. For checks made on every page load (a default name nobody here has).
   */
  everyone(room: string): ReadonlyMap<string, Member> {
    return this.rooms.get(room)?.everyone ?? this.compute(room).everyone;
  }

  /** Everyone in the room by id now, as `everyone` but computed on the spot: O(people in the room). */
  everyoneNow(room: string): ReadonlyMap<string, Member> {
    return this.compute(room).everyone;
  }

  private state(room: string): RoomState {
    let state = this.rooms.get(room);
    if (!state) {
      const { roster, everyone } = this.compute(room);
      state = {
        channel: undefined,
        channelOptions: { grace: this.graceMs, onChange: () => this.changed(room, true) },
        external: new Map(),
        roster,
        everyone,
        rosterKey: rosterKey(roster),
        timer: undefined,
        localChanged: false,
      };
      this.rooms.set(room, state);
    }
    return state;
  }

  /** The room's people on every instance, one entry per person. O(people in the room). */
  private compute(room: string): { roster: Roster; everyone: Map<string, Member> } {
    const byId = new Map<string, Member>();
    for (const m of this.local(room)) byId.set(m.id, m);
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
    if (byId.size === 0 && count === 0) return { roster: EMPTY, everyone: byId };
    const members = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    return {
      roster: { count: Math.max(count, members.length), members: members.slice(0, SHOWN_MEMBERS) },
      everyone: byId,
    };
  }

  /** This instance's people in the room: its present tabs and its external members. */
  private local(room: string): Member[] {
    const state = this.rooms.get(room);
    if (!state) return [];
    const present = state.channel?.present() ?? [];
    return state.external.size === 0 ? present : [...present, ...state.external.values()];
  }

  private changed(room: string, local: boolean): void {
    if (this.closed) return;
    const state = this.state(room);
    if (local) state.localChanged = true;
    if (state.timer) return;
    const size = state.channel?.size ?? 0;
    const interval = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.floor(size / 10)));
    state.timer = setTimeout(() => this.flush(room), interval);
  }

  /** Recompute the room's roster, send it to the room's tabs if it changed, announce local changes. */
  private flush(room: string): void {
    const state = this.rooms.get(room);
    if (!state) return;
    state.timer = undefined;
    const { roster, everyone } = this.compute(room);
    state.everyone = everyone;
    const key = rosterKey(roster);
    if (key !== state.rosterKey) {
      state.roster = roster;
      state.rosterKey = key;
      try {
        state.channel?.patch("#presence", <PresenceList roster={roster} />);
        for (const fn of this.watchers.get(room) ?? []) fn(roster);
      } catch (err) {
        this.log.error({ err }, "presence update failed");
      }
    }
    if (state.localChanged) {
      state.localChanged = false;
      this.announce(room);
    }
    if (!state.channel?.size && state.external.size === 0 && roster === EMPTY) this.rooms.delete(room);
  }

  private snapshot(room: string): Snapshot {
    const byId = new Map<string, Member>();
    for (const m of this.local(room)) byId.set(m.id, m);
    return { instance: this.instance, room, count: byId.size, members: [...byId.values()].slice(0, SNAPSHOT_MEMBERS) };
  }

  /** Announce one room (also when it just became empty, so the others drop its people at once). */
  private announce(room: string): void {
    if (!this.closed) void this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot(room)));
  }

  private announceAll(): void {
    for (const [room, state] of this.rooms) if (state.channel?.size || state.external.size > 0) this.announce(room);
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
    const rooms = [...this.rooms.keys()];
    for (const state of this.rooms.values()) {
      clearTimeout(state.timer);
      state.external.clear();
      state.channel = undefined;
    }
    await Promise.all(rooms.map((room) => this.send(SNAPSHOT_SUBJECT, JSON.stringify(this.snapshot(room)))));
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unsubscribes) u();
  }
}

function rosterKey(roster: Roster): string {
  return `${roster.count}|${roster.members.map((m) => `${m.id}:${m.name}:${m.emoji}`).join("|")}`;
}
