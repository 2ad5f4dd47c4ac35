// Embedded-engine behaviour the conformance suite cannot see from outside: the data-dir lock across real
// processes, durability after kill -9, expiry proven by looking at the SQLite file itself, and the
// delivery edge cases of the in-process router (re-entrant subscribe, group commit isolation).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { until } from "../../harness/poll.ts";
import { MAX_HISTORY, openEmbedded } from "../../src/pubsub/embedded/engine.ts";
import { LOCK_FILE } from "../../src/pubsub/embedded/lock.ts";
import { DataDirLockedError, WrongLastSequenceError } from "../../src/pubsub/errors.ts";
import type { Delivery, PubSub } from "../../src/pubsub/types.ts";

const root = await mkdtemp(join(tmpdir(), "via-embedded-"));
const repo = fileURLToPath(new URL("../..", import.meta.url));
const engineUrl = pathToFileURL(join(repo, "src/pubsub/embedded/engine.ts")).href;
const children = new Set<ChildProcess>();
let n = 0;
const freshDir = () => join(root, `d${++n}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await rm(root, { recursive: true, force: true });
});

/** A real second process that opens the engine on dir, stores `count` acked messages, says so, then idles. */
function holderProcess(dir: string, count: number): Promise<{ child: ChildProcess; lastSeq: number }> {
  const script = `
    const { openEmbedded } = await import(${JSON.stringify(engineUrl)});
    const ps = await openEmbedded({ dataDir: process.argv[1] });
    await ps.ensureStream({ name: "crash", subjects: ["crash.>"] });
    let last = 0;
    for (let i = 1; i <= ${count}; i++) last = (await ps.publish("crash.x", "m" + i)).seq;
    process.stdout.write("ready " + last + "\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dir], {
    cwd: repo,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, lastSeq: Number(m[1]) });
    });
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("exit", (code) => reject(new Error(`holder exited early (${code}): ${err}`)));
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve()); // after "exit" node has reaped it: no zombie keeps the PID alive
    child.kill("SIGKILL");
  });
}

describe("embedded engine: data dir and lock", () => {
  test("openEmbedded_createsAMissingDataDir", async () => {
    const dir = join(freshDir(), "nested", "data");
    assert.equal(existsSync(dir), false);
    const ps = await openEmbedded({ dataDir: dir });
    assert.equal(ps.kind, "embedded");
    assert.equal(existsSync(join(dir, LOCK_FILE)), true);
    await ps.close();
  });

  test("openEmbedded_secondOpenInTheSameProcessIsRefusedNamingDirAndPid", async () => {
    const dir = freshDir();
    const ps = await openEmbedded({ dataDir: dir });
    try {
      await assert.rejects(openEmbedded({ dataDir: dir }), (err: unknown) => {
        assert.ok(err instanceof DataDirLockedError);
        assert.ok(err.message.includes(dir), err.message);
        assert.ok(err.message.includes(String(process.pid)), err.message);
        return true;
      });
    } finally {
      await ps.close();
    }
  });

  test("close_releasesTheLockSoTheDirCanBeReopened", async () => {
    const dir = freshDir();
    const ps = await openEmbedded({ dataDir: dir });
    await ps.close();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    const again = await openEmbedded({ dataDir: dir });
    await again.close();
  });

  test("openEmbedded_refusedWhileAnotherProcessHoldsTheDir_thenTakesOverAfterItIsKilled", async () => {
    const dir = freshDir();
    const { child, lastSeq } = await holderProcess(dir, 50);
    assert.equal(lastSeq, 50);
    await assert.rejects(openEmbedded({ dataDir: dir }), (err: unknown) => {
      assert.ok(err instanceof DataDirLockedError);
      assert.ok(err.message.includes(dir), err.message);
      assert.ok(err.message.includes(`process ${child.pid}`), err.message);
      return true;
    });

    await killHard(child);
    assert.equal(readFileSync(join(dir, LOCK_FILE), "utf8").trim(), String(child.pid), "kill -9 leaves the lock");
    const ps = await openEmbedded({ dataDir: dir });
    try {
      assert.equal(readFileSync(join(dir, LOCK_FILE), "utf8").trim(), String(process.pid));
      // Every publish the killed process saw acked is still there (WAL + synchronous=NORMAL).
      const info = await ps.info("crash");
      assert.deepEqual([info.messages, info.firstSeq, info.lastSeq], [50, 1, 50]);
      assert.equal((await ps.publish("crash.x", "after"))?.seq, 51);
    } finally {
      await ps.close();
    }
  });

  test("openEmbedded_takesOverALockWithOurPidLeftByAPreviousLife", async () => {
    // In a container the restarted app often gets the same PID as the one that died.
    const dir = freshDir();
    await (await openEmbedded({ dataDir: dir })).close();
    writeFileSync(join(dir, LOCK_FILE), `${process.pid}\n`);
    const ps = await openEmbedded({ dataDir: dir });
    await ps.close();
  });
});

describe("embedded engine: storage", () => {
  test("maxAge_sweepDeletesRowsWithoutAnyEngineRead", async () => {
    const dir = freshDir();
    const ps = await openEmbedded({ dataDir: dir });
    try {
      await ps.ensureStream({ name: "ttl", subjects: ["ttl.>"], maxAge: 200 });
      for (let i = 0; i < 5; i++) await ps.publish("ttl.a", `${i}`);
      // Look at the file through a second, read-only connection: no engine call may trigger the delete.
      const peek = new Database(join(dir, "pubsub.sqlite"), { readonly: true });
      try {
        const { id } = peek.prepare("SELECT id FROM streams WHERE name = 'ttl'").get() as { id: number };
        const count = () => (peek.prepare(`SELECT COUNT(*) AS n FROM m_${id}`).get() as { n: number }).n;
        assert.equal(count(), 5);
        const deadline = Date.now() + 2000;
        while (count() > 0 && Date.now() < deadline) await sleep(20);
        assert.equal(count(), 0, "rows still there 2 s after a 200 ms max age");
      } finally {
        peek.close();
      }
    } finally {
      await ps.close();
    }
  });

  test("history_capsAPageAtMaxHistory", async () => {
    const ps = await openEmbedded({ dataDir: freshDir() });
    try {
      await ps.ensureStream({ name: "big", subjects: ["big.>"] });
      await Promise.all(Array.from({ length: MAX_HISTORY + 200 }, (_, i) => ps.publish("big.a", `${i}`)));
      const page = await ps.history("big.a", { last: 5000 });
      assert.equal(page.length, MAX_HISTORY);
      assert.equal(page[0]!.seq, 201);
      assert.equal(page.at(-1)!.seq, MAX_HISTORY + 200);
      assert.equal((await ps.history("big.a", { afterSeq: 0, limit: 5000 })).length, MAX_HISTORY);
    } finally {
      await ps.close();
    }
  });

  test("groupCommit_aRejectedPublishDoesNotFailTheOthersInItsBatch", async () => {
    const ps = await openEmbedded({ dataDir: freshDir() });
    try {
      await ps.ensureStream({ name: "batch", subjects: ["batch.>"] });
      // Same tick: one transaction. The middle one fails its precondition and must not take the others down.
      const results = await Promise.allSettled([
        ps.publish("batch.a", "1"),
        ps.publish("batch.a", "stale", { expectLastSubjectSeq: 0 }),
        ps.publish("batch.a", "2"),
        ps.publish("batch.b", "3", { expectLastSubjectSeq: 0 }),
      ]);
      assert.deepEqual(
        results.map((r) => (r.status === "fulfilled" ? r.value?.seq : r.reason.constructor.name)),
        [1, WrongLastSequenceError.name, 2, 3],
      );
      assert.equal((await ps.info("batch")).messages, 3);
    } finally {
      await ps.close();
    }
  });

  test("publish_copiesTheCallersBuffer", async () => {
    const ps = await openEmbedded({ dataDir: freshDir() });
    try {
      await ps.ensureStream({ name: "copy", subjects: ["copy.>"] });
      const got: Delivery[] = [];
      ps.subscribe("copy.a", (m) => got.push(m));
      const buf = new Uint8Array([1, 2, 3]);
      const p = ps.publish("copy.a", buf);
      buf[0] = 99;
      await p;
      await until("the delivery", () => got.length === 1);
      assert.deepEqual([...got[0]!.data], [1, 2, 3]);
      assert.deepEqual([...(await ps.history("copy.a", { last: 1 }))[0]!.data], [1, 2, 3]);
    } finally {
      await ps.close();
    }
  });

  test("close_commitsAndDeliversPublishesAlreadyAccepted", async () => {
    const dir = freshDir();
    const ps = await openEmbedded({ dataDir: dir });
    await ps.ensureStream({ name: "drain", subjects: ["drain.>"] });
    const got: number[] = [];
    ps.subscribe("drain.a", (m) => got.push(m.seq!));
    const pending = [ps.publish("drain.a", "1"), ps.publish("drain.a", "2")];
    await ps.close();
    assert.deepEqual(
      (await Promise.all(pending)).map((a) => a?.seq),
      [1, 2],
    );
    assert.deepEqual(got, [1, 2]);
    const again = await openEmbedded({ dataDir: dir });
    assert.equal((await again.info("drain")).lastSeq, 2);
    await again.close();
  });
});

describe("embedded engine: delivery", () => {
  let ps: PubSub;
  const open = async () => {
    ps = await openEmbedded({ dataDir: freshDir() });
    await ps.ensureStream({ name: "d", subjects: ["d.>"] });
    return ps;
  };

  test("handlers_neverRunInsideTheCallersStack", async () => {
    await open();
    try {
      let calls = 0;
      ps.subscribe("d.a", () => calls++);
      const p = ps.publish("d.a", "x");
      assert.equal(calls, 0, "not inside publish()");
      await p;
      assert.equal(calls, 1);
      ps.subscribe("d.a", () => calls++, { fromSeq: 1 });
      assert.equal(calls, 1, "not inside subscribe()");
      await until("the replay", () => calls === 2);
    } finally {
      await ps.close();
    }
  });

  test("subscribeFromInsideAHandlerMidBatch_getsEachMessageOnce", async () => {
    await open();
    try {
      const replayed: number[] = [];
      const live: number[] = [];
      let started = false;
      ps.subscribe("d.a", () => {
        if (started) return;
        started = true;
        // Seqs 1..5 are committed in one batch; we are being called for seq 1, seqs 2..5 are not dispatched yet.
        ps.subscribe("d.a", (m) => replayed.push(m.seq!), { fromSeq: 1 });
        ps.subscribe("d.a", (m) => live.push(m.seq!));
      });
      await Promise.all([1, 2, 3, 4, 5].map((i) => ps.publish("d.a", `${i}`)));
      await ps.publish("d.a", "6");
      // A barrier: each subscription delivers in seq order, so once 7 arrived nothing earlier is still to come.
      await ps.publish("d.a", "7");
      await until("seq 7 at both", () => replayed.includes(7) && live.includes(7));
      assert.deepEqual(replayed, [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(live, [6, 7], "a live-only subscription starts after what was committed when it subscribed");
    } finally {
      await ps.close();
    }
  });

  test("replay_largeBacklogWithConcurrentPublishersHasNoGapOrDuplicate", async () => {
    await open();
    try {
      const total = 3000;
      await Promise.all(Array.from({ length: total }, (_, i) => ps.publish(`d.${i % 3}`, `${i}`)));
      const seen: number[] = [];
      ps.subscribe("d.*", (m) => seen.push(m.seq!), { fromSeq: 1 });
      // Keep publishing across many replay pages.
      for (let w = 0; w < 50; w++) {
        await Promise.all(Array.from({ length: 20 }, (_, k) => ps.publish(`d.${k % 3}`, "live")));
        await new Promise((r) => setImmediate(r));
      }
      // A barrier: one more message, delivered after everything before it.
      await ps.publish("d.0", "last");
      const want = total + 1000 + 1;
      await until(
        () => `${seen.length}/${want}`,
        () => seen.at(-1) === want,
      );
      assert.equal(seen.length, want);
      for (let i = 0; i < want; i++) assert.equal(seen[i], i + 1);
    } finally {
      await ps.close();
    }
  });

  test("handlerReturningARejectedPromise_isLoggedNotUnhandled", async () => {
    const logged: unknown[] = [];
    const { pino } = await import("pino");
    const logger = pino({ level: "error" }, { write: (line: string) => logged.push(JSON.parse(line)) });
    ps = await openEmbedded({ dataDir: freshDir(), logger });
    try {
      ps.subscribe("core.x", async () => {
        throw new Error("async handler bug");
      });
      await ps.publish("core.x", "1");
      await until("the handler's error logged", () => logged.length > 0);
      assert.equal(logged.length, 1);
      assert.match(JSON.stringify(logged[0]), /async handler bug/);
    } finally {
      await ps.close();
    }
  });

  test("coreAndStreamPublishes_areDeliveredInCallOrder", async () => {
    await open();
    try {
      const got: string[] = [];
      ps.subscribe(">", (m) => got.push(dec.decode(m.data)));
      await Promise.all([ps.publish("d.a", "1"), ps.publish("core.a", "2"), ps.publish("d.b", "3")]);
      await until(
        () => JSON.stringify(got),
        () => got.length === 3,
      );
      assert.deepEqual(got, ["1", "2", "3"]);
    } finally {
      await ps.close();
    }
  });
});
