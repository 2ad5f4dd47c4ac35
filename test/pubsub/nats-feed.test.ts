// The NATS engine's feed when the usual way fails: it reads on by direct get when it cannot create its
// consumer (as during a stream-leader election, or on a connection that just moved to another node), and
// it tells a subscriber, with its next message, when the stream deleted messages before the feed got to
// them. Real nats-server processes; a TCP proxy makes one client fall behind deterministically.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type NatsServer, natsServerMissing, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import { ATTEMPT, attemptTimeout, Bell, backoff, RETRY, sleepOrWake } from "../../src/pubsub/nats/retry.ts";
import type { Delivery, PubSub } from "../../src/pubsub/types.ts";
import { natsProbe } from "../../src/testing/nats.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const waitUntil = (cond: () => boolean, timeoutMs: number, what: () => string) => until(what, cond, timeoutMs, 2);

test("RetryPolicy_waitsDoubleUpToTheCapWithJitter_attemptsAreShortAfterAFailure_andABellEndsAWait", async () => {
  for (let attempt = 1; attempt <= 8; attempt++) {
    const step = Math.min(RETRY.maxMs, RETRY.baseMs * 2 ** (attempt - 1));
    for (let i = 0; i < 50; i++) {
      const w = backoff(attempt);
      assert.ok(
        w <= step && w >= step * (1 - RETRY.jitter),
        `attempt ${attempt}: ${w} ms within [${step / 2}, ${step}]`,
      );
    }
  }
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(attemptTimeout), [ATTEMPT.firstMs, 500, 500, 1_000, 2_000, 2_000]);
  const bell = new Bell();
  const woken = sleepOrWake(60_000, bell.next());
  bell.ring();
  assert.equal(await woken, true, "a ring ends the wait");
  assert.equal(await sleepOrWake(1, bell.next()), false, "a wait with no ring runs out");
});

const missing = natsServerMissing();

describe("nats engine feed: when its consumer fails, and when the stream moved on without it", {
  skip: missing,
}, () => {
  let server: NatsServer;
  let admin: NatsConnection;
  const engines: PubSub[] = [];
  const proxies: TcpProxy[] = [];

  before(async () => {
    server = await startNatsServer();
    admin = await connect({ servers: server.url });
  });
  after(async () => {
    for (const ps of engines) await ps.close();
    for (const p of proxies) await p.close();
    await admin?.close();
    await server?.stop();
  });

  test("Feed_whoseConsumerCannotBeCreated_deliversEveryMessageByDirectGet_inOrderOnce", async () => {
    // A stream that takes one consumer, and someone else holds it: the engine's feed can never create
    // its own, so everything it delivers comes by direct get.
    const jsm = await jetstreamManager(admin);
    await jsm.streams.add({ name: "NOCONS", subjects: ["nocons.>"], allow_direct: true, max_consumers: 1 });
    await jsm.consumers.add("NOCONS", { durable_name: "hog", ack_policy: AckPolicy.Explicit });
    const ps = await connectNats({ servers: server.url });
    engines.push(ps);
    const seen: number[] = [];
    ps.subscribe("nocons.>", (m) => seen.push(m.seq!));
    await waitUntil(
      () => natsProbe(ps).feedOf("NOCONS") !== undefined,
      5_000,
      () => "the engine to find the stream",
    );

    const js = jetstream(admin);
    let last = 0;
    for (let i = 0; i < 300; i++) last = (await js.publish(`nocons.s${i % 3}`, `m${i}`)).seq;
    await waitUntil(
      () => seen.at(-1) === last,
      10_000,
      () => `seq ${last} (got ${seen.length})`,
    );
    // Its own publish: acknowledged, and delivered at once (the ack wakes the reader), not at the next poll.
    const t0 = Date.now();
    const own = (await ps.publish("nocons.own", "mine"))!.seq;
    await waitUntil(
      () => seen.includes(own),
      5_000,
      () => `own seq ${own}`,
    );
    const ownMs = Date.now() - t0;

    assert.deepEqual(seen, range(1, own), "every message, in order, once");
    const feed = natsProbe(ps).feedOf("NOCONS")!;
    assert.equal(feed.consumersCreated, 0, "no consumer was ever made");
    assert.ok(feed.readDirect >= own, `${feed.readDirect} read by direct get`);
    assert.ok(ownMs < 1_000, `own publish to delivery took ${ownMs} ms`);
  });

  test("Subscriber_afterTheFeedSkippedMessagesTheStreamEvicted_isToldWithItsNextMessage", async () => {
    const proxy = await startTcpProxy(server.port);
    proxies.push(proxy);
    const behind = await connectNats({ servers: proxy.url });
    const writer = await connectNats({ servers: server.url });
    engines.push(behind, writer);
    const cfg = { name: "GAPS", subjects: ["gaps.>"], maxMsgsPerSubject: 5 };
    await behind.ensureStream(cfg);
    await writer.ensureStream(cfg);
    const got: Delivery[] = [];
    behind.subscribe("gaps.a", (m) => got.push(m));
    for (let i = 1; i <= 3; i++) await writer.publish("gaps.a", `m${i}`);
    await waitUntil(
      () => got.length === 3,
      5_000,
      () => `3 messages, got ${got.length}`,
    );

    // Cut off while the room moves on past its limit: seqs 4-8 are stored and evicted before it is back.
    proxy.cut();
    await waitUntil(
      () => !behind.status!().connected,
      5_000,
      () => "the disconnect",
    );
    for (let i = 4; i <= 13; i++) await writer.publish("gaps.a", `m${i}`);
    proxy.restore();
    await waitUntil(
      () => got.at(-1)?.seq === 13,
      10_000,
      () => `seq 13 (got ${got.map((m) => m.seq).join(",")})`,
    );

    assert.deepEqual(
      got.map((m) => m.seq),
      [1, 2, 3, 9, 10, 11, 12, 13],
    );
    const flagged = got.filter((m) => m.gapBefore === true);
    assert.deepEqual(
      flagged.map((m) => m.seq),
      [9],
      "the first message after the deleted ones says so; no other does",
    );
  });
});
