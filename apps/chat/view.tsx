// The chat's markup. Every piece of user text goes through JSX, which escapes it, and is shown
// isolated from the text around it (a <bdi>, or a block with dir="auto"), so a right-to-left name
// cannot carry the time next to it along, and without bidi overrides (stripBidiControls): names and
// texts come from other instances and other clients of the stream too, not only through our checks.
import type { Action, FeedStream, Signal } from "via-ts";
import type { Identity } from "./identity.ts";
import { type ChatMessage, stripBidiControls } from "./messages.ts";
import type { OutboxEntry } from "./outbox.ts";
import { type Room, roomPath } from "./rooms.ts";

/** A person in a room's presence. */
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

/** A message's delivery state: this tab's own sends are "sending" or "failed" until stored. */
export type Delivery = "sending" | "failed" | "sent";

export function messageDomId(id: string): string {
  return `m-${id}`;
}

export interface MessageItemProps {
  message: ChatMessage;
  /** The stream's time once stored, else the sender's. */
  time: number;
  state: Delivery;
  mine: boolean;
  /** A failed message's Retry button fires this, naming the message through `retryTarget`. */
  retry?: { action: Action; target: Signal<string> };
}

export function MessageItem({ message, time, state, mine, retry }: MessageItemProps) {
  const classes = ["chat-message", mine ? "mine" : "", state !== "sent" ? state : ""].filter(Boolean).join(" ");
  const iso = new Date(time).toISOString();
  const name = stripBidiControls(message.user.name);
  return (
    <li class={classes} id={messageDomId(message.id)}>
      <div class="avatar" title={name} aria-hidden="true">
        {message.user.emoji}
      </div>
      <div class="bubble">
        <header>
          <bdi>
            <strong class="author">{name}</strong>
          </bdi>{" "}
          <time datetime={iso} data-local-time>
            {iso.slice(11, 16)}
          </time>
          {state === "sending" ? <span class="status"> · sending…</span> : null}
          {state === "failed" && retry ? (
            <span class="status">
              {" "}
              · not sent{" "}
              <button
                type="button"
                class="retry outline"
                {...retry.action.onClick({ set: [[retry.target, message.id]] })}
              >
                Retry
              </button>
            </span>
          ) : null}
        </header>
        {/* The text's own direction (an Arabic message reads right to left), isolated from the header. */}
        <div class="body" dir="auto">
          <p class="text">{stripBidiControls(message.text)}</p>
        </div>
      </div>
    </li>
  );
}

function LocalTime({ at }: { at: number }) {
  const iso = new Date(at).toISOString();
  return (
    <time datetime={iso} data-local-time>
      {iso.slice(11, 16)}
    </time>
  );
}

/**
 * Where the list has a hole it cannot fill: messages the room evicted (past its history limit) or
 * expired before this tab got them. Shown in their place instead of skipping them silently; the id makes
 * a second marker for the same gap replace the first.
 */
export function GapItem({ info, keep }: { info: { seq: number; time: number; since?: number }; keep: number }) {
  return (
    <li class="chat-gap" id={`gap-${info.seq}`} role="note">
      Some messages sent{" "}
      {info.since !== undefined ? (
        <>
          between <LocalTime at={info.since} /> and <LocalTime at={info.time} />
        </>
      ) : (
        <>
          before <LocalTime at={info.time} />
        </>
      )}{" "}
      expired before this tab got them: this room keeps its last {keep.toLocaleString("en")} messages.
    </li>
  );
}

export function PresenceList({ roster }: { roster: Roster }) {
  const { count, members } = roster;
  const more = count - members.length;
  return (
    <section id="presence" aria-label="Who is here">
      <span class="count">{count === 1 ? "1 person here" : `${count.toLocaleString("en")} people here`}</span>
      <ul>
        {members.map((m) => {
          const name = stripBidiControls(m.name);
          return (
            <li title={name}>
              <span aria-hidden="true">{m.emoji}</span> <bdi>{name}</bdi>
            </li>
          );
        })}
        {more > 0 ? <li class="more">and {more.toLocaleString("en")} more</li> : null}
      </ul>
    </section>
  );
}

export interface ChatViewProps {
  room: Room;
  rooms: readonly Room[];
  engine: string;
  me: Identity;
  /** The room's messages: a streamed list the browser keeps (the view renders only its element). */
  messages: FeedStream<ChatMessage, string>;
  roster: Roster;
  actions: { say: Action; saveNick: Action; resend: Action };
  signals: { statement: Signal<string>; nick: Signal<string>; outbox: Signal<OutboxEntry[]> };
}

export function ChatView(p: ChatViewProps) {
  return (
    <main class="container chat">
      <header class="chat-header">
        <nav class="rooms" aria-label="Rooms">
          <ul>
            {p.rooms.map((room) => (
              <li>
                <a href={roomPath(room)} aria-current={room === p.room ? "page" : undefined}>
                  {room}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`engine-badge engine-${p.engine.toLowerCase()}`} title="pub/sub engine">
          {p.engine}
        </span>
      </header>
      <PresenceList roster={p.roster} />
      <div id="history" class="chat-history" data-stick-bottom>
        {p.messages.more ? (
          <button type="button" id="load-older" class="secondary outline" {...p.messages.older.onClick()}>
            Load older
          </button>
        ) : (
          <p id="history-start" class="history-start">
            This is the start of #{p.room}.
          </p>
        )}
        <ol {...p.messages.container()} />
      </div>
      {/* When the tab's stream comes back with sends still unconfirmed, the runtime asks the server to
          publish them again (a restarted or other instance has never heard of them). */}
      <span hidden data-on-reconnect={JSON.stringify({ action: p.actions.resend.id, if: p.signals.outbox.name })} />
      <footer class="chat-input">
        <div class="avatar" title={p.me.name} aria-hidden="true">
          {p.me.emoji}
        </div>
        {/* biome-ignore lint/a11y/noRedundantRoles: Pico CSS styles grouped inputs by this role */}
        <fieldset role="group">
          {/* No maxlength: the browser would cut a pasted text silently; the server names the limit and keeps the draft. */}
          <input
            id="statement"
            type="text"
            placeholder={`${p.me.name} says...`}
            aria-label="Message"
            autocomplete="off"
            autofocus
            {...p.signals.statement.bind()}
            {...p.actions.say.onKeyDown("Enter")}
          />
          <button type="button" id="send" {...p.actions.say.onClick()}>
            Send
          </button>
        </fieldset>
        <details class="nickname">
          <summary>Nickname</summary>
          {/* biome-ignore lint/a11y/noRedundantRoles: Pico CSS styles grouped inputs by this role */}
          <fieldset role="group">
            <input
              id="nick"
              type="text"
              aria-label="Nickname"
              {...p.signals.nick.bind()}
              {...p.actions.saveNick.onKeyDown("Enter")}
            />
            <button type="button" id="save-nick" {...p.actions.saveNick.onClick()}>
              Save
            </button>
          </fieldset>
        </details>
      </footer>
    </main>
  );
}
