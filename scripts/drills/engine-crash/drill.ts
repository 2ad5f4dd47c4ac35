// The engine-level crash drill, shared by `npm run drill:engine-crash` (scripts/drills/engine-crash.ts) and its
// short version in test/pubsub/crash-drill.test.ts.
//
// Writers (in this process) publish numbered messages, one at a time each, with a msg id per message;
// they record every ack. Meanwhile the process that holds the data is killed with SIGKILL at random
// moments and started again on the same storage: for the embedded engine that is a child process running
// the engine (scripts/drills/engine-crash/embedded-child.ts); for NATS it is the nats-server itself, while the
// writers publish through the NATS engine in this process. A publish that fails or goes unanswered is
// retried with the SAME msg id, as a real client would. At the end the whole stream is read back (a fresh
// engine, replay from seq 1) and checked: every acknowledged message is stored exactly once, at the seq
// its ack named, and each writer's messages are in the order it wrote them.
import { type ChildProcess, fork } from "node:child_process";
import { killAtExit, removeDir, sleep, tempDir } from "../../../harness/cleanup.ts";
import type { EngineName } from "../../../harness/cli.ts";
import { type NatsServer, startNatsServer } from "../../../harness/nats-server.ts";
import { openEmbedded } from "../../../src/pubsub/embedded/engine.ts";
import { connectNats } from "../../../src/pubsub/nats/engine.ts";
import type { PubSub, StreamMessage } from "../../../src/pubsub/types.ts";
import { DrillTimeoutError, randomBetween } from "../clock.ts";
import { DRILL_STREAM, type PublishReply, type PublishRequest } from "./protocol.ts";

export type DrillEngine = EngineName;

export interface DrillOptions {
  engine: DrillEngine;
  /** kill -9 count during the storm. */
  kills: number;
  writers: number;
  /** After a restart, wait for this many acks, then a random 0..maxUpMs before the next kill. */
  minAcksBetweenKills?: number;
  maxUpMs?: number;
  /** Random downtime 0..maxDownMs between the kill and the restart. */
  maxDownMs?: number;
  /** Writing goes on this long after the last restart before the writers stop. */
  tailMs?: number;
  /** Hard cap on the whole drill (storm + read-back); beyond it the drill fails. */
  timeLimitMs?: number;
  /** Progress lines (kills, restarts); silent by default. */
  log?: (line: string) => void;
}

export interface KillRecord {
  /** ms since the storm began. */
  atMs: number;
  pid: number;
  /** Publishes awaiting an ack when the kill landed. */
  inFlight: number;
  /** Acks received since the previous restart. */
  acksBefore: number;
  downMs: number;
  /** Time for the restarted process to be ready (engine open / server healthy). */
  restartMs: number;
}

export interface DrillCounts {
  /** Acknowledged messages missing from the stream. */
  lost: number;
  /** Extra stored copies of a message (any message, acknowledged or not). */
  duplicated: number;
  /** Stored messages that come after a later message of the same writer. */
  reordered: number;
  /** Acknowledged messages stored at another seq than their ack said. */
  wrongSeq: number;
  /** Stored messages no writer sent, or that cannot be parsed; read-back inconsistent with info(). */
  unexpected: number;
}

export interface DrillResult extends DrillCounts {
  engine: DrillEngine;
  writers: number;
  kills: KillRecord[];
  acked: number;
  stored: number;
  /** Acks that came back as duplicates: stored before a crash, ack lost, retry deduplicated. */
  dedupedRetries: number;
  /** Publish attempts that failed (target down, timeout) and were retried. */
  failedAttempts: number;
  stormMs: number;
  totalMs: number;
  pass: boolean;
}

/** For a bound in a race: does not keep the process alive after the race is decided. */
const bound = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const dec = new TextDecoder();
const rand = (max: number) => randomBetween(0, max);
const PAD = "p".repeat(64);

/** Whatever holds the data: killed and restarted by the drill, published to by the writers. */
interface Target {
  start(): Promise<void>;
  publish(subject: string, data: string, msgId: string): Promise<{ seq: number; duplicate: boolean }>;
  /** Resolves once the target accepts publishes again (at once if it does). */
  whenUp(): Promise<void>;
  /** SIGKILL the storage process and wait for it to be gone; returns its pid. */
  crash(): Promise<number>;
  /** Start it again on the same storage; resolves when ready. */
  recover(): Promise<void>;
  /** After the writers stopped: every stored message of the drill stream in seq order, read by a fresh engine. */
  readAll(deadline: number): Promise<{ msgs: StreamMessage[]; infoMessages: number; infoLastSeq: number }>;
  /** Kill everything and remove temp dirs. Idempotent; never throws. */
  dispose(): Promise<void>;
}

const CHILD = new URL("./embedded-child.ts", import.meta.url);
const TSX = import.meta.resolve("tsx");

class DownError extends Error {
  override name = "DownError";
}

class EmbeddedTarget implements Target {
  readonly dir = tempDir("via-drill-embedded-");
  #child: ChildProcess | null = null;
  #up = false;
  #nextId = 1;
  #pending = new Map<
    number,
    { resolve: (r: { seq: number; duplicate: boolean }) => void; reject: (e: Error) => void }
  >();
  #upWaiters: Array<() => void> = [];
  #disposed = false;

  start(): Promise<void> {
    return this.#spawn();
  }

  #spawn(): Promise<void> {
    if (this.#disposed) return Promise.reject(new Error("drill target disposed"));
    // One node process running the engine (no tsx CLI wrapper in between), so SIGKILL hits the engine itself.
    const child = fork(CHILD, [this.dir], {
      execArgv: ["--import", TSX],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "silent" },
    });
    killAtExit(child);
    this.#child = child;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`embedded child not ready after 30 s (data dir ${this.dir})`));
      }, 30_000);
      child.on("message", (m: PublishReply | { ready: true; pid: number }) => {
        if ("ready" in m) {
          clearTimeout(timer);
          this.#up = true;
          for (const w of this.#upWaiters.splice(0)) w();
          resolve();
          return;
        }
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (m.ok) p.resolve({ seq: m.seq, duplicate: m.duplicate });
        else p.reject(new Error(m.error));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (this.#child === child) {
          this.#child = null;
          this.#up = false;
        }
        const err = new DownError(`embedded child exited (code ${code}, signal ${signal})`);
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        reject(err); // no-op once ready
      });
    });
  }

  publish(subject: string, data: string, msgId: string): Promise<{ seq: number; duplicate: boolean }> {
    const child = this.#child;
    if (!child || !this.#up) return Promise.reject(new DownError("embedded child is down"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const req: PublishRequest = { id, subject, data, msgId };
      try {
        child.send(req, (err) => {
          if (err && this.#pending.delete(id)) reject(new DownError(err.message));
        });
      } catch (err) {
        this.#pending.delete(id);
        reject(new DownError((err as Error).message));
      }
    });
  }

  whenUp(): Promise<void> {
    if (this.#up) return Promise.resolve();
    return new Promise((r) => this.#upWaiters.push(r));
  }

  async crash(): Promise<number> {
    const child = this.#child;
    if (!child) throw new Error("embedded child is not running");
    const pid = child.pid ?? -1;
    this.#up = false;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGKILL");
    await gone;
    return pid;
  }

  recover(): Promise<void> {
    return this.#spawn();
  }

  async readAll(deadline: number) {
    if (this.#child) await this.crash(); // the last writer is done: end the child the hard way, one more time
    const ps = await openEmbedded({ dataDir: this.dir });
    try {
      return await readBack(ps, deadline);
    } finally {
      await ps.close();
    }
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    const child = this.#child;
    if (child) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGKILL");
      await Promise.race([gone, bound(5_000)]);
    }
    for (const w of this.#upWaiters.splice(0)) w();
    removeDir(this.dir);
  }
}

class NatsTarget implements Target {
  #server: NatsServer | null = null;
  #engine: PubSub | null = null;

  async start(): Promise<void> {
    this.#server = await startNatsServer();
    this.#engine = await connectNats({ servers: this.#server.url, name: "drill-writers" });
    await this.#engine.ensureStream(DRILL_STREAM);
  }

  async publish(subject: string, data: string, msgId: string) {
    if (!this.#engine) throw new DownError("nats engine not connected");
    // The engine itself retries with the same msg id through the outage (publishRetryMs); a
    // PublishTimeoutError here is retried by the writer, again with the same msg id.
    const ack = await this.#engine.publish(subject, data, { msgId });
    if (!ack) throw new Error(`${subject}: not captured by a stream`);
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  whenUp(): Promise<void> {
    return Promise.resolve();
  }

  async crash(): Promise<number> {
    const server = this.#server;
    if (!server) throw new Error("nats-server not started");
    const pid = server.pid;
    await server.kill9();
    return pid;
  }

  async recover(): Promise<void> {
    await this.#server?.start();
  }

  async readAll(deadline: number) {
    await this.#engine?.close();
    this.#engine = null;
    const server = this.#server;
    if (!server) throw new Error("nats-server not started");
    const ps = await connectNats({ servers: server.url, name: "drill-reader" });
    try {
      return await readBack(ps, deadline);
    } finally {
      await ps.close();
    }
  }

  async dispose(): Promise<void> {
    await this.#engine?.close().catch(() => {});
    this.#engine = null;
    await this.#server?.stop().catch(() => {});
    this.#server = null;
  }
}

/** Every stored message of the drill stream, in seq order, through subscribe({ fromSeq: 1 }). */
async function readBack(
  ps: PubSub,
  deadline: number,
): Promise<{ msgs: StreamMessage[]; infoMessages: number; infoLastSeq: number }> {
  const info = await ps.info(DRILL_STREAM.name);
  const msgs: StreamMessage[] = [];
  let wake: () => void = () => {};
  const done = new Promise<void>((r) => {
    wake = r;
  });
  const off = ps.subscribe(
    `${DRILL_STREAM.subjects[0]}`,
    (m) => {
      msgs.push(m as StreamMessage);
      if (msgs.length >= info.messages || (m.seq ?? 0) >= info.lastSeq) wake();
    },
    { fromSeq: 1 },
  );
  try {
    if (info.messages === 0) wake();
    const left = Math.max(1_000, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), left);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      throw new DrillTimeoutError(`read-back: ${msgs.length} of ${info.messages} messages after ${left} ms`);
    }
    await sleep(50); // anything delivered beyond what info() counted would be a bug: let it show
    return { msgs: [...msgs], infoMessages: info.messages, infoLastSeq: info.lastSeq };
  } finally {
    off();
  }
}

// ---- the check --------------------------------------------------------------------------------------

interface Ack {
  seq: number;
  duplicate: boolean;
}

/** Pure: compares what the writers got acked with what the stream holds. */
export function check(
  acks: Array<Array<Ack | undefined>>,
  sent: number[],
  stored: Array<{ seq: number; subject: string; data: Uint8Array }>,
  info: { messages: number; lastSeq: number },
): DrillCounts & { acked: number; stored: number } {
  const counts: DrillCounts = { lost: 0, duplicated: 0, reordered: 0, wrongSeq: 0, unexpected: 0 };
  const where = acks.map(() => new Map<number, number>()); // writer -> n -> seq of first stored copy
  const maxN = acks.map(() => 0);
  let prevSeq = 0;
  for (const m of stored) {
    if (m.seq <= prevSeq) counts.unexpected++; // read-back out of seq order
    prevSeq = m.seq;
    let w: number;
    let n: number;
    try {
      const body = JSON.parse(dec.decode(m.data)) as { w?: unknown; n?: unknown };
      w = Number(body.w);
      n = Number(body.n);
    } catch {
      counts.unexpected++;
      continue;
    }
    if (!Number.isInteger(w) || w < 0 || w >= acks.length || !Number.isInteger(n) || n < 1 || n > sent[w]!) {
      counts.unexpected++;
      continue;
    }
    if (m.subject !== `drill.w${w}`) counts.unexpected++;
    const seen = where[w]!;
    if (seen.has(n)) {
      counts.duplicated++;
      continue;
    }
    seen.set(n, m.seq);
    if (n < maxN[w]!) counts.reordered++;
    else maxN[w] = n;
  }
  if (stored.length !== info.messages) counts.unexpected++;
  if (stored.length > 0 && stored[stored.length - 1]!.seq !== info.lastSeq) counts.unexpected++;
  let acked = 0;
  acks.forEach((list, w) => {
    list.forEach((ack, n) => {
      if (!ack) return;
      acked++;
      const seq = where[w]!.get(n);
      if (seq === undefined) counts.lost++;
      else if (seq !== ack.seq) counts.wrongSeq++;
    });
  });
  return { ...counts, acked, stored: stored.length };
}

// ---- the drill --------------------------------------------------------------------------------------

export async function runDrill(opts: DrillOptions): Promise<DrillResult> {
  const log = opts.log ?? (() => {});
  const minAcks = opts.minAcksBetweenKills ?? 20;
  const maxUp = opts.maxUpMs ?? 1_500;
  const maxDown = opts.maxDownMs ?? 300;
  const tail = opts.tailMs ?? 1_000;
  const started = Date.now();
  const deadline = started + (opts.timeLimitMs ?? 180_000);
  const target: Target = opts.engine === "embedded" ? new EmbeddedTarget() : new NatsTarget();

  const W = opts.writers;
  const acks: Array<Array<Ack | undefined>> = Array.from({ length: W }, () => []);
  const sent = Array.from({ length: W }, () => 0);
  const inFlight = new Set<number>();
  let stop = false;
  /** Set when the drill gives up (error, time limit): writers return at once instead of retrying. */
  let aborted = false;
  let ackCount = 0;
  let dedupedRetries = 0;
  let failedAttempts = 0;
  let writerError: unknown = null;

  const overdue = () => Date.now() > deadline;

  async function writer(w: number): Promise<void> {
    const subject = `drill.w${w}`;
    for (let n = 1; !stop && n <= 5_000_000; n++) {
      sent[w] = n;
      const msgId = `w${w}-${n}`;
      const data = JSON.stringify({ w, n, pad: PAD });
      inFlight.add(w);
      let lastError = "";
      for (;;) {
        if (aborted) return;
        if (overdue()) {
          throw new DrillTimeoutError(
            `writer ${w}: message ${n} still unacked at the time limit (last error: ${lastError})`,
          );
        }
        try {
          const ack = await target.publish(subject, data, msgId);
          acks[w]![n] = ack;
          ackCount++;
          if (ack.duplicate) dedupedRetries++;
          break;
        } catch (err) {
          failedAttempts++;
          lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
          // Down, timed out, or lost with the process: the same message again, same msg id.
          await Promise.race([target.whenUp(), sleep(200)]);
          await sleep(5);
        }
      }
      inFlight.delete(w);
    }
  }

  const kills: KillRecord[] = [];
  try {
    await target.start();
    log(`${opts.engine}: ${W} writers, ${opts.kills} kills`);
    const stormStart = Date.now();
    const writers = Array.from({ length: W }, (_, w) =>
      writer(w).catch((err: unknown) => {
        writerError ??= err;
        stop = true;
      }),
    );

    const waitAcks = async (from: number, n: number) => {
      while (ackCount < from + n) {
        if (writerError) throw writerError;
        if (overdue()) throw new DrillTimeoutError(`only ${ackCount - from} of ${n} acks since the last restart`);
        await sleep(5);
      }
    };

    for (let k = 1; k <= opts.kills; k++) {
      const since = ackCount;
      await waitAcks(since, minAcks);
      await sleep(rand(maxUp));
      if (writerError) throw writerError;
      const atMs = Date.now() - stormStart;
      const flying = inFlight.size;
      const acksBefore = ackCount - since;
      const pid = await target.crash();
      const downMs = rand(maxDown);
      await sleep(downMs);
      const t0 = Date.now();
      await target.recover();
      const restartMs = Date.now() - t0;
      kills.push({ atMs, pid, inFlight: flying, acksBefore, downMs, restartMs });
      log(
        `  kill ${k}/${opts.kills} at ${(atMs / 1000).toFixed(1)} s: pid ${pid}, ${flying} publishes in flight, ` +
          `${acksBefore} acks since the last start; down ${downMs} ms, ready again in ${restartMs} ms`,
      );
    }
    // Keep writing a little after the last restart, then let each writer finish its current message.
    await waitAcks(ackCount, minAcks);
    await sleep(tail);
    stop = true;
    await Promise.all(writers);
    if (writerError) throw writerError;
    const stormMs = Date.now() - stormStart;

    const back = await target.readAll(deadline);
    const c = check(acks, sent, back.msgs, { messages: back.infoMessages, lastSeq: back.infoLastSeq });
    const pass =
      c.lost === 0 &&
      c.duplicated === 0 &&
      c.reordered === 0 &&
      c.wrongSeq === 0 &&
      c.unexpected === 0 &&
      kills.length === opts.kills &&
      c.acked > 0;
    return {
      engine: opts.engine,
      writers: W,
      kills,
      ...c,
      dedupedRetries,
      failedAttempts,
      stormMs,
      totalMs: Date.now() - started,
      pass,
    };
  } finally {
    stop = true;
    aborted = true;
    await target.dispose();
  }
}

export function summary(r: DrillResult): string {
  return (
    `${r.engine}: acked ${r.acked}, stored ${r.stored} (${r.writers} writers, ${r.kills.length} kills, ` +
    `storm ${(r.stormMs / 1000).toFixed(1)} s); retries deduplicated after a lost ack: ${r.dedupedRetries}, ` +
    `failed attempts retried: ${r.failedAttempts}\n` +
    `  lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}, wrong-seq acks ${r.wrongSeq}, ` +
    `unexpected ${r.unexpected} → ${r.pass ? "PASS" : "FAIL"}`
  );
}
