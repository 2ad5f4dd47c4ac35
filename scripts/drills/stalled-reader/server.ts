// The stalled-reader drill's server: the chat (createChat, embedded engine on a temp data dir given in
// argv[2]) in its own process, so the drill's many client tabs do not share its event loop, and so the
// drill can read the server's own numbers: it answers `app.stats()` and its memory over the IPC channel.
// Started by scripts/drills/stalled-reader/drill.ts; exits when the parent goes away.
import { createChat } from "../../../apps/chat/app.tsx";
import { createLogger } from "../../../src/log.ts";
import { openPubSub } from "../../../src/pubsub/index.ts";
import type { ServerReply, ServerRequest } from "./protocol.ts";

const [dir, room, cap] = process.argv.slice(2);
if (!dir || !room || !cap || !process.send) {
  process.stderr.write("usage: started by scripts/drills/stalled-reader (IPC), with <data dir> <room> <queue cap>\n");
  process.exit(2);
}

process.on("disconnect", () => process.exit(0));
const send = (m: ServerReply) => {
  try {
    process.send?.(m);
  } catch {
    // channel closed: "disconnect" ends us
  }
};

const logger = createLogger(process.env.VIA_LOG_LEVEL ?? "error");
const pubsub = await openPubSub({ dataDir: dir, logger });
const chat = await createChat({
  pubsub,
  logger,
  rooms: [room],
  sendRate: 10,
  app: { queueCapBytes: Number(cap), clientLimits: false },
});
const { url } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });

process.on("message", (m: ServerRequest) => {
  if (m.type === "stats") {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    send({
      type: "stats",
      id: m.id,
      stats: chat.app.stats(),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      cpuMicros: cpu.user + cpu.system,
    });
  }
});
send({ type: "ready", url, pid: process.pid });
