// Max-age expiry for the embedded engine: one timer per stream, due when its oldest message expires,
// so messages go on their own, without any read (the contract says "expired messages go without any
// read"), and an idle stream costs no timer.
import type { Logger } from "../../log.ts";
import type { Store, StreamState } from "./store.ts";

/** Node fires timers over 2^31-1 ms (~24.8 days) at once; a capped timer just re-arms when it fires early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ExpiryTimers {
  readonly #timers = new Map<StreamState, { timer: NodeJS.Timeout; due: number }>();
  #stopped = false;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Arms (or moves earlier) the stream's timer for its oldest message; clears it when nothing can expire. */
  schedule(st: StreamState): void {
    if (this.#stopped || st.deleted) return;
    const maxAge = st.config.maxAge;
    const current = this.#timers.get(st);
    if (maxAge === 0 || st.messages === 0) {
      this.clear(st);
      return;
    }
    const due = st.firstTime + maxAge;
    if (current && current.due <= due) return; // an earlier sweep will reschedule
    if (current) clearTimeout(current.timer);
    // A little slack batches the deletes of messages published close together (≤ 5% of maxAge, ≤ 1 s)
    // instead of one timer per message under load. Reads never see expired messages regardless.
    const slack = Math.min(1000, Math.max(5, Math.floor(maxAge / 20)));
    const timer = setTimeout(
      () => {
        this.#timers.delete(st);
        if (this.#stopped || st.deleted) return;
        try {
          this.store.tx(() => this.store.expire(st, Date.now()));
        } catch (err) {
          this.log.error({ err, stream: st.name }, "embedded pubsub: expiry sweep failed");
        }
        this.schedule(st);
      },
      Math.min(MAX_TIMER_MS, Math.max(0, due - Date.now()) + slack),
    );
    timer.unref(); // expiry must not keep a process alive that has nothing else to do
    this.#timers.set(st, { timer, due });
  }

  clear(st: StreamState): void {
    const current = this.#timers.get(st);
    if (current) clearTimeout(current.timer);
    this.#timers.delete(st);
  }

  /** The engine is closing: no timer fires or is armed from here on. */
  stop(): void {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
