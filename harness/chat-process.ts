// Runs the chat CLI (apps/chat/main.ts) as a real child process, the way a person starts it, so
// tests can stop it (SIGTERM), kill it (-9) and start it again on the same data dir and port.
// Every process started here is killed when the test process exits, even after a failed test.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { killAtExit, sleep } from "./cleanup.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = "apps/chat/main.ts";
/** What `npm start` runs: the chat compiled by `npm run build`. */
const COMPILED_MAIN = "dist/apps/chat/main.js";
const READY_PREFIX = "NATS chatroom on ";

export interface ChatProcessOptions {
  /** Environment variables for the chat (after the caller's shell's chat settings were cleared). */
  env?: Record<string, string>;
  /** Embedded engine's data directory (ignored with `nats`). */
  dataDir?: string;
  /** NATS URL(s): switches the chat to NATS JetStream. */
  nats?: string;
  /** 0 (default) = any free port; a fixed port is retried while the old process still holds it. */
  port?: number;
  host?: string;
  replicas?: number;
  /** Room names (--rooms); default the chat's five. */
  rooms?: readonly string[];
  /** Messages per second per browser session (--send-rate, 1-10); default the chat's 1. */
  sendRate?: number;
  /**
   * Per-client-address limits (--client-limits); default on, as `npm start` runs. Load tests and drills
   * drive hundreds of browsers from one address and turn them off.
   */
  clientLimits?: boolean;
  /** --metrics (a path, or "off"); default the chat's /metrics. */
  metrics?: string;
  /** --metrics-port: the metrics on a port of their own (0: any free one). */
  metricsPort?: number;
  /** How long to wait for the "NATS chatroom on <url>" line (default 30 s). */
  timeoutMs?: number;
  /**
   * Run the compiled chat (dist/, as `npm start` does; build it first with buildChat()) instead of the
   * TypeScript source through tsx. Benchmarks measure this: it is what runs in production.
   */
  compiled?: boolean;
}

export interface ChatProcess {
  url: string;
  port: number;
  readonly pid: number;
  readonly running: boolean;
  /** Everything the process wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM and wait for the exit (SIGKILL after `graceMs`). Resolves to the exit code. Idempotent. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL and wait for the exit: no clean shutdown. Idempotent. */
  kill9(): Promise<void>;
}

/** Compiles the chat to dist/ (`npm run build`); throws with the compiler's output if that fails. */
export function buildChat(): void {
  const result = spawnSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

function waitExit(proc: ChildProcess): Promise<void> {
  if (exited(proc)) return Promise.resolve();
  return new Promise((resolve) => proc.once("exit", () => resolve()));
}

function spawnOnce(opts: ChatProcessOptions): Promise<ChatProcess> {
  const entry = opts.compiled ? [COMPILED_MAIN] : ["--import", "tsx", MAIN];
  const args = [...entry, "--port", String(opts.port ?? 0), "--host", opts.host ?? "127.0.0.1"];
  if (opts.nats) args.push("--nats", opts.nats);
  else if (opts.dataDir) args.push("--data-dir", opts.dataDir);
  if (opts.replicas) args.push("--replicas", String(opts.replicas));
  if (opts.rooms) args.push("--rooms", opts.rooms.join(","));
  if (opts.sendRate) args.push("--send-rate", String(opts.sendRate));
  if (opts.clientLimits === false) args.push("--client-limits", "off");
  if (opts.metrics !== undefined) args.push("--metrics", opts.metrics);
  if (opts.metricsPort !== undefined) args.push("--metrics-port", String(opts.metricsPort));
  const env: NodeJS.ProcessEnv = { ...process.env, VIA_LOG_LEVEL: "info" };
  // The chat's own flags decide; stray values from the caller's shell must not.
  for (const name of [
    "PORT",
    "HOST",
    "DATA_DIR",
    "NATS_URL",
    "NATS_REPLICAS",
    "CHAT_ROOMS",
    "CHAT_SEND_RATE",
    "METRICS",
    "METRICS_PORT",
    "METRICS_HOST",
    "TLS_CERT",
    "TLS_KEY",
    "CLIENT_LIMITS",
    "VIA_LOG_FORMAT",
  ])
    delete env[name];
  Object.assign(env, opts.env);
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  killAtExit(proc);
  let out = "";
  let pending = "";
  const timeoutMs = opts.timeoutMs ?? 30_000;

  return new Promise<ChatProcess>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      finish(new Error(`chat process did not log "${READY_PREFIX}..." within ${timeoutMs} ms:\n${out}`));
      proc.kill("SIGKILL");
    }, timeoutMs);
    const finish = (err: Error | null, url?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) return reject(err);
      resolve(handle(url!));
    };
    proc.stderr!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    proc.stdout!.on("data", (d: Buffer) => {
      const text = d.toString();
      out += text;
      pending += text;
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
        try {
          const rec = JSON.parse(line) as { msg?: unknown; url?: unknown };
          if (typeof rec.msg === "string" && rec.msg.startsWith(READY_PREFIX) && typeof rec.url === "string") {
            finish(null, rec.url);
          }
        } catch {
          // not a log line
        }
      }
    });
    proc.once("exit", (code, signal) => {
      finish(new Error(`chat process exited during start-up (code ${code}, signal ${signal}):\n${out}`));
    });
  });

  function handle(url: string): ChatProcess {
    return {
      url,
      port: Number(new URL(url).port),
      pid: proc.pid ?? -1,
      get running() {
        return !exited(proc);
      },
      output: () => out,
      async stop(graceMs = 10_000) {
        if (!exited(proc)) {
          proc.kill("SIGTERM");
          const force = setTimeout(() => proc.kill("SIGKILL"), graceMs);
          await waitExit(proc);
          clearTimeout(force);
        }
        return proc.exitCode;
      },
      async kill9() {
        if (!exited(proc)) proc.kill("SIGKILL");
        await waitExit(proc);
      },
    };
  }
}

/** Starts the chat CLI and resolves once it logged its URL. */
export async function startChatProcess(opts: ChatProcessOptions = {}): Promise<ChatProcess> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    try {
      return await spawnOnce(opts);
    } catch (err) {
      // A fixed port can still be held for a moment by the process that just stopped.
      const busy = /EADDRINUSE/.test((err as Error).message);
      if (!busy || !opts.port || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}
