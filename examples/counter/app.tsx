// The example app: a per-tab counter and a live feed shared by every open tab.
// It shows the framework's model in a few lines: signals, actions, a view, a channel that sends one
// rendering of a change to every tab, and a streamed list the browser keeps.

import { readFileSync } from "node:fs";
import { type App, type AppOptions, createApp } from "via-ts";

interface FeedEntry {
  at: number;
  text: string;
}

const FEED_LIMIT = 20;

export function createCounterApp(options: AppOptions = {}): App {
  const app = createApp({ title: "via counter", ...options });
  app.stylesheet("counter.css", readFileSync(new URL("./counter.css", import.meta.url)));

  // The live feed: a page shows the recent entries; a new entry is rendered once and sent to every
  // open tab as one appended element (the channel), into a list the browser keeps (the stream).
  const recent: FeedEntry[] = [];
  const everyone = app.channel("feed");

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
    const feed = c.stream("feed", { limit: FEED_LIMIT });
    // The page render fills the list; the live tab (c.live) joins the channel for what comes next.
    if (!c.live) feed.insert(recent.map((entry) => <Entry entry={entry} />));
    everyone.join(c);

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
      everyone.insert("feed", <Entry entry={entry} />);
    });

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
        <ul {...feed.container()} />
      </main>
    ));
  });
  return app;
}
