// RetryPresser: presses Retry on every "not sent" message in the writers' tabs through the chat's retry
// action, as a person would, and records each press.
import type { ChatTab } from "../../../harness/chat-client.ts";
import { sleep } from "../../../harness/cleanup.ts";
import { unescapeHtml } from "../../../src/server/html.ts";
import { now } from "../clock.ts";
import { labelOf, type Traffic } from "../traffic.ts";

const RETRY_BUTTON = /<button[^>]*class="retry[^"]*"[^>]*>/g;

/** The retry action's id, read from a Retry button in what the tab's server sent (it is the same for every message). */
function retryActionOf(tab: ChatTab): string | undefined {
  const sources = [...(tab.client.stream?.events ?? [])].reverse().map((e) => e.data.elements ?? "");
  sources.push(tab.client.html);
  for (const html of sources) {
    for (const tag of html.matchAll(RETRY_BUTTON)) {
      const spec = /data-on-click="([^"]*)"/.exec(tag[0])?.[1];
      if (!spec) continue;
      const text = unescapeHtml(spec);
      return text.startsWith("{") ? (JSON.parse(text) as { action: string }).action : text;
    }
  }
  return undefined;
}

/** Presses Retry on every "not sent" message in the writers' tabs, as a person would. */
export class RetryPresser {
  /** Every press: which message, when, the action's HTTP status. */
  readonly presses: Array<{ label: string; at: number; status: number }> = [];
  /** Labels Retry was pressed on. */
  readonly retried = new Set<string>();
  readonly #last = new Map<string, number>();
  #running = true;
  readonly #loop: Promise<void>;

  constructor(readonly traffic: Traffic) {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      for (let k = 0; k < this.traffic.writers.length && this.#running; k++) {
        const tab = this.traffic.writerTab(k);
        for (const m of tab.messages) {
          if (m.state !== "failed") continue;
          // One press per message per 2 s: the press itself turns it back to "sending".
          if (now() - (this.#last.get(m.id) ?? 0) < 2_000) continue;
          const action = retryActionOf(tab);
          if (!action) continue;
          this.#last.set(m.id, now());
          const label = labelOf(m.text);
          const key = label ? `w${label.writer}#${label.n}` : m.id;
          // Noted before the press: the message can reach the observers before the action's response.
          this.retried.add(key);
          const res = await tab.client
            .action(action, { ...tab.client.signals, retry: m.id })
            .catch(() => ({ status: 0 }));
          this.presses.push({ label: key, at: now(), status: res.status });
        }
      }
      await sleep(250);
    }
  }

  pressesBetween(from: number, to = Number.POSITIVE_INFINITY): number {
    return this.presses.filter((p) => p.at >= from && p.at < to).length;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
