// The NATS chatroom on via-ts: rooms are subjects, history is a durable stream, and every tab gets
// new messages as one appended element. Works on the embedded engine and on NATS JetStream alike.
//
// What is shared between tabs is the framework's job: a room's messages are a Feed (decoded, rendered
// and encoded once per message, "mine" or not), its roster a Channel frame (presence.tsx). A tab keeps
// only its own sends until the stream has stored them.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  type Action,
  ActionError,
  type App,
  type AppOptions,
  type Context,
  createApp,
  type FeedStream,
  HttpError,
  type Logger,
  type PubSub,
  type RateLimit,
  RateLimiter,
  type Signal,
  TokenBucket,
  tooManyRequests,
} from "via-ts";
import {
  freeRandomAuthor,
  type Identity,
  IdentityStore,
  lookalikeOf,
  nameTaken,
  seededDraw,
  validateNickname,
} from "./identity.ts";
import {
  type ChatMessage,
  charCount,
  decodeChatMessage,
  MAX_MESSAGE_CHARS,
  nextQuote,
  stripBidiControls,
} from "./messages.ts";
import {
  messageIdTime,
  newMessageId,
  OUTBOX_MAX_BYTES,
  type OutboxEntry,
  outboxBytes,
  parseOutbox,
  REPUBLISH_WINDOW_MS,
  sameOutbox,
} from "./outbox.ts";
import { Presence } from "./presence.tsx";
import {
  CHAT_STREAM,
  CHAT_SUBJECTS,
  DEFAULT_ROOMS,
  moveOldHistory,
  originalTime,
  type Room,
  roomSubject,
  validateRooms,
} from "./rooms.ts";
import { ChatView, type Delivery, GapItem, MessageItem } from "./view.tsx";

export const PAGE_SIZE = 50;
/** A tab keeps at most this many messages on screen (older ones can be paged in again). */
const MAX_SHOWN = 1000;
/** Default messages per second per browser session; bursts of 5× that. */
export const DEFAULT_SEND_RATE = 1;
/** Messages per room from one client address (see ChatOptions.roomSendLimit). */
export const DEFAULT_ROOM_SEND_LIMIT = { ratePerSec: 2, burst: 20 };
/** A tab keeps at most this many of its own sends awaiting the stream (more are refused). */
const MAX_UNSENT = 50;
/** Messages each room keeps (the CHAT stream's per-subject limit). */
export const ROOM_HISTORY = 1000;

export interface ChatOptions {
  pubsub: PubSub;
  logger?: Logger;
  /** Stream replicas on a NATS cluster (default 1). */
  replicas?: number;
  /** The room list (default Go, Rust, Python, JavaScript, Clojure); "/" shows the first. */
  rooms?: readonly string[];
  /** Messages per second one browser session may send (default 1; bursts of 5×). */
  sendRate?: number;
  /**
   * Messages per room from one client address, over all its sessions (default 2/s, bursts of 20): one
   * machine needs minutes, not seconds, to push a room's 1,000 messages out of its history. Off when
   * the app's `clientLimits` are off.
   */
  roomSendLimit?: RateLimit;
  /**
   * Messages each room keeps (default 1,000): the CHAT stream's per-room limit. Older ones are evicted;
   * a tab that was away past them shows where they were. Tests use a small one.
   */
  roomHistory?: number;
  /** How long a tab whose stream dropped stays in the room's presence (default 5 s). Tests use a short one. */
  presenceGraceMs?: number;
  app?: AppOptions;
}

export interface Chat {
  app: App;
  presence: Presence;
  close(): Promise<void>;
}

/** Create (or update) the CHAT stream: 1,000 messages per room, 24 h, a 2-minute dedupe window. */
export async function ensureChatStream(pubsub: PubSub, replicas?: number, roomHistory = ROOM_HISTORY): Promise<void> {
  await pubsub.ensureStream({
    name: CHAT_STREAM,
    subjects: [CHAT_SUBJECTS],
    // Per room, not per stream: a busy room must not evict a quiet room's history (the seed's
    // stream-wide 1,000 did).
    maxMsgsPerSubject: roomHistory,
    maxAge: 24 * 3600_000,
    duplicateWindow: 120_000,
    ...(replicas ? { replicas } : {}),
  });
}

function picoCss(): Buffer {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve("@picocss/pico/css/pico.min.css"));
}

/** One of this tab's sends that the stream has not stored yet. */
interface Unsent {
  message: ChatMessage;
  state: Exclude<Delivery, "sent">;
  /** Taken from the browser's outbox: this context drew it "sending" over whatever the tab showed. */
  adopted?: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
/** After the framework's flush of the tab events pushed so far (a setImmediate queued before this one). */
const writtenToStream = () => new Promise<void>((resolve) => setImmediate(resolve));
/** The session data key of a browser's stored identity. */
const IDENTITY_KEY = "identity";

export async function createChat(opts: ChatOptions): Promise<Chat> {
  const rooms = validateRooms(opts.rooms ?? DEFAULT_ROOMS);
  const roomSet = new Set(rooms);
  const sendRate = opts.sendRate ?? DEFAULT_SEND_RATE;
  const roomSends =
    opts.app?.clientLimits === false ? undefined : new RateLimiter(opts.roomSendLimit ?? DEFAULT_ROOM_SEND_LIMIT);
  const app = createApp({
    title: "NATS Chat",
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...opts.app,
    // Sessions in the engine (the default with one), replicated like the chat's streams.
    sessions: { ...(opts.replicas ? { replicas: opts.replicas } : {}), ...opts.app?.sessions },
    pubsub: opts.pubsub,
  });
  // The app's engine: with metrics on, it counts the publishes and deliveries that go through it.
  const pubsub = app.pubsub ?? opts.pubsub;
  const log = app.logger;
  const roomHistory = opts.roomHistory ?? ROOM_HISTORY;
  await ensureChatStream(pubsub, opts.replicas, roomHistory);
  // History stored under the rooms' old subjects (before readable subjects) is copied over, once.
  await moveOldHistory(pubsub, rooms, log);
  const identities = await IdentityStore.open(pubsub, opts.replicas);
  const presence = new Presence(app, pubsub, log, opts.presenceGraceMs);
  const engine = pubsub.kind === "nats" ? "NATS" : "Embedded";
  app.stylesheet("pico.css", picoCss());
  app.stylesheet("chat.css", readFileSync(new URL("./chat.css", import.meta.url)));

  // A room's stored messages, for every tab in it: "mine" for the tabs of the author's browser.
  const messages = app.feed<ChatMessage & { originalTime?: number }, string>({
    decode: (msg) => {
      const message = decodeChatMessage(JSON.parse(utf8.decode(msg.data)));
      // A copy of a message from a room's old subject shows when the original was stored.
      const original = originalTime(msg);
      return original === undefined ? message : { ...message, originalTime: original };
    },
    render: (message, { time }, variant) => (
      <MessageItem message={message} time={message.originalTime ?? time} state="sent" mine={variant === "mine"} />
    ),
    variant: (message, me) => (message.from === me ? "mine" : ""),
    // Messages the room evicted before a tab got them: said where they were, never skipped silently.
    gap: (info) => <GapItem info={info} keep={roomHistory} />,
    pageSize: PAGE_SIZE,
    limit: MAX_SHOWN,
  });

  // A browser's identity once it posted or renamed is session data ({ name, emoji }): the app stores
  // it with the session, so every instance, and this one after a restart, has it with the session's
  // one read. The identity stream stays its long-lived record, read when the session has none.
  /** The identity stored in the session's data, if it is one that today's rules take. */
  function storedIdentity(c: Context): Identity | undefined {
    const saved = c.session.get<{ name?: unknown; emoji?: unknown }>(IDENTITY_KEY);
    if (typeof saved?.name !== "string" || typeof saved.emoji !== "string") return undefined;
    try {
      if (validateNickname(saved.name) !== saved.name) return undefined;
    } catch {
      return undefined;
    }
    return { id: IdentityStore.idFor(c.session.id), name: saved.name, emoji: saved.emoji, stored: true };
  }

  function storeIdentity(c: Context, me: Identity): void {
    c.session.set(IDENTITY_KEY, { name: me.name, emoji: me.emoji });
  }

  /** The session's default identity while it has none stored: per process, never written anywhere. */
  const unstored = (c: Context) => c.session.memo("chat.unstoredIdentity", () => ({}) as { identity?: Identity });

  async function identityOf(c: Context): Promise<Identity> {
    const stored = storedIdentity(c);
    if (stored) return stored;
    const cached = unstored(c).identity;
    if (cached) return cached;
    // A browser's first page load has nothing stored: no lookup.
    const loaded = c.session.isNew ? identities.fresh(c.session.id) : await identities.load(c.session.id);
    // Kept for the session's live tabs only: a page load keeps nothing (the default name is derived
    // from the session id, so the live tab draws the same one). A name the identity stream holds but
    // the session's data lacks (it expired, or was never written) is copied into the session once a
    // tab of it is live.
    if (c.live) {
      if (loaded.stored) storeIdentity(c, loaded);
      else unstored(c).identity = loaded;
    }
    return loaded;
  }

  /** Per browser session and per process: a rate limiter is no session data (it is not JSON). */
  const sendLimiter = (c: Context): TokenBucket =>
    c.session.memo("chat.sendLimiter", () => new TokenBucket({ ratePerSec: sendRate, burst: 5 * sendRate }));

  const roomPage = async (c: Context, room: Room) => {
    const subject = roomSubject(room);
    let me = await identityOf(c);
    // A random default nobody chose yet must not be the name of someone here (by look): draw another.
    // Checked against the room's last roster (O(1) per page load, even in a room of 10,000), on the
    // page render and again when the tab goes live; a chosen name (renamed, or posted under) stays.
    const here = presence.everyone(room);
    if (!me.stored && nameTaken(me.name, here, me.id)) {
      const id = me.id;
      me = { ...me, ...freeRandomAuthor((name) => nameTaken(name, here, id), seededDraw(`${id}:taken`)) };
      if (c.live) unstored(c).identity = me;
    }
    const statement = c.signal("", { name: "statement" });
    const nick = c.signal(me.name, { name: "nick" });
    const retryTarget = c.signal("", { name: "retry" });
    // The browser's copy of this tab's unconfirmed sends (outbox.ts): it outlives this context.
    const outbox = c.signal<OutboxEntry[]>([], { name: "outbox", parse: parseOutbox });
    // This tab's sends the stream has not stored yet, by message id (made on the first send).
    let unsent: Map<string, Unsent> | undefined;
    /** Confirmed sends the browser may still list (its last action left before it heard): not adopted again. */
    const settled = new Set<string>();
    /** The browser's outbox was read (by an action): from then on the server's copy is the one it keeps. */
    let adopted = false;

    // History up to the page's last message, then live from there: the feed resumes the list from the
    // position the browser reports, on the first attach and after every reconnect.
    const list: FeedStream<ChatMessage, string> = await messages.join(c, subject, me.id, {
      id: "messages",
      onReset: (info) => {
        redrawUnsent();
        if (info.expired) {
          c.notify(
            `Messages expired while you were away (this room keeps its last ${roomHistory.toLocaleString("en")}). ` +
              "You see the latest; Load older shows what is still kept.",
          );
        }
      },
    });
    presence.enter(c, room, { id: me.id, name: me.name, emoji: me.emoji });
    // Patches for a detached tab are dropped: redraw the states of its unsent messages when it is back.
    c.onConnectionChange((connected) => {
      if (connected) redrawUnsent();
    });

    /** Shows (or updates in place: same element id) one of this tab's sends. */
    const show = (message: ChatMessage, state: Delivery) => {
      list.insert(
        <MessageItem
          message={message}
          time={message.time}
          state={state}
          mine
          retry={{ action: retry, target: retryTarget }}
        />,
      );
    };
    function redrawUnsent(): void {
      for (const u of unsent?.values() ?? []) show(u.message, u.state);
    }

    /** The browser's outbox from now on: this context's unconfirmed sends (once it has read the browser's). */
    function syncOutbox(): void {
      if (!adopted) return;
      const want = [...(unsent?.values() ?? [])].map((u) => ({ id: u.message.id, text: u.message.text }));
      if (!sameOutbox(outbox.value, want)) outbox.set(want);
    }

    /** A send the stream confirmed: out of the outbox, shown stored. */
    function stored(u: Unsent, seq: number | undefined): void {
      unsent?.delete(u.message.id);
      settled.add(u.message.id);
      if (settled.size > 2 * MAX_UNSENT) settled.delete(settled.values().next().value!);
      syncOutbox();
      // No position on this one: the feed's copy brings it, so the list never claims a position it
      // has not received. Unless that copy is already here; but an adopted send was drawn "sending"
      // over it, so it is drawn again (in place: the item keeps its position).
      if (u.adopted || seq === undefined || seq > list.pos) show(u.message, "sent");
    }

    /**
     * Sends in the browser's outbox that this context does not know: taken by an instance that died (or
     * by this one before a restart) and maybe never stored. Each is published again with its id (the
     * stream keeps one copy), counted against the same limits as a send; one older than the dedupe
     * window allows, or over a limit, is looked for in the room instead, and shown "not sent" if absent.
     */
    function adoptOutbox(): void {
      adopted = true;
      const now = Date.now();
      for (const e of outbox.value) {
        if (unsent?.has(e.id) || settled.has(e.id)) continue;
        const at = messageIdTime(e.id, c.session.id);
        // Not an id this session made (an older version's, another browser's): dropped from the outbox.
        if (at === undefined || at > now + 60_000) continue;
        const message: ChatMessage = {
          v: 1,
          id: e.id,
          user: { name: me.name, emoji: me.emoji },
          from: me.id,
          text: stripBidiControls(e.text),
          time: at,
        };
        const u: Unsent = { message, state: "sending", adopted: true };
        unsent ??= new Map();
        unsent.set(e.id, u);
        show(message, "sending");
        const fresh = now - at < REPUBLISH_WINDOW_MS;
        if (fresh && sendLimiter(c).take().ok && (roomSends?.take(`${room}\n${c.clientAddress}`).ok ?? true)) {
          publish(u);
        } else {
          void settleFromHistory(u);
        }
      }
      syncOutbox();
    }

    /** Stored already (found in the room's recent history), or "not sent" with Retry. */
    async function settleFromHistory(u: Unsent): Promise<void> {
      let found: number | undefined;
      try {
        const needle = Buffer.from(JSON.stringify(u.message.id));
        for (const m of await pubsub.history(subject, { last: MAX_SHOWN })) {
          if (Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).includes(needle)) found = m.seq;
        }
      } catch (err) {
        log.warn({ err }, "chat could not look for an unconfirmed send");
      }
      if (unsent?.get(u.message.id) !== u || u.state !== "sending") return;
      if (found !== undefined) {
        stored(u, found);
        return;
      }
      u.state = "failed";
      show(u.message, "failed");
    }

    const publish = (u: Unsent) => {
      c.publishJson(subject, u.message, { msgId: u.message.id }).then(
        (ack) => {
          // Stored: say so now, not when its copy comes back through the room's feed, which can lag
          // behind the ack (seconds while NATS moves a stream leader); unless that copy is already
          // here.
          if (unsent?.get(u.message.id) !== u || u.state !== "sending") return;
          stored(u, ack?.seq);
        },
        (err: unknown) => {
          if (u.state !== "sending") return;
          log.warn({ err }, "chat publish failed");
          u.state = "failed";
          show(u.message, "failed");
          c.notify(
            "Your message was not sent: the message service is unavailable. It is kept below; press Retry.",
            "error",
          );
        },
      );
    };

    const say = c.action(async () => {
      adoptOutbox();
      // Stored without bidi overrides or unpaired bidi controls; other clients' texts are cleaned
      // again when shown (view.tsx).
      let text = stripBidiControls(statement.value);
      if (text.trim() === "") text = nextQuote();
      const chars = charCount(text);
      if (chars > MAX_MESSAGE_CHARS) {
        throw new ActionError(
          `Your message has ${chars.toLocaleString("en")} characters; the limit is 2,000. Nothing was sent.`,
        );
      }
      const id = newMessageId(c.session.id);
      if ((unsent?.size ?? 0) >= MAX_UNSENT || outboxBytes([...outbox.value, { id, text }]) > OUTBOX_MAX_BYTES) {
        throw new ActionError("Too many of your messages are still waiting to be stored. Your message is kept.");
      }
      // Refusals are 429s with Retry-After: the runtime shows the message and the draft stays typed.
      const verdict = sendLimiter(c).take();
      if (!verdict.ok) {
        throw tooManyRequests(
          "You are sending too fast. Try again in {seconds} s; your message is kept.",
          verdict.retryAfterMs,
        );
      }
      // Per room and client address as well, so fresh sessions (one page load each) cannot flush a
      // room's history from one machine.
      roomSends?.check(
        `${room}\n${c.clientAddress}`,
        "This room gets too many messages from your network. Try again in {seconds} s; your message is kept.",
      );
      statement.set("");
      if (!me.stored) {
        // The first post makes the random identity this browser's for good (see identity.ts).
        me = { ...me, stored: true };
        storeIdentity(c, me);
        identities.save(me).catch((err: unknown) => log.warn({ err }, "could not store the chat identity"));
      }
      const message: ChatMessage = {
        v: 1,
        id,
        user: { name: me.name, emoji: me.emoji },
        from: me.id,
        text,
        time: messageIdTime(id, c.session.id)!,
      };
      const u: Unsent = { message, state: "sending" };
      unsent ??= new Map();
      unsent.set(message.id, u);
      // The browser keeps it until the stream confirms it: this instance may die before that.
      syncOutbox();
      show(message, "sending");
      // Not awaited: the tab's next action must not wait for the stream ack (which can take seconds
      // during a NATS failover). The engine retries with the same msg id, so no duplicate is stored.
      publish(u);
      // The answer (204) waits for the tab's events pushed so far (the outbox entry, the "sending" item)
      // to be written to its stream: the browser must hold the send before it hears it was taken, or an
      // instance dying right after answering would leave it nowhere.
      await writtenToStream();
    });

    const retry: Action = c.action(
      () => {
        adoptOutbox();
        const u = unsent?.get(retryTarget.value);
        if (u?.state !== "failed") return;
        u.state = "sending";
        show(u.message, "sending");
        publish(u);
      },
      { name: "retry" },
    );

    const saveNick = c.action(async () => {
      let name: string;
      try {
        name = validateNickname(nick.value);
      } catch (err) {
        throw new ActionError((err as Error).message);
      }
      // Everyone here now, on every instance (the rename is refused; the draft stays in the field).
      const holder = lookalikeOf(name, presence.everyoneNow(room).values(), me.id);
      if (holder) {
        throw new ActionError(
          `Someone in this room is already called “${stripBidiControls(holder.name)}”. ` +
            "Choose a nickname that does not look like theirs.",
        );
      }
      me = await identities.save({ ...me, name });
      storeIdentity(c, me);
      presence.enter(c, room, { id: me.id, name: me.name, emoji: me.emoji });
      nick.set(name);
      c.sync();
      c.notify(`You are now ${name}.`);
    });

    // Fired by the runtime when the tab's stream is back while its outbox holds something (view.tsx,
    // `data-on-reconnect`): a re-bootstrapped context learns of the sends a dead instance took.
    const resend = c.action(() => adoptOutbox(), { name: "resend" });

    c.view(() => (
      <ChatView
        room={room}
        rooms={rooms}
        engine={engine}
        me={me}
        messages={list}
        roster={presence.roster(room)}
        actions={{ say, saveNick, resend }}
        signals={{ statement, nick: nick as Signal<string>, outbox }}
      />
    ));
  };

  app.page("/", (c) => roomPage(c, rooms[0]!));
  app.page("/room/:name", (c) => {
    const name = (c.params.name ?? "").normalize("NFC");
    if (!roomSet.has(name)) throw new HttpError(404, `there is no room named ${JSON.stringify(name.slice(0, 64))}`);
    return roomPage(c, name);
  });

  return {
    app,
    presence,
    async close() {
      await presence.close();
      await app.close();
    },
  };
}
