// `npm run demo:cluster`: the chat as two instances sharing one NATS JetStream server, for a person to
// try in two browsers. Starts a local nats-server (Debian's package) with its store under
// ./data/demo-nats, then the chat on ports 7331 and 7332 with --nats. Ctrl-C stops everything: the chat
// instances first (they say goodbye on NATS), then the nats-server.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { killAtExit } from "../harness/cleanup.ts";
import { defineCommand, runMain } from "../harness/cli.ts";
import { freePort, natsServerBin, untilHealthy } from "../harness/nats-server.ts";

const cli = defineCommand({
  script: "demo:cluster",
  file: "scripts/demo-cluster.ts",
  title: "demo:cluster — two chat instances sharing one NATS JetStream server",
  about: `Starts a local NATS JetStream server and two chat instances that share it:

  nats-server   nats://127.0.0.1:4222 (a free port if 4222 is taken), store in ./data/demo-nats
  instance 1    http://127.0.0.1:7331
  instance 2    http://127.0.0.1:7332

Open the two URLs in two browsers (or one normal and one private window): messages, history and
presence are shared live. Ctrl-C stops everything.`,
  footer: `The nats-server binary is /usr/sbin/nats-server (Debian: apt-get install nats-server), or the path
in NATS_SERVER_BIN. The chat's own log level is VIA_LOG_LEVEL (default info). With --json, the URLs are
written to the file once everything is up.`,
  flags: {},
});

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STORE = join(ROOT, "data", "demo-nats");
const CHAT_PORTS = [7331, 7332] as const;
const NATS_PORT = 4222;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

const say = (line: string) => process.stdout.write(`${line}\n`);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

// ---- children ----

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
}

const children: Child[] = [];
let stopping = false;

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  // Own process group: Ctrl-C reaches only this script, which stops the children in order.
  const proc = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  // Last resort (an uncaught error): no child outlives this script.
  killAtExit(proc);
  const exited = new Promise<void>((resolve) => {
    proc.once("exit", (code, signal) => {
      if (!stopping) {
        process.stderr.write(`${name} exited unexpectedly (code ${code}, signal ${signal}); stopping the demo\n`);
        void shutdown(1);
      }
      resolve();
    });
    proc.once("error", (err) => {
      process.stderr.write(`${name} could not start: ${err.message}\n`);
      if (!stopping) void shutdown(1);
      resolve();
    });
  });
  const child = { name, proc, exited };
  children.push(child);
  return child;
}

/** Resolves with the first line matching `re` on the child's stdout or stderr; rejects if it exits first. */
function waitForLine(child: Child, re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let pending = "";
    const timer = setTimeout(
      () => reject(new Error(`${child.name} not ready within ${START_TIMEOUT_MS / 1000} s`)),
      START_TIMEOUT_MS,
    );
    const onData = (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const m = line.match(re);
        if (m) {
          clearTimeout(timer);
          child.proc.stdout?.off("data", onData);
          child.proc.stderr?.off("data", onData);
          resolve(m);
          return;
        }
      }
    };
    child.proc.stdout?.on("data", onData);
    child.proc.stderr?.on("data", onData);
    void child.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited during start-up`));
    });
  });
}

/** Prefix every output line of a child with its name, so the two chats' logs can be told apart. */
function forward(child: Child): void {
  for (const [stream, out] of [
    [child.proc.stdout, process.stdout],
    [child.proc.stderr, process.stderr],
  ] as const) {
    let pending = "";
    stream?.on("data", (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) out.write(`[${child.name}] ${line}\n`);
    });
  }
}

async function stop(child: Child): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const force = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await child.exited;
  clearTimeout(force);
}

/** Resolves with the exit status once the demo has stopped (after Ctrl-C, or a child's or the start's failure). */
let stopped: (code: number) => void = () => {};
const finished = new Promise<number>((resolve) => {
  stopped = resolve;
});

let shuttingDown: Promise<void> | undefined;
function shutdown(code: number): Promise<void> {
  shuttingDown ??= (async () => {
    stopping = true;
    const chats = children.filter((c) => c.name !== "nats");
    const nats = children.filter((c) => c.name === "nats");
    await Promise.all(chats.map(stop));
    await Promise.all(nats.map(stop));
    say(code === 0 ? "Stopped." : "Stopped after an error.");
    stopped(code);
  })();
  return shuttingDown;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (!stopping) say(`\n${sig === "SIGINT" ? "Ctrl-C" : sig}: stopping the chat instances and nats-server...`);
    void shutdown(0);
  });
}
// ---- main ----

/** Starts nats-server and the two chats; false (and nothing started) if the machine is not ready for it. */
async function startDemo(): Promise<boolean> {
  const bin = natsServerBin();
  if (!existsSync(bin)) {
    process.stderr.write(
      `nats-server not found at ${bin}.\n` +
        "Install it with:  sudo apt-get install nats-server   (Debian/Ubuntu)\n" +
        "or point NATS_SERVER_BIN at a nats-server binary.\n",
    );
    return false;
  }
  for (const port of CHAT_PORTS) {
    if (!(await portFree(port))) {
      process.stderr.write(`Port ${port} is already in use (is \`npm start\` or another demo running?).\n`);
      return false;
    }
  }

  const natsPort = (await portFree(NATS_PORT)) ? NATS_PORT : await freePort();
  if (natsPort !== NATS_PORT) say(`Port ${NATS_PORT} is taken; nats-server uses ${natsPort} instead.`);
  const monitorPort = await freePort();
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  mkdirSync(STORE, { recursive: true });
  const natsLog = join(STORE, "nats-server.log");

  say(`Starting nats-server on ${natsUrl} (JetStream store in ${STORE})...`);
  const nats = start("nats", bin, [
    "-js",
    "-sd",
    STORE,
    "-a",
    "127.0.0.1",
    "-p",
    String(natsPort),
    "-m",
    String(monitorPort),
    "-n",
    "via-demo",
  ]);
  const logFile = createWriteStream(natsLog, { flags: "a" });
  nats.proc.stderr?.pipe(logFile);
  nats.proc.stdout?.pipe(logFile);
  await waitForNats(nats, monitorPort);

  const env: NodeJS.ProcessEnv = { ...process.env, VIA_LOG_LEVEL: process.env.VIA_LOG_LEVEL ?? "info" };
  for (const name of ["PORT", "HOST", "DATA_DIR", "NATS_URL"]) delete env[name];
  const chats = CHAT_PORTS.map((port, i) =>
    start(
      `chat ${i + 1}`,
      process.execPath,
      ["--import", "tsx", "apps/chat/main.ts", "--port", String(port), "--nats", natsUrl],
      env,
    ),
  );
  say("Starting two chat instances...");
  const urls = await Promise.all(chats.map((c) => waitForLine(c, /"url":"([^"]+)"[^\n]*NATS chatroom on/)));
  for (const c of chats) forward(c);

  say("");
  say(`  Instance 1: ${urls[0]![1]}`);
  say(`  Instance 2: ${urls[1]![1]}`);
  say("");
  say("Open them in two browsers (or a normal and a private window): rooms, history and presence are shared.");
  say(`nats-server: ${natsUrl}, log in ${natsLog}. Press Ctrl-C to stop everything.`);
  say("");
  cli.writeJson({ natsUrl, natsLog, store: STORE, instances: urls.map((m) => m[1]) });
  return true;
}

async function waitForNats(nats: Child, monitorPort: number): Promise<void> {
  let exited = false;
  void nats.exited.then(() => {
    exited = true;
  });
  if (await untilHealthy(monitorPort, Date.now() + START_TIMEOUT_MS, () => exited, 100)) return;
  throw new Error(
    exited
      ? `nats-server exited during start-up (see ${join(STORE, "nats-server.log")})`
      : "nats-server not ready in time",
  );
}

/** Runs until the demo stops; its status is the exit status. */
async function main(): Promise<number> {
  try {
    if (!(await startDemo())) return 1;
  } catch (err) {
    process.stderr.write(`demo:cluster: ${(err as Error).message}\n`);
    void shutdown(1);
  }
  return finished;
}

runMain(main);
