// A small app that exercises every framework feature the HTTP and browser tests need.
import { type Action, ActionError, type App, type AppOptions, createApp, RateLimiter } from "../../src/index.ts";

export interface FixtureState {
  /** Order in which slow actions started and finished, to prove one-at-a-time execution. */
  trace: string[];
  disposed: number;
}

/** A button that runs `action` on click (for the tests' own pages too). */
export function Button(props: { id: string; action: Pick<Action, "onClick">; label: string }) {
  return (
    <button type="button" id={props.id} {...props.action.onClick()}>
      {props.label}
    </button>
  );
}

export function createFixtureApp(options: AppOptions = {}): { app: App; state: FixtureState } {
  const state: FixtureState = { trace: [], disposed: 0 };
  const app = createApp({ title: "fixture", ...options });
  const feed = new Set<(text: string) => void>();
  // An app's own limit per client address (as the chat's per-room send limit): 2 per minute.
  const perClient = new RateLimiter({ ratePerSec: 1 / 30, burst: 2 });

  app.page("/", (c) => {
    const count = c.signal(0, { name: "count" });
    const text = c.signal("", { name: "text" });
    const echo = c.signal("", { name: "echo" });
    let pushes = 0;
    // Server-owned state lives in the closure; the view renders it.
    let clicks = 0;
    const click = c.action(() => {
      clicks++;
      c.sync();
    });

    const inc = c.action(() => count.set(count.value + 1));
    const copy = c.action(() => {
      echo.set(text.value);
      c.sync();
    });
    const broadcast = c.action(() => {
      for (const fn of feed) fn(text.value);
    });
    const slow = c.action(async () => {
      const n = count.value;
      state.trace.push(`start ${n}`);
      await new Promise((r) => setTimeout(r, 20)); // the action's own run time (the app's, not a test's wait)
      state.trace.push(`end ${n}`);
    });
    const boom = c.action(() => {
      throw new Error("kaboom: internal detail");
    });
    const userError = c.action(() => {
      throw new ActionError("That name is taken");
    });
    const limited = c.action(() => {
      perClient.check(c.clientAddress, "two per minute from your network; try again in {seconds} s");
      count.set(count.value + 1);
    });
    const big = c.action(() => {
      // 64 KiB per patch: lets tests overflow a small queue cap against a reader that does not read.
      const chunk = "x".repeat(64 * 1024);
      for (let i = 0; i < 40; i++) c.patch("#log", <p>{chunk}</p>, "append");
    });
    // Every 100 ms: an element patch and a full-view morph, to prove neither disturbs typing.
    const tick = c.action(() => {
      c.interval(100, () => {
        c.patch("#ticks", <span id="ticks">{String(++pushes)}</span>);
        c.sync();
      });
    });

    // Only the live context joins the feed and counts as a tab: the page render's context is thrown away.
    if (c.live) {
      const onFeed = (t: string) => c.patch("#feed", <li>{t}</li>, "append");
      feed.add(onFeed);
      c.onDispose(() => {
        feed.delete(onFeed);
        state.disposed++;
      });
    }

    c.view(() => (
      <main>
        <output id="count" {...count.textAttrs()}>
          {count.value}
        </output>
        <output id="clicks">{clicks}</output>
        <Button id="click" action={click} label="click" />
        <Button id="inc" action={inc} label="+" />
        <input id="text" {...text.bind()} {...copy.onKeyDown("Enter")} />
        <Button id="copy" action={copy} label="copy" />
        <p id="echo">{echo.value}</p>
        <Button id="broadcast" action={broadcast} label="broadcast" />
        <Button id="slow" action={slow} label="slow" />
        <Button id="boom" action={boom} label="boom" />
        <Button id="user-error" action={userError} label="user error" />
        <Button id="limited" action={limited} label="limited" />
        <Button id="big" action={big} label="big" />
        <Button id="tick" action={tick} label="tick" />
        <span id="ticks">{String(pushes)}</span>
        <ul id="feed" />
        <div id="log" />
      </main>
    ));
  });

  app.page("/item/:id", (c) => {
    c.view(() => <h1 id="item">Item {c.params.id}</h1>);
  });

  return { app, state };
}
