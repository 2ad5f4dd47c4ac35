// The chat's markup. Every piece of user text goes through JSX, which escapes it.
import type { Action, Signal } from "../../src/index.ts";
import type { Identity } from "./identity.ts";
import type { ChatMessage } from "./messages.ts";
import type { Roster } from "./presence.ts";
import { type Room, roomPath } from "./rooms.ts";

export type Delivery = "sending" | "failed" | "sent";

export interface Shown {
  message: ChatMessage;
  /** Stream seq, once stored. */
  seq?: number;
  /** Stream time, once stored (else the sender's time). */
  time: number;
  state: Delivery;
}

export function messageDomId(id: string): string {
  return `m-${id}`;
}

export function MessageItem({
  item,
  mine,
  retry,
  retryTarget,
}: {
  item: Shown;
  mine: boolean;
  retry: Action;
  retryTarget: Signal<string>;
}) {
  const { message } = item;
  const classes = ["chat-message", mine ? "mine" : "", item.state !== "sent" ? item.state : ""]
    .filter(Boolean)
    .join(" ");
  const iso = new Date(item.time).toISOString();
  return (
    <li class={classes} id={messageDomId(message.id)} data-seq={item.seq === undefined ? undefined : String(item.seq)}>
      <div class="avatar" title={message.user.name} aria-hidden="true">
        {message.user.emoji}
      </div>
      <div class="bubble">
        <header>
          <strong class="author">{message.user.name}</strong>{" "}
          <time datetime={iso} data-local-time>
            {iso.slice(11, 16)}
          </time>
          {item.state === "sending" ? <span class="status"> · sending…</span> : null}
          {item.state === "failed" ? (
            <span class="status">
              {" "}
              · not sent{" "}
              <button type="button" class="retry outline" {...retry.onClick({ set: [[retryTarget, message.id]] })}>
                Retry
              </button>
            </span>
          ) : null}
        </header>
        <p class="text">{message.text}</p>
      </div>
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
        {members.map((m) => (
          <li title={m.name}>
            <span aria-hidden="true">{m.emoji}</span> {m.name}
          </li>
        ))}
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
  items: Shown[];
  hasOlder: boolean;
  roster: Roster;
  actions: { say: Action; loadOlder: Action; saveNick: Action; retry: Action };
  /** retryTarget: the retry button names its message through it (set in the browser before the action fires). */
  signals: { statement: Signal<string>; nick: Signal<string>; retryTarget: Signal<string> };
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
        {p.hasOlder ? (
          <button type="button" id="load-older" class="secondary outline" {...p.actions.loadOlder.onClick()}>
            Load older
          </button>
        ) : (
          <p id="history-start" class="history-start">
            This is the start of #{p.room}.
          </p>
        )}
        <ol id="messages">
          {p.items.map((item) => (
            <MessageItem
              item={item}
              mine={item.message.from === p.me.id}
              retry={p.actions.retry}
              retryTarget={p.signals.retryTarget}
            />
          ))}
        </ol>
      </div>
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
