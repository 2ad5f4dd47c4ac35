// The NATS chatroom on via-ts: rooms are subjects, history is a durable stream, and every tab gets
// new messages as one appended element. Works on the embedded engine and on NATS JetStream alike.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { raw } from "hono/html";
import {
  type Action,
  ActionError,
  type App,
  type AppOptions,
  type Context,
  createApp,
  type Signal,
} from "../../src/index.ts";
import type { Logger } from "../../src/log.ts";
import type { PubSub, StreamMessage } from "../../src/pubsub/types.ts";
import type { Html } from "../../src/server/context.ts";
import { renderHtml } from "../../src/server/html.ts";
import { HttpError } from "../../src/server/http-error.ts";
import { newId } from "../../src/server/ids.ts";
import { TokenBucket } from "../../src/server/rate-limit.ts";
import { type Identity, IdentityStore, validateNickname } from "./identity.ts";
import { type ChatMessage, charCount, decodeChatMessage, MAX_MESSAGE_CHARS, nextQuote } from "./messages.ts";
import { Presence, type Roster } from "./presence.ts";
import { CHAT_STREAM, CHAT_SUBJECTS, DEFAULT_ROOMS, type Room, roomSubject, validateRooms } from "./rooms.ts";
import { ChatView, MessageItem, messageDomId, PresenceList, type Shown } from "./view.tsx";

export const PAGE_SIZE = 50;
/** A tab keeps at most this many messages on screen (older ones can be paged in again). */
const MAX_SHOWN = 1000;
/** Default messages per second per browser session; bursts of 5× that. */
export const DEFAULT_SEND_RATE = 1;
/** A tab whose stream dropped stays "here" this long, so a network blip does not flicker presence. */
const PRESENCE_GRACE_MS = 5_000;

export interface ChatOptions {
  pubsub: PubSub;
  logger?: Logger;
  /** Stream replicas on a NATS cluster (default 1). */
  replicas?: number;
  /** The room list (default Go, Rust, Python, JavaScript, Clojure); "/" shows the first. */
  rooms?: readonly string[];
  /** Messages per second one browser session may send (default 1; bursts of 5×). */
  sendRate?: number;
  app?: AppOptions;
}

export interface Chat {
  app: App;
  presence: Presence;
  close(): Promise<void>;
}

/** Create (or update) the CHAT stream: 1,000 messages per room, 24 h, a 2-minute dedupe window. */
export async function ensureChatStream(pubsub: PubSub, replicas?: number): Promise<void> {
  await pubsub.ensureStream({
    name: CHAT_STREAM,
    subjects: [CHAT_SUBJECTS],
    // Per room, not per stream: a busy room must not evict a quiet room's history (the seed's
    // stream-wide 1,000 did).
    maxMsgsPerSubject: 1000,
    maxAge: 24 * 3600_000,
    duplicateWindow: 120_000,
    ...(replicas ? { replicas } : {}),
  });
}

function picoCss(): Buffer {
  const require = createRequire(import.meta.url);
  return readFileSync(require.resolve("@picocss/pico/css/pico.min.css"));
}

export async function createChat(opts: ChatOptions): Promise<Chat> {
  const { pubsub } = opts;
  const rooms = validateRooms(opts.rooms ?? DEFAULT_ROOMS);
  const roomSet = new Set(rooms);
  const sendRate = opts.sendRate ?? DEFAULT_SEND_RATE;
  const app = createApp({ title: "NATS Chat", ...(opts.logger ? { logger: opts.logger } : {}), ...opts.app, pubsub });
  const log = app.logger;
  await ensureChatStream(pubsub, opts.replicas);
  const identities = await IdentityStore.open(pubsub, opts.replicas);
  const presence = new Presence(pubsub, log);
  const engine = pubsub.kind === "nats" ? "NATS" : "Embedded";

  // A room's new message and roster go to every tab in it: render each once, not once per tab (with
  // 1,000 tabs in a room that per-tab rendering was most of the server's work). Every tab gets the
  // same markup, because action ids and signal names are the same in every tab of a page.
  const rosterRendered = new WeakMap<Roster, Html>();
  const rosterHtml = (r: Roster): Html => {
    let html = rosterRendered.get(r);
    if (!html) {
      html = raw(renderHtml(<PresenceList roster={r} />));
      rosterRendered.set(r, html);
    }
    return html;
  };
  // Every tab of a room loads the same last page of history: decode each stored message once and
  // share it (read-only), so 10,000 tabs do not hold 10,000 copies of the same 50 messages.
  const stored = new Map<string, ChatMessage>();
  const storedMessage = (sm: StreamMessage): ChatMessage => {
    // Keyed by the payload itself: exact even if a stream is recreated and its seqs start over.
    const text = new TextDecoder().decode(sm.data);
    let message = stored.get(text);
    if (!message) {
      message = decodeChatMessage(JSON.parse(text));
      stored.set(text, message);
      if (stored.size > 5_000) stored.delete(stored.keys().next().value!);
    }
    return message;
  };
  // Likewise the list entry of a stored message: one frozen object shared by every tab that shows it
  // (a tab keeps up to 1,000; per-tab copies made memory grow with traffic times tabs).
  const storedItems = new Map<string, Shown>();
  const storedItem = (message: ChatMessage, sm: { seq?: number; time?: number }): Shown => {
    let item = storedItems.get(message.id);
    if (!item || item.message !== message || item.seq !== sm.seq) {
      item = Object.freeze<Shown>({ message, seq: sm.seq, time: sm.time ?? message.time, state: "sent" });
      storedItems.set(message.id, item);
      if (storedItems.size > 5_000) storedItems.delete(storedItems.keys().next().value!);
    }
    return item;
  };
  const delivered = new Map<string, Html>();
  const deliveredHtml = (item: Shown, mine: boolean, retry: Action, retryTarget: Signal<string>): Html => {
    const key = `${item.message.id}:${mine}`;
    let html = delivered.get(key);
    if (!html) {
      html = raw(renderHtml(<MessageItem item={item} mine={mine} retry={retry} retryTarget={retryTarget} />));
      delivered.set(key, html);
      // Only the newest few matter: a message is delivered to every tab within one tick.
      if (delivered.size > 256) delivered.delete(delivered.keys().next().value!);
    }
    return html;
  };
  app.stylesheet("pico.css", picoCss());
  app.stylesheet("chat.css", readFileSync(new URL("./chat.css", import.meta.url)));

  async function identityOf(c: Context): Promise<Identity> {
    const cached = c.session.get<Identity>("identity");
    if (cached) return cached;
    const loaded = await identities.load(c.session.id);
    c.session.set("identity", loaded);
    return loaded;
  }

  function sendLimiter(c: Context): TokenBucket {
    let bucket = c.session.get<TokenBucket>("sendLimiter");
    if (!bucket) {
      bucket = new TokenBucket({ ratePerSec: sendRate, burst: 5 * sendRate });
      c.session.set("sendLimiter", bucket);
    }
    return bucket;
  }

  const roomPage = async (c: Context, room: Room) => {
    const subject = roomSubject(room);
    let me = await identityOf(c);
    const statement = c.signal("", { name: "statement" });
    const nick = c.signal(me.name, { name: "nick" });
    const retryTarget = c.signal("", { name: "retry" });

    // What this tab shows, oldest first. Stored messages carry their seq; our own unsent ones do not.
    const items: Shown[] = [];
    const byId = new Map<string, Shown>();
    const decodeStored = (sm: StreamMessage): Shown | undefined => {
      try {
        return storedItem(storedMessage(sm), sm);
      } catch {
        log.warn({ seq: sm.seq }, "skipped an unreadable stored chat message");
        return undefined;
      }
    };
    const remember = (item: Shown) => {
      items.push(item);
      byId.set(item.message.id, item);
      if (items.length > MAX_SHOWN) {
        // The oldest stored message goes; this tab's own pending or failed ones stay, or Retry would
        // find nothing and their stored copy would be appended as a second one.
        const i = items.findIndex((x) => x.state === "sent");
        if (i >= 0) {
          const [dropped] = items.splice(i, 1);
          byId.delete(dropped!.message.id);
          hasOlder = true;
        }
      }
    };

    // History up to seq S, then live from S + 1: one seam, no gap, no duplicate.
    let hasOlder = false;
    const recent = (await pubsub.history(subject, { last: PAGE_SIZE }))
      .map(decodeStored)
      .filter((x): x is Shown => x !== undefined);
    for (const item of recent) remember(item);
    hasOlder = recent.length === PAGE_SIZE;
    const lastSeq = recent.at(-1)?.seq ?? 0;
    let roster: Roster = presence.roster(room);

    const render = (item: Shown) => (
      <MessageItem item={item} mine={item.message.from === me.id} retry={retry} retryTarget={retryTarget} />
    );

    c.subscribeJson<ChatMessage>(
      subject,
      (message, delivery) => {
        const existing = byId.get(message.id);
        if (existing?.state === "sent") return; // already shown (a replayed copy)
        const item = storedItem(message, delivery);
        if (existing) {
          // Our own pending message came back from the stream: it is stored now.
          Object.assign(existing, item);
          c.patch(`#${messageDomId(message.id)}`, render(existing), "outer");
          return;
        }
        remember(item);
        c.patch("#messages", deliveredHtml(item, item.message.from === me.id, retry, retryTarget), "append");
      },
      { fromSeq: lastSeq + 1, decode: decodeChatMessage },
    );

    // Presence: here while the tab's stream is open (plus a short grace after it drops).
    let leave: (() => void) | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    c.onConnectionChange((connected) => {
      clearTimeout(graceTimer);
      if (connected) {
        leave ??= presence.join(room, c.tabId, { id: me.id, name: me.name, emoji: me.emoji });
      } else {
        graceTimer = setTimeout(() => {
          leave?.();
          leave = undefined;
        }, PRESENCE_GRACE_MS);
      }
    });
    const unwatch = presence.watch(room, (now) => {
      roster = now;
      c.patch("#presence", rosterHtml(now));
    });
    c.onDispose(() => {
      clearTimeout(graceTimer);
      leave?.();
      unwatch();
    });

    const publish = (item: Shown) => {
      c.publishJson(subject, item.message, { msgId: item.message.id }).then(
        (ack) => {
          // Stored: say so now, not when its copy comes back through the room's feed, which can lag
          // behind the ack (seconds while NATS moves a stream leader). The copy is then skipped.
          if (item.state !== "sending") return;
          item.state = "sent";
          if (ack) item.seq = ack.seq;
          c.patch(`#${messageDomId(item.message.id)}`, render(item), "outer");
        },
        (err: unknown) => {
          if (item.state !== "sending") return;
          log.warn({ err }, "chat publish failed");
          item.state = "failed";
          c.patch(`#${messageDomId(item.message.id)}`, render(item), "outer");
          c.notify(
            "Your message was not sent: the message service is unavailable. It is kept below; press Retry.",
            "error",
          );
        },
      );
    };

    const say = c.action(() => {
      let text = statement.value;
      if (text.trim() === "") text = nextQuote();
      const chars = charCount(text);
      if (chars > MAX_MESSAGE_CHARS) {
        throw new ActionError(
          `Your message has ${chars.toLocaleString("en")} characters; the limit is 2,000. Nothing was sent.`,
        );
      }
      const verdict = sendLimiter(c).take();
      if (!verdict.ok) {
        const seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
        throw new ActionError(`You are sending too fast. Try again in ${seconds} s; your message is kept.`);
      }
      statement.set("");
      const message: ChatMessage = {
        v: 1,
        id: newId(),
        user: { name: me.name, emoji: me.emoji },
        from: me.id,
        text,
        time: Date.now(),
      };
      const item: Shown = { message, time: message.time, state: "sending" };
      remember(item);
      c.patch("#messages", render(item), "append");
      // Not awaited: the tab's next action must not wait for the stream ack (which can take seconds
      // during a NATS failover). The engine retries with the same msg id, so no duplicate is stored.
      publish(item);
    });

    const retry = c.action(() => {
      const item = byId.get(retryTarget.value);
      if (item?.state !== "failed") return;
      item.state = "sending";
      c.patch(`#${messageDomId(item.message.id)}`, render(item), "outer");
      publish(item);
    });

    const loadOlder = c.action(async () => {
      const oldest = items.find((i) => i.seq !== undefined)?.seq;
      if (oldest === undefined) return;
      const older = (await pubsub.history(subject, { beforeSeq: oldest, limit: PAGE_SIZE }))
        .map(decodeStored)
        .filter((x): x is Shown => x !== undefined && !byId.has(x.message.id));
      items.unshift(...older);
      for (const item of older) byId.set(item.message.id, item);
      hasOlder = older.length === PAGE_SIZE;
      c.sync();
    });

    const saveNick = c.action(async () => {
      let name: string;
      try {
        name = validateNickname(nick.value);
      } catch (err) {
        throw new ActionError((err as Error).message);
      }
      me = { ...me, name };
      c.session.set("identity", me);
      await identities.save(me);
      if (leave) {
        leave();
        leave = presence.join(room, c.tabId, { id: me.id, name: me.name, emoji: me.emoji });
      }
      nick.set(name);
      c.sync();
      c.notify(`You are now ${name}.`);
    });

    c.view(() => (
      <ChatView
        room={room}
        rooms={rooms}
        engine={engine}
        me={me}
        items={items}
        hasOlder={hasOlder}
        roster={roster}
        actions={{ say, loadOlder, saveNick, retry }}
        signals={{ statement, nick, retryTarget }}
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
