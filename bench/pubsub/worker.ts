// One bench:pubsub job in a fresh process (so one engine's heap, JIT state and GC debt never leak into the
// other's numbers): opens one engine, runs the job given as JSON in argv[2], sends the result over the
// IPC channel and exits. Started by bench/pubsub.ts; exits by itself when the parent goes away.

import { sleep } from "../../harness/cleanup.ts";
import { openEmbedded } from "../../src/pubsub/embedded/engine.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import {
  CORE_SUBJECT,
  FAN_SUBJECT,
  fanoutRate,
  fanoutSubscribers,
  fillHistory,
  freshStream,
  historyLatency,
  historyPlan,
  type LatencyStats,
  publishRate,
  roomSubject,
  STREAMS,
} from "./rows.ts";

export interface Sizes {
  seqN: number;
  seqWarm: number;
  winN: number;
  winWarm: number;
  window: number;
  subs: number;
  fanN: number;
  fanWarm: number;
  /** Core fan-out is ~10× cheaper per message than stream fan-out: more messages for a stable figure. */
  coreN: number;
  coreWarm: number;
  histTotal: number;
  rooms: number;
  histCalls: number;
}

export interface Job {
  task: "fill" | "rep";
  engine: "embedded" | "nats";
  dataDir: string;
  natsUrl: string;
  sizes: Sizes;
  seed: number;
}

export interface RepResult {
  pubSeq: number;
  pubWindow: number;
  fanStream: number;
  fanCore: number;
  histLast: LatencyStats;
  histOlder: LatencyStats;
}

export interface FillResult {
  filled: boolean;
  ms: number;
  messages: number;
}

export type WorkerMessage = { ok: true; result: RepResult | FillResult } | { ok: false; error: string };

const FANOUT_TIMEOUT_MS = 60_000;
// A job that hangs (a bug, a dead server) must not hang the bench.
const JOB_TIMEOUT_MS = 150_000;

const gc = (globalThis as { gc?: () => void }).gc;
const settle = async () => {
  gc?.();
  await sleep(50);
};

async function open(job: Job): Promise<PubSub> {
  if (job.engine === "embedded") return openEmbedded({ dataDir: job.dataDir });
  return connectNats({ servers: job.natsUrl, name: `bench-${job.task}` });
}

async function fanout(ps: PubSub, subject: string, s: Sizes, n: number, warm: number): Promise<number> {
  const fan = fanoutSubscribers(ps, subject, s.subs);
  try {
    await fanoutRate(fan, ps, subject, s.subs, warm, s.window, FANOUT_TIMEOUT_MS);
    await settle();
    return await fanoutRate(fan, ps, subject, s.subs, n, s.window, FANOUT_TIMEOUT_MS);
  } finally {
    fan.close();
  }
}

async function rep(ps: PubSub, job: Job): Promise<RepResult> {
  const s = job.sizes;
  // Acked publish, one at a time and `window` in flight, into a fresh stream.
  await freshStream(ps, STREAMS.pub);
  await publishRate(ps, "bpub.seq", s.seqWarm, 1);
  await settle();
  const pubSeq = await publishRate(ps, "bpub.seq", s.seqN, 1);
  await publishRate(ps, "bpub.win", s.winWarm, s.window);
  await settle();
  const pubWindow = await publishRate(ps, "bpub.win", s.winN, s.window);

  // Fan-out to in-process subscribers: a stream subject, then a core subject.
  await freshStream(ps, STREAMS.fan);
  await settle();
  const fanStream = await fanout(ps, FAN_SUBJECT, s, s.fanN, s.fanWarm);
  await settle();
  const fanCore = await fanout(ps, CORE_SUBJECT, s, s.coreN, s.coreWarm);

  // History: every room once (the NATS engine builds its per-room window on first use), a few older pages,
  // then the timed plan (the same for both engines: same seed).
  for (let r = 0; r < s.rooms; r++) await ps.history(roomSubject(r), { last: 50 });
  const warm = historyPlan(job.seed + 1, Math.max(10, Math.floor(s.histCalls / 4)), s.rooms, s.histTotal);
  await historyLatency(ps, warm);
  await settle();
  const h = await historyLatency(ps, historyPlan(job.seed, s.histCalls, s.rooms, s.histTotal));
  return { pubSeq, pubWindow, fanStream, fanCore, histLast: h.last, histOlder: h.older };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "") as Job;
  const ps = await open(job);
  try {
    if (job.task === "fill") {
      const r = await fillHistory(ps, job.sizes.histTotal, job.sizes.rooms);
      const info = await ps.info(STREAMS.hist.name);
      return reply({ ok: true, result: { ...r, messages: info.messages } satisfies FillResult });
    }
    return reply({ ok: true, result: await rep(ps, job) });
  } finally {
    await ps.close();
  }
}

function reply(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) throw new Error("bench/pubsub/worker.ts must be started by bench/pubsub.ts (IPC channel)");
    process.send(m, () => resolve());
  });
}

process.on("disconnect", () => process.exit(1));
setTimeout(() => {
  process.stderr.write(`bench worker: job still running after ${JOB_TIMEOUT_MS / 1000} s, giving up\n`);
  process.exit(1);
}, JOB_TIMEOUT_MS).unref();

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }).catch(() => {});
    process.exit(1);
  },
);
