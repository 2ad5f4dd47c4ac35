// NATS-engine behaviour beyond the shared conformance suite: one feed consumer per stream however many
// local subscribers, recovery after a server crash (with the measured resume time), publish retries
// with one msg id, the history window, and a stream-leader kill in a 3-node cluster under traffic.
// Real nats-server processes throughout; no mocks.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { type NatsServer, natsServerMissing, startNatsCluster, startNatsServer } from "../../harness/nats-server.ts";
import { until } from "../../harness/poll.ts";
import { PublishTimeoutError, StreamNotFoundError } from "../../src/pubsub/errors.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import { WINDOW_SIZE } from "../../src/pubsub/nats/window.ts";
import { patternCovers } from "../../src/pubsub/subjects.ts";
import type { Delivery, PublishAck, PubSub, StreamMessage } from "../../src/pubsub/types.ts";
import { natsProbe } from "../../src/testing/nats.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const waitUntil = (cond: () => boolean, timeoutMs: number, what: () => string) => until(what, cond, timeoutMs, 2);

/**
 * Starts `call` with the server stopped (SIGSTOP), so its request sits in the socket unanswered, and
 * lets the server go on once the engine's debug log shows `retries` retries of it (`retryLine`).
 * Returns the call's promise wrapped, so the caller decides when to await it.
 */
async function lostAnswer<T>(
  server: NatsServer,
  log: string[],
  retryLine: string,
  retries: number,
  call: () => Promise<T>,
): Promise<{ pending: Promise<T> }> {
  await server.pause();
  const pending = call();
  const seen = () => log.filter((l) => l.includes(retryLine)).length;
  try {
    await waitUntil(
      () => seen() >= retries,
      12_000,
      () => `${seen()} timed-out attempts; engine log: ${log.join("")}`,
    );
  } finally {
    server.resume();
  }
  return { pending };
}

async function open(servers: string | string[], extra: { publishRetryMs?: number; name?: string } = {}) {
  return connectNats({ servers, ...extra });
}

async function consumerNames(nc: NatsConnection, stream: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const names: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) names.push(ci.name);
  return names;
}

test("PatternCovers_tellsWhenEverySubjectOfAPatternIsInsideAStreamSubject", () => {
  // Decides whether a subscription needs a core NATS subscription or is served by stream feeds only.
  const cases: Array<[string, string, boolean]> = [
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.>", "a.>", true],
    ["a.>", "a.*", true],
    ["a.>", "a", false],
    ["a.*", "a.b", true],
    ["a.*", "a.*", true],
    ["a.*", "a.>", false],
    ["a.*", "a.b.c", false],
    [">", "x.y", true],
    ["*.b", "a.b", true],
    ["a.b", "a.*", false],
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
  ];
  for (const [stream, pattern, want] of cases)
    assert.equal(patternCovers(stream, pattern), want, `${stream} ⊇ ${pattern}`);
});

const missing = natsServerMissing();

describe("nats engine (single server)", { skip: missing }, () => {
  let server: NatsServer;
  let admin: NatsConnection;
  const engines: PubSub[] = [];
  const track = (ps: PubSub) => {
    engines.push(ps);
    return ps;
  };

  before(async () => {
    server = await startNatsServer();
    admin = await connect({ servers: server.url });
  });
  after(async () => {
    for (const ps of engines) await ps.close();
    await admin?.close();
    await server?.stop();
  });

  test("Feed_usesOneConsumerPerStream_with1000LocalSubscribers", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "FANOUT", subjects: ["fan.>"] });
    const rooms = 50;
    const counts = new Array<number>(1000).fill(0);
    const patterns = range(0, 999).map((i) =>
      i % 3 === 0 ? `fan.room.${i % rooms}` : i % 3 === 1 ? "fan.room.*" : "fan.>",
    );
    const offs = patterns.map((p, i) =>
      ps.subscribe(p, () => {
        counts[i]!++;
      }),
    );
    for (let r = 0; r < rooms; r++) await ps.publish(`fan.room.${r}`, `hello ${r}`);
    // Each exact-room subscriber gets 1 message, each wildcard subscriber all 50.
    const expected = patterns.map((p) => (p.endsWith(".*") || p.endsWith(">") ? rooms : 1));
    const total = expected.reduce((a, b) => a + b, 0);
    await waitUntil(
      () => counts.reduce((a, b) => a + b, 0) >= total,
      10_000,
      () => `${counts.reduce((a, b) => a + b, 0)}/${total} deliveries`,
    );
    // A barrier: the feed delivers in stream order, so once a later message is delivered no earlier one
    // has a delivery still to come. The fan.> subscribers get the marker too.
    let marked = false;
    ps.subscribe("fan.marker", () => {
      marked = true;
    });
    await ps.publish("fan.marker", "end");
    await waitUntil(
      () => marked,
      5000,
      () => "the marker",
    );
    assert.deepEqual(
      counts,
      expected.map((n, i) => n + (patterns[i] === "fan.>" ? 1 : 0)),
    );
    assert.equal((await consumerNames(admin, "FANOUT")).length, 1, "one ordered consumer feeds every subscriber");
    // The server's own view agrees (monitoring endpoint).
    const jsz = (await (await fetch(`${server.monitorUrl}/jsz?consumers=true`)).json()) as { consumers: number };
    assert.equal(jsz.consumers, 1);
    // Every pattern lies inside the stream's subjects: no core subscription at all (no double traffic).
    assert.equal(natsProbe(ps).coreSubscriptionCount, 0);
    for (const off of offs) off();
    await ps.close();
    assert.deepEqual(await consumerNames(admin, "FANOUT"), [], "close() deletes the feed consumer");
  });

  test("CoreSubscription_coveringStreamSubjects_deliversEachMessageOnce", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "MIXED", subjects: ["mix.room.*"] });
    const got: Delivery[] = [];
    ps.subscribe("mix.>", (m) => got.push(m));
    assert.equal(
      natsProbe(ps).coreSubscriptionCount,
      1,
      "mix.> is wider than the stream: it needs a core subscription",
    );
    await ps.publish("mix.room.a", "stored");
    await ps.publish("mix.lobby", "core");
    await ps.publish("mix.room.b", "stored too");
    // A barrier on each way in (the stream's feed, the core subscription): each delivers in order, so
    // once both markers arrived no earlier message has a delivery still to come.
    await ps.publish("mix.room.end", "stored marker");
    await ps.publish("mix.lobby.end", "core marker");
    await waitUntil(
      () => got.some((m) => m.subject === "mix.room.end") && got.some((m) => m.subject === "mix.lobby.end"),
      5000,
      () => `${got.length}/5`,
    );
    const markers = new Set(["mix.room.end", "mix.lobby.end"]);
    assert.deepEqual(
      got
        .filter((m) => !markers.has(m.subject))
        .map((m) => [m.subject, m.seq])
        .sort(),
      [
        ["mix.lobby", undefined],
        ["mix.room.a", 1],
        ["mix.room.b", 2],
      ],
    );
  });

  test("LeadingWildcard_doesNotSeeClientPlumbing", async () => {
    const ps = track(await open(server.url));
    const got: string[] = [];
    ps.subscribe(">", (m) => got.push(m.subject));
    await ps.ensureStream({ name: "PLUMB", subjects: ["plumb.>"] });
    await ps.publish("plumb.a", "x"); // JetStream API request + reply inbox on the wire
    await ps.publish("other.a", "y");
    await waitUntil(
      () => got.includes("other.a") && got.includes("plumb.a"),
      5000,
      () => got.join(","),
    );
    assert.ok(!got.some((s) => s.startsWith("$") || s.startsWith("_INBOX.")), got.join(","));
  });

  test("Subscribe_toAStreamCreatedByAnotherProcess_replaysAndGoesLiveWithSeqs", async () => {
    const a = track(await open(server.url, { name: "A" }));
    const b = track(await open(server.url, { name: "B" }));
    await a.ensureStream({ name: "ELSEWHERE", subjects: ["else.>"] });
    for (let i = 1; i <= 5; i++) await a.publish("else.x", `m${i}`);
    const got: number[] = [];
    b.subscribe("else.x", (m) => got.push(m.seq!), { fromSeq: 1 });
    await waitUntil(
      () => got.length >= 5,
      5000,
      () => `${got.length}/5`,
    );
    for (let i = 6; i <= 8; i++) await a.publish("else.x", `m${i}`);
    // Seq 8 is the last: the feed delivers in order, so once it arrived nothing earlier is still to come.
    await waitUntil(
      () => got.includes(8),
      5000,
      () => `${got.length}/8`,
    );
    assert.deepEqual(got, range(1, 8));
    // B read-your-writes on A's messages through its own window.
    assert.deepEqual(
      (await b.history("else.x", { last: 3 })).map((m) => dec.decode(m.data)),
      ["m6", "m7", "m8"],
    );
  });

  test("Feed_resumesAfterKill9AndRestart_withNoGap (measures the resume time)", async (t) => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "BOUNCE", subjects: ["bounce.>"] });
    const seen: number[] = [];
    ps.subscribe("bounce.>", (m) => seen.push(m.seq!));
    let last = 0;
    const resumes: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) last = (await ps.publish("bounce.a", `r${round}-${i}`))!.seq;
      await waitUntil(
        () => seen.at(-1) === last,
        5000,
        () => `seq ${last}`,
      );
      await server.kill9();
      await sleep(300); // the outage being simulated lasts 300 ms
      await server.start();
      const up = Date.now();
      // A fresh client publishes the moment the server is healthy: the engine can only see that message
      // through its own recreated feed, so this times reconnect + consumer recreation + delivery.
      const nc = await connect({ servers: server.url });
      try {
        const ack = await jetstream(nc).publish("bounce.b", "after restart", { timeout: 5000 });
        await waitUntil(
          () => seen.includes(ack.seq),
          15_000,
          () => `seq ${ack.seq} through the feed`,
        );
        resumes.push(Date.now() - up);
        last = ack.seq;
      } finally {
        await nc.close();
      }
    }
    assert.deepEqual(seen, range(1, last), "no gap, no duplicate across three bounces");
    t.diagnostic(`feed resume after server back (ms): ${resumes.join(", ")}`);
    console.log(`[nats.test] feed resume after server back (ms): ${resumes.join(", ")}`);
    for (const r of resumes) assert.ok(r < 5000, `resume took ${r} ms`);
  });

  test("Publish_duringAnOutage_isRetriedAndStoredOnce", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "OUTAGE", subjects: ["out.>"] });
    await ps.publish("out.a", "before");
    await server.kill9();
    const started = Date.now();
    const pending = ps.publish("out.a", "during", { msgId: "outage-1" });
    await sleep(1500); // the outage being simulated lasts 1.5 s
    await server.start();
    const ack = await pending;
    assert.ok(Date.now() - started >= 1500, "resolved only after the server was back");
    assert.deepEqual(ack, { stream: "OUTAGE", seq: 2, duplicate: false });
    const info = await ps.info("OUTAGE");
    assert.equal(info.messages, 2);
    assert.deepEqual(
      (await ps.history("out.a", { last: 10 })).map((m) => dec.decode(m.data)),
      ["before", "during"],
    );
  });

  test("Publish_whoseAckIsLost_isRetriedWithTheSameMsgId_andStoredExactlyOnce", async () => {
    // The engine's debug log says when an attempt timed out; two such lines mean a retry was on the wire.
    const log: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void log.push(line) });
    const ps = track(await connectNats({ servers: server.url, logger }));
    await ps.ensureStream({ name: "LOSTACK", subjects: ["lost.>"] });
    // A second client watches the wire: every attempt that reaches the server is also a core message.
    const wire = await connect({ servers: server.url });
    const attempts: string[] = [];
    wire.subscribe("lost.>", {
      callback: (_e, m) => {
        attempts.push(m.headers?.get("Nats-Msg-Id") ?? "");
      },
    });
    await wire.flush();
    // SIGSTOP: the publish sits in the socket, the 2 s attempt times out, the retry queues behind it.
    const { pending } = await lostAnswer(server, log, "nats publish retry", 2, () => ps.publish("lost.a", "once"));
    const ack = await pending;
    await waitUntil(
      () => attempts.length >= 2,
      5000,
      () => `${attempts.length} attempts on the wire; engine log: ${log.join("")}`,
    );
    await wire.close();
    assert.ok(attempts.length >= 2, "the publish was sent more than once");
    assert.equal(new Set(attempts).size, 1, `every attempt carries the same msg id: ${attempts.join(",")}`);
    assert.ok(attempts[0]!.length > 0);
    // Stored once; the engine-generated id makes the caller see a plain, non-duplicate ack.
    assert.deepEqual(ack, { stream: "LOSTACK", seq: 1, duplicate: false });
    assert.equal((await ps.info("LOSTACK")).messages, 1);
  });

  test("DeleteStream_whoseAnswerIsLost_isRetried_andTheRetryFindingNoStreamMeansDone", async () => {
    const log: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void log.push(line) });
    const ps = track(await connectNats({ servers: server.url, logger }));
    await ps.ensureStream({ name: "LOSTDEL", subjects: ["lostdel.>"] });
    // SIGSTOP: the delete sits in the socket, its attempt times out, the retry queues behind it; on
    // SIGCONT the first deletes the stream and the retry finds none.
    const { pending } = await lostAnswer(server, log, "nats request retry", 1, () => ps.deleteStream!("LOSTDEL"));
    await pending;
    await assert.rejects(ps.info("LOSTDEL"), StreamNotFoundError);
    // A stream that was never there is still the caller's error.
    await assert.rejects(ps.deleteStream!("NEVERWAS"), StreamNotFoundError);
  });

  test("Publish_givesUpWithPublishTimeoutError_afterTheRetryBudget", async () => {
    const ps = track(await open(server.url, { publishRetryMs: 1500 }));
    await ps.ensureStream({ name: "GIVEUP", subjects: ["giveup.>"] });
    await server.pause();
    try {
      const t0 = Date.now();
      await assert.rejects(ps.publish("giveup.a", "x"), PublishTimeoutError);
      const took = Date.now() - t0;
      assert.ok(took >= 1000 && took < 6000, `gave up after ${took} ms`);
    } finally {
      server.resume();
    }
  });

  test("DiscardNewMaxBytes_concurrentPublishers_neverEvictAnAckedMessage (nats-server#4771 workaround)", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "BYTES", subjects: ["bytes.>"], maxBytes: 2000, discard: "new" });
    const results = await Promise.allSettled(range(1, 40).map((i) => ps.publish(`bytes.w${i % 4}`, "x".repeat(100))));
    const acked = results.filter((r) => r.status === "fulfilled").map((r) => (r.value as PublishAck).seq);
    const rejected = results.filter((r) => r.status === "rejected");
    assert.ok(acked.length > 5 && rejected.length > 0, `${acked.length} acked, ${rejected.length} rejected`);
    const info = await ps.info("BYTES");
    assert.deepEqual([info.messages, info.firstSeq], [acked.length, 1], "every acked message is still stored");
    assert.ok(info.bytes <= 2000);
  });

  test("History_window_servesLastN_andPagesBeyondIt_andDropsEvicted", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "HIST", subjects: ["hist.>"], maxMsgsPerSubject: 400 });
    const acks: PublishAck[] = [];
    for (let i = 1; i <= 350; i++) {
      acks.push((await ps.publish("hist.room", `m${i}`))!);
      await ps.publish("hist.noise", `n${i}`);
    }
    const seqOf = (i: number) => acks[i - 1]!.seq;
    const texts = (ms: { data: Uint8Array }[]) => ms.map((m) => dec.decode(m.data));
    // First call builds the window (last WINDOW_SIZE), later calls are served from it.
    assert.deepEqual(
      texts(await ps.history("hist.room", { last: 5 })),
      range(346, 350).map((i) => `m${i}`),
    );
    assert.ok(WINDOW_SIZE < 300);
    // More than the window holds: the older part comes from the stream, seamlessly.
    assert.deepEqual(
      texts(await ps.history("hist.room", { last: 300 })),
      range(51, 350).map((i) => `m${i}`),
    );
    assert.deepEqual(
      texts(await ps.history("hist.room", { beforeSeq: seqOf(160), limit: 20 })),
      range(140, 159).map((i) => `m${i}`),
    );
    assert.deepEqual(texts(await ps.history("hist.room", { afterSeq: seqOf(10), limit: 3 })), ["m11", "m12", "m13"]);
    // New messages flow into the window through the feed; read-your-writes holds.
    await ps.publish("hist.room", "m351");
    assert.deepEqual(texts(await ps.history("hist.room", { last: 2 })), ["m350", "m351"]);
    // A tighter per-subject limit evicts the oldest: the window must not serve what is gone.
    await ps.ensureStream({ name: "HIST", subjects: ["hist.>"], maxMsgsPerSubject: 3 });
    assert.deepEqual(texts(await ps.history("hist.room", { last: 10 })), ["m349", "m350", "m351"]);
    assert.deepEqual(texts(await ps.history("hist.room", { beforeSeq: seqOf(350), limit: 10 })), ["m349"]);
  });

  test("History_fromAnotherEngine_seesItsWritesAndExpiry", async () => {
    const a = track(await open(server.url));
    const b = track(await open(server.url));
    await a.ensureStream({ name: "HISTX", subjects: ["histx.>"], maxAge: 1000 });
    await a.publish("histx.r", "1");
    assert.deepEqual((await b.history("histx.r", { last: 5 })).length, 1); // builds b's window
    await a.publish("histx.r", "2");
    assert.deepEqual(
      (await b.history("histx.r", { last: 5 })).map((m) => dec.decode(m.data)),
      ["1", "2"],
    );
    // Expiry is the server's, on its own schedule: poll for it (a window that kept serving expired
    // messages would never answer empty).
    await until(
      "expired messages no longer served from the window",
      async () => {
        return (await b.history("histx.r", { last: 5 })).length === 0;
      },
      10_000,
      100,
    );
  });

  test("Feed_followsAStreamRecreatedElsewhere_intoTheNewEpoch", async () => {
    const a = track(await open(server.url));
    const b = track(await open(server.url));
    await a.ensureStream({ name: "EPOCH", subjects: ["epoch.>"] });
    await b.ensureStream({ name: "EPOCH", subjects: ["epoch.>"] });
    const got: Array<[string, number]> = [];
    b.subscribe("epoch.>", (m) => got.push([dec.decode(m.data), m.seq!]));
    await a.publish("epoch.a", "old-1");
    await a.publish("epoch.a", "old-2");
    await waitUntil(
      () => got.length >= 2,
      5000,
      () => `${got.length}/2`,
    );
    await a.deleteStream!("EPOCH");
    await a.ensureStream({ name: "EPOCH", subjects: ["epoch.>"] });
    await a.publish("epoch.a", "new-1");
    await waitUntil(
      () => got.length >= 3,
      15_000,
      () => `${got.length}/3`,
    );
    assert.deepEqual(got, [
      ["old-1", 1],
      ["old-2", 2],
      ["new-1", 1],
    ]);
  });

  test("DeleteStream_thenPublish_reachesSubscribersAsCore_andTheRecreatedStreamStartsAtSeq1", async () => {
    const ps = track(await open(server.url));
    await ps.ensureStream({ name: "GONE", subjects: ["gone.>"] });
    const got: Array<[string, number | undefined]> = [];
    ps.subscribe("gone.a", (m) => got.push([dec.decode(m.data), m.seq]));
    assert.equal(natsProbe(ps).coreSubscriptionCount, 0, "covered by the stream: delivered by its feed");
    await ps.publish("gone.a", "stored-1");
    await ps.publish("gone.a", "stored-2");
    // Live delivery trails the ack a little; what is not delivered when the stream is deleted is gone with it.
    await waitUntil(
      () => got.length >= 2,
      5000,
      () => JSON.stringify(got),
    );
    await ps.deleteStream!("GONE");
    assert.equal(await ps.publish("gone.a", "core"), null);
    await ps.ensureStream({ name: "GONE", subjects: ["gone.>"] });
    assert.equal((await ps.publish("gone.a", "new-1"))?.seq, 1);
    // A barrier: new-2 comes after everything before it on the recreated stream's feed.
    await ps.publish("gone.a", "new-2");
    await waitUntil(
      () => got.some(([text]) => text === "new-2"),
      5000,
      () => JSON.stringify(got),
    );
    assert.deepEqual(got, [
      ["stored-1", 1],
      ["stored-2", 2],
      ["core", undefined],
      ["new-1", 1],
      ["new-2", 2],
    ]);
  });
});

describe("nats engine (a user that may not create consumers)", { skip: missing }, () => {
  // The state a stream-leader election leaves for seconds: consumers cannot be had, the stream leader
  // answers. A user denied consumer creation makes it last, so the reads' other way is what is tested.
  test("Reads_withoutConsumers_goThroughTheStreamLeader_andEqualTheConsumerReads", { timeout: 60_000 }, async () => {
    const server = await startNatsServer({
      authorization: `users: [
        { user: admin, password: admin }
        { user: reader, password: reader, permissions: { publish: { deny: [
          "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DURABLE.CREATE.>" ] } } }
      ]`,
    });
    const engines: PubSub[] = [];
    try {
      const admin = await connectNats({ servers: server.url, user: "admin", pass: "admin" });
      engines.push(admin);
      const reader = await connectNats({ servers: server.url, user: "reader", pass: "reader" });
      engines.push(reader);
      await admin.ensureStream({ name: "NOCONS", subjects: ["nc.>"] });
      for (let i = 1; i <= 120; i++) {
        await admin.publish("nc.room", `m${i}`, { headers: { "x-n": `${i}` } });
        await admin.publish("nc.noise", `n${i}`);
      }
      const seqs = (await admin.history("nc.room", { last: 120 })).map((m) => m.seq);
      assert.equal(seqs.length, 120);
      // The same questions to both: the admin's answers come from consumers, the reader's cannot.
      const queries = [
        { last: 5 },
        { last: 120 },
        { afterSeq: 0, limit: 1000 },
        { afterSeq: seqs[9]!, limit: 3 },
        { beforeSeq: seqs[60]!, limit: 20 },
      ] as const;
      // Compared field by field: a consumer's data is a Buffer, a get's a plain Uint8Array.
      const plain = (ms: StreamMessage[]) => ms.map((m) => ({ ...m, data: dec.decode(m.data) }));
      for (const q of queries) {
        const want = plain(await admin.history("nc.room", q));
        assert.ok(want.length > 0);
        assert.deepEqual(plain(await reader.history("nc.room", q)), want, `history ${JSON.stringify(q)}`);
      }
      // A subscription from a seq replays the stored messages in order, then goes live.
      const got: Delivery[] = [];
      reader.subscribe("nc.room", (m) => got.push(m), { fromSeq: seqs[100]! });
      await admin.publish("nc.room", "live");
      await waitUntil(
        () => got.length >= 21,
        10_000,
        () => `${got.length}/21 replayed and live`,
      );
      assert.deepEqual(
        got.map((m) => dec.decode(m.data)),
        [...range(101, 120).map((i) => `m${i}`), "live"],
      );
      assert.equal(got[0]!.headers["x-n"], "101", "headers come through the leader's gets");
      // A pattern wider than the stream's subjects is matched here, not by the server: those gets ask for
      // the next message of any subject.
      const wide: string[] = [];
      reader.subscribe("*.room", (m) => wide.push(dec.decode(m.data)), { fromSeq: seqs[110]! });
      await waitUntil(
        () => wide.length >= 11,
        10_000,
        () => `${wide.length}/11 through the wide pattern`,
      );
      assert.deepEqual(wide, [...range(111, 120).map((i) => `m${i}`), "live"]);
    } finally {
      for (const ps of engines) await ps.close();
      await server.stop();
    }
  });
});

describe("nats engine (3-node cluster)", { skip: missing }, () => {
  test("StreamLeaderKill_underTraffic_losesNoAckedMessage", { timeout: 90_000 }, async (t) => {
    const cluster = await startNatsCluster(3);
    const engines: PubSub[] = [];
    try {
      // Publisher and subscriber on different nodes, each able to fail over to the others.
      const pub = await open(cluster.urls, { publishRetryMs: 30_000 });
      const sub = await open([...cluster.urls].reverse());
      engines.push(pub, sub);
      const cfg = { name: "LEADERKILL", subjects: ["lk.>"], replicas: 3 };
      await pub.ensureStream(cfg);
      await sub.ensureStream(cfg);
      const seen: number[] = [];
      sub.subscribe("lk.>", (m) => seen.push(m.seq!));
      const leader = await cluster.leaderOf("LEADERKILL");

      let stop = false;
      const acked = new Map<number, string>();
      let slowest = 0;
      const writers = range(1, 4).map(async (w) => {
        for (let i = 0; !stop; i++) {
          const body = `w${w}-${i}`;
          const t0 = Date.now();
          const ack = await pub.publish(`lk.w${w}`, body);
          slowest = Math.max(slowest, Date.now() - t0);
          assert.ok(!acked.has(ack!.seq), `seq ${ack!.seq} acked twice`);
          acked.set(ack!.seq, body);
        }
      });
      await waitUntil(
        () => acked.size >= 200,
        10_000,
        () => `${acked.size} acks before the kill`,
      );
      const killedAt = Date.now();
      const before = acked.size;
      await cluster.killNode(leader);
      const newLeader = await cluster.leaderOf("LEADERKILL", 30_000);
      const elected = Date.now() - killedAt;
      // Keep writing until the new leader has taken a good number of messages.
      await waitUntil(
        () => acked.size >= before + 200,
        30_000,
        () => `${acked.size - before} acks after the kill`,
      );
      stop = true;
      await Promise.all(writers);
      assert.notEqual(newLeader, leader);

      const last = Math.max(...acked.keys());
      const info = await sub.info("LEADERKILL");
      assert.equal(info.lastSeq, last, "nothing stored beyond the acked messages");
      assert.equal(info.messages, acked.size, "every acked message stored exactly once");
      // Every acked message is there with its own body, read back per writer subject.
      const readStart = Date.now();
      for (let w = 1; w <= 4; w++) {
        const stored = new Map<number, string>();
        let after = 0;
        for (;;) {
          const page = await sub.history(`lk.w${w}`, { afterSeq: after, limit: 1000 });
          for (const m of page) stored.set(m.seq, dec.decode(m.data));
          if (page.length < 1000) break;
          after = page.at(-1)!.seq;
        }
        for (const [seq, body] of acked) if (body.startsWith(`w${w}-`)) assert.equal(stored.get(seq), body);
      }
      const historyMs = Date.now() - readStart;
      // The live feed on the other node saw all of them, in order, once.
      await waitUntil(
        () => seen.length >= acked.size,
        30_000,
        () => `${seen.length}/${acked.size} via the feed`,
      );
      assert.deepEqual(seen, range(1, last));
      t.diagnostic(
        `leader n${leader + 1} killed; new leader n${newLeader + 1} after ${elected} ms; ` +
          `${acked.size} acked (${before} before the kill); slowest publish ${slowest} ms; ` +
          `history of the 4 subjects read back in ${historyMs} ms`,
      );
      console.log(
        `[nats.test] leader kill: election ${elected} ms, slowest publish ${slowest} ms, ${acked.size} acked, none lost, ` +
          `history read back in ${historyMs} ms`,
      );
    } finally {
      for (const ps of engines) await ps.close();
      await cluster.stop();
    }
  });
});
