// history() on the NATS engine: the stored messages of one subject, read from the subject's in-memory
// window (window.ts) when it has them, else from the stream by sequence (reader.ts). Server 2.9 has no
// "last N of a subject" read, so the window, built once from the stream and kept current by the feed,
// answers the usual question (the newest messages of a room) without a scan.
import type { HistoryRead } from "../contract.ts";
import type { StreamMessage } from "../types.ts";
import type { NatsLink } from "./connection.ts";
import { readLastBefore, readPage } from "./reader.ts";
import { API_RETRY_MS } from "./retry.ts";
import type { KnownStream, StreamRegistry } from "./streams.ts";
import { SubjectWindow, WINDOW_SIZE, WindowCache } from "./window.ts";

/** How long history waits for the feed to reach the stream's last seq before reading the stream directly. */
const FEED_CATCH_UP_MS = 2_000;

export class History {
  #windows = new WindowCache();

  constructor(
    private readonly link: NatsLink,
    private readonly streams: StreamRegistry,
  ) {}

  /** A stored message from a known stream's feed: the subject's window, if there is one, takes it. */
  onFeedMessage(stream: string, m: StreamMessage): void {
    const w = this.#windows.peek(m.subject);
    if (w && w.stream === stream) w.append(m);
  }

  /** The stream's messages are no longer the ones the windows hold (deleted, or a new epoch). */
  dropStream(stream: string): void {
    this.#windows.dropStream(stream);
  }

  /** Arguments already checked (contract.ts): one literal subject, counts capped at MAX_HISTORY. */
  async read(subject: string, query: HistoryRead): Promise<StreamMessage[]> {
    const deadline = Date.now() + API_RETRY_MS;
    const retry = <T>(fn: () => Promise<T>) => this.link.retrying(fn, deadline);
    const ks = await retry(() => this.streams.streamFor(subject));
    this.link.assertOpen();
    if (!ks) return [];
    await ks.ready;
    // One cheap round trip: the subject's stored count and the stream's bounds right now. Stored messages
    // of a subject are always its newest ones (limits and expiry evict oldest first), so with the count the
    // window knows which of its messages are still there; and last_seq gives read-your-writes.
    const si = await retry(() => this.link.jsm.streams.info(ks.name, { subjects_filter: subject }));
    const lastSeq = si.state.last_seq;
    const count = si.state.subjects?.[subject] ?? 0;
    const firstSeq = si.state.first_seq;
    const density = si.state.messages > 0 ? count / si.state.messages : 1;
    if (count === 0) return [];

    let cands: StreamMessage[] = [];
    let hasAll = false;
    const w = await this.#window(ks, subject, lastSeq, firstSeq, density, deadline);
    // The window is only complete up to lastSeq if the feed got there while the window was in the cache
    // (an LRU eviction meanwhile stops its updates).
    if (w && (await ks.feed.waitFor(lastSeq, FEED_CATCH_UP_MS)) && this.#windows.peek(subject) === w) {
      cands = w.msgs.filter((m) => m.seq <= lastSeq);
      if (cands.length > count) cands = cands.slice(cands.length - count);
      hasAll = w.low === 0 || cands.length >= count;
    }
    const readBefore = async (beforeSeq: number, limit: number): Promise<StreamMessage[]> => {
      const older = cands.filter((m) => m.seq < beforeSeq);
      if (older.length >= limit) return older.slice(older.length - limit);
      if (hasAll) return older;
      const more = await retry(() =>
        readLastBefore(this.link, ks.name, {
          filter: subject,
          beforeSeq: older.length > 0 ? older[0]!.seq : beforeSeq,
          limit: limit - older.length,
          firstSeq,
          density,
        }),
      );
      return more.concat(older);
    };
    if (query.kind === "last") return readBefore(lastSeq + 1, Math.min(query.count, count));
    if (query.kind === "before") return readBefore(query.beforeSeq, query.limit);
    const { afterSeq, limit } = query;
    if (hasAll || (cands.length > 0 && afterSeq + 1 >= cands[0]!.seq)) {
      return cands.filter((m) => m.seq > afterSeq).slice(0, limit);
    }
    const page = await retry(() => readPage(this.link, ks.name, { filter: subject, startSeq: afterSeq + 1, limit }));
    return page.msgs;
  }

  /** The subject's window, built from the stream on first use (null if that read fails: history reads the stream). */
  async #window(
    ks: KnownStream,
    subject: string,
    lastSeq: number,
    firstSeq: number,
    density: number,
    deadline: number,
  ): Promise<SubjectWindow | null> {
    let w = this.#windows.get(subject);
    if (w && w.stream !== ks.name) {
      this.#windows.delete(subject);
      w = undefined;
    }
    if (!w) {
      const nw = new SubjectWindow(ks.name, subject);
      // Registered before the read, so feed messages after this point are kept (see SubjectWindow.fill);
      // the read covers everything up to where the feed already is, so there is no gap at the seam.
      this.#windows.set(nw);
      const bound = Math.max(lastSeq, ks.feed.lastSeq);
      nw.building = (async () => {
        const read = await this.link.retrying(
          () =>
            readLastBefore(this.link, ks.name, {
              filter: subject,
              beforeSeq: bound + 1,
              limit: WINDOW_SIZE,
              firstSeq,
              density,
            }),
          deadline,
        );
        // Fewer than asked means the read went back to the stream's first seq: it has every stored message.
        nw.fill(read, read.length < WINDOW_SIZE);
      })();
      w = nw;
    }
    try {
      await w.building;
      return w;
    } catch (err) {
      this.#windows.delete(subject);
      this.link.log.warn({ err: (err as Error).message, subject }, "nats history window build failed");
      return null;
    }
  }
}
