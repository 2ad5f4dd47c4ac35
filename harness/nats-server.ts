// Starts real nats-server processes for tests: one JetStream server, or a 3-node JetStream cluster on
// loopback. Every process is killed and every temp dir removed when the test calls stop(), and again
// (synchronously) when the test process exits, so a failed or interrupted test leaves nothing behind.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { killAtExit, removeDir, sleep, tempDir } from "./cleanup.ts";

export function natsServerBin(): string {
  return process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
}

/**
 * In the fast tier (`npm test`), a skip reason: NATS tests run in the full tier. Otherwise the
 * prerequisite rule: without the nats-server binary, a CI run fails with a clear message and a local
 * run skips loudly. Returns a skip reason to pass to `describe(..., { skip })`, or false when the binary is there.
 * Under CI it also registers a failing test, because a skipped suite there would look like a green run.
 */
export function natsServerMissing(): string | false {
  if (process.env.VIA_TEST_TIER === "fast") {
    // `npm test` is the fast tier; `npm run test:all` (and CI) runs these too.
    const msg = "NATS tests run in the full tier: npm run test:all";
    test("the NATS tests of this file run in the full tier", { skip: msg }, () => {});
    return msg;
  }
  const bin = natsServerBin();
  if (existsSync(bin)) return false;
  const msg = `nats-server binary not found at ${bin} (install the nats-server package or set NATS_SERVER_BIN)`;
  if (process.env.CI === "true") {
    test("nats-server binary is present (required under CI)", () => {
      throw new Error(msg);
    });
  } else {
    console.warn(`\n!!! ${msg}: SKIPPING the NATS tests in this file !!!\n`);
    // A skipped suite adds nothing to the run's counts; this makes the skip show in "N skipped".
    test("NATS tests need the nats-server binary", { skip: msg }, () => {});
  }
  return msg;
}

/** A free TCP port on loopback. The port is released before nats-server binds it, so startup retries on a clash. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Polls a nats-server's /healthz (every `everyMs`) until it answers 200, which it does only once
 * JetStream is ready to take requests. False at the deadline or as soon as `gone()` says the process
 * exited.
 */
export async function untilHealthy(
  monitorPort: number,
  deadline: number,
  gone: () => boolean,
  everyMs = 50,
): Promise<boolean> {
  while (Date.now() < deadline && !gone()) {
    try {
      const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(everyMs);
  }
  return false;
}

/** One nats-server process that can be killed and started again with the same ports and store. */
class ServerProcess {
  proc: ChildProcess | null = null;
  constructor(
    readonly args: string[],
    readonly monitorPort: number,
    readonly logFile: string,
  ) {}

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  async start(timeoutMs = 15_000): Promise<void> {
    if (this.proc) throw new Error("nats-server already running");
    const proc = spawn(natsServerBin(), this.args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    killAtExit(proc);
    this.proc = proc;
    let exited = false;
    proc.once("exit", () => {
      exited = true;
    });
    if (await untilHealthy(this.monitorPort, Date.now() + timeoutMs, () => exited)) return;
    if (exited) {
      this.proc = null;
      throw new Error(`nats-server exited during startup: ${stderr.trim()} ${this.tail()}`);
    }
    await this.kill9();
    throw new Error(`nats-server not healthy after ${timeoutMs} ms: ${this.tail()}`);
  }

  tail(): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-15).join("\n");
    } catch {
      return "";
    }
  }

  /**
   * SIGTERM (nats-server's clean shutdown) and wait for the exit; SIGKILL if it is still there after
   * `graceMs`. Resolves to the signal that ended it.
   */
  async terminate(graceMs = 10_000): Promise<NodeJS.Signals | null> {
    const proc = this.proc;
    if (!proc) return null;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.signalCode;
    const gone = new Promise<NodeJS.Signals | null>((r) => proc.once("exit", (_code, signal) => r(signal)));
    proc.kill("SIGTERM");
    const force = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    const signal = await gone;
    clearTimeout(force);
    return signal;
  }

  /** SIGKILL and wait for the exit, so the ports are free for a restart. */
  async kill9(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGKILL");
    await gone;
  }
}

/** Waits until every thread of a SIGSTOPped process shows state T in /proc (Linux). */
async function waitStopped(pid: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let all = true;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        // The state is the field after "(comm)"; comm may contain spaces, so split after the last ')'.
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        if (state !== "T" && state !== "t") all = false;
      }
    } catch {
      return; // no /proc (not Linux) or the process is gone: nothing more to wait for
    }
    if (all) return;
    if (Date.now() > deadline) throw new Error(`nats-server ${pid} did not stop within ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function spawnWithRetry(make: () => Promise<ServerProcess>): Promise<ServerProcess> {
  // A port found free can be taken by someone else before nats-server binds it: try a few fresh sets.
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    const sp = await make();
    try {
      await sp.start();
      return sp;
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

export interface NatsServer {
  url: string;
  port: number;
  monitorUrl: string;
  readonly pid: number;
  storeDir: string;
  /** Kill -9 (no clean shutdown) and leave it down. */
  kill9(): Promise<void>;
  /** SIGTERM (clean shutdown; SIGKILL after `graceMs`) and leave it down. */
  terminate(graceMs?: number): Promise<void>;
  /** Start again on the same ports and store dir (after kill9). */
  start(): Promise<void>;
  /** kill -9, then start again on the same port and store dir. */
  restart(): Promise<void>;
  /**
   * SIGSTOP: the server stops reading and answering, connections stay open (a "lost ack" without an
   * outage). Resolves once every server thread is stopped: on a busy machine a thread can still serve a
   * request after kill() returns.
   */
  pause(): Promise<void>;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Kill and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /**
   * A config file's `authorization { ... }` block (users and their permissions), for tests of what the
   * engine does with a user that may not do everything. Without it the server has no auth.
   */
  authorization?: string;
}

/** One JetStream-enabled nats-server on 127.0.0.1 with a fresh store dir. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = tempDir("via-nats-");
  let port = 0;
  let monitorPort = 0;
  let sp: ServerProcess;
  // The command-line flags below override the file; the file carries only what flags cannot say.
  const config: string[] = [];
  if (opts.authorization !== undefined) {
    const file = join(dir, "server.conf");
    writeFileSync(file, `authorization {\n${opts.authorization}\n}\n`);
    config.push("-c", file);
  }
  try {
    sp = await spawnWithRetry(async () => {
      port = await freePort();
      monitorPort = await freePort();
      const args = [...config, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", `${port}`, "-m", `${monitorPort}`];
      return new ServerProcess(
        [...args, "-n", `via-test-${port}`, "-l", join(dir, "server.log")],
        monitorPort,
        join(dir, "server.log"),
      );
    });
  } catch (err) {
    removeDir(dir);
    throw err;
  }
  let stopped = false;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    get pid() {
      return sp.pid;
    },
    storeDir: dir,
    kill9: () => sp.kill9(),
    async terminate(graceMs) {
      await sp.terminate(graceMs);
    },
    start: () => sp.start(),
    async restart() {
      await sp.kill9();
      await sp.start();
    },
    async pause() {
      const pid = sp.pid;
      sp.proc?.kill("SIGSTOP");
      await waitStopped(pid);
    },
    resume: () => sp.proc?.kill("SIGCONT"),
    async stop() {
      if (stopped) return;
      stopped = true;
      await sp.kill9();
      removeDir(dir);
    },
  };
}

export interface ClusterNode {
  name: string;
  url: string;
  monitorUrl: string;
  readonly pid: number;
  readonly running: boolean;
}

export interface NatsCluster {
  urls: string[];
  nodes: ClusterNode[];
  /** Index in `nodes` of the current leader of a stream (waits for one to be elected). */
  leaderOf(stream: string, timeoutMs?: number): Promise<number>;
  /** kill -9 one node and leave it down. */
  killNode(i: number): Promise<void>;
  /** Start a killed node again with its own store dir. */
  restartNode(i: number): Promise<void>;
  /**
   * Waits until a stream has a leader and every replica is current (a restarted node has caught up);
   * resolves with the leader's index.
   */
  waitStreamCurrent(stream: string, timeoutMs?: number): Promise<number>;
  /** Indexes of the running nodes that hold a client connection with this name (monitoring /connz). */
  nodesWithClient(name: string): Promise<number[]>;
  stop(): Promise<void>;
}

/** A 3-node JetStream cluster on loopback (config per docs/reference/nats-facts.md §3; `server_name` is required for clustered JetStream). */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = tempDir("via-nats-cluster-");
  const procs: ServerProcess[] = [];
  const names: string[] = [];
  const clientPorts: number[] = [];
  const monitorPorts: number[] = [];
  const cleanup = async () => {
    await Promise.all(procs.map((p) => p.kill9()));
    removeDir(dir);
  };
  try {
    // All ports are chosen up front because every config lists every route.
    let started = false;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      procs.length = 0;
      names.length = 0;
      clientPorts.length = 0;
      monitorPorts.length = 0;
      const routePorts: number[] = [];
      for (let i = 0; i < size; i++) {
        clientPorts.push(await freePort());
        monitorPorts.push(await freePort());
        routePorts.push(await freePort());
      }
      for (let i = 0; i < size; i++) {
        const name = `n${i + 1}`;
        const nodeDir = join(dir, name);
        mkdirSync(nodeDir, { recursive: true });
        const conf = [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${clientPorts[i]}`,
          `http: 127.0.0.1:${monitorPorts[i]}`,
          `pid_file: "${join(dir, `${name}.pid`)}"`,
          "jetstream {",
          `  store_dir: "${nodeDir}"`,
          "  max_memory_store: 256MB",
          "  max_file_store: 1GB",
          "}",
          "cluster {",
          "  name: via-test",
          `  listen: 127.0.0.1:${routePorts[i]}`,
          "  routes: [",
          ...routePorts.map((p) => `    nats-route://127.0.0.1:${p}`),
          "  ]",
          "}",
          "",
        ].join("\n");
        const confFile = join(dir, `${name}.conf`);
        writeFileSync(confFile, conf);
        names.push(name);
        procs.push(
          new ServerProcess(
            ["-c", confFile, "-l", join(dir, `${name}.log`)],
            monitorPorts[i]!,
            join(dir, `${name}.log`),
          ),
        );
      }
      try {
        await Promise.all(procs.map((p) => p.start(30_000)));
        started = true;
      } catch (err) {
        await Promise.all(procs.map((p) => p.kill9()));
        if (attempt === 2) throw err;
      }
    }
    await waitForMetaLeader(clientPorts.map((p) => `nats://127.0.0.1:${p}`));
  } catch (err) {
    await cleanup();
    throw err;
  }
  const urls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
  const nodes: ClusterNode[] = procs.map((p, i) => ({
    name: names[i]!,
    url: urls[i]!,
    monitorUrl: `http://127.0.0.1:${monitorPorts[i]}`,
    get pid() {
      return p.pid;
    },
    get running() {
      return p.proc !== null;
    },
  }));
  let stopped = false;
  return {
    urls,
    nodes,
    async leaderOf(stream, timeoutMs = 20_000) {
      const alive = urls.filter((_, i) => procs[i]!.proc !== null);
      const nc = await connect({ servers: alive, timeout: 2000 });
      try {
        const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 2000 });
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          try {
            const si = await jsm.streams.info(stream);
            const leader = si.cluster?.leader;
            const idx = leader ? names.indexOf(leader) : -1;
            if (idx >= 0 && procs[idx]!.proc !== null) return idx;
          } catch {
            // no leader yet (election in progress)
          }
          await sleep(100);
        }
        throw new Error(`no leader for stream ${stream} within ${timeoutMs} ms`);
      } finally {
        await nc.close();
      }
    },
    async waitStreamCurrent(stream, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "no answer";
      while (Date.now() < deadline) {
        const alive = urls.filter((_, i) => procs[i]!.proc !== null);
        try {
          const nc = await connect({ servers: alive, timeout: 2000 });
          try {
            const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 2000 });
            for (;;) {
              const si = await jsm.streams.info(stream);
              const c = si.cluster;
              const idx = c?.leader ? names.indexOf(c.leader) : -1;
              const replicas = c?.replicas ?? [];
              const lagging = replicas.filter((r) => !r.current || r.offline);
              last = `leader ${c?.leader ?? "none"}, replicas ${JSON.stringify(replicas)}`;
              const want = (si.config.num_replicas || 1) - 1;
              if (idx >= 0 && replicas.length === want && lagging.length === 0) return idx;
              if (Date.now() > deadline) break;
              await sleep(100);
            }
          } finally {
            await nc.close();
          }
        } catch (err) {
          last = (err as Error).message;
          await sleep(100);
        }
      }
      throw new Error(`stream ${stream} not current on every node within ${timeoutMs} ms: ${last}`);
    },
    async nodesWithClient(name) {
      const out: number[] = [];
      await Promise.all(
        nodes.map(async (n, i) => {
          if (procs[i]!.proc === null) return;
          try {
            const res = await fetch(`${n.monitorUrl}/connz?limit=1024`, { signal: AbortSignal.timeout(2000) });
            const body = (await res.json()) as { connections?: Array<{ name?: string }> };
            if (body.connections?.some((c) => c.name === name)) out.push(i);
          } catch {
            // not answering: not this node
          }
        }),
      );
      return out.sort();
    },
    killNode: (i) => procs[i]!.kill9(),
    restartNode: (i) => procs[i]!.start(30_000),
    async stop() {
      if (stopped) return;
      stopped = true;
      await cleanup();
    },
  };
}

/** /healthz can pass before the JetStream meta group has a leader; stream creation needs one. */
async function waitForMetaLeader(urls: string[], timeoutMs = 20_000): Promise<void> {
  const nc = await connect({ servers: urls, timeout: 2000 });
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 1000 });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cluster JetStream not ready: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * Waits until a (reconnecting) connection can use JetStream again: the client is reconnected and the
 * server answers a JetStream API request (after a restart, JetStream comes up after the listener).
 */
export async function waitForJetStream(nc: NatsConnection, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await nc.request("$JS.API.INFO", undefined, { timeout: 500 });
      const body = r.json<{ error?: { code: number } }>();
      if (!body.error) return;
    } catch {
      // disconnected, no responders yet, or timed out
    }
    if (Date.now() > deadline) throw new Error(`JetStream not usable within ${timeoutMs} ms`);
    await sleep(50);
  }
}
