// The crash drill's embedded-engine process: opens the engine on the data dir given in argv[2], ensures the
// drill stream (as an app does at every start), then serves publish requests from the parent over the IPC
// channel, answering each with its ack only after `publish` resolved (the message is committed). The
// parent kills it with SIGKILL at random moments and starts it again on the same dir.
import { openEmbedded } from "../../../src/pubsub/embedded/engine.ts";
import { DRILL_STREAM, type PublishReply, type PublishRequest } from "./protocol.ts";

const dir = process.argv[2];
if (!dir || !process.send) {
  process.stderr.write("usage: started by scripts/drills/engine-crash (IPC channel), with the data dir as argument\n");
  process.exit(2);
}

// The parent went away (crashed, or killed without cleaning up): nothing left to serve.
process.on("disconnect", () => process.exit(0));

const send = (m: PublishReply | { ready: true; pid: number }) => {
  try {
    process.send?.(m);
  } catch {
    // channel closed: the parent is gone, "disconnect" ends us
  }
};

const ps = await openEmbedded({ dataDir: dir });
await ps.ensureStream(DRILL_STREAM);

process.on("message", (m: PublishRequest) => {
  ps.publish(m.subject, m.data, { msgId: m.msgId }).then(
    (ack) => {
      if (!ack) send({ id: m.id, ok: false, error: `${m.subject}: not captured by a stream` });
      else send({ id: m.id, ok: true, seq: ack.seq, duplicate: ack.duplicate });
    },
    (err: unknown) => send({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
send({ ready: true, pid: process.pid });
