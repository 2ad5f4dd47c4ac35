// The chat in real Chromium with two users (two browser contexts, two cookie jars), on both engines:
// the embedded engine on a temp data dir, and NATS JetStream on a real nats-server. Each test opens
// fresh users, so every user starts with a full send-rate bucket and its own identity.
// The embedded run also takes the README's screenshot: into a temp file, or into
// docs/screenshots/chat.png with UPDATE_SCREENSHOTS=1 (so a plain test run leaves the tree unchanged).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { type Chat, createChat } from "../../apps/chat/app.tsx";
import { type ChatMessage, DEV_QUOTES } from "../../apps/chat/messages.ts";
import { type Room, roomSubject } from "../../apps/chat/rooms.ts";
import { browserOrSkip, closeBrowser, openPage, type ProbedPage } from "../../harness/browser.ts";
import { say as sayIn, shownMessages, waitForMessage as waitForPageMessage } from "../../harness/chat-page.ts";
import { type NatsServer, natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { openPubSub } from "../../src/pubsub/index.ts";
import type { PubSub } from "../../src/pubsub/types.ts";

const SCREENSHOT = fileURLToPath(new URL("../../docs/screenshots/chat.png", import.meta.url));
const WAIT_MS = 10_000;

// ---- engines ----

interface Running {
  url: string;
  pubsub: PubSub;
}

interface Engine {
  name: "embedded" | "nats";
  skip: string | false;
  /** Started on first use, stopped in the file's after hook. */
  get(): Promise<Running>;
  stop(): Promise<void>;
}

function engine(name: Engine["name"], skip: string | false, open: () => Promise<Running & { close(): Promise<void> }>) {
  let started: ReturnType<typeof open> | undefined;
  return {
    name,
    skip,
    get: () => {
      started ??= open();
      return started;
    },
    async stop() {
      if (started) await (await started.catch(() => undefined))?.close();
    },
  } satisfies Engine;
}

async function serve(pubsub: PubSub, cleanup: () => Promise<void>): Promise<Running & { close(): Promise<void> }> {
  let chat: Chat | undefined;
  try {
    chat = await createChat({ pubsub });
    const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
    return {
      url,
      pubsub,
      async close() {
        await chat?.close();
        await pubsub.close();
        await cleanup();
      },
    };
  } catch (err) {
    await chat?.close().catch(() => {});
    await pubsub.close().catch(() => {});
    await cleanup();
    throw err;
  }
}

const engines: Engine[] = [
  engine("embedded", false, async () => {
    const dir = mkdtempSync(join(tmpdir(), "via-chat-browser-"));
    const cleanup = async () => rmSync(dir, { recursive: true, force: true });
    let pubsub: PubSub;
    try {
      pubsub = await openPubSub({ dataDir: dir });
    } catch (err) {
      await cleanup();
      throw err;
    }
    return serve(pubsub, cleanup);
  }),
  engine("nats", natsServerMissing(), async () => {
    const server: NatsServer = await startNatsServer();
    let pubsub: PubSub;
    try {
      pubsub = await openPubSub({ natsUrl: server.url });
    } catch (err) {
      await server.stop();
      throw err;
    }
    return serve(pubsub, () => server.stop());
  }),
];

after(async () => {
  await closeBrowser();
  for (const e of engines) await e.stop();
});

// ---- users ----

interface User extends ProbedPage {
  /** Messages of every dialog (alert/confirm/prompt) the page opened: must stay empty. */
  dialogs: string[];
  /** The random identity's name, read from the input's "<Name> says..." placeholder. */
  name: string;
  /** assertClean() plus: no dialog ever opened. */
  assertSafe(): void;
}

/** A new user (fresh context, so a fresh session cookie) on `path`, connected; closed after the test. */
async function enter(
  t: TestContext,
  browser: Browser,
  base: string,
  path: string,
  opts: { width?: number; height?: number } = {},
): Promise<User> {
  // A refused send is a 429 (its message is the toast); Chromium logs each non-2xx response.
  const p = await openPage(browser, null, { allowConsole: [/status of 429/] });
  t.after(() => p.close());
  const { page } = p;
  page.setDefaultTimeout(WAIT_MS);
  if (opts.width && opts.height) await page.setViewportSize({ width: opts.width, height: opts.height });
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(base + path);
  await page.waitForSelector("html[data-connection=online]");
  const placeholder = (await page.getAttribute("#statement", "placeholder")) ?? "";
  assert.match(placeholder, / says\.\.\.$/, "the input's placeholder is '<Name> says...'");
  return {
    ...p,
    dialogs,
    name: placeholder.replace(/ says\.\.\.$/, ""),
    assertSafe() {
      assert.deepEqual(dialogs, [], "no dialog opened");
      p.assertClean();
    },
  };
}

/** Types `text` into the input (all of it), presses Enter and waits until the server took it. */
async function say(u: User, text: string): Promise<void> {
  await u.page.fill("#statement", text);
  assert.equal(await u.page.inputValue("#statement"), text, "the input holds the whole text");
  await sayIn(u.page, text);
}

const waitForMessage = (u: User, text: string) => waitForPageMessage(u.page, text);
const shown = shownMessages;

const texts = async (page: Page) => (await shown(page)).map((m) => m.text);
const tag = () => Math.random().toString(36).slice(2, 8);

// ---- the behaviour, once per engine ----

/** Where a user enters: a path, or a path and the page's size. */
type Entry = string | readonly [path: string, size: { width: number; height: number }];

/** What a chat test gets: the engine's chat, and its users (each checked safe at the end). */
interface Scene<Users> {
  t: TestContext;
  url: string;
  pubsub: PubSub;
  /** The users of the test's entries, entered at once. */
  users: Users;
  /** Another user, entered now (and checked safe at the end too). */
  enter(path: string): Promise<User>;
}

for (const e of engines) {
  /**
   * A test of the chat on this engine, named `[engine] claim`: its users enter at once, and each must
   * end safe (no console error, page error, CSP violation or dialog). Skipped without a browser.
   */
  const chatTest = <const E extends readonly Entry[]>(
    claim: string,
    entries: E,
    body: (scene: Scene<{ -readonly [K in keyof E]: User }>) => Promise<void>,
  ) =>
    test(`[${e.name}] ${claim}`, { skip: e.skip }, async (t) => {
      const browser = await browserOrSkip(t);
      if (!browser) return;
      const { url, pubsub } = await e.get();
      const entered: User[] = [];
      const enterOne = async (entry: Entry) => {
        const [path, size] = typeof entry === "string" ? [entry, {}] : entry;
        const u = await enter(t, browser, url, path, size);
        entered.push(u);
        return u;
      };
      const users = (await Promise.all(entries.map(enterOne))) as { -readonly [K in keyof E]: User };
      await body({ t, url, pubsub, users, enter: enterOne });
      for (const u of entered) u.assertSafe();
    });

  chatTest("chat: messages go both ways between two users", ["/room/Go", "/room/Go"], async ({ users: [a, b] }) => {
    const id = tag();

    await say(a, `hello from A ${id}`);
    await waitForMessage(b, `hello from A ${id}`);
    await say(b, `hello back from B ${id}`);
    await waitForMessage(a, `hello back from B ${id}`);
    await waitForMessage(b, `hello back from B ${id}`);
    await waitForMessage(a, `hello from A ${id}`);

    for (const [viewer, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const mine = (await shown(viewer.page)).filter((m) => m.text.endsWith(id));
      assert.deepEqual(
        mine.map((m) => [m.author, m.text, m.classes.includes("mine")]),
        [
          [a.name, `hello from A ${id}`, viewer === a],
          [b.name, `hello back from B ${id}`, viewer === b],
        ],
        `${viewer === a ? "A" : "B"} sees both messages in order, its own marked as mine (other: ${other.name})`,
      );
    }
    // Every message carries its time, shown in the reader's time zone.
    const times = await b.page.$$eval("#messages > li.chat-message time[data-local-time]", (els) =>
      els.map((el) => ({ datetime: el.getAttribute("datetime"), text: el.textContent })),
    );
    assert.ok(times.length >= 2);
    for (const tm of times) {
      assert.ok(!Number.isNaN(Date.parse(tm.datetime ?? "")), `a valid datetime: ${tm.datetime}`);
      assert.match(tm.text ?? "", /\d/);
    }
    assert.equal(await a.page.textContent(".engine-badge"), e.name === "nats" ? "NATS" : "Embedded");
    assert.equal(await a.page.getAttribute('nav.rooms a[href="/room/Go"]', "aria-current"), "page");
  });

  chatTest(
    "room isolation: a message in Rust does not appear in Go",
    ["/room/Rust", "/room/Go"],
    async ({ users: [a, b] }) => {
      const id = tag();

      await say(a, `only in Rust ${id}`);
      await waitForMessage(a, `only in Rust ${id}`);
      // A later message in Go reaching B shows B's stream is live, so the Rust one would have arrived.
      await say(b, `only in Go ${id}`);
      await waitForMessage(b, `only in Go ${id}`);
      await say(a, `also only in Rust ${id}`);
      await waitForMessage(a, `also only in Rust ${id}`);
      await say(b, `also only in Go ${id}`);
      await waitForMessage(b, `also only in Go ${id}`);
      assert.ok(!(await texts(b.page)).some((x) => x.includes(`Rust ${id}`)), "no Rust message in Go");
      assert.ok(!(await texts(a.page)).some((x) => x.includes(`Go ${id}`)), "no Go message in Rust");

      // Switching rooms is a page navigation: B sees Rust's history there, and the back button returns to Go.
      await b.page.click('nav.rooms a[href="/room/Rust"]');
      await b.page.waitForURL(/\/room\/Rust$/);
      await b.page.waitForSelector('nav.rooms a[href="/room/Rust"][aria-current="page"]');
      await waitForMessage(b, `only in Rust ${id}`);
      await waitForMessage(b, `also only in Rust ${id}`);
      assert.ok(!(await texts(b.page)).some((x) => x.includes(`Go ${id}`)));
      await b.page.goBack();
      await b.page.waitForURL(/\/room\/Go$/);
      await b.page.waitForSelector('nav.rooms a[href="/room/Go"][aria-current="page"]');
      await waitForMessage(b, `also only in Go ${id}`);
      assert.ok(!(await texts(b.page)).some((x) => x.includes(`Rust ${id}`)));
    },
  );

  chatTest(
    "chat: hostile inputs show as text and never run",
    ["/room/Rust", "/room/Rust"],
    async ({ users: [a, b] }) => {
      const hostile = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "&lt;b&gt;not bold&lt;/b&gt; &amp; &amp;amp; &#60;i&#62;",
        '"><svg onload=alert(1)><!--',
        `long${"x".repeat(1496)}`,
        "مرحبا بالعالم",
        "🦊🚀 emoji 👩‍💻",
      ];
      // Alternate senders: each user stays within the send-rate burst, and both directions are covered.
      for (const [i, text] of hostile.entries()) {
        const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
        await say(from, text);
        await waitForMessage(to, text);
        const last = (await shown(to.page)).at(-1)!;
        assert.equal(last.text, text, "the other user sees exactly the text that was sent");
        assert.equal(last.author, from.name);
      }
      for (const u of [a, b]) {
        const injected = await u.page.$$eval(
          "#messages script, #messages img, #messages svg, #messages a, #messages iframe, #messages [onerror], #messages [onload]",
          (els) => els.map((el) => el.outerHTML),
        );
        assert.deepEqual(injected, [], "no markup from a message became an element");
        // The long word wraps inside the list instead of widening the page.
        const overflow = await u.page.evaluate(
          () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
        );
        assert.ok(overflow <= 0, `the page does not scroll sideways (overflow ${overflow}px)`);
      }
    },
  );

  chatTest(
    "chat: a message over 2,000 characters shows a visible error and the draft is kept",
    ["/room/Rust", "/room/Rust"],
    async ({ users: [a, b] }) => {
      const id = tag();
      const tooLong = `${id}${"y".repeat(3000 - id.length)}`;
      const overLimit = async () => {
        await a.page.waitForSelector("#via-toasts .via-toast-error");
        assert.match(
          (await a.page.textContent("#via-toasts .via-toast-error")) ?? "",
          /3,000 characters; the limit is 2,000/,
        );
        assert.equal(await a.page.inputValue("#statement"), tooLong, "the whole draft is kept");
        await a.page.evaluate(() => {
          for (const el of document.querySelectorAll("#via-toasts .via-toast")) el.remove();
        });
      };

      // The server's check, whatever the page lets through (the value set as a script would).
      await a.page.evaluate((value) => {
        const input = document.querySelector<HTMLInputElement>("#statement")!;
        input.value = value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      }, tooLong);
      await a.page.press("#statement", "Enter");
      await overLimit();

      // What a person does: paste the 3,000-character word into the input and press Enter.
      await a.page.fill("#statement", "");
      await a.page.fill("#statement", tooLong);
      assert.equal(
        (await a.page.inputValue("#statement")).length,
        3000,
        "the input takes the whole pasted text (it must not cut it silently at 2,000)",
      );
      await a.page.press("#statement", "Enter");
      await overLimit();

      // Nothing was sent: the next message is the next one on the other side.
      await a.page.fill("#statement", "");
      const next = `after the long one ${id}`;
      await say(a, next);
      await waitForMessage(b, next);
      assert.deepEqual(
        (await texts(b.page)).filter((x) => x.includes(id)),
        [next],
      );
    },
  );

  chatTest("chat: a draft survives incoming messages", ["/room/Go", "/room/Go"], async ({ users: [a, b] }) => {
    const id = tag();
    const incoming = Array.from({ length: 5 }, (_, i) => `incoming ${i + 1} ${id}`);
    const phrase = "I am typing a long thought, slowly";

    // Record what A's input held each time a message was appended, to show they came mid-draft.
    await a.page.evaluate(() => {
      const w = window as unknown as { __draftAtAppend: string[] };
      w.__draftAtAppend = [];
      new MutationObserver(() => {
        w.__draftAtAppend.push(document.querySelector<HTMLInputElement>("#statement")!.value);
      }).observe(document.querySelector("#messages")!, { childList: true });
    });
    await a.page.click("#statement");
    // A types slowly while B's first three messages arrive, then moves the caret back and types in
    // the middle while the last two arrive.
    await Promise.all([
      a.page.keyboard.type(phrase, { delay: 40 }),
      (async () => {
        for (const text of incoming.slice(0, 3)) await say(b, text);
        await waitForMessage(a, incoming[2]!);
      })(),
    ]);
    for (let i = 0; i < 7; i++) await a.page.keyboard.press("ArrowLeft");
    await Promise.all([
      a.page.keyboard.type(" XY", { delay: 120 }),
      (async () => {
        for (const text of incoming.slice(3)) await say(b, text);
      })(),
    ]);
    for (const text of incoming) await waitForMessage(a, text);

    const state = await a.page.evaluate(() => {
      const el = document.querySelector<HTMLInputElement>("#statement")!;
      return { value: el.value, caret: el.selectionStart, focused: document.activeElement === el };
    });
    const expected = `${phrase.slice(0, -7)} XY${phrase.slice(-7)}`;
    assert.equal(state.value, expected, "the draft is intact");
    assert.equal(state.caret, expected.length - 7, "the caret stayed where A put it");
    assert.ok(state.focused, "focus stayed in the input");
    const drafts = await a.page.evaluate(() => (window as unknown as { __draftAtAppend: string[] }).__draftAtAppend);
    assert.ok(
      drafts.filter((d) => d !== "").length >= 3,
      `messages arrived while A had a draft (draft lengths at each arrival: ${drafts.map((d) => d.length).join(", ")})`,
    );
    // And it still sends as typed.
    await a.page.press("#statement", "Enter");
    await waitForMessage(b, expected);
  });

  chatTest("chat: an empty message sends a developer quote", ["/room/Go", "/room/Go"], async ({ users: [a, b] }) => {
    const before = (await shown(b.page)).length;

    await a.page.press("#statement", "Enter");
    await b.page.waitForFunction((n) => document.querySelectorAll("#messages > li.chat-message").length > n, before);
    // The Send button does the same as Enter.
    await a.page.click("#send");
    await b.page.waitForFunction(
      (n) => document.querySelectorAll("#messages > li.chat-message").length > n + 1,
      before,
    );
    const [first, second] = (await shown(b.page)).slice(before);
    assert.equal(first?.author, a.name);
    const i = DEV_QUOTES.indexOf(first?.text ?? "");
    assert.ok(i >= 0, `a developer quote, got ${JSON.stringify(first?.text)}`);
    assert.equal(second?.text, DEV_QUOTES[(i + 1) % DEV_QUOTES.length], "the next quote comes next");
  });

  chatTest("chat: the nickname persists across reload", ["/room/Go"], async ({ url, users: [a] }) => {
    const nick = `Night Owl ${tag()}`;

    assert.equal(await a.page.inputValue("#nick"), a.name, "the nickname field starts with the current name");
    await a.page.click("details.nickname summary");
    await a.page.fill("#nick", nick);
    await a.page.click("#save-nick");
    await a.page.waitForSelector(`#via-toasts .via-toast:has-text("You are now ${nick}.")`);
    assert.equal(await a.page.getAttribute("#statement", "placeholder"), `${nick} says...`);

    await a.page.reload();
    await a.page.waitForSelector("html[data-connection=online]");
    assert.equal(await a.page.getAttribute("#statement", "placeholder"), `${nick} says...`);
    assert.equal(await a.page.inputValue("#nick"), nick);
    // Another tab of the same browser has it too, and messages carry it.
    const tab2 = await a.context.newPage();
    await tab2.goto(`${url}/room/Rust`);
    assert.equal(await tab2.getAttribute("#statement", "placeholder"), `${nick} says...`);
    await tab2.close();
    const text = `signed ${tag()}`;
    await say(a, text);
    await waitForMessage(a, text);
    assert.equal((await shown(a.page)).at(-1)?.author, nick);
  });

  // A room no other test uses: tabs closed by earlier tests stay "here" for a short grace period.
  chatTest("chat: presence shows both users", ["/room/JavaScript", "/room/JavaScript"], async ({ users: [a, b] }) => {
    const both = [a.name, b.name].sort();
    for (const u of [a, b]) {
      await u.page.waitForFunction(() => document.querySelector("#presence .count")?.textContent === "2 people here");
      const names = await u.page.$$eval("#presence li", (lis) => lis.map((li) => li.getAttribute("title") ?? ""));
      assert.deepEqual(names.sort(), both);
    }
  });

  chatTest(
    "chat: joining a room shows its last 50 messages at once and Load older pages back to the start",
    [],
    async ({ pubsub, enter }) => {
      const room: Room = "Python";
      const id = tag();
      const text = (i: number) => `history ${String(i).padStart(3, "0")} ${id}`;
      for (let i = 1; i <= 120; i++) {
        const message: ChatMessage = {
          v: 1,
          id: `hist-${id}-${i}`,
          user: { name: "Archive Bot", emoji: "🤖" },
          from: "archive-bot",
          text: text(i),
          time: Date.now(),
        };
        await pubsub.publish(roomSubject(room), JSON.stringify(message), { msgId: message.id });
      }
      const a = await enter(`/room/${room}`);
      // In the page as served: no waiting for a stream or a timeout.
      const first = await texts(a.page);
      assert.equal(first.length, 50);
      assert.deepEqual(
        first,
        Array.from({ length: 50 }, (_, i) => text(71 + i)),
      );
      assert.ok(await a.page.isVisible("#load-older"));
      assert.equal(await a.page.$("#history-start"), null);

      await a.page.click("#load-older");
      await a.page.waitForFunction(() => document.querySelectorAll("#messages > li.chat-message").length === 100);
      assert.deepEqual(
        await texts(a.page),
        Array.from({ length: 100 }, (_, i) => text(21 + i)),
      );
      await a.page.click("#load-older");
      await a.page.waitForSelector("#history-start");
      assert.deepEqual(
        await texts(a.page),
        Array.from({ length: 120 }, (_, i) => text(1 + i)),
      );
      assert.equal(await a.page.$("#load-older"), null, "no Load older at the start");
      assert.match((await a.page.textContent("#history-start")) ?? "", /start of #Python/);
    },
  );

  chatTest("chat: new messages arrive as appended elements", ["/room/Go", "/room/Go"], async ({ users: [a, b] }) => {
    const id = tag();
    await say(a, `first ${id}`);
    await waitForMessage(b, `first ${id}`);

    // Remember the list and its items, and count removals: a re-render would replace or remove them.
    for (const u of [a, b]) {
      await u.page.evaluate(() => {
        const list = document.querySelector("#messages")!;
        const w = window as unknown as { __list: Element; __items: Element[]; __added: Node[]; __removed: number };
        w.__list = list;
        w.__items = [...list.querySelectorAll(":scope > li.chat-message")];
        w.__added = [];
        w.__removed = 0;
        new MutationObserver((records) => {
          for (const r of records) {
            w.__removed += r.removedNodes.length;
            w.__added.push(...r.addedNodes);
          }
        }).observe(list, { childList: true });
      });
    }

    await say(a, `second ${id}`);
    await waitForMessage(b, `second ${id}`);
    await waitForMessage(a, `second ${id}`);

    for (const u of [a, b]) {
      const seen = await u.page.evaluate(() => {
        const w = window as unknown as { __list: Element; __items: Element[]; __added: Node[]; __removed: number };
        const now = [...document.querySelectorAll("#messages > li.chat-message")];
        return {
          before: w.__items.length,
          // For A: its message was appended once, as pending, and that same element became "sent".
          appendedIsLast: w.__added.length === 1 && w.__added[0] === now.at(-1),
          lastPending: now.at(-1)?.classList.contains("sending"),
          sameList: document.querySelector("#messages") === w.__list,
          oldItemsKept: w.__items.every((el, i) => el.isConnected && now[i] === el),
          added: now.length - w.__items.length,
          removed: w.__removed,
        };
      });
      assert.ok(seen.before >= 1);
      assert.deepEqual(
        { ...seen, before: undefined },
        {
          before: undefined,
          sameList: true,
          oldItemsKept: true,
          added: 1,
          removed: 0,
          appendedIsLast: true,
          lastPending: false,
        },
        "one element appended (and kept as it went from pending to sent), nothing re-rendered",
      );
    }
  });

  chatTest(
    "chat: over the send rate a visible error appears and the draft is kept",
    ["/room/Rust"],
    async ({ users: [a] }) => {
      const id = tag();
      // Seven messages as fast as a person could possibly send them: each typed once the previous one
      // was taken (the input cleared) or refused. The loop runs in the page, so it is not slowed down by
      // the test driver's round trips (the rate refills one message per second).
      const outcomes = await a.page.evaluate(async (id) => {
        const input = document.querySelector<HTMLInputElement>("#statement")!;
        const out: Array<"sent" | "refused"> = [];
        for (let i = 1; i <= 7; i++) {
          input.value = `burst ${i} ${id}`;
          input.dispatchEvent(new Event("input", { bubbles: true }));
          input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
          const deadline = Date.now() + 10_000;
          for (;;) {
            if (input.value === "") {
              out.push("sent");
              break;
            }
            if (document.querySelector("#via-toasts .via-toast-error")) {
              out.push("refused");
              return out;
            }
            if (Date.now() > deadline) throw new Error(`message ${i}: neither taken nor refused in 10 s`);
            await new Promise((r) => setTimeout(r, 5));
          }
        }
        return out;
      }, id);
      const refused = outcomes.length;
      assert.equal(outcomes.at(-1), "refused", `one of 7 quick messages is refused (got ${outcomes.join(", ")})`);
      assert.ok(refused >= 6, `the first 5 (the burst) go through, refused at ${refused}`);
      assert.match((await a.page.textContent("#via-toasts .via-toast-error")) ?? "", /sending too fast/);
      assert.equal(await a.page.inputValue("#statement"), `burst ${refused} ${id}`, "the draft is kept");
      for (let i = 1; i < refused; i++) await waitForMessage(a, `burst ${i} ${id}`);
      assert.deepEqual(
        (await texts(a.page)).filter((x) => x.endsWith(id)),
        Array.from({ length: refused - 1 }, (_, i) => `burst ${i + 1} ${id}`),
        "the refused message was not sent",
      );
    },
  );

  if (e.name === "embedded") {
    const entries = [["/room/Clojure", { width: 1280, height: 800 }], "/room/Clojure"] as const;
    chatTest("chat: a screenshot of a two-user conversation for the README", entries, async ({ users: [a, b] }) => {
      const conversation: Array<[User, string]> = [
        [b, "Hi all! Is anyone else trying the new chat?"],
        [a, "Yes, every room is a subject and its history is a durable stream."],
        [b, "So if I reload, nothing is lost?"],
        [a, "Nothing: the last 50 messages come with the page, older ones one click away."],
        [b, "Nice. And new messages arrive as one appended element 🚀"],
      ];
      for (const [u, text] of conversation) {
        await say(u, text);
        await waitForMessage(a, text);
      }
      await a.page.waitForFunction(() => document.querySelector("#presence .count")?.textContent === "2 people here");
      await a.page.click("#statement");
      await a.page.keyboard.type("Let me show the others");
      const target =
        process.env.UPDATE_SCREENSHOTS === "1" ? SCREENSHOT : join(tmpdir(), `via-chat-screenshot-${process.pid}.png`);
      mkdirSync(join(target, ".."), { recursive: true });
      await a.page.screenshot({ path: target });
      assert.ok(statSync(target).size > 10_000, "the screenshot has content");
      if (target !== SCREENSHOT) rmSync(target, { force: true });
    });
  }
}
