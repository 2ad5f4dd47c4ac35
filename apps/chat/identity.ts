// Who a browser is in the chat: a random "Adjective Animal" with the animal's emoji (as in the seed),
// kept per browser session and editable. Stored as the last message of one subject per session in a
// small stream, so it survives restarts and is shared by every instance on the same engine; but only
// once the person posts or renames: a page load that never says anything writes nothing.
import { createHash } from "node:crypto";
import type { PubSub } from "../../src/index.ts";
import type { Author } from "./messages.ts";

const ADJECTIVES = ["Happy", "Clever", "Brave", "Swift", "Gentle", "Wise", "Bold", "Calm", "Eager", "Fierce"];
const ANIMALS = ["Panda", "Tiger", "Eagle", "Dolphin", "Fox", "Wolf", "Bear", "Hawk", "Otter", "Lion"];
// By the animal's index, as in the seed (Eagle and Hawk share 🦅).
const EMOJI = ["🐼", "🐯", "🦅", "🐬", "🦊", "🐺", "🐻", "🦅", "🦦", "🦁"];

export const IDENTITY_STREAM = "CHAT_IDENTITY";
export const MAX_NICK_CHARS = 32;

export interface Identity extends Author {
  /** A stable, non-secret id for this browser session (a hash of the session id). */
  id: string;
  /** Written to the identity stream already (else it is written on the first post or rename). */
  stored: boolean;
}

function pick(n: number): number {
  return Math.floor(Math.random() * n);
}

export function randomAuthor(): Author {
  const animal = pick(ANIMALS.length);
  return { name: `${ADJECTIVES[pick(ADJECTIVES.length)]} ${ANIMALS[animal]}`, emoji: EMOJI[animal]! };
}

/** Returns the cleaned nickname, or throws an Error whose message is shown to the user. */
export function validateNickname(input: string): string {
  const nick = input.normalize("NFC").replace(/\s+/g, " ").trim();
  if (nick === "") throw new Error("A nickname cannot be empty.");
  if ([...nick].length > MAX_NICK_CHARS) throw new Error(`A nickname has at most ${MAX_NICK_CHARS} characters.`);
  // Control and format characters (incl. bidi overrides) would let a name disguise itself.
  if (/[\p{Cc}\p{Cf}]/u.test(nick)) throw new Error("A nickname cannot contain control characters.");
  return nick;
}

export class IdentityStore {
  constructor(private readonly pubsub: PubSub) {}

  static async open(pubsub: PubSub, replicas?: number): Promise<IdentityStore> {
    await pubsub.ensureStream({
      name: IDENTITY_STREAM,
      subjects: ["identity.>"],
      maxMsgsPerSubject: 1,
      maxAge: 30 * 24 * 3600_000,
      ...(replicas ? { replicas } : {}),
    });
    return new IdentityStore(pubsub);
  }

  static idFor(sessionId: string): string {
    return createHash("sha256").update(sessionId).digest("hex").slice(0, 32);
  }

  /** The session's stored identity, or a fresh random one that is not stored yet. */
  async load(sessionId: string): Promise<Identity> {
    const id = IdentityStore.idFor(sessionId);
    const [last] = await this.pubsub.history(`identity.${id}`, { last: 1 });
    if (last) {
      try {
        const a = JSON.parse(new TextDecoder().decode(last.data)) as Author;
        if (typeof a.name === "string" && typeof a.emoji === "string") {
          return { id, name: a.name, emoji: a.emoji, stored: true };
        }
      } catch {
        // An unreadable record is replaced by a fresh identity below.
      }
    }
    return this.fresh(sessionId);
  }

  /** A new random identity for the session, not stored yet. */
  fresh(sessionId: string): Identity {
    return { id: IdentityStore.idFor(sessionId), ...randomAuthor(), stored: false };
  }

  /** Stores the identity; resolves with it marked as stored. */
  async save(identity: Identity): Promise<Identity> {
    await this.pubsub.publish(
      `identity.${identity.id}`,
      JSON.stringify({ name: identity.name, emoji: identity.emoji }),
    );
    return { ...identity, stored: true };
  }
}
