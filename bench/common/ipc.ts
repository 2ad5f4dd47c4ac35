// The request/reply protocol over the IPC channel between a benchmark's orchestrator and its child
// processes (servers, load clients), and the wall clock both sides stamp with. Every child started
// here is killed if the orchestrator exits first (harness/cleanup.ts), and ends itself if the
// orchestrator goes away.

import { type ChildProcess, fork } from "node:child_process";
import { killAtExit } from "../../harness/cleanup.ts";

/** Wall-clock ms with sub-ms resolution; comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

interface Request {
  id: number;
  cmd: string;
  args?: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

interface Ready {
  ready: true;
  info: unknown;
}

type Handler = (args: unknown) => unknown;

/** Child side: answer the orchestrator's requests, announce readiness, and die with the parent. */
export function serveIpc(handlers: Record<string, Handler>, info: unknown): void {
  const send = (m: Reply | Ready) => process.send?.(m);
  process.on("message", (m: Request) => {
    const handler = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${m.cmd}`);
        return handler(m.args);
      })
      .then(
        (result) => send({ id: m.id, ok: true, result }),
        (err: unknown) => send({ id: m.id, ok: false, error: err instanceof Error ? err.stack : String(err) }),
      );
  });
  // The orchestrator went away (crashed, killed): nothing left to do here. On SIGTERM exit normally,
  // so --cpu-prof and friends (via NODE_OPTIONS) get to write their files.
  process.on("disconnect", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
  send({ ready: true, info });
}

/** Orchestrator side: one child process running a bench script, with typed request/reply calls. */
export class Child<Info = unknown> {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  readonly ready: Promise<Info>;

  constructor(
    readonly name: string,
    script: URL,
    opts: { execArgv?: string[]; args?: string[]; readyTimeoutMs?: number } = {},
  ) {
    this.proc = fork(script, opts.args ?? [], {
      // Inherit the TypeScript loader tsx runs us with, plus whatever the caller adds (--expose-gc).
      execArgv: [...process.execArgv, ...(opts.execArgv ?? [])],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, VIA_LOG_LEVEL: "silent" },
    });
    this.ready = new Promise<Info>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name}: not ready after ${opts.readyTimeoutMs ?? 30_000} ms`)),
        opts.readyTimeoutMs ?? 30_000,
      );
      this.proc.on("message", (m: Reply | Ready) => {
        if ("ready" in m) {
          clearTimeout(timer);
          resolve(m.info as Info);
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(`${name}: ${m.error}`));
      });
      this.proc.on("exit", (code, signal) => {
        this.exited = true;
        clearTimeout(timer);
        const err = new Error(`${name} exited (code ${code}, signal ${signal})`);
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
    });
    const forget = killAtExit(this);
    this.proc.once("exit", forget);
    // A rejection nobody awaited yet (the child died before anyone asked) must not crash us.
    this.ready.catch(() => {});
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  call<T>(cmd: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} already exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Ends the child (SIGTERM, then SIGKILL after 3 s) and waits for it to go. */
  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const hard = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      this.proc.once("exit", () => {
        clearTimeout(hard);
        resolve();
      });
      this.proc.kill("SIGTERM");
    });
  }

  /** Synchronous best effort, for process exit handlers. */
  killNow(): void {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}
