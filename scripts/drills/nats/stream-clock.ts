// StreamClock: the NATS drills' own view of the CHAT stream through a NATS connection of the drill's own
// (when each message was stored, and its text), and the watch on the stream's leader elections.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { CHAT_STREAM, CHAT_SUBJECTS } from "../../../apps/chat/rooms.ts";
import { sleep } from "../../../harness/cleanup.ts";
import { connectNats } from "../../../src/pubsub/nats/engine.ts";
import type { PubSub } from "../../../src/pubsub/types.ts";
import { now } from "../clock.ts";
import { labelOf } from "../traffic.ts";

/** How often the NATS drills look again at what they wait for (ms). */
export const POLL_MS = 25;

/**
 * The drill's own view of the CHAT stream, through its own NATS engine (a subscription from seq 1, which
 * recovers from failures like the chat's): when each message was stored (the server's clock) and its text.
 * Kept for every message as it is stored, so the room's 1,000-message cap evicting it later does not matter.
 */
export class StreamClock {
  readonly #stored = new Map<number, { time: number; text: string }>();
  /** Stream position of each drill message, by label ("w3#17"). */
  readonly #labels = new Map<string, number>();
  #maxSeq = 0;
  readonly #off: () => void;
  private constructor(readonly ps: PubSub) {
    const dec = new TextDecoder();
    this.#off = ps.subscribe(
      CHAT_SUBJECTS,
      (d) => {
        if (d.seq === undefined || d.time === undefined) return;
        let text = "";
        try {
          text = String((JSON.parse(dec.decode(d.data)) as { text?: unknown }).text);
        } catch {
          // not a chat message
        }
        this.#stored.set(d.seq, { time: d.time, text });
        const label = labelOf(text);
        if (label) this.#labels.set(`w${label.writer}#${label.n}`, d.seq);
        this.#maxSeq = Math.max(this.#maxSeq, d.seq);
      },
      { fromSeq: 1 },
    );
  }

  static async open(servers: string[]): Promise<StreamClock> {
    const lines: string[] = [];
    const logger = pino({ level: "info", base: undefined }, { write: (line: string) => lines.push(line) });
    const clock = new StreamClock(await connectNats({ servers, name: "via-drill", logger }));
    clock.#log = lines;
    return clock;
  }

  #log: string[] = [];
  /** What the drill's engine logged (JSON lines). */
  output(): string {
    return this.#log.join("");
  }

  /**
   * When the CHAT stream got a leader other than `old`: the first of JetStream's leader-elected advisory
   * for CHAT and the CHAT stream's info (polled every 50 ms, 500 ms per request) naming another leader,
   * both through `servers`. Stream info answers up to a second after the advisory (it needs the new leader
   * to be ready), so the advisory is the election's moment. Resolves with the leader's name and that moment.
   */
  static async newLeader(servers: string[], old: string, deadline: number): Promise<{ name: string; at: number }> {
    const nc = await connect({ servers, name: "via-drill-election", timeout: 2_000 });
    let found: { name: string; at: number } | undefined;
    const sub = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${CHAT_STREAM}`, {
      callback: (err, msg) => {
        if (err || found) return;
        try {
          const leader = (msg.json() as { leader?: string }).leader;
          if (leader && leader !== old) found = { name: leader, at: now() };
        } catch {
          // not an advisory
        }
      },
    });
    try {
      const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 500 });
      for (;;) {
        if (found) return found;
        try {
          const leader = (await jsm.streams.info(CHAT_STREAM)).cluster?.leader;
          if (found) return found;
          if (leader && leader !== old) return { name: leader, at: now() };
        } catch {
          // no leader yet
        }
        if (now() > deadline) throw new Error(`no new ${CHAT_STREAM} leader`);
        await sleep(50);
      }
    } finally {
      sub.unsubscribe();
      await nc.close().catch(() => {});
    }
  }

  /** The stream position of a drill message (by label), if the drill's subscription has seen it stored. */
  seqOf(label: string): number | undefined {
    return this.#labels.get(label);
  }

  /** Every stored chat message seen so far: its text and seq, oldest first (for diagnostics). */
  all(): Array<{ seq: number; text: string }> {
    return [...this.#stored.entries()].sort((a, b) => a[0] - b[0]).map(([seq, m]) => ({ seq, text: m.text }));
  }

  /**
   * When message `seq` was stored (ms since the epoch); waits for the drill's feed to see it, until `deadline`.
   * Null if the feed went past it without seeing it (the room's cap evicted it before the feed got there).
   */
  async storedAt(seq: number, deadline: number): Promise<number | null> {
    for (;;) {
      const m = this.#stored.get(seq);
      if (m) return m.time;
      if (this.#maxSeq > seq) return null;
      if (now() > deadline) throw new Error(`seq ${seq} of ${CHAT_STREAM} not seen by the drill`);
      await sleep(POLL_MS);
    }
  }

  async close(): Promise<void> {
    this.#off();
    await this.ps.close().catch(() => {});
  }
}
