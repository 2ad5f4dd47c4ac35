// The conformance suite on the NATS engine against a 3-node JetStream cluster on loopback, every stream
// with 3 replicas. Engines connect with all three URLs. restart() crashes the whole cluster (kill -9 of
// every node), starts it again on the same ports and store dirs, and returns the same engine once its
// streams have leaders again: the durability claim is about every node's store, not one survivor's.
import { describe } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { runConformance } from "via-ts/testing";
import { type NatsCluster, natsServerMissing, startNatsCluster, waitForJetStream } from "../../harness/nats-server.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import { natsProbe } from "../../src/testing/nats.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After a full-cluster restart every stream must elect a leader before it can be read or written. */
async function waitForStreamLeaders(engine: PubSub, timeoutMs = 30_000): Promise<void> {
  const probe = natsProbe(engine);
  const jsm = await jetstreamManager(probe.connection, { checkAPI: false, timeout: 2000 });
  const deadline = Date.now() + timeoutMs;
  for (const { stream } of probe.feedStats()) {
    for (;;) {
      try {
        const si = await jsm.streams.info(stream);
        if (si.cluster?.leader) break;
      } catch {
        // no leader yet
      }
      if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader ${timeoutMs} ms after restart`);
      await sleep(100);
    }
  }
}

const missing = natsServerMissing();
if (missing) {
  describe("nats-cluster conformance", { skip: missing }, () => {});
} else {
  let cluster: NatsCluster | undefined;
  const engines = new Set<PubSub>();
  runConformance({
    name: "nats-cluster",
    replicas: 3,
    // R3 publishes and elections are slower than a single server's; the suite's own waits scale with this.
    timeScale: 2,
    async open() {
      cluster ??= await startNatsCluster(3);
      const ps = await connectNats({ servers: cluster.urls, name: "conformance-cluster" });
      engines.add(ps);
      return ps;
    },
    async restart(engine) {
      if (!cluster) throw new Error("restart before open");
      const c = cluster;
      await Promise.all(c.nodes.map((_, i) => c.killNode(i)));
      await Promise.all(c.nodes.map((_, i) => c.restartNode(i)));
      await waitForJetStream(natsProbe(engine).connection);
      await waitForStreamLeaders(engine);
      return engine;
    },
    restartKeepsSubscriptions: true,
    async cleanup() {
      for (const ps of engines) await ps.close();
      await cluster?.stop();
    },
  });
}
