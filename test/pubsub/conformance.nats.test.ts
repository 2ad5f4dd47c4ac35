// The conformance suite on the NATS engine against one real nats-server (JetStream, file store) for the
// whole file: every test uses its own stream names and subject prefix. restart() is a kill -9 of the
// server and a restart on the same port and store dir while the engine keeps running.
import { describe } from "node:test";
import { runConformance } from "via-ts/testing";
import { type NatsServer, natsServerMissing, startNatsServer, waitForJetStream } from "../../harness/nats-server.ts";
import { connectNats } from "../../src/pubsub/nats/engine.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import { natsProbe } from "../../src/testing/nats.ts";

const missing = natsServerMissing();
if (missing) {
  describe("nats conformance", { skip: missing }, () => {});
} else {
  let server: NatsServer | undefined;
  const engines = new Set<PubSub>();
  runConformance({
    name: "nats",
    async open() {
      server ??= await startNatsServer();
      const ps = await connectNats({ servers: server.url, name: "conformance" });
      engines.add(ps);
      return ps;
    },
    async restart(engine) {
      if (!server) throw new Error("restart before open");
      await server.restart();
      // "Return the same engine once it can publish again": its connection is back and JetStream answers.
      await waitForJetStream(natsProbe(engine).connection);
      return engine;
    },
    restartKeepsSubscriptions: true,
    async cleanup() {
      for (const ps of engines) await ps.close();
      await server?.stop();
    },
  });
}
