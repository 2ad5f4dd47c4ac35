// bench:chat: starting and stopping one server process per system, always fresh. raw and Socket.IO run
// as bench/chat/ child processes; our chat runs as the real CLI (apps/chat/main.ts, through
// harness/chat-process.ts) on the embedded engine with a temp data dir, or on a fresh
// nats-server (harness/nats-server.ts). Every server process preloads server-hook.mjs, which
// answers the orchestrator's control requests (forced GC and heap figures, CPU profile) the same way
// in every server. Everything started here is also ended, and every temp dir removed, on exit
// (harness/cleanup.ts).
import { createConnection } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildChat, startChatProcess } from "../../harness/chat-process.ts";
import { removeDir, tempDir } from "../../harness/cleanup.ts";
import { startNatsServer } from "../../harness/nats-server.ts";
import { Child } from "../common/ipc.ts";
import type { System } from "./shared.ts";

export interface RunningSystem {
  /** The server process whose RSS and CPU are measured. */
  pid: number;
  port: number;
  /** The nats-server process behind the chat (nats only), measured separately. */
  natsPid?: number;
  /** What the server logged that matters after a failure (our chat: its warnings and errors). */
  diagnostics(): string;
  stop(): Promise<void>;
}

const SCRIPTS = {
  raw: new URL("./raw-server.ts", import.meta.url),
  socketio: new URL("./socketio-server.ts", import.meta.url),
  clients: new URL("./clients.ts", import.meta.url),
};
const HOOK = fileURLToPath(new URL("./server-hook.mjs", import.meta.url));

// Where the servers' control sockets live; every child inherits it through the environment.
const controlDir = tempDir("via-bench-ctl-");
process.env.VIA_BENCH_CONTROL_DIR = controlDir;

/** One request to a server's hook (server-hook.mjs). */
export function control<T>(
  pid: number,
  request: { cmd: string; [k: string]: unknown },
  timeoutMs = 60_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const sock = createConnection(join(controlDir, `${pid}.sock`));
    let buf = "";
    const timer = setTimeout(
      () => sock.destroy(new Error(`control ${request.cmd}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on("data", (c: string) => {
      buf += c;
    });
    sock.on("end", () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buf) as { ok: boolean; result?: T; error?: string };
        if (reply.ok) resolve(reply.result as T);
        else reject(new Error(`control ${request.cmd}: ${reply.error}`));
      } catch (err) {
        reject(err);
      }
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface HeapFigures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** Forced full GCs in the server (`pauseMs` apart), then its memory figures. */
export function gcAndMeasure(pid: number, pauseMs: number): Promise<HeapFigures> {
  return control<HeapFigures>(pid, { cmd: "gc", pauseMs });
}

/** A bench/chat child process (server or client) on the IPC channel of bench/common/ipc.ts. */
export function spawnChild<Info>(name: string, script: keyof typeof SCRIPTS, execArgv: string[] = []): Child<Info> {
  return new Child<Info>(name, SCRIPTS[script], { execArgv, readyTimeoutMs: 60_000 });
}

/** The chat's log lines at warn level or above (pino JSON, level ≥ 40), the last few of them. */
function chatDiagnostics(output: string, running: boolean): string {
  const lines = output.split("\n").filter((line) => {
    try {
      return (JSON.parse(line) as { level?: number }).level! >= 40;
    } catch {
      return line.trim() !== "";
    }
  });
  return [`chat process ${running ? "still running" : "exited"}`, ...lines.slice(-20)].join("\n");
}

let built = false;

/** Our chat's CLI as a child process; --send-rate 10 (the maximum) so rotating senders stay under it. */
async function startChat(rooms: string[], engine: { dataDir: string } | { nats: string }): Promise<RunningSystem> {
  // startChatProcess passes our environment on: the hook goes in through NODE_OPTIONS, for this start only.
  const saved = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = [saved, `--import=${HOOK}`].filter(Boolean).join(" ");
  try {
    // The chat as `npm start` runs it: compiled, with plain node.
    if (!built) {
      buildChat();
      built = true;
    }
    const chat = await startChatProcess({
      ...engine,
      rooms,
      sendRate: 10,
      clientLimits: false,
      port: 0,
      timeoutMs: 60_000,
      compiled: true,
    });
    return {
      pid: chat.pid,
      port: chat.port,
      diagnostics: () => chatDiagnostics(chat.output(), chat.running),
      stop: async () => void (await chat.stop(15_000)),
    };
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}

export async function startSystem(system: System, rooms: string[]): Promise<RunningSystem> {
  if (system === "raw" || system === "socketio") {
    const child = spawnChild<{ port: number }>(`${system} server`, system, [`--import=${HOOK}`]);
    const { port } = await child.ready;
    // Its output goes to ours as it comes.
    return { pid: child.pid!, port, diagnostics: () => "", stop: () => child.kill() };
  }
  if (system === "embedded") {
    const dataDir = tempDir("via-bench-chat-");
    try {
      const chat = await startChat(rooms, { dataDir });
      return {
        ...chat,
        stop: async () => {
          await chat.stop();
          removeDir(dataDir);
        },
      };
    } catch (err) {
      removeDir(dataDir);
      throw err;
    }
  }
  const nats = await startNatsServer();
  try {
    const chat = await startChat(rooms, { nats: nats.url });
    return {
      ...chat,
      natsPid: nats.pid,
      stop: async () => {
        await chat.stop();
        await nats.stop();
      },
    };
  } catch (err) {
    await nats.stop();
    throw err;
  }
}
