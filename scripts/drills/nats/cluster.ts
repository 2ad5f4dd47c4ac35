// The cluster drill: a 3-node JetStream cluster with CHAT on 3 replicas, the stream's leader killed with
// SIGKILL under chat traffic and restarted once the chat has recovered, each failover measured.
import { CHAT_STREAM } from "../../../apps/chat/rooms.ts";
import { startNatsCluster } from "../../../harness/nats-server.ts";
import { now } from "../clock.ts";
import { ms, type Recovery, since } from "./recovery.ts";
import { StreamClock } from "./stream-clock.ts";
import { type DrillOutcome, logRecovery, type UnderFailuresOptions, underFailures } from "./under-failures.ts";

/** The chat's NATS connection name (the engine's default), to find its node in /connz. */
const CHAT_CONNECTION_NAME = "via-ts";

export interface ClusterOptions extends UnderFailuresOptions {
  kills: number;
}

export interface KillRecord extends Recovery {
  /** Node killed (the CHAT leader), and the node(s) the chat was connected to before the kill. */
  leader: string;
  chatOn: string;
  /** The CHAT leader after the failover, and the chat's node then. */
  newLeader: string;
  /** From the kill until the drill saw the new leader in stream info (polled every 50 ms). */
  electedMs?: number;
  chatOnAfter: string;
  /** From restarting the killed node to every replica current again. */
  rejoinMs?: number;
}

/** A 3-node JetStream cluster, CHAT with 3 replicas; its leader SIGKILLed under chat traffic. */
export async function runCluster(o: ClusterOptions): Promise<DrillOutcome<KillRecord>> {
  const log = o.log ?? (() => {});
  const cluster = await startNatsCluster(3);
  const names = (idx: number[]) => (idx.length === 0 ? "none" : idx.map((i) => cluster.nodes[i]!.name).join("+"));
  return underFailures(o, {
    servers: cluster.urls,
    replicas: 3,
    stopServers: () => cluster.stop(),
    failures: o.kills,
    where: (drill) =>
      `cluster ${cluster.nodes.map((n) => `${n.name} ${n.url} pid ${n.pid}`).join(", ")}; chat on ${drill.chat.url}`,
    async fail(drill, k) {
      const leader = await cluster.waitStreamCurrent(CHAT_STREAM);
      const chatOn = await cluster.nodesWithClient(CHAT_CONNECTION_NAME);
      const before = drill.snapshot();
      const pid = cluster.nodes[leader]!.pid;
      await cluster.killNode(leader);
      const failedAt = now();
      log(
        `kill ${k}/${o.kills}: SIGKILL of the CHAT leader ${cluster.nodes[leader]!.name} (pid ${pid}); ` +
          `the chat's connection was on ${names(chatOn)}${chatOn.includes(leader) ? " (it must reconnect)" : ""}`,
      );
      // The election, watched from the drill's side (the leader advisory and stream info, through the
      // surviving nodes).
      const survivors = cluster.urls.filter((_, i) => i !== leader);
      const elected = StreamClock.newLeader(
        survivors,
        cluster.nodes[leader]!.name,
        failedAt + (o.recoveryLimitMs ?? 60_000),
      ).catch(() => ({ name: "?", at: undefined }));
      const r = await drill.measure({ before, failedAt });
      const { name: newLeader, at: electedAt } = await elected;
      const chatOnAfter = names(await cluster.nodesWithClient(CHAT_CONNECTION_NAME));
      logRecovery(log, r);
      const t0 = now();
      let rejoinMs: number | undefined;
      try {
        await cluster.restartNode(leader);
        await cluster.waitStreamCurrent(CHAT_STREAM, o.recoveryLimitMs ?? 60_000);
        rejoinMs = now() - t0;
        log(
          `    new leader ${newLeader} seen ${ms(since(failedAt, electedAt))} ms after the kill, ` +
            `chat now on ${chatOnAfter}; ${cluster.nodes[leader]!.name} restarted and current in ${ms(rejoinMs)} ms`,
        );
      } catch (err) {
        log(`    ${cluster.nodes[leader]!.name} did not rejoin: ${(err as Error).message}`);
      }
      return {
        ...r,
        ...(electedAt !== undefined ? { electedMs: electedAt - failedAt } : {}),
        leader: cluster.nodes[leader]!.name,
        chatOn: names(chatOn),
        newLeader,
        chatOnAfter,
        ...(rejoinMs !== undefined ? { rejoinMs } : {}),
      };
    },
    stopAfter: (r) => (r.rejoinMs === undefined ? `${r.leader} did not rejoin` : undefined),
  });
}
