// The example app: a per-tab counter and a live feed shared by every open tab.
// It shows the framework's model in a few lines: signals, actions, a view, and incremental patches.

import { readFileSync } from "node:fs";
import { type App, type AppOptions, createApp } from "../../src/index.ts";

interface FeedEntry {
  at: number;
  text: string;
}

const FEED_LIMIT = 20;

export function createCounterApp(options: AppOptions = {}): App {
  const app = createApp({ title: "via counter", ...options });
  app.stylesheet("counter.css", readFileSync(new URL("./counter.css", import.meta.url)));

  // The live feed lives in this process; every tab registers a listener and gets each new entry
  // as one appended element (not a re-render of the list).
  const recent: FeedEntry[] = [];
  const listeners = new Set<(entry: FeedEntry) => void>();

  const Entry = ({ entry }: { entry: FeedEntry }) => (
    <li>
      <time datetime={new Date(entry.at).toISOString()}>{new Date(entry.at).toISOString().slice(11, 19)}</time>{" "}
      {entry.text}
    </li>
  );

  app.page("/", (c) => {
    // Server-owned state is a plain variable the view closes over; signals are for what the browser
    // edits (the note being typed), because every action carries the browser's copy of them.
    let count = 0;
    const note = c.signal("", { name: "note" });

    const increment = c.action(() => {
      count++;
      c.sync();
    });
    const decrement = c.action(() => {
      count--;
      c.sync();
    });
    const post = c.action(() => {
      const text = note.value.trim().slice(0, 200);
      if (!text) return;
      note.set("");
      const entry = { at: Date.now(), text };
      recent.push(entry);
      if (recent.length > FEED_LIMIT) recent.shift();
      for (const listener of listeners) listener(entry);
    });

    const onEntry = (entry: FeedEntry) => {
      c.patch("#feed", <Entry entry={entry} />, "append");
    };
    listeners.add(onEntry);
    c.onDispose(() => listeners.delete(onEntry));

    c.view(() => (
      <main>
        <h1>Counter</h1>
        <p class="counter">
          <button type="button" id="dec" {...decrement.onClick()}>
            −
          </button>
          <output id="count">{count}</output>
          <button type="button" id="inc" {...increment.onClick()}>
            +
          </button>
        </p>
        <h2>Live feed (shared by every tab)</h2>
        <p>
          <input
            id="note"
            type="text"
            placeholder="Say something…"
            maxlength={200}
            {...note.bind()}
            {...post.onKeyDown("Enter")}
          />
          <button type="button" id="post" {...post.onClick()}>
            Post
          </button>
        </p>
        <ul id="feed">
          {recent.map((entry) => (
            <Entry entry={entry} />
          ))}
        </ul>
      </main>
    ));
  });
  return app;
}
