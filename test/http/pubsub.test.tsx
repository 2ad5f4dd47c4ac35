// Pub/sub through the framework: c.publish / c.subscribe on the embedded engine, seen at the protocol level.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { until } from "../../harness/poll.ts";
import { Browser } from "../../harness/sse-client.ts";
import { type App, createApp, openPubSub, type PubSub } from "../../src/index.ts";

/** A message the tests publish: who sent it and what it says. */
type Note = { from: string; text: string };

interface Started {
  app: App;
  base: string;
  pubsub: PubSub;
  handled: () => number;
  decodes: () => number;
  seen: Note[];
}

/** The app on a fresh engine, closed after the test `t`. */
async function start(t: TestContext, ttlMs = 120_000): Promise<Started> {
  const dir = await mkdtemp(join(tmpdir(), "via-pubsub-app-"));
  const pubsub = await openPubSub({ dataDir: dir });
  await pubsub.ensureStream({ name: "NOTES", subjects: ["notes.>"], maxMsgsPerSubject: 100 });
  const app = createApp({ pubsub, contextTtlMs: ttlMs });
  // One function for every tab, as an app would pass it: the parse-once cache is keyed by it.
  const decodeNote = (v: unknown): Note => {
    decodes++;
    const n = v as Note;
    if (typeof n?.text !== "string") throw new Error("not a note");
    return n;
  };
  let handled = 0;
  let decodes = 0;
  const seen: Note[] = [];
  app.page("/", (c) => {
    const text = c.signal("", { name: "text" });
    const send = c.action(async () => {
      const ack = await c.publishJson("notes.general", { from: c.tabId.slice(0, 4), text: text.value });
      c.setSignals({ lastSeq: ack?.seq ?? -1 });
    });
    c.subscribeJson<Note>(
      "notes.*",
      (note, msg) => {
        handled++;
        seen.push(note);
        c.patch("#notes", <li data-seq={String(msg.seq)}>{note.text}</li>, "append");
      },
      {
        decode: decodeNote,
      },
    );
    c.view(() => (
      <main>
        <input id="text" {...text.bind()} />
        <button type="button" id="send" {...send.onClick()}>
          send
        </button>
        <ul id="notes" />
      </main>
    ));
  });
  const { url } = await app.listen(0, "127.0.0.1", { handleSignals: false });
  t.after(async () => {
    await app.close();
    await pubsub.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { app, base: url, pubsub, handled: () => handled, decodes: () => decodes, seen };
}

test("c.publishJson acks with the stream seq and every subscribed tab gets the message as a patch", async (t) => {
  const { base } = await start(t);
  const a = await new Browser(base).load();
  const b = await new Browser(base).load();
  const [sa, sb] = [await a.connect(), await b.connect()];
  assert.equal((await a.action(a.actionOf("send"), { text: "hi <b>all</b>" })).status, 204);
  const ack = await sa.waitFor(
    (e) => e.event === "datastar-patch-signals" && (e.data.signals ?? "").includes("lastSeq"),
  );
  assert.deepEqual(JSON.parse(ack.data.signals!), { lastSeq: 1 });
  for (const s of [sa, sb]) {
    const ev = await s.waitFor((e) => e.data.selector === "#notes");
    assert.equal(ev.data.elements, '<li data-seq="1">hi &lt;b&gt;all&lt;/b&gt;</li>');
  }
  sa.close();
  sb.close();
});

test("c.subscribeJson parses a message once for all the tabs that get it and gives them one value", async (t) => {
  const { base, pubsub, decodes, seen } = await start(t);
  const tabs = await Promise.all([1, 2, 3].map(() => new Browser(base).load()));
  const streams = await Promise.all(tabs.map((t) => t.connect()));
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "once" }));
  for (const s of streams) await s.waitFor((e) => e.data.selector === "#notes");
  assert.equal(seen.length, 3);
  assert.equal(decodes(), 1, "decoded once, not once per tab");
  assert.ok(seen[0] === seen[1] && seen[1] === seen[2], "every tab got the same value");
  for (const s of streams) s.close();
});

test("a message that fails to decode is skipped and the tab keeps receiving", async (t) => {
  const { base, pubsub } = await start(t);
  const a = await new Browser(base).load();
  const s = await a.connect();
  await pubsub.publish("notes.general", "not json {");
  await pubsub.publish("notes.general", JSON.stringify({ nope: 1 }));
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "after" }));
  const ev = await s.waitFor((e) => e.data.selector === "#notes");
  assert.equal(ev.data.elements, '<li data-seq="3">after</li>');
  assert.equal(s.events.filter((e) => e.data.selector === "#notes").length, 1);
  s.close();
});

test("a tab's subscriptions end when its context is disposed, and a page render subscribes to nothing", async (t) => {
  const { base, pubsub, app, handled } = await start(t, 100);
  const tab = await new Browser(base).load();
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "before the stream" }));
  const s = await tab.connect();
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "while alive" }));
  await s.waitFor((e) => e.data.selector === "#notes");
  assert.equal(handled(), 1, "only the live context's subscription ran");
  s.close();
  await until("every tab is disposed", () => app.tabCount <= 0);
  // Messages reach subscribers in order: once a probe subscriber has the later "flush", the disposed
  // tab's handler would have run for "after dispose" if it were still subscribed.
  const flushed = new Promise<void>((resolve) => {
    pubsub.subscribe("notes.general", (m) => {
      if (new TextDecoder().decode(m.data).includes('"flush"')) resolve();
    });
  });
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "after dispose" }));
  await pubsub.publish("notes.general", JSON.stringify({ from: "x", text: "flush" }));
  await flushed;
  assert.equal(handled(), 1);
});
