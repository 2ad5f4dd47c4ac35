// The engine conformance suite: written once, run against every PubSub engine (embedded SQLite, a single
// nats-server, a 3-node cluster, or a third engine of your own). Each test name is a behaviour claim of
// the PubSub contract in src/pubsub/types.ts; an engine is conformant when all of them pass.
//
// It ships in the package as `via-ts/testing` and registers its tests with node:test (Node's built-in
// runner, nothing to install). Usage, from a test file run with `node --test`:
//
//   import { runConformance } from "via-ts/testing";
//   runConformance({ name: "my-engine", open, restart, restartKeepsSubscriptions: false, cleanup });
//
// The suite checks errors by class: an engine throws the classes exported by `via-ts/pubsub`
// (StreamNotFoundError, WrongLastSequenceError, ...), from the same installed copy of via-ts.
//
// EngineHarness contract:
// - open(): a fresh, open engine. Storage may be shared by all engines of one harness (one nats-server
//   for the whole run is fine): every test uses its own stream names and subject prefix, so no test sees
//   another's data. Each test closes the engines it opened (close() is idempotent, so a harness may close
//   leftovers again in cleanup()).
// - restart(engine): simulate a crash of the storage and come back, returning the engine to use afterwards.
//   Embedded: close + reopen the same data dir (a new engine). NATS: kill -9 and restart the server(s)
//   while the engine keeps running, then return the same engine once it can publish again.
// - restartKeepsSubscriptions: true when subscriptions made before restart() keep delivering after it (the
//   same engine stayed up); false when the suite must subscribe again with fromSeq to resume.
// - cleanup(): called once after the suite (stop servers, remove temp dirs).
// - replicas: put into every stream config the suite creates (3 for a cluster).
// - timeScale: multiplies the suite's waits and timeouts for slow setups (default 1).
//
// The suite never assumes an engine's byte accounting (JetStream adds per-message overhead) nor exact
// expiry timing beyond "gone within a few max-ages".
//
// The tests are grouped by topic under src/testing/conformance/ (publishing and subscribing, reading,
// streams and limits, restarts, the engine as a whole); this file is the one entry point.
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { historyTests } from "./conformance/history.ts";
import { lifecycleTests } from "./conformance/lifecycle.ts";
import { publishSubscribeTests } from "./conformance/publish-subscribe.ts";
import { restartTests } from "./conformance/restart.ts";
import { streamTests } from "./conformance/streams.ts";
import type { Ctx, EngineHarness, It } from "./conformance/support.ts";

export type { EngineHarness };

export function runConformance(h: EngineHarness): void {
  const scale = h.timeScale ?? 1;
  const ms = (n: number) => Math.round(n * scale);
  const run = randomBytes(3).toString("hex");
  let counter = 0;

  describe(`${h.name} conformance`, () => {
    after(() => h.cleanup());

    /** Registers one test with a fresh engine and unique names; closes whatever engine is current at the end. */
    const it: It = (name, fn) =>
      test(`${h.name}: ${name}`, { timeout: ms(20_000) }, async (t) => {
        const n = ++counter;
        const p = `cf${run}${n}`;
        const ctx: Ctx = {
          t,
          ps: await h.open(),
          p,
          stream: (suffix = "") => `CF_${run}_${n}${suffix ? `_${suffix}` : ""}`,
          ensure: (config) =>
            ctx.ps.ensureStream({
              name: ctx.stream(),
              ...(h.replicas !== undefined ? { replicas: h.replicas } : {}),
              ...config,
            }),
          restart: async () => {
            ctx.ps = await h.restart(ctx.ps);
          },
          ms,
        };
        try {
          await fn(ctx);
        } finally {
          await ctx.ps.close();
        }
      });

    const suite = { it, h, ms };
    publishSubscribeTests(suite);
    historyTests(suite);
    streamTests(suite);
    restartTests(suite);
    lifecycleTests(suite);
  });
}
