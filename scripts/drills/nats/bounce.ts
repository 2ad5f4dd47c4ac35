// The nats-bounce drill: a single nats-server with JetStream on disk, stopped and started again on the same
// port and store under chat traffic, each recovery measured.
import { createConnection } from "node:net";
import { sleep } from "../../../harness/cleanup.ts";
import { startNatsServer } from "../../../harness/nats-server.ts";
import { now } from "../clock.ts";
import type { Recovery } from "./recovery.ts";
import { type DrillOutcome, logRecovery, type UnderFailuresOptions, underFailures } from "./under-failures.ts";

export interface BounceOptions extends UnderFailuresOptions {
  bounces: number;
  /** How long nats-server stays down (ms). */
  outageMs: number;
  /** SIGKILL instead of SIGTERM. */
  kill: boolean;
}

export interface BounceRecord extends Recovery {
  pid: number;
  signal: string;
  downMs: number;
  /** From spawning nats-server again to it accepting connections. */
  startMs: number;
}

/** When a TCP connect to the port on 127.0.0.1 first succeeds (tried every 5 ms), or undefined at the deadline. */
async function untilListening(port: number, deadline: number): Promise<number | undefined> {
  while (now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: "127.0.0.1", port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return now();
    await sleep(5);
  }
  return undefined;
}

/** A single nats-server with JetStream on disk, restarted under chat traffic. */
export async function runNatsBounce(o: BounceOptions): Promise<DrillOutcome<BounceRecord>> {
  const log = o.log ?? (() => {});
  const server = await startNatsServer();
  const signal = o.kill ? "SIGKILL" : "SIGTERM";
  return underFailures(o, {
    servers: [server.url],
    stopServers: () => server.stop(),
    failures: o.bounces,
    where: (drill) =>
      `nats-server pid ${server.pid} on ${server.url}, store ${server.storeDir}; chat on ${drill.chat.url}`,
    async fail(drill, b) {
      const before = drill.snapshot();
      const pid = server.pid;
      if (o.kill) await server.kill9();
      else await server.terminate();
      const failedAt = now();
      await sleep(o.outageMs);
      const t0 = now();
      // "Back" is when the new process accepts connections on the old port (clients reconnect then);
      // its /healthz answers 200 a little later.
      const listening = untilListening(server.port, t0 + 30_000);
      await server.start();
      const healthyAt = now();
      const backAt = (await listening) ?? healthyAt;
      log(
        `bounce ${b}/${o.bounces}: ${signal} pid ${pid}, down ${Math.round(t0 - failedAt)} ms, listening again ` +
          `${Math.round(backAt - t0)} ms after the start, /healthz 200 after ${Math.round(healthyAt - t0)} ms (pid ${server.pid})`,
      );
      const r = await drill.measure({ before, failedAt, backAt });
      logRecovery(log, r);
      return { ...r, pid, signal, downMs: t0 - failedAt, startMs: backAt - t0 };
    },
  });
}
